"""Bad input gets a clear 4xx JSON error and changes nothing in Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from revocast import operator
from revocast.chaos.proxy import TcpProxy
from revocast.errors import Conflict
from revocast.issuer import create_app
from tests.conftest import Issuer
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
                 {"Content-Type": "text/plain"}, 400, "invalid_request",
                 id="login-wrong-media-type"),
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
    before = await dump(redis, issuer.settings.key_prefix)
    reply = await issuer.http.post(path, content=body, headers=headers)
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] == code
    assert reply.json()["detail"]
    assert "Traceback" not in reply.text
    assert await dump(redis, issuer.settings.key_prefix) == before


async def test_streamed_oversized_body_is_refused(issuer: Issuer, redis: Redis) -> None:
    """No Content-Length: the limit holds while reading, not only from the header."""
    before = await dump(redis, issuer.settings.key_prefix)

    async def chunks() -> Any:
        for _ in range(64):
            yield b"x" * 1024

    reply = await issuer.http.post("/v1/login", content=chunks(), headers=JSON)
    assert reply.status_code == 413
    assert reply.json()["error"] == "body_too_large"
    assert await dump(redis, issuer.settings.key_prefix) == before


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
    await operator.set_blocked(issuer.ctx.writes, uid, "spam", blocked=True)
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
    assert (conflict.value.code, conflict.value.detail) == ("conflict", Conflict.explanation)
