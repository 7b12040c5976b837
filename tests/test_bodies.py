"""What the issuer reads from a request: bodies in their media type and read one way, ids as
Redis writes them, token times as whole numbers (issue 19 point 13)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import PASSWORD, Issuer, bearer

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def sessions_of(issuer: Issuer, uid: str) -> int:
    return len(await issuer.ctx.store.sessions.of_user(uid))


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "nobody", "username": "alice", "password": "%s"}',
        b'{"username": "alice", "password": "wrong", "password": "%s"}',
        b'{"username": "alice", "password": "%s", "delivery": "body", "delivery": "cookie"}',
    ],
    ids=["username", "password", "delivery"],
)
async def test_a_repeated_member_is_refused_not_merged(issuer: Issuer, body: bytes) -> None:
    """Before: the last one won, and ``"username": "nobody", "username": "alice"`` logged in
    as alice while a proxy or log reading the first saw nobody."""
    alice = await issuer.add_user("alice")
    reply = await issuer.http.post(
        "/v1/login", content=body % PASSWORD.encode(), headers={"Content-Type": JSON}
    )
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request"), reply.text
    assert "appears twice" in reply.json()["detail"]
    assert await sessions_of(issuer, alice) == 0


async def test_nesting_past_the_bound_is_400_on_every_json_route(issuer: Issuer) -> None:
    """Before: ``POST /ssf/stream`` with ~1000 levels inside ``delivery`` (an object of any
    values) made msgspec raise RecursionError: 500."""
    await issuer.add_user("root", ["admin"])
    admin = bearer(await issuer.login("root"))
    deep = b"[" * 5000 + b"]" * 5000
    calls = [
        ("POST", "/ssf/stream", b'{"delivery": {"x": %s}}' % deep),
        ("POST", "/ssf/verify", b'{"stream_id": "x", "x": %s}' % deep),
        ("POST", "/ssf/poll/ssf_x", b'{"setErrs": {"j": %s}}' % deep),
        ("POST", "/v1/login", b'{"username": %s, "password": "x"}' % deep),
        ("PUT", "/v1/admin/users/x/roles", b'{"roles": %s}' % deep),
    ]
    for method, path, body in calls:
        reply = await issuer.http.request(
            method, path, content=body, headers=admin | {"Content-Type": JSON}
        )
        assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request"), path
        assert "nest deeper than 32" in reply.json()["detail"], path
    assert await issuer.ctx.store.signals.ssf_streams() == {}


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/v1/login", None, b'{"username": "alice", "password": "%s"}'),
        ("/v1/login", "text/plain", b'{"username": "alice", "password": "%s"}'),
        ("/v1/login", FORM, b"username=alice&password=%s"),
        ("/v1/login", "", b'{"username": "alice", "password": "%s"}'),
        ("/oauth/token", None, b"grant_type=password&username=alice&password=%s"),
        ("/oauth/token", JSON, b'{"grant_type": "password", "password": "%s"}'),
        ("/oauth/revoke", None, b"token=%s"),
        ("/oauth/revoke", JSON, b'{"token": "%s"}'),
        ("/oauth/introspect", None, b"token=%s"),
    ],
)
async def test_a_body_needs_its_media_type(
    issuer: Issuer, path: str, content_type: str | None, body: bytes
) -> None:
    """415 for a body without a Content-Type or in another one: it is not guessed. Before, a
    body without one was read as JSON (or as a form on /oauth), and logged in."""
    alice = await issuer.add_user("alice")
    headers = {} if content_type is None else {"Content-Type": content_type}
    reply = await issuer.http.post(path, content=body % PASSWORD.encode(), headers=headers)
    assert (reply.status_code, reply.json()["error"]) == (415, "unsupported_media_type")
    detail = reply.json()["error_description" if path.startswith("/oauth/") else "detail"]
    assert "send it with Content-Type: " in detail
    assert await sessions_of(issuer, alice) == 0


async def test_an_empty_body_needs_no_media_type(issuer: Issuer) -> None:
    """Nothing to misread: a block without a reason, a cookie refresh without a body."""
    await issuer.add_user("root", ["admin"])
    bob = await issuer.add_user("bob")
    admin = bearer(await issuer.login("root"))
    reply = await issuer.http.post(f"/v1/admin/users/{bob}/block", headers=admin)
    assert reply.status_code == 200, reply.text
    refresh = await issuer.http.post("/v1/refresh")
    assert (refresh.status_code, refresh.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "query",
    [
        "before=99999999999999999999-0",  # past 2^64 - 1: Redis refused it, 503
        "before=18446744073709551616-0",
        "before=0-18446744073709551616",
        "before=00-5",  # another spelling of 0-5
        "before=%D9%A1-0",  # an Arabic-Indic 1, which \d matched
        "limit=%C2%B2",  # "²": str.isdigit() took it and int() raised, 500
        "limit=" + "9" * 5000,  # past int()'s 4300 digits, 500
    ],
)
async def test_bad_audit_ids_are_400(issuer: Issuer, query: str) -> None:
    await issuer.add_user("root", ["admin"])
    reply = await issuer.http.get(
        f"/v1/admin/audit?{query}", headers=bearer(await issuer.login("root"))
    )
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request"), reply.text


@pytest.mark.parametrize("before", ["0-0", "18446744073709551615-18446744073709551615"])
async def test_ids_at_the_ends_of_the_range_page_back(issuer: Issuer, before: str) -> None:
    await issuer.add_user("root", ["admin"])
    admin = bearer(await issuer.login("root"))
    reply = await issuer.http.get(f"/v1/admin/audit?before={before}", headers=admin)
    assert reply.status_code == 200, reply.text
    assert reply.json()["next_before"] is None


@pytest.mark.parametrize("event_id", ["not-an-id", "p%D9%A1.1-0", "p0.1-", "p0.1-0-0"])
async def test_a_malformed_event_id_is_400(issuer: Issuer, event_id: str) -> None:
    """Before: 404, as for an id that names no event; it names nothing at all."""
    await issuer.add_user("root", ["admin"])
    reply = await issuer.http.get(
        f"/v1/admin/revocations/{event_id}", headers=bearer(await issuer.login("root"))
    )
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request"), reply.text


def resigned(issuer: Issuer, token: str, **changes: Any) -> str:
    """``token`` with its claims' JSON text changed, signed again with the issuer's own key
    (as only someone holding it could)."""
    head, payload, _ = token.split(".")
    text = base64.urlsafe_b64decode(payload + "==").decode()
    for name, value in changes.items():
        claims = json.loads(text)
        text = text.replace(f'"{name}":{claims[name]}', f'"{name}":{value}')
    signing_input = f"{head}.{_b64(text.encode())}"
    key = issuer.ctx.minter.keyring.get(json.loads(base64.urlsafe_b64decode(head + "=="))["kid"])
    return f"{signing_input}.{_b64(key.private.sign(signing_input.encode()))}"


@pytest.mark.parametrize(
    "changes",
    [{"exp": "1e400"}, {"exp": "1e20"}, {"exp": 2**60}, {"nbf": "-1"}],
    ids=["exp-1e400", "exp-float", "exp-past-2-53", "nbf-negative"],
)
async def test_token_times_are_whole_numbers_in_range(
    issuer: Issuer, changes: dict[str, Any]
) -> None:
    """Before: ``exp: 1e400`` (infinity to Python's json) was accepted for ever, and its
    introspection raised OverflowError: 500."""
    await issuer.add_user("root", ["admin"])
    await issuer.add_user("alice")
    admin = bearer(await issuer.login("root"))
    forged = resigned(issuer, (await issuer.login("alice"))["access_token"], **changes)
    refused = await issuer.http.get("/v1/sessions", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert refused.json()["error"] in {"malformed_token", "invalid_claims"}
    answer = await issuer.http.post("/oauth/introspect", data={"token": forged}, headers=admin)
    assert (answer.status_code, answer.json()) == (200, {"active": False})
