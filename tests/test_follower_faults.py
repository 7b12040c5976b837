"""Follower edge cases found in review: backlogs, skewed clocks, bad keys, streams going back."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
from redis.asyncio import Redis

from revocast.chaos.proxy import TcpProxy
from revocast.errors import TokenRejected
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast.store import Writes
from revocast.verifier import Verifier
from tests.conftest import VerifierFactory
from tests.support.servers import eventually
from tests.support.verdicts import outcome


async def publish(writes: Writes) -> SigningKey:
    """What an issuer does on a new deployment: publish a key, set the epochs."""
    key = SigningKey.generate()
    await writes.publish_key(key.kid, json.dumps(key.public.jwk), "epoch")
    await writes.align_epochs()
    return key


def mint(settings: Settings, key: SigningKey, sid: str, iat: float | None = None) -> str:
    now = time.time() if iat is None else iat
    claims = {"iss": settings.issuer, "aud": settings.audience, "sub": "u", "sid": sid,
              "jti": sid, "iat": now, "nbf": now, "exp": now + settings.access_ttl_s,
              "roles": []}  # fmt: skip
    return jwt.encode(claims, key.private, "EdDSA", headers={"kid": key.kid, "typ": "at+jwt"})


async def test_catching_up_on_a_backlog_is_not_fresh_until_done(
    settings: Settings, writes: Writes, make_verifier: VerifierFactory, proxy: TcpProxy
) -> None:
    key = await publish(writes)
    verifier = await make_verifier(redis_url=proxy.url, max_staleness_s=0.3)
    late_token = mint(settings, key, "sid2400")  # its revocation is in the last batch
    assert outcome(verifier, late_token) == "accepted"
    proxy.cut()
    for i in range(2500):
        await writes.revoke_session(f"sid{i}", "u", "test")
    await eventually(lambda: not verifier.ready, timeout_s=3)
    proxy.restore()
    deadline = asyncio.get_running_loop().time() + 10
    while verifier.follower.events_applied < 2500:
        assert outcome(verifier, late_token) != "accepted", "accepted mid-backlog"
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0)
    await eventually(lambda: verifier.ready)
    with pytest.raises(TokenRejected):
        verifier.verify(late_token)


async def test_skewed_verifier_clock_is_corrected_by_redis_time(
    settings: Settings, writes: Writes, make_verifier: VerifierFactory
) -> None:
    """A verifier whose host clock is 60 s slow still judges tokens by Redis time."""
    key = await publish(writes)
    slow = Verifier(settings, clock=lambda: time.time() - 60)
    await slow.start()
    try:
        assert abs(slow.follower.clock_offset_s - 60) < 1
        expired = mint(settings, key, "s-old", iat=time.time() - settings.access_ttl_s - 10)
        with pytest.raises(TokenRejected, match="exp"):
            slow.verify(expired)
        fresh = mint(settings, key, "s-new")
        assert slow.verify(fresh).sid == "s-new"  # not "issued in the future"
    finally:
        await slow.stop()


async def test_an_unusable_published_key_does_not_stop_the_follower(
    settings: Settings, writes: Writes, redis: Redis, make_verifier: VerifierFactory
) -> None:
    key = await publish(writes)
    await redis.hset(writes.keys.global_.jwks, "bad", '{"kty": "RSA"}')
    verifier = await make_verifier()
    assert verifier.ready
    assert verifier.verify(mint(settings, key, "s1")).sid == "s1"
    await writes.revoke_session("s1", "u", "test")
    await eventually(lambda: outcome(verifier, mint(settings, key, "s1")) == "session_revoked")


async def test_a_stream_that_went_backwards_triggers_a_snapshot(
    settings: Settings, writes: Writes, redis: Redis, make_verifier: VerifierFactory
) -> None:
    """A failover to a replica that lacks the newest entries must not be read past silently."""
    key = await publish(writes)
    verifier = await make_verifier()
    await writes.revoke_session("s1", "u", "test")
    await eventually(lambda: "s1" in verifier.cache.sessions)
    snapshots = verifier.follower.snapshots
    await redis.delete(writes.keys.of("u").stream.events)  # epoch stays: not a data loss
    await eventually(lambda: verifier.follower.snapshots > snapshots)
    assert "s1" in verifier.cache.sessions  # merged, not replaced
    await eventually(lambda: verifier.ready)
    assert outcome(verifier, mint(settings, key, "s1")) == "session_revoked"
