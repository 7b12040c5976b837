"""Stream retention by age, and what a verifier does with entries it cannot read."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from revocast.errors import VerifierStale
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually


async def test_events_older_than_retention_are_trimmed(issuer: Issuer, redis: Redis) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    stream = issuer.ctx.store.keys.of(tokens["user_id"]).stream.events
    retention_ms = issuer.settings.tokens.stream_retention_ms
    now_ms = int(time.time() * 1000)
    ancient = f"{now_ms - retention_ms - 60_000}-0"
    recent = f"{now_ms - retention_ms + 60_000}-0"  # inside the window by a minute
    await redis.delete(stream)
    await redis.xadd(stream, {"type": "old"}, id=ancient)
    await redis.xadd(stream, {"type": "recent"}, id=recent)
    assert (await issuer.post_bearer("/v1/logout", tokens["access_token"])).status_code == 204
    ids = [entry_id for entry_id, _ in await redis.xrange(stream) or []]
    assert ancient not in ids
    assert recent in ids
    assert len(ids) == 2  # the recent one and the logout event


def test_retention_keeps_at_least_one_access_token_lifetime(issuer: Issuer) -> None:
    assert issuer.settings.tokens.stream_retention_ms >= issuer.settings.tokens.access_ttl_s * 1000


async def test_unreadable_event_fails_closed(
    issuer: Issuer, make_verifier: VerifierFactory, redis: Redis
) -> None:
    """An event from a newer schema must not be skipped: the verifier goes stale instead."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    verifier = await make_verifier(max_staleness_s=0.3)
    verifier.verify(tokens["access_token"])
    stream = issuer.ctx.store.keys.of(tokens["user_id"]).stream.events
    await redis.xadd(stream, {"type": "session_frozen", "v": "2", "ts_ms": "1"})
    await eventually(lambda: not verifier.ready, timeout_s=3)
    with pytest.raises(VerifierStale):
        verifier.verify(tokens["access_token"])
    assert verifier.follower.error is not None
    assert "session_frozen" in verifier.follower.error
