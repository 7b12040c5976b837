"""Replica lag: verifiers that read a replica must go stale when it stops receiving.

Two of the three verifiers snapshot and follow on the Sentinel group's replica
(``REVOCAST_READ_FROM_REPLICAS=1``); the third reads the primary, as a control.
The fault points the replica at a closed port (``REPLICAOF``): it keeps
answering reads with what it had while the primary goes on. Revocations are
acknowledged without waiting for the replica (``REVOCAST_MIN_REPLICAS=0``), so
the lagging replica lacks acknowledged revocations and only the heartbeat's age
(the replica's TIME minus the primary's last stamp) keeps its readers from
accepting them. Healing points it back at the primary (the sentinels would
too, some seconds later).

The readers' last proof of freshness carries a heartbeat from before the break,
so the check is that none accepted a probe sent more than max staleness after
it. When they all answered 503, and when they were ready again after the heal,
come from the harness's readiness polling: upper bounds on a busy host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from revocast_tools.chaos.harness import Run
from revocast_tools.chaos.judge import last_accepted_after
from revocast_tools.chaos.results import Check
from revocast_tools.redis_server import free_port
from revocast_tools.topologies import HOST, command

READ_FROM_REPLICAS = {"REVOCAST_READ_FROM_REPLICAS": "1"}
VERIFIER_ENV: tuple[Mapping[str, str], ...] = (READ_FROM_REPLICAS, READ_FROM_REPLICAS, {})


async def replica_lag(run: Run) -> None:
    readers = [
        i
        for i in range(len(run.cluster.verifiers))
        if run.spec.verifier_env
        and run.spec.verifier_env[i % len(run.spec.verifier_env)] == READ_FROM_REPLICAS
    ]
    for _ in run.cycles():
        await run.gap()
        await _lag_once(run, readers)
    others = [i for i in range(len(run.cluster.verifiers)) if i not in readers]
    if others:
        times = ", ".join(f"verifier{i} {run.workload.stale_s[i]:.2f} s" for i in others)
        run.note(f"not ready meanwhile, of the verifiers reading the primary: {times}")
    names = ", ".join(f"verifier{i}" for i in readers)
    latest = run.result.counts.get("readers_last_accepted_s", 0.0)
    note = f"{names} accepted a probe sent this long after the break"
    bound = run.cluster.settings.freshness.max_staleness_s
    run.check(Check("replica_readers_accepted_after_break_s", latest, bound, note))


async def _lag_once(run: Run, readers: list[int]) -> None:
    """Cut the replica off, hold, heal; record the timeline (worst over the cycles)."""
    nodes = run.cluster.nodes
    group = nodes.sentinel
    services = [run.cluster.verifiers[i] for i in readers]
    primary = await nodes.call(group.primary)
    replica = (await nodes.call(group.replicas))[0]
    label = f"replica :{replica.port} cut off from its primary for {run.timing.hold_s:.1f}s"
    async with run.fault(label) as record:
        await nodes.call(command, replica.port, "REPLICAOF", HOST, free_port())
        broken = time.monotonic()
        timeout = max(run.timing.hold_s, 3 * run.cluster.settings.freshness.max_staleness_s)
        stale_at = await run.cluster.wait_until(False, services, timeout)
        await asyncio.sleep(max(0.0, broken + run.timing.hold_s - time.monotonic()))
        await nodes.call(command, replica.port, "REPLICAOF", HOST, primary.port)
    timeline = {
        "readers_stale_after_break_s": -1.0 if stale_at is None else stale_at - broken,
        "readers_ready_after_heal_s": -1.0 if record.recovery_s is None else record.recovery_s,
        "readers_last_accepted_s": last_accepted_after(run.ledger, broken, readers),
    }
    for name, value in timeline.items():
        run.worst(name, round(value, 3))
    run.note(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in timeline.items()))
