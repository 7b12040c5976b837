"""Many verifiers starting at once against one replica: snapshot load, time until ready.

Reproduce from the repository root::

    .venv/bin/python -m bench.cold_start --runs 1000:1000 200:10000 1000:10000

For each run VERIFIERS:REVOKED, a fresh Sentinel group (primary, one replica,
three sentinels) and issuer; ``--state`` revocations are written (the snapshot each
verifier loads holds that many revoked sessions), then P ``bench._swarm_worker``
processes start their share of the verifiers all at once (``REVOCAST_READ_FROM_REPLICAS=1``:
snapshots and follows on the replica). Recorded per run: each verifier's time until
``start()`` returned and until ``ready`` (or never, within ``--deadline``), the replica's
CPU, output bytes, connections accepted and peak memory, the sentinels' and primary's
share, and the swarm's read errors and snapshots taken (a snapshot that timed out and was
retried counts each time it succeeded).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._cold import cold_start
from bench._env import add_quiet_arguments, run_and_record
from bench._replica_scene import replica_scene
from bench._revoker import fill
from bench._swarm import Swarm

RESULTS = Path(__file__).resolve().parent / "results" / "cold_start.json"

NOTES = [
    "One host with 2 CPUs (a VM, shared): the replica, the primary, 3 sentinels, the "
    "issuer and the follower processes compete for them. Each follower process parses the "
    "snapshots of its K verifiers on one event loop, so on this host the clients, not "
    "only the replica, limit how fast a mass start completes: compare the replica's CPU "
    "seconds with the wall time.",
    "Each verifier: Verifier(REVOCAST_READ_FROM_REPLICAS=1) with its own Backend; start() "
    "reads the partition count on the primary, then each stream's follower takes a "
    "snapshot on the replica (the snapshot_global / snapshot_partition scripts) and "
    "follows. start() returns after every first snapshot or after "
    "REVOCAST_MAX_STALENESS_S (5 s), whichever comes first; ready = snapshots taken and "
    "fresh (heartbeat within 5 s).",
    "The state: --state revocations written with Store.sessions.revoke_session before the start "
    "(all in the one partition of a Sentinel deployment), so each partition snapshot "
    "carries that many revoked sessions.",
    "replica_connections_accepted: total_connections_received on the replica during the "
    "start; more than 2 per verifier means reconnects (a read that failed or timed out "
    "drops its connection). status_after.snapshots counts successful snapshots over all "
    "followers (2 per verifier if none was retried), read_errors the failed reads.",
]


async def measure_one(
    tmp: Path, verifiers: int, state: int, args: argparse.Namespace
) -> dict[str, Any]:
    async with replica_scene(tmp) as scene:
        fill_s = await fill(scene.store, state)
        swarm = await Swarm.launch(
            scene.children,
            scene.verifier_env,
            args.processes,
            verifiers // args.processes,
            ready_timeout_s=args.deadline,
        )
        try:
            result: dict[str, Any] = {"state_revocations": state, "state_fill_s": round(fill_s, 2)}
            result |= await cold_start(scene, swarm)
        finally:
            await swarm.stop()
        result["redis_server"] = scene.deployment.version()
    ready = result["ready_s"]
    shown = f"ready p50 {ready['p50']:.2f} max {ready['max']:.2f} s" if ready else "none ready"
    print(
        f"  {verifiers} verifiers, {state} revoked: {shown}, never ready "
        f"{result['never_ready']}, replica {result['replica']['cpu_s']:.1f} s cpu",
        flush=True,
    )
    return result


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    runs = [
        await measure_one(tmp / f"{verifiers}-{state}", verifiers, state, args)
        for verifiers, state in args.runs
    ]
    versions = sorted({run.pop("redis_server") for run in runs})
    return {"runs": runs, "redis_server": ", ".join(versions)}


def verifiers_and_state(text: str) -> tuple[int, int]:
    verifiers, _, state = text.partition(":")
    return int(verifiers), int(state or 0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runs",
        type=verifiers_and_state,
        nargs="+",
        default=[(1000, 1000), (200, 10_000), (1000, 10_000)],
        metavar="VERIFIERS:REVOKED",
        help="verifiers started at once, and revoked sessions in the snapshot",
    )
    parser.add_argument("--processes", type=int, default=4, help="follower processes")
    parser.add_argument("--deadline", type=float, default=90.0, help="seconds to get ready")
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if any(v % args.processes for v, _ in args.runs):
        parser.error("each verifier count must be a multiple of --processes")
    settings = {
        "runs": [f"{v}:{s}" for v, s in args.runs],
        "processes": args.processes,
        "deadline": args.deadline,
    }
    run_and_record("cold_start", args, argv, measure, notes=NOTES, settings=settings)


if __name__ == "__main__":
    main()
