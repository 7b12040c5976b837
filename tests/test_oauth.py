"""RFC 7009 revocation and RFC 7662 introspection."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest

from revocast.errors import RevocastError
from revocast.issuer import create_app, operator
from tests.conftest import PASSWORD, Issuer, VerifierFactory
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


async def introspect(
    issuer: Issuer, caller: dict[str, Any] | None, token: str, **kwargs: Any
) -> Any:
    headers = {"Authorization": f"Bearer {caller['access_token']}"} if caller else {}
    form = {"token": token} | kwargs.pop("data", {})
    return await issuer.http.post(
        "/oauth/introspect", data=form, headers=kwargs.pop("headers", headers)
    )


async def test_introspection_needs_an_authenticated_caller(issuer: Issuer) -> None:
    """RFC 7662 §2.3: 401 with a challenge for no, wrong or too little authentication."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    access = tokens["access_token"]
    server = await issuer.add_client("api", confidential=True)
    mobile = await issuer.add_client("mobile")

    nobody = await introspect(issuer, None, access)
    assert (nobody.status_code, nobody.json()["error"]) == (401, "invalid_client")
    assert nobody.headers["WWW-Authenticate"] == 'Basic realm="revocast", Bearer realm="revocast"'
    no_role = await introspect(issuer, tokens, access)
    assert no_role.status_code == 401
    assert 'error="insufficient_scope"' in no_role.headers["WWW-Authenticate"]
    for form in (
        {"client_id": mobile["client_id"]},
        {"client_id": server["client_id"], "client_secret": "wrong"},
        {"client_id": server["client_id"]},
    ):
        reply = await introspect(issuer, None, access, data=form)
        assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client"), form
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
    forged = await introspect(issuer, None, access, headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]


RFC_7662_ACCESS = {
    "active",
    "token_type",
    "client_id",
    "username",
    "scope",
    "sub",
    "aud",
    "iss",
    "jti",
    "exp",
    "iat",
    "nbf",
}


