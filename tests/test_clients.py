"""OAuth clients (RFC 6749 §2): tokens name their client and scope (RFC 9068), refresh tokens
stay with their client, and the RFC 6749 token endpoint speaks the standard form."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from revocast.issuer import operator
from tests.conftest import PASSWORD, Issuer


def claims_of(token: str) -> dict[str, Any]:
    return dict(pyjwt.decode(token, options={"verify_signature": False}))


def basic(client: dict[str, Any]) -> dict[str, str]:
    pair = f"{client['client_id']}:{client['client_secret']}".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


async def login(issuer: Issuer, name: str, **extra: Any) -> httpx.Response:
    return await issuer.http.post(
        "/v1/login", json={"username": name, "password": PASSWORD} | extra
    )


async def session_count(issuer: Issuer, uid: str) -> int:
    return len(await issuer.ctx.store.sessions.of_user(uid))


async def test_calls_without_a_client_act_for_the_built_in_public_client(issuer: Issuer) -> None:
    await issuer.add_user("alice", ["user", "editor"])
    tokens = await issuer.login("alice")
    claims = claims_of(tokens["access_token"])
    assert (claims["client_id"], claims["scope"], claims["roles"]) == (
        "revocast",
        "editor user",
        ["editor", "user"],
    )
    assert tokens["scope"] == "editor user"
    refreshed = (await issuer.refresh(tokens["refresh_token"])).json()
    assert claims_of(refreshed["access_token"])["client_id"] == "revocast"


async def test_a_confidential_client_logs_in_only_with_its_secret(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    server = await issuer.add_client("billing", confidential=True)
    cid, secret = server["client_id"], server["client_secret"]
    for extra in (
        {"client_id": cid},
        {"client_id": cid, "client_secret": secret + "x"},
        {"client_id": "c_unknown"},
        {"client_id": "revocast", "client_secret": "s"},
    ):
        reply = await login(issuer, "alice", **extra)
        assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client"), extra
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
        assert "client" in reply.json()["detail"]
    assert await session_count(issuer, uid) == 0  # a refused login writes nothing
    reply = await login(issuer, "alice", client_id=cid, client_secret=secret)
    assert reply.status_code == 200
    assert claims_of(reply.json()["access_token"])["client_id"] == cid


async def test_a_public_client_names_itself_and_has_no_secret(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    app = await issuer.add_client("mobile")
    assert "client_secret" not in app
    reply = await login(issuer, "alice", client_id=app["client_id"])
    assert claims_of(reply.json()["access_token"])["client_id"] == app["client_id"]
    refused = await login(issuer, "alice", client_id=app["client_id"], client_secret="x")
    assert refused.status_code == 401


async def test_scope_narrows_the_roles_for_the_whole_session(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice", ["user", "moderator"])
    tokens = (await login(issuer, "alice", scope="user")).json()
    assert tokens["scope"] == "user"
    assert claims_of(tokens["access_token"])["roles"] == ["user"]
    refreshed = (await issuer.refresh(tokens["refresh_token"])).json()
    assert claims_of(refreshed["access_token"])["roles"] == ["user"]  # never widened

    before = await session_count(issuer, uid)
    for scope in ("admin", "user admin", "Not-A-Role"):
        reply = await login(issuer, "alice", scope=scope)
        assert (reply.status_code, reply.json()["error"]) == (400, "invalid_scope"), scope
    assert await session_count(issuer, uid) == before


async def test_a_refresh_token_stays_with_its_client(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    server = await issuer.add_client("billing", confidential=True)
    other = await issuer.add_client("reports", confidential=True)
    mobile = await issuer.add_client("mobile")
    own = {"client_id": server["client_id"], "client_secret": server["client_secret"]}
    tokens = (await login(issuer, "alice", **own)).json()
    rt = tokens["refresh_token"]

    async def refresh(**extra: Any) -> httpx.Response:
        return await issuer.http.post("/v1/refresh", json={"refresh_token": rt} | extra)

    refusals = [
        (await refresh(), 401, "invalid_client"),  # a confidential client's token needs it
        (
            await refresh(client_id=other["client_id"], client_secret=other["client_secret"]),
            401,
            "invalid_grant",
        ),
        (await refresh(client_id=mobile["client_id"]), 401, "invalid_grant"),
    ]
    for reply, status, code in refusals:
        assert (reply.status_code, reply.json()["error"]) == (status, code), reply.text
    reply = await refresh(**own)  # the refusals spent nothing: the token still rotates
    assert reply.status_code == 200, reply.text
    assert claims_of(reply.json()["access_token"])["client_id"] == server["client_id"]

    # A public client's token too (issue 19 point 15; before, naming no client refreshed it).
    public = (await login(issuer, "alice", client_id=mobile["client_id"])).json()
    unnamed = await issuer.refresh(public["refresh_token"])
    assert (unnamed.status_code, unnamed.json()["error"]) == (401, "invalid_grant")
    assert f"issued to the client {mobile['client_id']}" in unnamed.json()["detail"]
    form = {"grant_type": "refresh_token", "refresh_token": public["refresh_token"]}
    oauth = await issuer.http.post("/oauth/token", data=form)
    assert (oauth.status_code, oauth.json()["error"]) == (400, "invalid_grant")
    body = {"refresh_token": public["refresh_token"], "client_id": mobile["client_id"]}
    named = await issuer.http.post("/v1/refresh", json=body)
    assert named.status_code == 200, named.text  # the refusals spent nothing
    await operator.remove_client(issuer.ctx.store, "mobile")
    gone = await issuer.refresh(named.json()["refresh_token"])
    assert (gone.status_code, gone.json()["error"]) == (401, "invalid_grant")


# The RFC 6749 token endpoint ----------------------------------------------------------------


async def token(issuer: Issuer, form: dict[str, str], **kwargs: Any) -> httpx.Response:
    return await issuer.http.post("/oauth/token", data=form, **kwargs)


async def test_token_endpoint_password_and_refresh_grants(issuer: Issuer) -> None:
    await issuer.add_user("alice", ["user", "editor"])
    server = await issuer.add_client("billing", confidential=True)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    reply = await token(issuer, form | {"scope": "editor"}, headers=basic(server))
    assert reply.status_code == 200, reply.text
    assert (reply.headers["Cache-Control"], reply.headers["Pragma"]) == ("no-store", "no-cache")
    body = reply.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert (body["token_type"], body["scope"]) == ("Bearer", "editor")
    assert claims_of(body["access_token"])["roles"] == ["editor"]
    assert claims_of(body["access_token"])["client_id"] == server["client_id"]

    post = {"client_id": server["client_id"], "client_secret": server["client_secret"]}
    again = await token(
        issuer, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]} | post
    )
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "editor"

    public = await token(issuer, form)  # no client: the built-in public one
    assert claims_of(public.json()["access_token"])["client_id"] == "revocast"
    narrowed = await token(
        issuer,
        {
            "grant_type": "refresh_token",
            "scope": "user",
            "refresh_token": public.json()["refresh_token"],
        },
    )
    assert claims_of(narrowed.json()["access_token"])["roles"] == ["user"]


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({}, 400, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "alice"}, 400, "invalid_request"),
        (
            {"grant_type": "password", "username": "alice", "password": "wrong"},
            400,
            "invalid_grant",
        ),
        (
            {"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "admin"},
            400,
            "invalid_scope",
        ),
        ({"grant_type": "refresh_token", "refresh_token": "unknown"}, 400, "invalid_grant"),
        (
            {"grant_type": "refresh_token", "refresh_token": "RT", "scope": "admin"},
            400,
            "invalid_scope",
        ),
        (
            {
                "grant_type": "password",
                "username": "alice",
                "password": PASSWORD,
                "client_id": "c_nobody",
            },
            401,
            "invalid_client",
        ),
    ],
)
async def test_token_endpoint_errors_in_rfc_6749_shape(
    issuer: Issuer, form: dict[str, str], status: int, code: str
) -> None:
    await issuer.add_user("alice", ["user"])
    tokens = await issuer.login("alice")
    if form.get("refresh_token") == "RT":
        form = form | {"refresh_token": tokens["refresh_token"]}
    reply = await token(issuer, form)
    assert (reply.status_code, reply.json()) == (status, reply.json() | {"error": code})
    assert set(reply.json()) == {"error", "error_description"}
    assert (await issuer.refresh(tokens["refresh_token"])).status_code == 200  # not spent


async def test_token_endpoint_refuses_two_client_methods_and_repeated_fields(
    issuer: Issuer,
) -> None:
    await issuer.add_user("alice")
    server = await issuer.add_client("billing", confidential=True)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    both = await token(
        issuer, form | {"client_secret": server["client_secret"]}, headers=basic(server)
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")
    twice = await issuer.http.post(
        "/oauth/token",
        content=b"grant_type=password&grant_type=password",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (twice.status_code, twice.json()["error"]) == (400, "invalid_request")
    wrong = await token(issuer, form, headers=basic(server | {"client_secret": "nope"}))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="revocast"'
    garbled = await token(issuer, form, headers={"Authorization": "Basic !!!"})
    assert (garbled.status_code, garbled.json()["error"]) == (401, "invalid_client")


async def test_a_blocked_user_gets_invalid_grant(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    await operator.set_blocked(issuer.ctx.store, uid, "spam", blocked=True)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    reply = await token(issuer, form)
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_grant")
    assert "blocked" in reply.json()["error_description"]
