"""One follower per host against one per worker, in one run (issue 22, point 1).

Reproduce from the repository root::

    .venv/bin/python -m bench.host_share --workers 1 4 8 --revoked 100000 --rounds 300

A private redis-server (appendonly off) holds a deployment with ``--revoked`` revoked
sessions (pipelined ZADD, as ``bench.memory_snapshot`` fills it) and the issuer
(``revocast issuer``) runs as its own process. For each worker count W and each mode, W
fresh ``bench._host_worker`` processes stand for one host's workers: ``independent``
(``REVOCAST_SHARED_CACHE=0``: each its own follower and cache, today's design) and
``shared`` (``REVOCAST_SHARED_CACHE=1``: one follower and one table in /dev/shm). Per run:

- Redis connections held by the W processes once ready (psutil, ESTABLISHED to the port);
- memory per revoked entry per host: the sum over workers of the unique set size each kept
  (after its first snapshot minus before its start) plus, shared, the table's allocated
  bytes, over the revoked entries;
- warm verify: ns per ``verify()`` of an accepted token, each worker in turn, the fastest of
  10 batches; and paired: in each worker, its verify against an in-process verifier's
  (``REVOCAST_SHARED_CACHE=0``) started beside it in the same process, batch for batch in
  turn, as a ratio per worker (in the independent mode both are in-process: the control);
- hand-off (propagation without probes): per round a fresh login, nobody polling; from
  just before ``POST /v1/logout`` to when the revocation is in every worker's reach
  (``time.monotonic()``, one clock on a Linux host): independent, the last worker's follower
  applied it to its cache; shared, the host's follower wrote it to the table, after which
  every other worker verifies the token once and must refuse it. Also from the event's XADD
  (its ``ts_ms``) to the apply, and, for the same revocations at the same moments, one
  independent process started beside the host for this phase (the single-process figure
  under the same load, and the host's excess over it round by round);
- propagation seen by probes: per round a fresh login, every worker polls ``verify()``
  about every millisecond until it refuses; to each worker's first refusal and to the last
  worker's, split into the hand-off (as above, under the probes' load) and the probe's own
  delay (from the moment its verify could refuse to its refusal); and, as in the hand-off,
  one independent process beside the host probing the same revocations;
- CPU per event: the workers' CPU over ``--events`` logouts at 50/s with nobody polling,
  minus their idle CPU over as long, over the events; Redis' CPU the same way;
- with ``--scale-revoked N``, memory alone again at N revoked sessions (shared at every W,
  one independent worker): a host's fixed cost (the follower's heap) then weighs little
  per entry, and what remains is what an entry costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

from bench._env import add_quiet_arguments, cpu_seconds, run_and_record
from bench._issuer import PASSWORD, add_user, revocast_env, start_issuer
from bench._processes import (
    ROUND_TIMEOUT_S,
    Children,
    Worker,
    check_alive,
    start_workers,
    stop_workers,
)
from bench._redis_info import redis_version
from bench._stats import ms, summary
from bench.memory_snapshot import fill
from revocast.keyspace import Keyspace
from revocast.settings import Settings
from revocast.verifier.host import host_dir
from revocast_tools.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "host_share.json"
USERNAME = "bench"
MODES = ("independent", "shared")
EVENT_INTERVAL_S = 0.02  # 50 logouts a second in the CPU phase
WARM_CALLS = 200_000

NOTES = [
    "Every process on one host: redis-server, the issuer (which runs a verifier of its own, "
    "not counted), the client (this script) and the W workers of the run. Nothing is pinned.",
    "independent: REVOCAST_SHARED_CACHE=0, each worker follows every stream and keeps its own "
    "cache (today's design). shared: REVOCAST_SHARED_CACHE=1, the worker holding the host's "
    "lock follows and writes the table in /dev/shm; the others read it.",
    "Memory: unique set size (psutil memory_full_info().uss, after gc.collect()) each worker "
    "kept from before Verifier.start() to after its first snapshot, summed over the workers, "
    "plus for shared the table file's allocated bytes (st_blocks x 512, counted once: it is "
    "shared memory, in no worker's USS); divided by the revoked sessions filled. The "
    "follower's USS includes what its snapshot left in Python's allocator.",
    "Warm verify paired: each worker starts a second verifier in its own process with "
    "REVOCAST_SHARED_CACHE=0 (its own follower and cache: the in-process design) and times "
    "verify() of the same token on both, 10 batches of 20,000 calls each, in turn (ABBA); "
    "the fastest batch of each, and their ratio per worker; the host's figure is the median "
    "worker's ratio. Same core, same moments: a slow core slows both. In the independent "
    "mode both verifiers are in-process, so its ratio shows what the method reads as equal.",
    "Hand-off: from just before the POST /v1/logout request to when the revocation is in "
    "every worker's reach, with no worker polling: independent, when the last of the W "
    "followers had applied it to its cache (Verifier(on_applied=...), called right after); "
    "shared, when the host's follower had written it to the table (a reader's verify reads "
    "the table itself: after that write each reader verifies once and must refuse). "
    "'XADD to applied': from the event's ts_ms (Redis' clock, cut to the ms) to that moment "
    "on the wall clock. In this phase one more independent process, started beside the host, "
    "applies the same revocations: the single-process figure under the same load at the same "
    "moments ('single process beside'), and the host's excess over it per round. "
    "Percentiles are nearest-rank.",
    "Probed: the workers poll verify() every 1 ms (asyncio.sleep(0.001) on uvloop), in both "
    "modes alike; poll_interval_ms is each probe's mean time between polls per round, as it "
    "was (results before 2026-12-06 12:45 slept 0.5 ms, which uvloop, counting whole ms, "
    "ran as a zero timer: those probes spun). From the same start to each "
    "worker's first refusal; 'every worker' is the last of the W per round. Split into the "
    "hand-off under the probes' load and the probe's own delay (from when its verify could "
    "refuse to its refusal). W processes polling 1,000 times a second on 2 cores delay the "
    "follower, the issuer and Redis: this measures the probes as much as the propagation. "
    "The single process beside the host probes too, the same revocations at the same "
    "moments: the single-process figure under the same load, and the host's every-worker "
    "excess over it per round.",
    "CPU per event: the workers' user+system CPU (/proc/<pid>/stat) over the logouts, sent "
    "one every 20 ms with no polling, minus their CPU over an idle period of the same length "
    "just before, divided by the logouts. Redis' CPU the same way.",
]


def redis_connections(pids: Sequence[int], port: int) -> int:
    count = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            count += sum(
                1
                for conn in psutil.Process(pid).net_connections(kind="tcp")
                if conn.raddr and conn.raddr.port == port and conn.status == "ESTABLISHED"
            )
    return count


def table_bytes(env: dict[str, str]) -> int:
    try:
        info = os.stat(host_dir(Settings.from_env(env)) / "table")
    except OSError:
        return 0
    return info.st_blocks * 512


async def login(http: httpx.AsyncClient) -> tuple[str, str]:
    """(access token, session id) of a fresh login."""
    reply = await http.post("/v1/login", json={"username": USERNAME, "password": PASSWORD})
    reply.raise_for_status()
    body = reply.json()
    return str(body["access_token"]), str(body["session_id"])


async def logout(http: httpx.AsyncClient, token: str) -> None:
    reply = await http.post("/v1/logout", headers={"Authorization": f"Bearer {token}"})
    reply.raise_for_status()


async def propagation(
    http: httpx.AsyncClient, workers: Sequence[Worker], rounds: int, reference: Worker
) -> dict[str, Any]:
    """Seen by probes: every worker polls verify() until it refuses. Besides the first
    refusal, each worker says when its follower applied the revocation (independent: its
    own; shared: the host's follower, which wrote the table), which splits the latency into
    the hand-off (the last follower of the host to apply it) and the probe's own delay.
    ``reference``, one independent process beside the host, probes the same revocations at
    the same moments: the single-process figure under the same load, round by round."""
    each: list[float] = []
    last: list[float] = []
    handed: list[float] = []
    from_xadd: list[float] = []
    probe: list[float] = []
    single: list[float] = []
    single_applied: list[float] = []
    beyond: list[float] = []
    intervals: list[float] = []  # each probe's mean time between polls, per round
    for _ in range(rounds):
        token, sid = await login(http)
        for worker in [*workers, reference]:
            worker.send(f"watch {token} {sid}")
        for worker in [*workers, reference]:
            if await worker.receive(ROUND_TIMEOUT_S) != ["accepting"]:
                raise RuntimeError(f"{worker.child.name} did not accept")
        started = time.monotonic()
        await logout(http, token)
        seen: list[float] = []
        applied: list[float | None] = []
        for worker in workers:
            words = await _refused(worker)
            seen.append(ms(float(words[1]) - started))
            applied.append(None if words[3] == "-" else ms(float(words[3]) - started))
            if words[4] != "-":
                from_xadd.append(float(words[4]))
            intervals.append(float(words[5]))
        words = await _refused(reference)
        single.append(ms(float(words[1]) - started))
        single_applied.append(ms(float(words[3]) - started))
        table = max(a for a in applied if a is not None)  # shared: the table's one write
        each.extend(seen)
        last.append(max(seen))
        beyond.append(last[-1] - single[-1])
        handed.append(table)
        # (c): from the moment this worker's verify could refuse to the probe's refusal.
        probe.extend(t - (table if a is None else a) for t, a in zip(seen, applied, strict=True))
    return {
        "each_worker_ms": summary(each),
        "every_worker_ms": summary(last),
        "handoff_every_worker_ms": summary(handed),
        "xadd_to_applied_ms": summary(from_xadd),
        "probe_delay_ms": summary(probe),
        "single_process_ms": summary(single),
        "single_process_applied_ms": summary(single_applied),
        "poll_interval_ms": summary(intervals),
        "beyond_single_process_ms": summary(beyond),
    }


async def _refused(worker: Worker) -> list[str]:
    """A probe's report: ``revoked <monotonic s> session_revoked <applied> <from XADD> <ms
    between polls>``."""
    words = await worker.receive(ROUND_TIMEOUT_S)
    if words[0] != "revoked" or words[2] != "session_revoked":
        raise RuntimeError(f"{worker.child.name} said {words!r}")
    return words


async def handoff(
    http: httpx.AsyncClient, workers: Sequence[Worker], rounds: int, reference: Worker
) -> dict[str, Any]:
    """Propagation without probes: from just before POST /v1/logout to when the revocation
    was in every worker's reach, nobody polling. Independent: each worker's follower applied
    it to its own cache. Shared: the host's follower wrote it to the table; every other worker
    then verifies once, which must refuse (a verify reads the table: nothing to wait for).
    ``reference``, one independent process beside the host, applies the same revocations at
    the same moments: the single-process figure under the same load, round by round."""
    each: list[float] = []
    last: list[float] = []
    from_xadd: list[float] = []
    single: list[float] = []
    beyond: list[float] = []
    for _ in range(rounds):
        token, sid = await login(http)
        for worker in [*workers, reference]:
            worker.send(f"expect {sid}")
        for worker in [*workers, reference]:
            if await worker.receive(ROUND_TIMEOUT_S) != ["expecting"]:
                raise RuntimeError(f"{worker.child.name} did not expect")
        started = time.monotonic()
        await logout(http, token)
        words = await reference.receive(ROUND_TIMEOUT_S)
        if words[0] != "applied":
            raise RuntimeError(f"{reference.child.name} said {words!r}")
        single.append(ms(float(words[1]) - started))
        applied: list[float] = []
        readers: list[Worker] = []
        for worker in workers:
            words = await worker.receive(ROUND_TIMEOUT_S)
            if words == ["reader"]:
                readers.append(worker)
            elif words[0] == "applied":
                applied.append(ms(float(words[1]) - started))
                from_xadd.append(float(words[2]))
            else:
                raise RuntimeError(f"{worker.child.name} said {words!r}")
        for worker in readers:
            worker.send(f"check {token}")
            if (words := await worker.receive(ROUND_TIMEOUT_S)) != ["refused", "session_revoked"]:
                raise RuntimeError(f"{worker.child.name} said {words!r} after the table had it")
        each.extend(applied)
        last.append(max(applied))
        beyond.append(last[-1] - single[-1])
    return {
        "each_follower_ms": summary(each),
        "every_worker_ms": summary(last),
        "xadd_to_applied_ms": summary(from_xadd),
        "single_process_ms": summary(single),
        "beyond_single_process_ms": summary(beyond),
    }


async def cpu_per_event(
    http: httpx.AsyncClient, workers: Sequence[Worker], events: int, redis_pid: int | None
) -> dict[str, Any]:
    tokens = [(await login(http))[0] for _ in range(events)]
    pids = [w.child.process.pid for w in workers]

    def cpu() -> tuple[float, float]:
        return sum(cpu_seconds(pid) for pid in pids), cpu_seconds(redis_pid)

    duration = events * EVENT_INTERVAL_S
    idle_start = cpu()
    await asyncio.sleep(duration)
    idle_end = cpu()
    start, began = cpu(), time.monotonic()
    for index, token in enumerate(tokens):
        await logout(http, token)
        await asyncio.sleep(max(0.0, began + (index + 1) * EVENT_INTERVAL_S - time.monotonic()))
    await asyncio.sleep(0.5)  # the last events applied
    end = cpu()
    took = time.monotonic() - began
    idle = [(idle_end[i] - idle_start[i]) / duration * took for i in range(2)]
    return {
        "events": events,
        "workers_cpu_s": round(end[0] - start[0], 3),
        "workers_idle_cpu_s": round(idle[0], 3),
        "workers_cpu_ms_per_event": round(ms(max(0.0, end[0] - start[0] - idle[0]) / events), 3),
        "redis_cpu_ms_per_event": round(ms(max(0.0, end[1] - start[1] - idle[1]) / events), 3),
    }


async def kept_bytes(workers: Sequence[Worker]) -> int:
    """The anonymous memory the workers kept from before their start to now, summed."""
    kept = 0
    for worker in workers:
        worker.send("mem")
        _, before, now = await worker.receive(ROUND_TIMEOUT_S)
        kept += int(now) - int(before)
    return kept


async def memory_run(
    children: Children, env: dict[str, str], mode: str, count: int, revoked: int
) -> dict[str, Any]:
    """Memory alone, at ``revoked`` entries: where a host's fixed cost no longer counts."""
    run_env = env | {"REVOCAST_SHARED_CACHE": "1" if mode == "shared" else "0"}
    workers: list[Worker] = []
    try:
        await start_workers(children, run_env, count, workers, module="bench._host_worker",
                            name=f"{mode}-scale")  # fmt: skip
        await asyncio.sleep(1.0)
        kept = await kept_bytes(workers)
        table = table_bytes(run_env) if mode == "shared" else 0
        return {
            "mode": mode,
            "workers": count,
            "revoked": revoked,
            "uss_kept_mib": round(kept / 2**20, 1),
            "table_mib": round(table / 2**20, 2),
            "bytes_per_entry_per_host": round((kept + table) / max(1, revoked), 1),
            "table_bytes_per_entry": round(table / max(1, revoked), 1),
        }
    finally:
        await stop_workers(children, workers)
        shutil.rmtree(host_dir(Settings.from_env(run_env)), ignore_errors=True)


async def one_run(
    args: argparse.Namespace,
    children: Children,
    env: dict[str, str],
    http: httpx.AsyncClient,
    server: RedisServer,
    mode: str,
    count: int,
) -> dict[str, Any]:
    run_env = env | {"REVOCAST_SHARED_CACHE": "1" if mode == "shared" else "0"}
    workers: list[Worker] = []
    try:
        started = time.monotonic()
        await start_workers(children, run_env, count, workers, module="bench._host_worker",
                            name=f"{mode}")  # fmt: skip
        ready_s = time.monotonic() - started
        await asyncio.sleep(1.0)  # receipts written, connections settled
        kept = await kept_bytes(workers)
        connections = redis_connections([w.child.process.pid for w in workers], server.port)
        table = table_bytes(run_env) if mode == "shared" else 0
        token, _ = await login(http)
        warm_ns = []
        for worker in workers:
            worker.send(f"warm {token} {WARM_CALLS}")
            warm_ns.append(float((await worker.receive(60))[1]))
        pairs = []
        for worker in workers:
            worker.send(f"pair {token} {WARM_CALLS}")
            _, this, in_process = await worker.receive(60)
            pairs.append((float(this), float(in_process)))
        ratios = sorted(this / in_process for this, in_process in pairs)
        reference: list[Worker] = []
        try:
            await start_workers(children, env | {"REVOCAST_SHARED_CACHE": "0"}, 1, reference,
                                module="bench._host_worker", name="reference")  # fmt: skip
            spread = await propagation(http, workers, args.rounds, reference[0])
            handed = await handoff(http, workers, args.rounds, reference[0])
        finally:
            await stop_workers(children, reference)
        cpu = await cpu_per_event(http, workers, args.events, children.redis_pid)
        check_alive([w.child for w in workers])
        host_bytes = kept + table
        return {
            "mode": mode,
            "workers": count,
            "ready_s": round(ready_s, 2),
            "redis_connections": connections,
            "uss_kept_mib": round(kept / 2**20, 1),
            "table_mib": round(table / 2**20, 2),
            "bytes_per_entry_per_host": round(host_bytes / max(1, args.revoked), 1),
            "table_bytes_per_entry": round(table / max(1, args.revoked), 1),
            "warm_verify_ns": round(sum(warm_ns) / len(warm_ns), 1),
            "warm_verify_ns_each": [round(ns, 1) for ns in warm_ns],
            "warm_paired_ns_each": [[round(a, 1), round(b, 1)] for a, b in pairs],
            "warm_vs_in_process_each": [round(r, 3) for r in ratios],
            "warm_vs_in_process": round(ratios[(len(ratios) - 1) // 2], 3),
            "propagation": spread,
            "handoff": handed,
            "cpu": cpu,
        }
    finally:
        await stop_workers(children, workers)
        shutil.rmtree(host_dir(Settings.from_env(run_env)), ignore_errors=True)


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    children = Children(tmp)
    server.start()
    children.redis_pid = server.pid
    runs: list[dict[str, Any]] = []
    scale: list[dict[str, Any]] = []
    try:
        env = revocast_env(server.url, tmp) | {"REVOCAST_PARTITIONS": "1"}
        _, url = await start_issuer(children, env)
        add_user(env, USERNAME)
        fill(server.url, Keyspace(env["REVOCAST_KEY_PREFIX"], 1), args.revoked)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for count in args.workers:
                for mode in MODES:
                    run = await one_run(args, children, env, http, server, mode, count)
                    print(f"{mode} x{count}: {run}", flush=True)
                    runs.append(run)
        if args.scale_revoked:
            fill(server.url, Keyspace(env["REVOCAST_KEY_PREFIX"], 1), args.scale_revoked)
            # W independent workers at this size would each snapshot it (240 B an entry, and
            # on 2 cores longer than a worker waits to be fresh): one stands for them.
            for mode, count in [("independent", 1), *(("shared", w) for w in args.workers)]:
                run = await memory_run(children, env, mode, count, args.scale_revoked)
                print(f"{mode} x{count} at {args.scale_revoked}: {run}", flush=True)
                scale.append(run)
        redis = await redis_version(server.url)
    finally:
        children.stop()
        server.stop()
    return {"runs": runs, "memory_at_scale": scale, "redis_server": redis}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--revoked", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument(
        "--scale-revoked",
        type=int,
        default=0,
        help="then fill this many revoked sessions and measure memory alone (0: skip)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    run_and_record("host_share", args, argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
