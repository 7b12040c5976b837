"""Redis CPU on a replica per verifier per revocation, and per idle verifier per second.

Reproduce from the repository root::

    .venv/bin/python -m bench.replica_cost --verifiers 100 300

A Sentinel group (primary, one replica, three sentinels), the issuer (its own process:
heartbeats) and V real verifiers reading the replica (``REVOCAST_READ_FROM_REPLICAS=1``;
``bench._swarm_worker`` processes holding many ``Verifier`` objects, each with its own
connections and followers). For V = 0 and each count asked, three phases of the same
length, the replica's ``INFO`` read before and after each:

- idle: nothing written; the followers' block timeouts and status checks, the heartbeats;
- paced: revocations at a low rate (default 10/s), so each reaches each follower alone;
- bursts: revocations in bursts (default 100 at once), so followers read many per XREAD.

The cost of the followers is the replica's CPU (``used_cpu_sys + used_cpu_user``) minus the
same phase without followers; per event, minus the idle cost of those followers over the
phase's duration. A follower *reads* (``XREAD BLOCK``) and *checks* its status (``MGET``
and ``TIME``, one round trip); from the idle phase come the replica CPU per read and per
check, from the bursts the CPU per entry delivered to one follower, and the paced phase
checks the three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import _phases
from bench._env import add_quiet_arguments, run_and_record
from bench._replica_scene import Scene, replica_scene
from bench._swarm import Swarm

RESULTS = Path(__file__).resolve().parent / "results" / "replica_cost.json"
SETTLE_S = 3.0  # after the cold start, before the idle phase

NOTES = [
    "One host (2 CPUs, shared): redis-server primary, replica and 3 sentinels, the issuer "
    "(uvicorn; its own Verifier reads the primary), this writer, and the follower processes. "
    "The replica's figures are its own accounting (INFO cpu, commandstats, stats), so they "
    "exclude the clients; they are inflated by this host being a VM sharing 2 CPUs "
    "(context switches, preemption) and would be lower on a dedicated core.",
    "Followers: bench._swarm_worker processes, each holding V/P real Verifier objects with "
    "REVOCAST_READ_FROM_REPLICAS=1 and their own Backend (Sentinel client, connection "
    "pools): one StreamFollower per stream (global + 1 partition on Sentinel), each "
    "looping: XREAD BLOCK 1000 ms from its last id, then a status check (MGET of the "
    "stream's chain, epoch and heartbeat, and TIME, pipelined) when the read was empty or "
    "the last check is a quarter block old.",
    "Events: Store.sessions.revoke_session (the logout script on the primary, then WAIT 1 "
    "replica), "
    "written by this process; paced = open loop at the rate, bursts = size concurrent "
    "calls. Each event carries a fresh session id; a swarm process reports when the last "
    "of its verifiers applied it (on_applied hook).",
    "Per-verifier figures: (phase with V followers - V's idle cost over the phase's "
    "duration - the same phase with no followers, per event) / (V x events). reads = "
    "XREAD calls on the replica, checks = MGET calls (every status check sends one; no one "
    "else sends MGET there).",
    "Model fit: the idle phase's followers' CPU, split between their reads (XREAD calls) "
    "and status checks (MGET calls) by commandstats' usec of xread and of mget + time, the "
    "rest shared equally per round trip; cpu_per_entry from the bursts ((followers' CPU - "
    "reads x cpu_per_read - checks x cpu_per_check) / entries delivered = V x events); the "
    "paced phase is predicted from all three and compared.",
]


async def measure_count(scene: Scene, verifiers: int, args: argparse.Namespace) -> dict[str, Any]:
    swarm = None
    run: dict[str, Any] = {"verifiers": verifiers}
    try:
        if verifiers:
            per = verifiers // args.processes
            swarm = await Swarm.launch(scene.children, scene.verifier_env, args.processes, per)
            cold = await swarm.cold_start()
            run["cold_start_wall_s"] = cold["wall_s"]
            await asyncio.sleep(SETTLE_S)
            run["status_before"] = await swarm.status()
        run["idle"] = await _phases.idle(scene, swarm, args.seconds)
        run["paced"] = await _phases.paced(scene, swarm, args.rate, args.seconds)
        run["bursts"] = await _phases.bursts(
            scene, swarm, args.burst, args.bursts, args.burst_every
        )
        if swarm:
            run["status_after"] = await swarm.status()
    finally:
        if swarm:
            await swarm.stop()
    print(f"  {verifiers} followers: {summarize_run(run)}", flush=True)
    return run


def summarize_run(run: dict[str, Any]) -> str:
    phases = ("idle", "paced", "bursts")
    return ", ".join(f"{p} {run[p]['replica']['cpu_percent']}% cpu" for p in phases)


def total(phase: dict[str, Any], what: str) -> float:
    """A phase's replica total: ``cpu`` seconds, ``net`` output bytes, a command's calls, or
    (``command:usec``) the microseconds it ran."""
    replica = phase["replica"]
    if what == "cpu":
        return float(replica["cpu_s"])
    if what == "net":
        return float(replica["net_out_bytes"])
    command, _, field = what.partition(":")
    return float(replica["commands"].get(command, {}).get(field or "calls", 0))


def followers_part(run: dict[str, Any], base: dict[str, Any], phase: str, what: str) -> float:
    """What the followers caused in a phase: its total minus, from the run without followers,
    the idle rate over the phase's duration and the cost per event times its events."""
    seconds = float(run[phase]["replica"]["seconds"])
    base_rate = total(base["idle"], what) / float(base["idle"]["replica"]["seconds"])
    part = total(run[phase], what) - base_rate * seconds
    if phase != "idle":
        b = base[phase]
        per_event = (total(b, what) - base_rate * b["replica"]["seconds"]) / b["events"]
        part -= per_event * run[phase]["events"]
    return part