async def test_introspection_answers(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice", ["user"])
    await issuer.add_user("gateway", ["introspect"])
    gateway = await issuer.login("gateway")
    server = await issuer.add_client("api", confidential=True, roles=("introspect",))
    by_post = {"client_id": server["client_id"], "client_secret": server["client_secret"]}
    alice = await issuer.login("alice")
    expected = {
        "active": True,
        "token_type": "Bearer",
        "client_id": "revocast",
        "username": "alice",
        "scope": "user",
        "sub": uid,
        "sid": alice["session_id"],
        "roles": ["user"],
        "iss": issuer.settings.tokens.issuer,
        "aud": issuer.settings.tokens.audience,
    }

    for answer in (
        (await introspect(issuer, gateway, alice["access_token"])).json(),
        (await introspect(issuer, None, alice["access_token"], data=by_post)).json(),
    ):
        assert set(answer) >= RFC_7662_ACCESS
        assert answer.items() >= expected.items()
        assert all(type(answer[name]) is int for name in ("exp", "iat", "nbf"))
        assert answer["exp"] - answer["iat"] == issuer.settings.tokens.access_ttl_s
        assert answer["jti"]

    refresh = (await introspect(issuer, None, alice["refresh_token"], data=by_post)).json()
    assert (
        refresh.items()
        >= {
            "active": True,
            "client_id": "revocast",
            "username": "alice",
            "scope": "user",
            "sub": uid,
            "sid": alice["session_id"],
        }.items()
    )
    assert refresh["exp"] - refresh["iat"] == issuer.settings.tokens.refresh_ttl_s
    assert "token_type" not in refresh  # RFC 6749's token types name access tokens only
    assert (await introspect(issuer, gateway, "garbage")).json() == {"active": False}

    await issuer.post_bearer("/v1/logout", alice["access_token"])
    for token in (alice["access_token"], alice["refresh_token"]):
        assert (await introspect(issuer, gateway, token)).json() == {"active": False}


async def test_a_client_introspects_its_own_tokens_unless_it_holds_introspect(
    issuer: Issuer,
) -> None:
    """Issue 19 point 8. Before: any confidential client introspected every user's tokens
    (``active: true`` with the username, roles and session)."""
    await issuer.add_user("alice")
    shop = await issuer.add_client("shop", confidential=True)
    shop_auth = {"client_id": shop["client_id"], "client_secret": shop["client_secret"]}
    login = {"username": "alice", "password": PASSWORD}
    others = await issuer.login("alice")  # the built-in client's
    own = (await issuer.http.post("/v1/login", json=login | shop_auth)).json()

    async def seen_by_shop(token: str) -> Any:
        return (await introspect(issuer, None, token, data=shop_auth)).json()

    for token in (others["access_token"], others["refresh_token"]):
        assert await seen_by_shop(token) == {"active": False}
    for token in (own["access_token"], own["refresh_token"]):
        answer = await seen_by_shop(token)
        assert (answer["active"], answer["client_id"]) == (True, shop["client_id"])

    # The operator gives it the role (revocast client roles shop introspect): every token.
    ctx = issuer.ctx
    held = await operator.set_client_roles(ctx.store, "shop", ["introspect"])
    assert held["roles"] == ["introspect"]
    assert (await seen_by_shop(others["access_token"]))["active"] is True
    await operator.set_client_roles(ctx.store, shop["client_id"], [])
    assert await seen_by_shop(others["refresh_token"]) == {"active": False}


@pytest.mark.parametrize(
    ("confidential", "roles", "code"),
    [(False, ["introspect"], "invalid_request"), (True, ["admin"], "invalid_request")],
    ids=["public-client", "not-a-client-role"],
)
async def test_a_client_holds_only_the_roles_it_can_use(
    issuer: Issuer, confidential: bool, roles: list[str], code: str
) -> None:
    ctx = issuer.ctx
    with pytest.raises(RevocastError) as added:
        await operator.add_client(ctx.store, "x", confidential, roles)
    assert added.value.code == code
    await issuer.add_client("y", confidential=confidential)
    with pytest.raises(RevocastError) as given:
        await operator.set_client_roles(ctx.store, "y", roles)
    assert given.value.code == code
    with pytest.raises(RevocastError) as missing:
        await operator.set_client_roles(ctx.store, "nobody", [])
    assert missing.value.code == "not_found"


async def test_introspection_of_a_rotated_refresh_token_is_inactive(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    await issuer.add_user("gateway", ["introspect"])
    gateway = await issuer.login("gateway")
    alice = await issuer.login("alice")
    successor = (await issuer.refresh(alice["refresh_token"])).json()["refresh_token"]
    assert (await introspect(issuer, gateway, alice["refresh_token"])).json() == {"active": False}
    assert (await introspect(issuer, gateway, successor)).json()["active"] is True


async def test_a_confidential_clients_tokens_are_revoked_only_by_it(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    """RFC 7009 §2.1: the server checks the token was issued to the client revoking it."""
    await issuer.add_user("alice")
    verifier = await make_verifier()
    server = await issuer.add_client("api", confidential=True)
    other = await issuer.add_client("reports", confidential=True)
    own = {"client_id": server["client_id"], "client_secret": server["client_secret"]}
    login = {"username": "alice", "password": PASSWORD}
    tokens = (await issuer.http.post("/v1/login", json=login | own)).json()

    for which in ("access_token", "refresh_token"):
        for form, status, code in (
            ({}, 401, "invalid_client"),
            (
                {"client_id": other["client_id"], "client_secret": other["client_secret"]},
                400,
                "invalid_grant",
            ),
            ({"client_id": server["client_id"], "client_secret": "wrong"}, 401, "invalid_client"),
        ):
            reply = await issuer.http.post("/oauth/revoke", data={"token": tokens[which]} | form)
            assert (reply.status_code, reply.json()["error"]) == (status, code), (which, form)
    assert not is_rejected(verifier, tokens["access_token"])  # nothing was revoked

    reply = await issuer.http.post("/oauth/revoke", data={"token": tokens["access_token"]} | own)
    assert reply.status_code == 200
    await eventually(partial(is_rejected, verifier, tokens["access_token"]))


async def test_a_public_clients_tokens_are_revoked_without_authentication(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    verifier = await make_verifier()
    mobile = await issuer.add_client("mobile")
    login = {"username": "alice", "password": PASSWORD, "client_id": mobile["client_id"]}
    tokens = (await issuer.http.post("/v1/login", json=login)).json()
    foreign = await issuer.http.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": "revocast"}
    )
    assert (foreign.status_code, foreign.json()["error"]) == (400, "invalid_grant")
    reply = await issuer.http.post("/oauth/revoke", data={"token": tokens["refresh_token"]})
    assert reply.status_code == 200
    await eventually(partial(is_rejected, verifier, tokens["access_token"]))


async def test_rfc_8414_metadata(issuer: Issuer) -> None:
    """The document exists, names what revocast serves, and its URLs answer."""
    reply = await issuer.http.get("/.well-known/oauth-authorization-server")
    assert reply.status_code == 200
    meta = reply.json()
    assert meta["issuer"] == issuer.settings.tokens.issuer
    assert meta["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert meta["grant_types_supported"] == ["password", "refresh_token"]
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
    assert meta["token_endpoint"] == "https://auth.example.com/oauth/token"
