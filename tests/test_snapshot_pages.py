"""A partition's snapshot in pages (``Follow.snapshot_pages``): the union of the pages holds
every revocation live at the first read, whatever is added or pruned between pages; a page
from a server behind the first, or in another epoch, ends the snapshot (the follower takes
it again); a verifier started over several pages has every one."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from revocast.errors import StoreUnavailable
from revocast.keyspace import PartitionKeys
from revocast.store import Backend, Follow
from revocast.store.follow import BEHIND_WAITS
from revocast.store.records import Snapshot
from tests.conftest import VerifierFactory

LATER_MS = 600_000  # entries live for ten minutes from now


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _revoke(redis: Redis, p: PartitionKeys, *, sessions: int, users: int, roles: int,
                  tied: int) -> None:  # fmt: skip
    """Revoked sessions, users and role changes whose expiry times come in groups of
    ``tied`` (so that a page boundary falls inside a group), a few already expired."""
    base = _now_ms() + LATER_MS
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(p.revoked_sessions, {f"s{i}": base + i // tied for i in range(sessions)})
        pipe.zadd(p.revoked_sessions, {f"gone{i}": base - 2 * LATER_MS for i in range(5)})
        indexed = [(p.revoked_users, p.revoked_users_until, users),
                   (p.revoked_roles, p.revoked_roles_until, roles)]  # fmt: skip
        for hash_key, index, count in indexed:
            if not count:
                continue
            pipe.hset(hash_key, mapping={f"u{i}": base - LATER_MS for i in range(count)})
            pipe.zadd(index, {f"u{i}": base + i // tied for i in range(count)})
        await pipe.execute()


def _state(snapshot: Snapshot) -> tuple[object, ...]:
    return snapshot.sessions, snapshot.users, snapshot.roles


async def test_the_pages_together_are_the_whole_snapshot(backend: Backend, redis: Redis) -> None:
    p = backend.keys.partition(0)
    await _revoke(redis, p, sessions=95, users=41, roles=33, tied=7)
    await redis.zadd(p.revoked_sessions, {f"crowd{i}": _now_ms() + 2 * LATER_MS for i in range(25)})
    follow = Follow(backend)
    pages = [page async for page in follow.snapshot_pages(p.stream, page=10)]
    whole = await follow.snapshot(p.stream, page=10**6)
    assert len(pages) > 5  # 120 sessions, 10 a page (more where a tie group crosses its end)
    assert len(whole.sessions) == 95 + 25  # not the expired ones
    assert (len(whole.users), len(whole.roles)) == (41, 33)
    assert _state(await follow.snapshot(p.stream, page=10)) == _state(whole)
    assert max(len(page.sessions) for page in pages) == 25  # a tie group is never split
    assert all(page.last_id == pages[0].last_id for page in pages)


async def test_what_changes_between_pages_never_hides_an_entry_of_the_first_read(
    backend: Backend, redis: Redis
) -> None:
    """Between pages, the entries read so far are pruned (Redis drops the earliest expiries
    first), and new ones arrive before, at and after the cursor: every entry of the first
    read is in some page."""
    p = backend.keys.partition(0)
    await _revoke(redis, p, sessions=60, users=0, roles=0, tied=3)
    present = set(await redis.zrange(p.revoked_sessions, _now_ms(), "+inf", byscore=True))
    seen: set[str] = set()
    async for page in Follow(backend).snapshot_pages(p.stream, page=8):
        seen.update(page.sessions)
        last = max(page.sessions.values())
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrem(p.revoked_sessions, *page.sessions)
            arriving = {f"before-{last}": last - 1, f"at-{last}": last, f"after-{last}": last + 1}
            pipe.zadd(p.revoked_sessions, arriving)
            await pipe.execute()
    assert present <= seen
    assert present


async def test_a_page_from_another_epoch_or_a_stream_that_stays_behind_ends_the_snapshot(
    backend: Backend, redis: Redis
) -> None:
    p = backend.keys.partition(0)
    await _revoke(redis, p, sessions=30, users=0, roles=0, tied=1)
    await redis.xadd(p.stream.events, {"type": "test"}, id="5-1")
    follow = Follow(backend)
    for change in ("epoch", "stream"):
        pages = follow.snapshot_pages(p.stream, page=10)
        await anext(pages)
        if change == "epoch":
            await redis.set(p.stream.epoch, "another")
        else:
            await redis.delete(p.stream.events)  # as a server whose stream is behind the first
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="behind its first page"):
            await anext(pages)
        waited = time.monotonic() - started
        # Another epoch at once; a stream behind after the pauses (it might catch up).
        assert waited < 0.5 if change == "epoch" else waited >= sum(BEHIND_WAITS)
        await pages.aclose()


async def test_a_page_from_a_replica_that_catches_up_is_read_again(
    backend: Backend, redis: Redis
) -> None:
    """Replicas of one primary differ by milliseconds: a page read where the stream is
    behind the first page's is read again, and the snapshot goes on."""
    p = backend.keys.partition(0)
    await _revoke(redis, p, sessions=30, users=0, roles=0, tied=1)
    await redis.xadd(p.stream.events, {"type": "test"}, id="5-1")
    pages = Follow(backend).snapshot_pages(p.stream, page=10)
    first = await anext(pages)
    await redis.delete(p.stream.events)  # behind for a moment

    async def catch_up() -> None:
        await asyncio.sleep(0.05)
        await redis.xadd(p.stream.events, {"type": "test"}, id="5-1")

    caught_up = asyncio.create_task(catch_up())
    try:
        rest = [page async for page in pages]
    finally:
        await caught_up
    assert {
        **first.sessions,
        **{s: u for page in rest for s, u in page.sessions.items()},
    }.keys() == {f"s{i}" for i in range(30)}


async def test_a_verifier_started_over_several_pages_has_every_revocation(
    backend: Backend, redis: Redis, make_verifier: VerifierFactory
) -> None:
    p = backend.keys.partition(0)
    await _revoke(redis, p, sessions=2_500, users=1_100, roles=0, tied=1)
    verifier = await make_verifier(shared_cache="0")
    assert len(verifier.cache.sessions) == 2_500
    assert len(verifier.cache.users) == 1_100
