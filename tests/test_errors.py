"""Bad input gets a clear 4xx JSON error and changes nothing in Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from revocast.errors import (
    Conflict,
    InsufficientScope,
    RevocastError,
    TokenRejected,
    TooManyAttempts,
    TooManyRevocations,
)
from revocast.issuer import create_app, operator
from revocast_tools.proxy import TcpProxy
from tests.conftest import PASSWORD, Issuer, bearer
from tests.support.servers import serve


async def dump(redis: Redis, prefix: str) -> dict[str, Any]:
    """Every key under the prefix with its serialized value: what 'nothing changed' means.

    Left out: login throttling counters (``:rl:``), which exist to count refusals, and what
    running issuers and verifiers rewrite on their own every fraction of a second (the
    heartbeats, the issuers' presence records, the verifiers' receipts).
    """
    keys = sorted(
        [key async for key in redis.scan_iter(f"{prefix}:*") if not _churns(key.split("}", 1)[-1])]
    )
    state: dict[str, Any] = {}
    for key in keys:
        kind = await redis.type(key)
        if kind == "stream":
            state[key] = await redis.xrange(key)
        elif kind == "hash":
            state[key] = await redis.hgetall(key)
        elif kind == "zset":
            state[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            state[key] = sorted(await redis.smembers(key))
        else:
            state[key] = await redis.get(key)
    return state


def _churns(name: str) -> bool:
    return (
        ":rl:" in name
        or name in (":heartbeat", ":issuers", ":verifiers")
        or name.startswith((":issuer:", ":verifier:"))
    )


def explains(body: dict[str, Any], code: str, key_prefix: str = "revocast") -> str:
    """The detail of an error body, checked as issue 13 asks: one line that says what went
    wrong, then what to do (``what: what to do``), neither the code again nor a key name."""
    assert body["error"] == code, body
    detail = body["error_description"] if "error_description" in body else body["detail"]
    assert isinstance(detail, str), body
    what, colon, to_do = detail.partition(": ")
    assert colon, body
    assert what.strip(), body
    assert to_do.strip(), body
    assert detail != code, body
    assert "\n" not in detail, body
    assert f"{key_prefix}:" not in detail, body
    return detail


JSON = {"Content-Type": "application/json"}

CASES = [
    pytest.param("/v1/login", b"{not json", JSON, 400, "invalid_request",
                 id="login-malformed-json"),
    pytest.param("/v1/login", b"[]", JSON, 400, "invalid_request", id="login-not-an-object"),
    pytest.param("/v1/login", b'{"username": "alice"}', JSON, 400, "invalid_request",
                 id="login-missing-password"),
    pytest.param("/v1/login", b'{"username": 7, "password": "x"}', JSON, 400, "invalid_request",
                 id="login-mistyped-username"),
    pytest.param("/v1/login", b'{"username": "alice", "password": "x", "admin": true}', JSON, 400,
                 "invalid_request", id="login-unknown-field"),
    pytest.param("/v1/login", b'{"username": "", "password": "x"}', JSON, 400, "invalid_request",
                 id="login-empty-username"),
    pytest.param("/v1/login", b'{"username": "alice", "password": "x"}',
                 {"Content-Type": "text/plain"}, 415, "unsupported_media_type",
                 id="login-wrong-media-type"),
    pytest.param("/v1/login", b'{"username": "alice", "password": "x"}', {}, 415,
                 "unsupported_media_type", id="login-no-media-type"),
    pytest.param("/v1/login", b'{"username": "x", "username": "alice", "password": "x"}', JSON,
                 400, "invalid_request", id="login-repeated-member"),
    pytest.param("/v1/login", b'{"username": "alice", "password": "wrong password"}', JSON, 401,
                 "invalid_credentials", id="login-wrong-password"),
    pytest.param("/v1/login", b'{"username": "mallory", "password": "correct horse battery"}', JSON,
                 401, "invalid_credentials", id="login-unknown-user"),
    pytest.param("/v1/login", b'{"username": "alice", "password": "' + b"x" * 20000 + b'"}', JSON,
                 413, "body_too_large", id="login-oversized"),
    pytest.param("/v1/refresh", b"{}", JSON, 400, "invalid_request", id="refresh-missing-field"),
    pytest.param("/v1/refresh", b'{"refresh_token": 5}', JSON, 400, "invalid_request",
                 id="refresh-mistyped"),
    pytest.param("/v1/refresh", b'{"refresh_token": "nope"}', JSON, 401, "invalid_grant",
                 id="refresh-unknown-token"),
    pytest.param("/v1/refresh", b"\xff\xfe", JSON, 400, "invalid_request", id="refresh-not-utf8"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "headers", "status", "code"), CASES)
async def test_bad_request_is_refused_and_changes_nothing(
    issuer: Issuer,
    redis: Redis,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    await issuer.add_user("alice")
    await issuer.login("alice")  # some state to keep intact
    before = await dump(redis, issuer.settings.redis.key_prefix)
    reply = await issuer.http.post(path, content=body, headers=headers)
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/json"
    explains(reply.json(), code, issuer.settings.redis.key_prefix)
    assert "Traceback" not in reply.text
    assert await dump(redis, issuer.settings.redis.key_prefix) == before


async def test_streamed_oversized_body_is_refused(issuer: Issuer, redis: Redis) -> None:
    """No Content-Length: the limit holds while reading, not only from the header."""
    before = await dump(redis, issuer.settings.redis.key_prefix)

    async def chunks() -> Any:
        for _ in range(64):
            yield b"x" * 1024

    reply = await issuer.http.post("/v1/login", content=chunks(), headers=JSON)
    assert reply.status_code == 413
    assert reply.json()["error"] == "body_too_large"
    assert await dump(redis, issuer.settings.redis.key_prefix) == before


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/login", 405, "method_not_allowed"),
        ("GET", "/nowhere", 404, "not_found"),
    ],
)
async def test_routing_errors_are_json(
    issuer: Issuer, method: str, path: str, status: int, code: str
) -> None:
    reply = await issuer.http.request(method, path)
    assert reply.status_code == status
    assert reply.json()["error"] == code


async def test_redis_down_is_503_not_500(issuer: Issuer, proxy: TcpProxy) -> None:
    """A store outage is the server's problem, said plainly: 503 with Retry-After."""
    await issuer.add_user("alice")
    app = create_app(issuer.settings.with_overrides(redis_url=proxy.url))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        proxy.cut()
        login = {"username": "alice", "password": "correct horse battery"}
        for path, body in (("/v1/login", login), ("/v1/refresh", {"refresh_token": "x"})):
            reply = await http.post(path, json=body)
            assert reply.status_code == 503
            assert reply.json()["error"] == "store_unavailable"
            assert reply.headers["retry-after"] == "1"
        proxy.restore()
        assert (await http.post("/v1/login", json=login)).status_code == 200


