"""Measured phases on a replica scene: idle, revocations at a rate, revocations in bursts.

Each phase reads the replica's ``INFO`` (and the primary's and sentinels') before and
after, the CPU of the follower processes, the issuer and the writer, and, for the
revocations, per event: the call's acknowledgement (script plus ``WAIT``) and the moment
the last follower of every swarm process applied it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bench._redis_info import delta
from bench._replica_scene import Scene
from bench._revoker import Sent, revoke_at_rate, revoke_one
from bench._stats import ms, summary
from bench._swarm import Swarm

APPLY_TIMEOUT_S = 60.0


async def measured(
    scene: Scene, swarm: Swarm | None, work: Callable[[], Awaitable[list[Sent]]]
) -> dict[str, Any]:
    """Run ``work`` between two readings of every server and process; what each used."""
    pids = [w.child.process.pid for w in swarm.workers] if swarm else []
    replica0, others0 = scene.replica(), scene.others()
    cpu0 = scene.process_cpu(pids)
    calls = await work()
    sent = [s for s in calls if s.written]
    missing = await swarm.wait_applied([s.sid for s in sent], APPLY_TIMEOUT_S) if swarm else 0
    if not swarm and sent:
        await asyncio.sleep(0.1)  # nobody reports: the acks (WAIT) say the replica has them
    replica1, others1 = scene.replica(), scene.others()
    cpu1 = scene.process_cpu(pids)
    result: dict[str, Any] = {
        "events": len(sent),
        "failed_calls": Counter(s.error for s in calls if not s.written),
        "replica": delta(replica0, replica1),
        "others": {
            name: {k: v for k, v in delta(others0[name], others1[name]).items() if k != "commands"}
            for name in others0
        },
        "process_cpu_s": {k: round(cpu1[k] - cpu0[k], 3) for k in cpu0},
    }
    if sent:
        result["ack_ms"] = summary([ms(s.acked - s.sent) for s in sent])
        result["not_durable"] = sum(s.error == "not_durable" for s in sent)
    if swarm and sent:
        complete = [s for s in sent if len(swarm.applied.get(s.sid, ())) == len(swarm.workers)]
        result["missing_events"] = missing
        if complete:
            result["all_applied_from_request_ms"] = summary(
                [ms(max(swarm.applied[s.sid]) - s.sent) for s in complete]
            )
            result["all_applied_from_ack_ms"] = summary(
                [ms(max(swarm.applied[s.sid]) - s.acked) for s in complete]
            )
    return result


async def idle(scene: Scene, swarm: Swarm | None, seconds: float) -> dict[str, Any]:
    async def wait() -> list[Sent]:
        await asyncio.sleep(seconds)
        return []

    return await measured(scene, swarm, wait)


async def paced(scene: Scene, swarm: Swarm | None, rate: float, seconds: float) -> dict[str, Any]:
    result = await measured(
        scene, swarm, lambda: revoke_at_rate(scene.store, rate, round(rate * seconds))
    )
    return {"rate_per_s": rate} | result


async def bursts(
    scene: Scene, swarm: Swarm | None, size: int, count: int, every_s: float
) -> dict[str, Any]:
    """``count`` bursts of ``size`` concurrent revocations, one every ``every_s``."""

    async def work() -> list[Sent]:
        sent: list[Sent] = []
        start = time.monotonic()
        for i in range(count):
            delay = start + i * every_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent += await asyncio.gather(*(revoke_one(scene.store) for _ in range(size)))
        return sent

    return {"burst_size": size, "bursts": count, "burst_every_s": every_s} | await measured(
        scene, swarm, work
    )
