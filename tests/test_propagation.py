"""Revocations reach every verifier: late starters, several verifiers, cut-offs, trims."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from revocast.errors import TokenRejected, VerifierStale
from revocast_tools.proxy import TcpProxy
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually
from tests.support.verdicts import is_rejected


async def test_verifier_started_after_revocations_rejects(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    await issuer.add_user("bob")
    logged_out = await issuer.login("alice")
    everywhere = await issuer.login("bob")
    await issuer.post_bearer("/v1/logout", logged_out["access_token"])
    await issuer.post_bearer("/v1/logout-all", everywhere["access_token"])
    live = await issuer.login("alice")

    late = await make_verifier()  # its snapshot must carry both revocations
    assert late.follower.snapshots == len(late.follower.streams)  # one each, no re-snapshot
    assert is_rejected(late, logged_out["access_token"])
    assert is_rejected(late, everywhere["access_token"])
    assert late.verify(live["access_token"]).sid == live["session_id"]


async def test_two_verifiers_both_reject(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    await issuer.add_user("alice")
    first, second = await make_verifier(), await make_verifier()
    tokens = await issuer.login("alice")
    for verifier in (first, second):
        verifier.verify(tokens["access_token"])
    await issuer.post_bearer("/v1/logout", tokens["access_token"])
    await asyncio.gather(
        eventually(lambda: is_rejected(first, tokens["access_token"])),
        eventually(lambda: is_rejected(second, tokens["access_token"])),
    )


async def test_revocation_made_while_cut_off_applies_after_reconnect(
    issuer: Issuer, make_verifier: VerifierFactory, proxy: TcpProxy
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier(redis_url=proxy.url, max_staleness_s=0.5)
    tokens = await issuer.login("alice")
    await eventually(lambda: verifier.verify(tokens["access_token"]) is not None)
    proxy.cut()
    await issuer.post_bearer("/v1/logout", tokens["access_token"])
    # Cut off, it cannot know: it must say stale, never accept.
    await eventually(lambda: not verifier.ready, timeout_s=3)
    with pytest.raises(VerifierStale):
        verifier.verify(tokens["access_token"])
    snapshots = verifier.follower.snapshots
    proxy.restore()
    await eventually(lambda: verifier.ready, timeout_s=5)
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(tokens["access_token"])
    assert caught.value.code == "session_revoked"
    assert verifier.follower.snapshots == snapshots  # resumed from its id, no re-snapshot


async def test_trimmed_stream_triggers_resnapshot(
    issuer: Issuer, make_verifier: VerifierFactory, proxy: TcpProxy, redis: Redis
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier(redis_url=proxy.url, max_staleness_s=0.5)
    tokens = await issuer.login("alice")
    proxy.cut()
    await issuer.post_bearer("/v1/logout", tokens["access_token"])
    # The event the verifier needs is gone from the stream; only the state keeps it.
    for stream in issuer.ctx.store.keys.streams():
        await redis.xtrim(stream.events, maxlen=0)
    snapshots = verifier.follower.snapshots
    proxy.restore()
    await eventually(lambda: verifier.follower.snapshots > snapshots, timeout_s=5)
    await eventually(lambda: verifier.ready, timeout_s=5)
    assert is_rejected(verifier, tokens["access_token"])


async def test_blackholed_redis_fails_closed_then_recovers(
    issuer: Issuer, make_verifier: VerifierFactory, proxy: TcpProxy
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier(redis_url=proxy.url, max_staleness_s=0.5)
    tokens = await issuer.login("alice")
    proxy.blackhole()
    waited = await eventually(lambda: not verifier.ready, timeout_s=3)
    assert waited < 1.5  # the bound is 0.5 s; allow scheduling noise, not a missed bound
    with pytest.raises(VerifierStale):
        verifier.verify(tokens["access_token"])
    proxy.restore()
    await eventually(lambda: verifier.ready, timeout_s=10)
    assert verifier.verify(tokens["access_token"]).sid == tokens["session_id"]


async def test_key_published_after_verifier_start_is_learned(
    settings: object, make_verifier: VerifierFactory, issuer: Issuer
) -> None:
    # The issuer fixture published its key before; a second issuer key arrives by stream.
    import json

    from revocast.keys import SigningKey

    verifier = await make_verifier()
    before = set(verifier.cache.keys)
    key = SigningKey.generate()
    await issuer.ctx.store.signing.publish_key(key.kid, json.dumps(key.public.jwk), "unused")
    await eventually(lambda: key.kid in verifier.cache.keys)
    assert before < set(verifier.cache.keys)
