"""Revocations written at a fixed rate, the way the issuer writes a logout.

Each one is ``Store.sessions.revoke_session``: the ``revoke_session`` Lua script on the primary of
the user's partition (state change plus XADD) and, on Sentinel and Cluster, ``WAIT`` for
the replicas. The schedule is open-loop: revocation i is sent at ``start + i / rate``
whether or not the earlier ones were acknowledged, so a slow reply does not slow the rate.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from revocast.errors import NotDurable, StoreUnavailable
from revocast.events import ActorKind
from revocast.ids import new_session_id
from revocast.store import Store


@dataclass(frozen=True)
class Sent:
    sid: str
    sent: float  # time.monotonic() just before the call
    acked: float  # ... just after it returned (WAIT included)
    # None: acknowledged. "not_durable": written, but the replicas did not confirm in time.
    # Anything else: the call failed (StoreUnavailable and its cause); counted, not awaited.
    error: str | None = None

    @property
    def written(self) -> bool:
        return self.error in (None, "not_durable")


async def revoke_one(store: Store) -> Sent:
    """One revocation; a failure is recorded, not raised, as the issuer would answer 503.

    A NotDurable call did write (the event reaches the followers); a StoreUnavailable one
    may not have: it is left out of the propagation figures and counted."""
    uid = secrets.token_hex(16)
    sid = new_session_id(store.keys, uid)
    sent = time.monotonic()
    try:
        await store.sessions.revoke_session(sid, uid, "bench", actor_kind=ActorKind.USER)
    except NotDurable:
        return Sent(sid, sent, time.monotonic(), "not_durable")
    except StoreUnavailable as exc:
        return Sent(sid, sent, time.monotonic(), exc.detail)
    return Sent(sid, sent, time.monotonic())


async def revoke_at_rate(store: Store, rate: float, count: int) -> list[Sent]:
    start = time.monotonic()
    tasks = []
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(revoke_one(store)))
    return list(await asyncio.gather(*tasks))


async def fill(store: Store, count: int, concurrency: int = 64) -> float:
    """Write ``count`` revocations as fast as they go (a snapshot to load); seconds taken."""
    start = time.monotonic()
    done = 0
    while done < count:
        batch = min(concurrency, count - done)
        await asyncio.gather(*(revoke_one(store) for _ in range(batch)))
        done += batch
    return time.monotonic() - start
