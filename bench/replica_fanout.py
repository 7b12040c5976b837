"""A thousand or more verifiers following one replica: cold start, idle, revocation rates.

Reproduce from the repository root::

    .venv/bin/python -m bench.replica_fanout --processes 4 --per-process 250 --rates 10 30 100

A Sentinel group (primary, one replica, three sentinels; ``maxclients`` raised), the issuer
(its own process: heartbeats) and P x K real verifiers reading the replica
(``REVOCAST_READ_FROM_REPLICAS=1``), held by P ``bench._swarm_worker`` processes of K
``Verifier`` objects each (each its own Backend, Sentinel client and connections).

1. ``--state`` revocations are written first, so every snapshot has something to load.
2. Cold start: every process starts its K verifiers at once; per verifier, the time until
   ``start()`` returned and until ``ready``; the replica's CPU, output bytes and peak memory
   meanwhile, and the connections every server holds afterwards.
3. Idle: the followers' block timeouts and polls alone.
4. Per rate: revocations at that rate (open loop, ``Store.sessions.revoke_session`` with ``WAIT``)
   for ``--seconds``; from each call's request to the moment the last of all followers
   applied it, the ack, the replica's CPU, memory and output bytes, and the swarm's
   status every 2 s (verifiers ready, worst staleness) to see what gives way first.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import _phases
from bench._cold import cold_start
from bench._env import add_quiet_arguments, run_and_record
from bench._replica_scene import replica_scene
from bench._revoker import fill
from bench._swarm import Swarm

RESULTS = Path(__file__).resolve().parent / "results" / "replica_fanout.json"
SETTLE_S = 5.0
STATUS_EVERY_S = 2.0

NOTES = [
    "One host with 2 CPUs (a VM, shared): the replica, the primary, 3 sentinels, the issuer, "
    "this writer and the follower processes all compete for them. The replica's figures "
    "come from its own INFO (CPU, commandstats, bytes, memory); the follower processes' "
    "CPU from /proc. A thousand Python verifiers on 2 CPUs are client-bound long before "
    "the replica is: latency figures here measure this host, the replica's figures the "
    "cost a deployment would pay per replica.",
    "Each verifier is a real revocast Verifier with its own Backend (Sentinel client, "
    "connection pools): per stream (global + 1 partition) a blocking XREAD connection to "
    "the replica, plus the connections its Sentinel client and Backend.start() open.",
    "Propagation: per revocation, the writer's time.monotonic() just before "
    "Store.sessions.revoke_session (script + WAIT 1 replica) to the moment the last verifier of "
    "the last swarm process applied it (on_applied hook, CLOCK_MONOTONIC shared by all "
    "processes). Nearest-rank percentiles over the phase's revocations.",
    "Status (every 2 s during a phase, and after): verifiers ready (fresh within "
    "REVOCAST_MAX_STALENESS_S, 5 s) and the worst staleness, read errors.",
    "Cold start: the processes are started and imported first; then one 'start' line to "
    "each, back to back, and each starts its K verifiers concurrently (asyncio.gather). "
    "Times are from that line. Peaks: the replica's INFO polled every 0.2 s.",
]


class StatusWatch:
    """The swarm's status every ``every_s`` while a phase runs: the worst seen."""

    def __init__(self, swarm: Swarm, every_s: float = STATUS_EVERY_S) -> None:
        self.swarm = swarm
        self.every_s = every_s
        self.samples: list[dict[str, Any]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.every_s)
            except TimeoutError:
                self.samples.append(await self.swarm.status())

    async def __aenter__(self) -> StatusWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        # Not cancelled: a status request in flight is answered, not left in the pipe.
        self._stop.set()
        if self._task is not None:
            await self._task

    def worst(self) -> dict[str, Any]:
        if not self.samples:
            return {}
        return {
            "samples": len(self.samples),
            "min_ready": min(s["ready"] for s in self.samples),
            "max_staleness_s": max(s["max_staleness_s"] for s in self.samples),
            "read_errors": self.samples[-1]["read_errors"],
            "errors": sorted({e for s in self.samples for e in s["errors"]})[:3],
        }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    async with replica_scene(tmp) as scene:
        result["redis_server"] = scene.deployment.version()
        result["state_fill_s"] = round(await fill(scene.store, args.state), 2)
        result["state_revocations"] = args.state
        swarm = await Swarm.launch(
            scene.children, scene.verifier_env, args.processes, args.per_process
        )
        try:
            result["cold_start"] = await cold_start(scene, swarm)
            print(f"  cold start: {brief(result['cold_start'])}", flush=True)
            await asyncio.sleep(SETTLE_S)
            result["status_after_start"] = await swarm.status()
            async with StatusWatch(swarm) as watch:
                result["idle"] = await _phases.idle(scene, swarm, args.idle_seconds)
            result["idle"]["status"] = watch.worst()
            print(f"  idle: {result['idle']['replica']['cpu_percent']}% replica cpu", flush=True)
            result["rates"] = []
            for rate in args.rates:
                async with StatusWatch(swarm) as watch:
                    phase = await _phases.paced(scene, swarm, rate, args.seconds)
                phase["status"] = watch.worst()
                phase["status_after"] = await swarm.status()
                result["rates"].append(phase)
                print(f"  {rate}/s: {brief_rate(phase)}", flush=True)
                await asyncio.sleep(SETTLE_S)
        finally:
            started = time.monotonic()
            await swarm.stop()
            result["stop_s"] = round(time.monotonic() - started, 2)
    return result


def brief(cold: dict[str, Any]) -> str:
    ready = cold["ready_s"]
    shown = f"ready in {ready['max']:.2f} s (p50 {ready['p50']:.2f})" if ready else "none ready"
    return f"{cold['verifiers']} verifiers, {shown}, never ready {cold['never_ready']}"


def brief_rate(phase: dict[str, Any]) -> str:
    lat = phase.get("all_applied_from_request_ms")
    shown = f"p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} ms" if lat else "no event applied"
    return (
        f"{shown}, missing {phase.get('missing_events')}, replica "
        f"{phase['replica']['cpu_percent']}% cpu, min ready {phase['status'].get('min_ready')}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=4, help="follower processes")
    parser.add_argument("--per-process", type=int, default=250, help="verifiers per process")
    parser.add_argument("--state", type=int, default=1_000, help="revocations before start")
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0, 100.0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per rate")
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_quiet_arguments(parser)
    run_and_record("replica_fanout", parser.parse_args(argv), argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