def derive(run: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Per-verifier figures for one count, against the run without followers ``base``.

    Idle, every read (an ``XREAD`` that blocks a period and returns nothing) comes with one
    status check, so the idle phase alone cannot tell them apart. Their CPU is split by what
    ``commandstats`` says each command ran, plus an equal share each of the rest (reading the
    request, writing the reply: one round trip each)."""
    v = run["verifiers"]
    idle_s = float(run["idle"]["replica"]["seconds"])

    def idle(what: str) -> float:
        return followers_part(run, base, "idle", what)

    reads, checks = idle("xread"), idle("mget")
    ran_read = idle("xread:usec") / 1e6
    ran_check = (idle("mget:usec") + idle("time:usec")) / 1e6
    round_trip = (idle("cpu") - ran_read - ran_check) / (reads + checks)
    cpu_per_read = round_trip + ran_read / reads
    cpu_per_check = round_trip + ran_check / checks
    net_per_check = idle("net") / checks
    out: dict[str, Any] = {
        "verifiers": v,
        "idle_us_per_verifier_s": round(idle("cpu") * 1e6 / (v * idle_s), 2),
        "idle_checks_per_verifier_s": round(checks / (v * idle_s), 3),
        "idle_reads_per_verifier_s": round(reads / (v * idle_s), 3),
        "idle_bytes_per_verifier_s": round(idle("net") / (v * idle_s), 1),
        "cpu_us_per_idle_cycle": round(idle("cpu") * 1e6 / checks, 2),
        "cpu_us_per_read": round(cpu_per_read * 1e6, 2),
        "cpu_us_per_check": round(cpu_per_check * 1e6, 2),
        "bytes_per_check": round(net_per_check, 1),
    }
    entry_cpu = 0.0
    for phase in ("bursts", "paced"):
        entries = v * run[phase]["events"]

        def events_part(what: str, phase: str = phase) -> float:
            """The followers' part beyond their idle rate: what the events cost them."""
            seconds = float(run[phase]["replica"]["seconds"])
            return followers_part(run, base, phase, what) - idle(what) / idle_s * seconds

        figures: dict[str, Any] = {
            "us_per_verifier_per_event": round(events_part("cpu") * 1e6 / entries, 2),
            "bytes_per_verifier_per_event": round(events_part("net") / entries, 1),
            "checks_per_verifier_per_event": round(events_part("mget") / entries, 3),
            "reads_per_verifier_per_event": round(events_part("xread") / entries, 3),
        }
        cpu = followers_part(run, base, phase, "cpu")
        phase_reads = followers_part(run, base, phase, "xread")
        phase_checks = followers_part(run, base, phase, "mget")
        fixed = phase_reads * cpu_per_read + phase_checks * cpu_per_check
        if phase == "bursts":
            entry_cpu = (cpu - fixed) / entries
            net = followers_part(run, base, phase, "net")
            figures["cpu_us_per_entry"] = round(entry_cpu * 1e6, 3)
            figures["bytes_per_entry"] = round((net - phase_checks * net_per_check) / entries, 1)
        else:
            predicted = fixed + entries * entry_cpu
            figures["model_predicted_cpu_s"] = round(predicted, 4)
            figures["measured_cpu_s"] = round(cpu, 4)
            figures["measured_over_predicted"] = round(cpu / predicted, 3)
        out[phase] = figures
    return out


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    async with replica_scene(tmp) as scene:
        runs = [await measure_count(scene, v, args) for v in [0, *args.verifiers]]
        version = scene.deployment.version()
    base = runs[0]
    return {
        "runs": runs,
        "derived": [derive(run, base) for run in runs[1:]],
        "redis_server": version,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--verifiers", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--processes", type=int, default=2, help="follower processes")
    parser.add_argument("--seconds", type=float, default=15.0, help="idle and paced phases")
    parser.add_argument("--rate", type=float, default=10.0, help="paced revocations per s")
    parser.add_argument("--burst", type=int, default=100, help="revocations per burst")
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--burst-every", type=float, default=1.5, help="seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if any(v < args.processes or v % args.processes for v in args.verifiers):
        parser.error("each --verifiers count must be a multiple of --processes")
    report = run_and_record("replica_cost", args, argv, measure, notes=NOTES)
    for d in report["derived"]:
        print(json.dumps(d))


if __name__ == "__main__":
    main()
