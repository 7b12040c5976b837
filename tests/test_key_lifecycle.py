"""Signing keys: rotation without restarts, revocation everywhere, verifiers hold no secrets."""

from __future__ import annotations

import asyncio
from functools import partial

import jwt
import pytest

from revocast.events import ActorKind
from revocast.issuer import create_app, operator
from revocast.keys import PublicKey
from revocast.store.sessions import keys as session_keys
from revocast.verifier import Verifier
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually, serve
from tests.support.verdicts import rejects_with


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def knows(verifier: Verifier, kid: str) -> bool:
    return kid in verifier.cache.keys


async def run(issuer: Issuer, action: str, kid: str = "") -> dict[str, object]:
    store = issuer.ctx.store
    if action == "rotate":
        return await operator.rotate_key(store, issuer.settings)
    if action == "revoke":
        return await operator.revoke_key(store, issuer.settings, kid, "leaked")
    return await operator.list_keys(store)


async def test_rotation_needs_no_restart(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    await issuer.add_user("alice")
    verifiers = [await make_verifier(), await make_verifier()]
    before = await issuer.login("alice")
    rotated = await run(issuer, "rotate")
    new_kid = str(rotated["kid"])
    await asyncio.gather(*(eventually(partial(knows, v, new_kid)) for v in verifiers))
    after = await issuer.login("alice")
    assert kid_of(after["access_token"]) == new_kid != kid_of(before["access_token"])
    for verifier in verifiers:  # old tokens stay valid until they expire
        verifier.verify(before["access_token"])
        verifier.verify(after["access_token"])
    jwks = (await issuer.http.get("/.well-known/jwks.json")).json()
    assert {key["kid"] for key in jwks["keys"]} == {new_kid, kid_of(before["access_token"])}


async def test_revoked_key_is_refused_everywhere(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    verifiers = [await make_verifier(), await make_verifier()]
    old = await issuer.login("alice")
    old_kid = kid_of(old["access_token"])
    result = await run(issuer, "revoke", old_kid)  # the active key: rotates first
    assert result["revoked"] is True
    assert result["now_active"] not in (None, old_kid)
    await asyncio.gather(
        *(eventually(partial(rejects_with, v, old["access_token"], "key_revoked"))
          for v in verifiers)
    )  # fmt: skip
    fresh = await issuer.login("alice")  # the running issuer signs with the new key
    assert kid_of(fresh["access_token"]) == result["now_active"]
    for verifier in verifiers:
        verifier.verify(fresh["access_token"])
    served = await issuer.http.get("/.well-known/jwks.json")
    assert old_kid not in {key["kid"] for key in served.json()["keys"]}
    # Third-party verifiers that honour it drop the revoked key within 15 s.
    assert served.headers["cache-control"] == "public, max-age=15, must-revalidate"
    listed = await run(issuer, "list")
    assert {"kid": old_kid, "active": False, "revoked": True} in listed["keys"]  # type: ignore[operator]


async def test_restarted_issuer_skips_a_revoked_key(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    old_kid = kid_of((await issuer.login("alice"))["access_token"])
    await run(issuer, "revoke", old_kid)
    async with serve(create_app(issuer.settings)) as url:
        import httpx

        async with httpx.AsyncClient(base_url=url) as http:
            reply = await http.post(
                "/v1/login", json={"username": "alice", "password": "correct horse battery"}
            )
    assert kid_of(reply.json()["access_token"]) != old_kid


async def test_issuer_refuses_to_sign_without_a_usable_key(issuer: Issuer) -> None:
    """Revoking the active key with nothing to rotate to: 503, and no session is written."""
    await issuer.add_user("alice")
    store = issuer.ctx.store
    kid = await store.signing.signing_kid()
    assert kid is not None
    await store.signing.revoke_key(kid, "cli:test", "no rotation", actor_kind=ActorKind.OPERATOR)
    reply = await issuer.http.post(
        "/v1/login", json={"username": "alice", "password": "correct horse battery"}
    )
    assert (reply.status_code, reply.json()["error"]) == (503, "signing_key_unavailable")
    uid = (await store.users.find("alice") or ("", ""))[0]
    assert await store.sessions.of_user(uid) == []
    assert (
        await issuer.ctx.backend.smembers(session_keys.user_sessions(store.keys.of(uid), uid))
        == set()
    )


@pytest.mark.parametrize("attribute", ["private", "d"])
async def test_verifiers_hold_only_public_keys(
    issuer: Issuer, make_verifier: VerifierFactory, attribute: str
) -> None:
    verifier = await make_verifier()
    assert verifier.cache.keys
    for key in verifier.cache.keys.values():
        assert isinstance(key, PublicKey)
        assert not hasattr(key, attribute)
        assert attribute not in key.jwk
