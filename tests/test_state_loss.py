"""Redis comes back empty: verifiers keep what they knew, the issuer fails safe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from revocast.issuer import create_app
from revocast.issuer.context import IssuerContext
from revocast.settings import Settings
from revocast.verifier import Verifier
from revocast_tools.redis_server import RedisServer
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import eventually, serve
from tests.support.stream import entries
from tests.support.verdicts import outcome


@pytest.fixture
def lossy_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, since the test destroys its data."""
    server = RedisServer(tmp_path / "lossy", appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def lossy_settings(settings: Settings, lossy_redis: RedisServer) -> Settings:
    return settings.with_overrides(redis_url=lossy_redis.url, max_staleness_s=1.0)


@pytest.fixture
async def lossy_issuer(lossy_settings: Settings) -> AsyncIterator[Issuer]:
    app = create_app(lossy_settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Issuer(url, http, lossy_settings, app)


def lose_data(server: RedisServer) -> None:
    server.kill()
    server.wipe()
    server.start()


async def test_data_loss_fails_safe_everywhere(
    lossy_issuer: Issuer, lossy_settings: Settings, lossy_redis: RedisServer
) -> None:
    issuer = lossy_issuer
    await issuer.add_user("alice")
    async with Verifier(lossy_settings) as survivor:
        revoked, live = await issuer.login("alice"), await issuer.login("alice")
        await issuer.post_bearer("/v1/logout", revoked["access_token"])
        await eventually(lambda: outcome(survivor, revoked["access_token"]) == "session_revoked")
        old_kid = jwt.get_unverified_header(live["access_token"])["kid"]

        lose_data(lossy_redis)

        # The survivor never forgets, and the issuer's recovery revokes the old key.
        await eventually(lambda: outcome(survivor, live["access_token"]) == "key_revoked", 10)
        assert outcome(survivor, revoked["access_token"]) in ("session_revoked", "key_revoked")
        ctx = issuer.ctx
        assert None not in (await ctx.store.signing.epochs()).values()
        assert await ctx.store.signing.signing_kid() != old_kid
        events = ctx.store.keys.global_.stream.events
        written = await entries(ctx.backend, events)
        assert [f["actor_kind"] for _, f in written if f["type"] == "key_revoked"] == ["system"]

        # A verifier born after the loss refuses the old tokens too.
        async with Verifier(lossy_settings) as newborn:
            for token in (revoked["access_token"], live["access_token"]):
                assert outcome(newborn, token) in ("key_revoked", "unknown_key")

            # Accounts went with the data: an operator recreates them, logins work again.
            login = {"username": "alice", "password": PASSWORD}
            assert (await issuer.http.post("/v1/login", json=login)).status_code == 401
            await issuer.add_user("alice")
            fresh = await issuer.login("alice")
            await eventually(lambda: outcome(newborn, fresh["access_token"]) == "accepted")
            await eventually(lambda: outcome(survivor, fresh["access_token"]) == "accepted")

    metrics = (await issuer.http.get("/metrics")).text
    assert "revocast_issuer_state_lost_total 1.0" in metrics


async def test_issuer_restarted_after_a_loss_recovers_at_start(
    lossy_settings: Settings, lossy_redis: RedisServer
) -> None:
    app = create_app(lossy_settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, lossy_settings, app)
        await issuer.add_user("alice")
        old = await issuer.login("alice")
    lose_data(lossy_redis)  # while no issuer runs
    restarted = create_app(lossy_settings)
    async with serve(restarted):
        store = IssuerContext.of_app(restarted).store
        old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
        assert await store.signing.signing_kid() != old_kid
        assert await store.signing.revoked(old_kid)
        assert restarted.state.ctx is not None
    await asyncio.sleep(0)


async def test_fresh_deployment_is_not_mistaken_for_a_loss(issuer: Issuer) -> None:
    published, revoked, _ = await issuer.ctx.store.signing.keys_overview()
    assert published
    assert revoked == set()
    assert "revocast_issuer_state_lost_total 0.0" in (await issuer.http.get("/metrics")).text


async def test_verifier_stays_stale_until_an_issuer_recovers(
    lossy_settings: Settings, lossy_redis: RedisServer
) -> None:
    """Between the loss and the issuer's recovery, old keys must not be trusted: 503."""
    app = create_app(lossy_settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, lossy_settings, app)
        await issuer.add_user("alice")
        old = await issuer.login("alice")
    async with Verifier(lossy_settings) as verifier:
        assert outcome(verifier, old["access_token"]) == "accepted"
        lose_data(lossy_redis)  # and no issuer runs to notice
        await eventually(lambda: outcome(verifier, old["access_token"]) == "stale", 5)
        await asyncio.sleep(lossy_settings.freshness.max_staleness_s)
        assert outcome(verifier, old["access_token"]) == "stale"  # never back to accepted
        async with serve(create_app(lossy_settings)):  # an issuer starts and recovers
            await eventually(lambda: outcome(verifier, old["access_token"]) == "key_revoked", 5)
            assert verifier.ready