async def test_details_explain_rather_than_repeat_the_code(issuer: Issuer) -> None:
    """Issue 13 in part: errors raised without a detail of their own say what happened and
    what to do; the codes are unchanged."""
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    await operator.set_blocked(issuer.ctx.store, uid, "spam", blocked=True)
    blocked = await issuer.refresh(tokens["refresh_token"])
    unknown = await issuer.refresh("rt_unknown")
    taken = issuer.add_user("alice")
    for reply, code in ((blocked, "user_blocked"), (unknown, "invalid_grant")):
        body = reply.json()
        assert body["error"] == code
        assert body["detail"] != code, body
        assert len(body["detail"]) > 20, body
    with pytest.raises(Conflict) as conflict:
        await taken
    assert (conflict.value.code, conflict.value.detail) == (
        "conflict",
        "this username is taken: pick another one",  # the script's own detail
    )


def _error_classes() -> list[type[RevocastError]]:
    """Every RevocastError class the issuer and the verifier can raise (both are imported)."""
    found: list[type[RevocastError]] = []
    todo: list[type[RevocastError]] = [RevocastError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__qualname__)


def _raised_bare(cls: type[RevocastError]) -> RevocastError:
    """``cls`` raised with nothing of the raiser's own to say (its required arguments only)."""
    if issubclass(cls, TooManyAttempts | TooManyRevocations):
        return cls(3)
    if issubclass(cls, InsufficientScope):
        return cls("admin moderator")
    if issubclass(cls, TokenRejected):
        return cls("session_revoked")
    return cls()


def test_every_error_class_is_found() -> None:
    assert len(_error_classes()) >= 25


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda cls: cls.__qualname__)
def test_every_error_explains_itself_by_default(cls: type[RevocastError]) -> None:
    """Issue 13 point 2: a raise without a detail of its own still says what went wrong and
    what to do; the code stays the machine's part."""
    error = _raised_bare(cls)
    explains({"error": error.code, "detail": error.detail}, error.code)
    assert str(error) == error.detail


async def test_http_answers_explain(issuer: Issuer) -> None:
    """A sample of real answers, /v1 and /oauth, from the issuer's checks and its scripts'."""
    admin = await issuer.add_user("root", ["admin"])
    mod = await issuer.add_user("mod", ["moderator"])
    await issuer.add_user("alice", ["user"])
    mod_auth = bearer(await issuer.login("mod"))
    alice_auth = bearer(await issuer.login("alice"))
    admin_auth = bearer(await issuer.login("root"))
    http, prefix = issuer.http, issuer.settings.redis.key_prefix

    # Refused inside a Lua script: the script's own detail reaches the client.
    over_admin = await http.post(f"/v1/admin/users/{admin}/block", headers=mod_auth)
    assert over_admin.status_code == 403
    assert explains(over_admin.json(), "forbidden", prefix) == (
        "moderators cannot act on admins: ask an admin"
    )
    itself = await http.post(f"/v1/admin/users/{mod}/block", headers=mod_auth)
    assert "cannot block yourself" in explains(itself.json(), "forbidden", prefix)
    gone = await http.delete("/v1/admin/sessions/s_nothing", headers=admin_auth)
    assert gone.status_code == 404
    explains(gone.json(), "not_found", prefix)

    # Refused by the verifier's checks: the challenge keeps naming the roles alone.
    no_role = await http.get("/v1/admin/audit", headers=alice_auth)
    assert no_role.status_code == 403
    assert "admin, moderator" in explains(no_role.json(), "insufficient_scope", prefix)
    assert 'scope="admin moderator"' in no_role.headers["www-authenticate"]
    anonymous = await http.get("/v1/sessions")
    assert anonymous.status_code == 401
    explains(anonymous.json(), "missing_token", prefix)
    forged = await http.get("/v1/sessions", headers={"Authorization": "Bearer a.b.c"})
    explains(forged.json(), "malformed_token", prefix)

    # RFC 6749's shape on /oauth/*: error and error_description, the description explains.
    for form, code in (
        ({"grant_type": "password", "username": "alice", "password": "nope"}, "invalid_grant"),
        ({"grant_type": "bogus"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "alice"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "rt_unknown"}, "invalid_grant"),
    ):
        reply = await http.post("/oauth/token", data=form)
        assert reply.status_code == 400, reply.text
        assert set(reply.json()) == {"error", "error_description"}
        explains(reply.json(), code, prefix)
    wrong = await http.post("/v1/login", json={"username": "alice", "password": "x" + PASSWORD})
    assert wrong.json()["detail"] == "unknown user or wrong password: check both and try again"
