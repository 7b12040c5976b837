"""Propagation of a logout on each topology, verifiers on the primary and on replicas.

Reproduce from the repository root::

    .venv/bin/python -m bench.topologies --verifiers 4 --rounds 200

One run, one topology after the other (``bench._deploy``): a single server, Sentinel
(primary, one replica, three sentinels) and a 3 x 1 Cluster. On each, the issuer
(``revocast issuer``) and N verifier processes (``bench._verifier_worker``, a real
``Verifier`` each) are separate processes, and the rounds are those of
``bench.propagation``, action logout: log in, wait until every
verifier accepts the token, ``POST /v1/logout`` (timed), wait until every verifier applied
the revocation. Verifiers read the primary, then (Sentinel, Cluster) a replica
(``REVOCAST_READ_FROM_REPLICAS=1``), each with fresh verifier processes. The logout's own
round trip is the acknowledgement, which on Sentinel and Cluster includes ``WAIT`` for one
replica; ``Store.sessions.revoke_session`` is also timed alone (script plus ``WAIT``, no HTTP).
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench._deploy import KINDS, Deployment, deployment
from bench._env import add_quiet_arguments, run_and_record
from bench._issuer import add_user, revocast_env, start_issuer
from bench._processes import ROUND_TIMEOUT_S, Children
from bench._stats import summary
from bench.propagation import USERNAME, Logout, run_workers
from revocast.events import ActorKind
from revocast.ids import new_session_id
from revocast.settings import Settings
from revocast.store import Backend, Store

RESULTS = Path(__file__).resolve().parent / "results" / "topologies.json"
DIRECT_CALLS = 200

NOTES = [
    "One host (2 CPUs, shared), everything on loopback: the Redis servers of the topology, "
    "the issuer (uvicorn on uvloop; its own Verifier reads the primary), the client (this "
    "process) and N verifier processes. The topologies run one after the other, each "
    "stopped before the next starts.",
    "Rounds as bench.propagation, action logout: each verifier "
    "process reports time.monotonic() right after its follower applied the batch that "
    "revokes the watched session (then confirms with verify()). from_request_ms starts "
    "just before POST /v1/logout is sent (upper bound); latency_ms just after its reply "
    "(can be negative: applied before the reply arrived). slowest_per_round: the last of "
    "the N verifiers, i.e. until every verifier rejects the token.",
    "revoke_http_ms is the logout's HTTP round trip: the acknowledgement the user gets. "
    "On Sentinel and Cluster the revoke_session script is followed by WAIT for "
    "min_replicas (default 1) on the same connection, so it includes the replica's ack. "
    "revoke_call_ms times Store.sessions.revoke_session from this process alone (script + WAIT, "
    "no HTTP), sequentially, after the rounds.",
    "Replica reads: REVOCAST_READ_FROM_REPLICAS=1 in the verifier processes only; a "
    "verifier snapshots and follows on a replica (Sentinel: the replica the sentinels "
    "name; Cluster: one replica per shard, picked at random) and its freshness comes "
    "from the heartbeat the issuer writes on each stream's primary every 250 ms.",
    "Cluster: 6 partitions over 3 shards; one user logs in and out, so every round's "
    "event is in that user's partition (one shard); the global stream is on another.",
    "cpu_ms_per_round: redis is the primary's CPU on single and Sentinel; on Cluster it "
    "is left out (the rounds touch several nodes).",
    "A configuration whose verifiers cannot start records 'error' with the processes' "
    "last log lines instead of figures.",
]


async def partitions_and_replicas(env: dict[str, str]) -> tuple[int, int]:
    backend = Backend(Settings.from_env(env))
    try:
        keys = await backend.start()
        return keys.partitions, backend.min_replicas
    finally:
        await backend.aclose()


async def direct_calls(env: dict[str, str], calls: int) -> dict[str, float]:
    """``Store.sessions.revoke_session`` alone, one after the other: script + WAIT, no HTTP."""
    backend = Backend(Settings.from_env(env))
    try:
        await backend.start()
        store = Store(backend)
        times = []
        for _ in range(calls):
            uid = secrets.token_hex(16)
            sid = new_session_id(store.keys, uid)
            began = time.monotonic()
            await store.sessions.revoke_session(sid, uid, "bench", actor_kind=ActorKind.USER)
            times.append((time.monotonic() - began) * 1000)
        return summary(times)
    finally:
        await backend.aclose()


async def measure_topology(
    deployed: Deployment, tmp: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    children = Children(tmp)  # tmp exists: the deployment's servers live under it
    env = revocast_env(deployed.url, tmp)
    children.redis_pid = deployed.primaries[0].pid if deployed.kind != "cluster" else None
    runs: list[dict[str, Any]] = []
    try:
        _, url = await start_issuer(children, env)
        add_user(env, USERNAME)
        partitions, min_replicas = await partitions_and_replicas(env)
        reads = ["primary", "replica"] if deployed.replicas else ["primary"]
        async with httpx.AsyncClient(base_url=url, timeout=ROUND_TIMEOUT_S) as issuer:
            action = Logout(issuer)
            for where in reads:
                worker_env = env | {
                    "REVOCAST_READ_FROM_REPLICAS": "1" if where == "replica" else "0"
                }
                started = time.monotonic()
                run: dict[str, Any] = {
                    "topology": deployed.kind,
                    "reads": where,
                    "partitions": partitions,
                    "min_replicas": min_replicas,
                    "data_nodes": len(deployed.data_nodes),
                }
                try:
                    run |= await run_workers(
                        children, worker_env, action, args.verifiers, args.rounds, args.warmup
                    )
                except RuntimeError as exc:
                    run["error"] = str(exc)[-3000:]
                if deployed.kind == "cluster" and "cpu_ms_per_round" in run:
                    run["cpu_ms_per_round"].pop("redis", None)
                run["wall_s"] = round(time.monotonic() - started, 1)
                runs.append(run)
                print(f"  {deployed.kind} / {where}: {brief(run)}", flush=True)
        calls = await direct_calls(env, DIRECT_CALLS)
        for run in runs:
            run["revoke_call_ms"] = calls
    finally:
        children.stop()
    return runs


def brief(run: dict[str, Any]) -> str:
    if "error" in run:
        return "error: " + str(run["error"]).splitlines()[0][:200]
    every, ack = run["slowest_per_round_from_request_ms"], run["revoke_http_ms"]
    return (
        f"all applied p50 {every['p50']:.2f} p99 {every['p99']:.2f} ms from request; "
        f"ack p50 {ack['p50']:.2f} p99 {ack['p99']:.2f} ms"
    )


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    versions = set()
    for kind in args.topologies:
        with deployment(kind, tmp / kind) as deployed:
            versions.add(deployed.version())
            runs += await measure_topology(deployed, tmp / kind, args)
    return {"action": "logout", "runs": runs, "redis_server": ", ".join(sorted(versions))}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--topologies", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--verifiers", type=int, default=4, help="verifier processes")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_quiet_arguments(parser)
    run_and_record("topologies", parser.parse_args(argv), argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
