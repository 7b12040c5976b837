"""The core promise on real Redis: issue, verify locally, revoke, propagate."""

from __future__ import annotations

from functools import partial

import pytest
from redis.asyncio import Redis

from revocast.errors import TokenRejected
from revocast.ids import hash_refresh_token
from revocast.proof import EVENT_ID_HEADER
from revocast.store.sessions import keys as session_keys
from revocast.verifier import Verifier
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually
from tests.support.topologies import EVERY_TOPOLOGY


@pytest.fixture(params=EVERY_TOPOLOGY)
def topology(request: pytest.FixtureRequest) -> str:
    """Every test here runs on one server, on four partitions, on Sentinel and on Cluster."""
    return str(request.param)


def rejected(verifier: Verifier, token: str, code: str) -> bool:
    try:
        verifier.verify(token)
    except TokenRejected as exc:
        if exc.code != code:
            raise AssertionError(f"rejected as {exc.code}, expected {code}") from exc
        return True
    return False


async def test_login_then_verify(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    uid = await issuer.add_user("alice", ["admin"])
    verifier = await make_verifier()
    tokens = await issuer.login("alice")
    assert tokens["token_type"] == "Bearer"
    assert tokens["user_id"] == uid
    assert tokens["expires_in"] == issuer.settings.tokens.access_ttl_s
    claims = verifier.verify(tokens["access_token"])
    assert (claims.sub, claims.sid, claims.roles) == (uid, tokens["session_id"], ("admin",))


async def test_logout_is_rejected(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier()
    tokens = await issuer.login("alice")
    other = await issuer.login("alice")
    first = await issuer.post_bearer("/v1/logout", tokens["access_token"])
    assert first.status_code == 204
    await eventually(lambda: rejected(verifier, tokens["access_token"], "session_revoked"))
    verifier.verify(other["access_token"])  # only the current session ends
    assert (await issuer.refresh(tokens["refresh_token"])).status_code == 401
    # A repeat is answered as the logout was (test_idempotent_revocation.py has the rest).
    again = await issuer.post_bearer("/v1/logout", tokens["access_token"])
    assert again.status_code == 204
    assert again.headers[EVENT_ID_HEADER] == first.headers[EVENT_ID_HEADER]


async def test_logout_all_is_rejected(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    await issuer.add_user("alice")
    await issuer.add_user("bob")
    verifier = await make_verifier()
    first, second = await issuer.login("alice"), await issuer.login("alice")
    bob = await issuer.login("bob")
    assert (await issuer.post_bearer("/v1/logout-all", first["access_token"])).status_code == 204
    for tokens in (first, second):
        await eventually(partial(rejected, verifier, tokens["access_token"], "user_revoked"))
        assert (await issuer.refresh(tokens["refresh_token"])).status_code == 401
    verifier.verify(bob["access_token"])
    # A new login after logout-all works again.
    fresh = await issuer.login("alice")
    await eventually(lambda: verifier.verify(fresh["access_token"]).sub == fresh["user_id"])


async def test_refresh_rotates(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    await issuer.add_user("alice", ["user"])
    verifier = await make_verifier()
    tokens = await issuer.login("alice")
    reply = await issuer.refresh(tokens["refresh_token"])
    assert reply.status_code == 200
    rotated = reply.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["session_id"] == tokens["session_id"]
    assert rotated["access_token"] != tokens["access_token"]
    assert verifier.verify(rotated["access_token"]).sid == tokens["session_id"]
    again = (await issuer.refresh(rotated["refresh_token"])).json()
    assert again["refresh_token"] not in (rotated["refresh_token"], tokens["refresh_token"])


async def test_refresh_reuse_after_grace_revokes_session(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier()
    tokens = await issuer.login("alice")
    rotated = (await issuer.refresh(tokens["refresh_token"])).json()
    # Age the first use past the grace window instead of sleeping 10 s.
    await _age_refresh_use(
        issuer, tokens["refresh_token"], issuer.settings.tokens.refresh_grace_s + 1
    )
    reply = await issuer.refresh(tokens["refresh_token"])
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_grant"
    for access in (tokens["access_token"], rotated["access_token"]):
        await eventually(partial(rejected, verifier, access, "session_revoked"))
    assert (await issuer.refresh(rotated["refresh_token"])).status_code == 401


async def _age_refresh_use(issuer: Issuer, refresh_token: str, seconds: float) -> None:
    backend = issuer.ctx.backend
    key = session_keys.refresh_token(
        backend.keys.of(refresh_token), hash_refresh_token(refresh_token)
    )
    used_ms = int(await backend.hget(key, "used_ms") or 0)
    assert used_ms > 0

    async def age(client: Redis) -> None:
        await client.hset(key, "used_ms", used_ms - int(seconds * 1000))

    await backend.on_primary(key, age)


@pytest.mark.parametrize("path", ["/v1/logout", "/v1/logout-all"])
async def test_bearer_routes_need_a_valid_token(issuer: Issuer, path: str) -> None:
    reply = await issuer.http.post(path)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == 'Bearer realm="revocast"'  # RFC 6750 §3.1
    reply = await issuer.post_bearer(path, "not.a.token")
    assert reply.status_code == 401
    assert reply.json()["error"] == "malformed_token"
