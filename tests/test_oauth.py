"""RFC 7009 revocation and RFC 7662 introspection."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest

from revocast.issuer import create_app
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually, serve
from tests.support.verdicts import is_rejected

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("which", "hint"),
    [
        ("refresh_token", "refresh_token"),
        ("refresh_token", ""),
        ("access_token", "access_token"),
        ("access_token", "refresh_token"),  # a wrong hint only changes the search order
        ("access_token", "something_else"),  # an unknown hint is ignored
    ],
)
async def test_revoking_either_token_ends_the_session(
    issuer: Issuer, make_verifier: VerifierFactory, which: str, hint: str
) -> None:
    await issuer.add_user("alice")
    verifiers = [await make_verifier(), await make_verifier()]
    tokens = await issuer.login("alice")
    form = {"token": tokens[which]} | ({"token_type_hint": hint} if hint else {})
    reply = await issuer.http.post("/oauth/revoke", data=form)
    assert reply.status_code == 200
    for verifier in verifiers:
        await eventually(partial(is_rejected, verifier, tokens["access_token"]))
    assert (await issuer.refresh(tokens["refresh_token"])).status_code == 401


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 600])
async def test_revoking_an_unknown_token_answers_200(issuer: Issuer, token: str) -> None:
    reply = await issuer.http.post("/oauth/revoke", data={"token": token})
    assert reply.status_code == 200


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", FORM),
        (b"token_type_hint=refresh_token", FORM),
        (b"token=a&token=b", FORM),
        (b'{"token": "a"}', {"Content-Type": "application/json"}),
        (b"token=%ff%fe", FORM),
    ],
)
async def test_malformed_revocation_requests_get_400(
    issuer: Issuer, body: bytes, headers: dict[str, str]
) -> None:
    reply = await issuer.http.post("/oauth/revoke", content=body, headers=headers)
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request")
    assert set(reply.json()) == {"error", "error_description"}  # RFC 6749 section 5.2


async def test_oauth_endpoints_answer_in_rfc_6749_shape_and_v1_in_ours(issuer: Issuer) -> None:
    for reply in (
        await issuer.http.post("/oauth/introspect", data={"token": "x"}),
        await issuer.http.get("/oauth/revoke"),
    ):
        assert set(reply.json()) == {"error", "error_description"}, reply.request.url
    v1 = await issuer.http.post("/v1/logout")
    assert set(v1.json()) == {"error", "detail"}


async def introspect(issuer: Issuer, caller: dict[str, Any] | None, token: str) -> Any:
    headers = {"Authorization": f"Bearer {caller['access_token']}"} if caller else {}
    return await issuer.http.post("/oauth/introspect", data={"token": token}, headers=headers)


async def test_introspection_needs_an_authorized_caller(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    assert (await introspect(issuer, None, tokens["access_token"])).status_code == 401
    assert (await introspect(issuer, tokens, tokens["access_token"])).status_code == 403


async def test_introspection_answers(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice", ["user"])
    await issuer.add_user("gateway", ["introspect"])
    gateway = await issuer.login("gateway")
    alice = await issuer.login("alice")

    access = (await introspect(issuer, gateway, alice["access_token"])).json()
    assert access["active"] is True
    assert (access["token_type"], access["sub"], access["sid"]) == (
        "access_token", uid, alice["session_id"],
    )  # fmt: skip
    assert (access["username"], access["roles"], access["scope"]) == ("alice", ["user"], "user")
    assert access["exp"] > access["iat"]
    refresh = (await introspect(issuer, gateway, alice["refresh_token"])).json()
    assert (refresh["active"], refresh["token_type"], refresh["sub"]) == (
        True, "refresh_token", uid,
    )  # fmt: skip
    assert (await introspect(issuer, gateway, "garbage")).json() == {"active": False}

    await issuer.post_bearer("/v1/logout", alice["access_token"])
    for token in (alice["access_token"], alice["refresh_token"]):
        assert (await introspect(issuer, gateway, token)).json() == {"active": False}


async def test_rfc_8414_metadata(issuer: Issuer) -> None:
    """The document exists, names what revocast serves, and its URLs answer."""
    reply = await issuer.http.get("/.well-known/oauth-authorization-server")
    assert reply.status_code == 200
    meta = reply.json()
    assert meta["issuer"] == issuer.settings.issuer
    assert meta["revocation_endpoint_auth_methods_supported"] == ["none"]
    assert meta["access_token_signing_alg_values_supported"] == ["Ed25519", "EdDSA"]
    jwks = await issuer.http.get(meta["jwks_uri"])
    assert jwks.json()["keys"]
    revoke = await issuer.http.post(meta["revocation_endpoint"], data={"token": "unknown"})
    assert revoke.status_code == 200
    introspect = await issuer.http.post(meta["introspection_endpoint"], data={"token": "x"})
    assert introspect.status_code == 401


async def test_metadata_urls_follow_an_issuer_url(issuer: Issuer) -> None:
    settings = issuer.settings.with_overrides(issuer="https://auth.example.com")
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == "https://auth.example.com"
    assert meta["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
    assert meta["revocation_endpoint"] == "https://auth.example.com/oauth/revoke"
    assert "token_endpoint" not in meta  # until an RFC 6749 token endpoint exists (issue 11)
