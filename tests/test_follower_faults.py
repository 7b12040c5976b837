"""Follower edge cases found in review: backlogs, skewed clocks, bad keys, streams going back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import cast

import jwt
import pytest
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from revocast.errors import TokenRejected
from revocast.events import ActorKind
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast.store import Store
from revocast.verifier import Verifier
from revocast.verifier.follower import Clocks
from revocast_tools.proxy import TcpProxy
from tests.conftest import VerifierFactory
from tests.support.servers import eventually
from tests.support.verdicts import outcome


async def publish(store: Store) -> SigningKey:
    """What an issuer does on a new deployment: publish a key, set the epochs."""
    key = SigningKey.generate()
    await store.signing.publish_key(key.kid, json.dumps(key.public.jwk), "epoch")
    await store.signing.align_epochs()
    return key


def mint(settings: Settings, key: SigningKey, sid: str, iat: int | None = None) -> str:
    now = int(time.time()) if iat is None else iat
    tokens = settings.tokens
    claims = {"iss": tokens.issuer, "aud": tokens.audience, "sub": "u", "sid": sid,
              "jti": sid, "iat": now, "nbf": now, "exp": now + settings.tokens.access_ttl_s,
              "roles": []}  # fmt: skip
    return jwt.encode(claims, key.private, "EdDSA", headers={"kid": key.kid, "typ": "at+jwt"})


async def test_catching_up_on_a_backlog_is_not_fresh_until_done(
    settings: Settings, store: Store, make_verifier: VerifierFactory, proxy: TcpProxy
) -> None:
    key = await publish(store)
    verifier = await make_verifier(redis_url=proxy.url, max_staleness_s=0.3)
    late_token = mint(settings, key, "sid2400")  # its revocation is in the last batch
    assert outcome(verifier, late_token) == "accepted"
    proxy.cut()
    for i in range(2500):
        await store.sessions.revoke_session(f"sid{i}", "u", "test", actor_kind=ActorKind.USER)
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
    settings: Settings, store: Store, make_verifier: VerifierFactory
) -> None:
    """A verifier whose host clock is 60 s slow still judges tokens by Redis time."""
    key = await publish(store)
    slow = Verifier(settings, clock=lambda: time.time() - 60)
    await slow.start()
    try:
        assert abs(slow.follower.clock_offset_s - 60) < 1
        expired = mint(
            settings, key, "s-old", iat=int(time.time()) - settings.tokens.access_ttl_s - 10
        )
        with pytest.raises(TokenRejected, match="exp"):
            slow.verify(expired)
        fresh = mint(settings, key, "s-new")
        assert slow.verify(fresh).sid == "s-new"  # not "issued in the future"
    finally:
        await slow.stop()


def test_a_slow_first_clock_reading_is_kept_until_a_faster_one() -> None:
    """On a loaded host every early reply may be slow; a minute's skew is corrected anyway."""
    now = {"wall": 1000.0, "mono": 0.0}
    clocks = Clocks(wall=lambda: now["wall"], monotonic=lambda: now["mono"])
    now["mono"] = 0.5  # a 500 ms round trip: the reply came from Redis 60 s ahead
    clocks.measure(1_060_250, sent=0.0, sent_wall=1000.0)
    assert clocks.offset_s == pytest.approx(60.0)
    now["mono"] = 2.0  # slower still: ignored
    clocks.measure(1_099_000, sent=0.0, sent_wall=1000.0)
    assert clocks.offset_s == pytest.approx(60.0)
    now["mono"] = 10.01  # fast: taken
    clocks.measure(1_061_005, sent=10.0, sent_wall=1001.0)
    assert clocks.offset_s == pytest.approx(60.0, abs=0.01)
    now["mono"] = 20.5  # slow again, after a fast one: ignored
    clocks.measure(1_000_000, sent=20.0, sent_wall=1001.0)
    assert clocks.offset_s == pytest.approx(60.0, abs=0.01)


async def test_an_unusable_published_key_does_not_stop_the_follower(
    settings: Settings, store: Store, redis: Redis, make_verifier: VerifierFactory
) -> None:
    key = await publish(store)
    await redis.hset(store.keys.global_.jwks, "bad", '{"kty": "RSA"}')
    verifier = await make_verifier()
    assert verifier.ready
    assert verifier.verify(mint(settings, key, "s1")).sid == "s1"
    await store.sessions.revoke_session("s1", "u", "test", actor_kind=ActorKind.USER)
    await eventually(lambda: outcome(verifier, mint(settings, key, "s1")) == "session_revoked")


async def test_a_stream_that_went_backwards_triggers_a_snapshot(
    settings: Settings, store: Store, redis: Redis, make_verifier: VerifierFactory
) -> None:
    """A failover to a replica that lacks the newest entries must not be read past silently.

    The replica is played by rolling the stream back by one entry (its chain too): the
    verifier holds an entry the server does not, and nothing after our position on it.
    """
    key = await publish(store)
    verifier = await make_verifier()
    stream = store.keys.of("u").stream
    await store.sessions.revoke_session("s0", "u", "test", actor_kind=ActorKind.USER)
    older_link = await redis.get(stream.chain)
    await store.sessions.revoke_session("s1", "u", "test", actor_kind=ActorKind.USER)
    await eventually(lambda: "s1" in verifier.cache.sessions)
    snapshots = verifier.follower.snapshots
    [(newest, _)] = cast(list[tuple[str, object]], await redis.xrevrange(stream.events, count=1))
    async with redis.pipeline(transaction=True) as pipe:  # epoch stays: not a data loss
        pipe.xdel(stream.events, newest)
        pipe.set(stream.chain, older_link or "")
        await pipe.execute()
    await eventually(lambda: verifier.follower.snapshots > snapshots)
    assert "s1" in verifier.cache.sessions  # merged, not replaced
    await eventually(lambda: verifier.ready)
    assert outcome(verifier, mint(settings, key, "s1")) == "session_revoked"
    await store.sessions.revoke_session(
        "s2", "u", "test", actor_kind=ActorKind.USER
    )  # written on the "promoted replica"
    await eventually(lambda: "s2" in verifier.cache.sessions)


@pytest.mark.parametrize("variant", ["other entry at our id", "our id missing"])
async def test_a_stream_with_another_history_at_our_position_triggers_a_snapshot(
    settings: Settings, store: Store, redis: Redis, make_verifier: VerifierFactory, variant: str
) -> None:
    """A failover to a replica that never had our last entry, and has since taken more
    writes: its stream is longer and ends later than ours, so neither "behind" test fires;
    only the entry at our position differs (or is missing). Reading on from there would skip
    the replica's own entries."""
    key = await publish(store)
    verifier = await make_verifier()
    partition = store.keys.of("u")
    stream = partition.stream.events
    for sid in ("s1", "s2", "s3"):
        await store.sessions.revoke_session(sid, "u", "test", actor_kind=ActorKind.USER)
    await eventually(lambda: "s3" in verifier.cache.sessions)
    ours = cast(list[tuple[str, dict[FieldT, EncodableT]]], await redis.xrange(stream))
    snapshots = verifier.follower.snapshots
    last_ms = int(str(ours[2][0]).partition("-")[0])
    first_own = ours[2][0] if variant == "other entry at our id" else f"{last_ms + 1}-0"
    template: dict[FieldT, EncodableT] = dict(ours[2][1])
    branch = ours[1][1]["link"]  # the histories part after our second entry
    async with redis.pipeline(transaction=True) as pipe:  # the promoted replica, all at once
        pipe.delete(stream)
        for entry_id, entry in ours[:2]:
            pipe.xadd(stream, entry, id=entry_id)
        lost = template | {"sid": "s-lost", "prev": branch, "link": "replica-1"}
        pipe.xadd(stream, lost, id=first_own)
        later = template | {"sid": "s-later", "prev": "replica-1", "link": "replica-2"}
        pipe.xadd(stream, later, id=f"{last_ms + 10_000}-0")
        pipe.set(partition.stream.chain, "replica-2")
        pipe.zadd(partition.revoked_sessions, {"s-lost": 1 << 50, "s-later": 1 << 50})
        await pipe.execute()
    await eventually(lambda: verifier.follower.snapshots > snapshots)
    assert {"s1", "s2", "s3"} <= set(verifier.cache.sessions)  # merged, nothing forgotten
    await eventually(lambda: verifier.ready)
    for sid in ("s-lost", "s-later"):
        assert outcome(verifier, mint(settings, key, sid)) == "session_revoked"
