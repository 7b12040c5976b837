"""Through real nginx, Caddy and Envoy, each with its shipped config (deploy/), to the sidecar.

A valid token reaches the upstream, which sees the subject; every refusal reaches the client
with revocast's status and JSON: a malformed Authorization header 400, a missing or revoked
token 401 with the challenge, a cookie change from a foreign origin 403, a stale verifier
503 with Retry-After (never nginx's 500 or its HTML pages); a sidecar that is down or silent
gives 503 ``verifier_unavailable`` with Retry-After, and the upstream is never reached; what
a client sends in X-Auth-* or method headers decides nothing; POST, PUT and DELETE pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from revocast.browser import ACCESS_COOKIE, CSRF_COOKIE
from revocast.errors import VerifierUnavailable
from revocast.settings import Settings
from revocast.verifier import create_sidecar
from revocast_tools.gateways import GATEWAYS, GatewayMissing, shipped_gateway
from revocast_tools.proxy import TcpProxy
from revocast_tools.redis_server import free_port
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import eventually, serve
from tests.test_errors import explains

METHODS = ("GET", "POST", "PUT", "DELETE")


@pytest.fixture(params=GATEWAYS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def echo() -> Starlette:
    """The upstream: says what reached it."""

    async def answer(request: Request) -> JSONResponse:
        auth = {k: v for k, v in request.headers.items() if k.startswith("x-auth-")}
        return JSONResponse({"method": request.method, "path": request.url.path, "auth": auth})

    return Starlette(routes=[Route("/{path:path}", answer, methods=list(METHODS))])


def port(url: str) -> int:
    return int(urlsplit(url).port or 0)


@contextlib.contextmanager
def gateway(
    kind: str,
    app: int,
    sidecar: int,
    folder: Path,
    listen: int | None = None,
    edit: Callable[[str], str] | None = None,
) -> Iterator[str]:
    """The shipped gateway's base URL; the test is skipped when its binary is missing."""
    try:
        with shipped_gateway(kind, app, sidecar, folder, listen, edit) as url:
            yield url
    except GatewayMissing as exc:
        pytest.skip(str(exc))


def sidecar_settings(kind: str, settings: Settings, listen: int) -> Settings:
    """The sidecar's settings behind ``kind`` on ``listen``, as deploy/ says: it trusts the
    gateway (both on loopback); Envoy does not pass the origin, so the site is listed."""
    origins = (
        (f"http://127.0.0.1:{listen}",) if kind == "envoy" else settings.browser.allowed_origins
    )
    return settings.with_overrides(trusted_proxies=("127.0.0.1",), allowed_origins=origins)


@contextlib.asynccontextmanager
async def through(
    kind: str, settings: Settings, folder: Path, edit: Callable[[str], str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``kind`` in front of the echo upstream, checked by a sidecar."""
    listen = free_port()
    checked = sidecar_settings(kind, settings, listen)
    async with serve(echo()) as app, serve(create_sidecar(checked)) as sidecar:
        with gateway(kind, port(app), port(sidecar), folder, listen, edit) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                yield http


def unavailable(reply: httpx.Response) -> None:
    """The gateway's answer when the sidecar gave none: revocast's, word for word."""
    assert reply.status_code == 503, reply.text
    assert reply.headers["retry-after"] == "1"
    assert reply.headers["content-type"].startswith("application/json")
    assert explains(reply.json(), VerifierUnavailable.code) == VerifierUnavailable.explanation


async def cookie_login(issuer: Issuer, name: str) -> dict[str, str]:
    reply = await issuer.http.post(
        "/v1/login", json={"username": name, "password": PASSWORD, "delivery": "cookie"}
    )
    assert reply.status_code == 200
    return {k: v for k, v in reply.cookies.items()}


def cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{n}={jar[n]}" for n in (ACCESS_COOKIE, CSRF_COOKIE))}


async def test_tokens_through_the_gateway(kind: str, issuer: Issuer, tmp_path: Path) -> None:
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with through(kind, issuer.settings, tmp_path / kind) as http:
        for method in METHODS:
            reply = await http.request(method, "/api/orders/7", headers=bearer)
            assert reply.status_code == 200, (method, reply.text)
            seen: dict[str, Any] = reply.json()
            assert (seen["method"], seen["path"]) == (method, "/api/orders/7")
            assert seen["auth"]["x-auth-subject"] == uid
            assert seen["auth"]["x-auth-roles"] == "-"

        missing = await http.get("/api/orders/7")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="revocast"'
        assert explains(missing.json(), "missing_token")

        await issuer.post_bearer("/v1/logout", tokens["access_token"])

        async def refused() -> bool:
            return (await http.get("/api/orders/7", headers=bearer)).status_code == 401

        await eventually(refused)
        revoked = await http.get("/api/orders/7", headers=bearer)
        assert revoked.headers["www-authenticate"] == (
            'Bearer realm="revocast", error="invalid_token", error_description="session_revoked"'
        )
        assert explains(revoked.json(), "session_revoked")


async def test_client_headers_speak_for_nobody(kind: str, issuer: Issuer, tmp_path: Path) -> None:
    """X-Auth-* from the client never reaches the upstream under the sidecar's names (Caddy
    drops them all), and the sidecar's always do (Envoy once removed them: route-level
    removal runs after ext_authz); a client's method headers cannot make a cookie change
    look like a read."""
    uid = await issuer.add_user("alice")
    admin = await issuer.add_user("root", ["admin"])
    tokens = await issuer.login("alice")
    jar = await cookie_login(issuer, "alice")
    forged = {"X-Auth-Subject": admin, "X-Auth-Roles": "admin", "X-Auth-Session": "s",
              "X-Auth-Admin": "yes"}  # fmt: skip
    async with through(kind, issuer.settings, tmp_path / kind) as http:
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        seen = (await http.post("/api/x", headers=bearer | forged)).json()["auth"]
        assert (seen["x-auth-subject"], seen["x-auth-roles"]) == (uid, "-")
        assert seen["x-auth-session"] == tokens["session_id"]
        if kind == "caddy":
            assert "x-auth-admin" not in seen
        assert (await http.get("/api/x", headers=forged)).status_code == 401

        cookies = cookie_header(jar)
        read = await http.get("/api/x", headers=cookies)
        assert (read.status_code, read.json()["auth"]["x-auth-subject"]) == (200, uid)
        foreign = {"Origin": "https://evil.example", "X-CSRF-Token": jar[CSRF_COOKIE]}
        lies = {"X-Forwarded-Method": "GET", "X-Original-Method": "GET"}
        for method in ("POST", "PUT", "DELETE"):
            for extra in ({}, lies, {"X-CSRF-Token": "guess"}):
                reply = await http.request(method, "/api/x", headers=cookies | foreign | extra)
                assert reply.status_code == 403, (method, extra)
                assert explains(reply.json(), "csrf_failed")
        own = {"Origin": str(http.base_url).rstrip("/"), "X-CSRF-Token": jar[CSRF_COOKIE]}
        for method in ("POST", "PUT", "DELETE"):
            reply = await http.request(method, "/api/x", headers=cookies | own)
            assert (reply.status_code, reply.json()["method"]) == (200, method)


async def test_a_stale_verifier_is_503_not_500(
    kind: str, issuer: Issuer, proxy: TcpProxy, tmp_path: Path
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    settings = issuer.settings.with_overrides(redis_url=proxy.url, max_staleness_s=0.3)
    async with through(kind, settings, tmp_path / kind) as http:

        async def fresh() -> bool:
            return (await http.get("/api/x", headers=bearer)).status_code == 200

        # 0.3 s is little on a loaded host (load 12 on 2 cores once made the first read stale).
        await eventually(fresh, timeout_s=5)
        proxy.cut()

        async def stale() -> bool:
            return (await http.get("/api/x", headers=bearer)).status_code == 503

        await eventually(stale, timeout_s=5)
        reply = await http.get("/api/x", headers=bearer)
        assert reply.headers["retry-after"] == "1"
        # Envoy's ext_authz takes an HTTP service's 5xx for a failure and drops its body.
        said = "verifier_unavailable" if kind == "envoy" else "verifier_stale"
        assert explains(reply.json(), said)


MALFORMED = {
    "no-token": b"Bearer",
    "two-words": b"Bearer a b",
    "not-b64token": b"Bearer !!!",
    "non-ascii": "Bearer tökén".encode(),
}


async def test_a_malformed_authorization_header_stays_400(
    kind: str, issuer: Issuer, tmp_path: Path
) -> None:
    """The sidecar's 400 reaches the client as it is, where nginx's auth_request alone made
    it a 500; the upstream is not reached."""
    async with (
        serve(create_sidecar(issuer.settings)) as url,
        httpx.AsyncClient(base_url=url) as direct,
        through(kind, issuer.settings, tmp_path / kind) as http,
    ):
        for case, value in MALFORMED.items():
            headers = [(b"Authorization", value)]
            said = await direct.get("/verify", headers=headers)
            reply = await http.get("/api/x", headers=headers)
            assert (reply.status_code, reply.json()) == (400, said.json()), case
            assert reply.headers["content-type"].startswith("application/json")
            assert explains(reply.json(), "invalid_request")
            assert "x-revocast-body" not in reply.headers


async def test_a_missing_role_is_403_with_its_challenge(
    kind: str, issuer: Issuer, tmp_path: Path
) -> None:
    """A check that asks for a role (``?role=`` on the check's URI, README): the sidecar's
    403 keeps its insufficient_scope challenge and JSON, which auth_request alone drops."""
    if kind == "envoy":
        pytest.skip("Envoy's path_prefix holds a path, not a query: no ?role= there")
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    def ask_for_admin(config: str) -> str:
        shipped = "revocast_sidecar/verify;" if kind == "nginx" else "uri /verify\n"
        assert config.count(shipped) == 1
        return config.replace(shipped, shipped.replace("/verify", "/verify?role=admin"))

    async with through(kind, issuer.settings, tmp_path / kind, ask_for_admin) as http:
        reply = await http.get("/api/x", headers=bearer)
        assert reply.status_code == 403, reply.text
        assert reply.headers["www-authenticate"] == (
            'Bearer realm="revocast", error="insufficient_scope", '
            'error_description="the token holds none of the roles in scope", scope="admin"'
        )
        assert explains(reply.json(), "insufficient_scope")


async def test_a_dead_sidecar_is_503_with_retry_after(
    kind: str, issuer: Issuer, tmp_path: Path
) -> None:
    """Stopped, the sidecar refuses connections: the client gets 503 verifier_unavailable
    with Retry-After (nginx said 500, Caddy a bare 502), the upstream nothing; started again
    on its port, it is asked again at once. A dead upstream, past the check, keeps the
    gateway's own 502 or 503: the mapping is for the sidecar alone."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    app, sidecar, listen = free_port(), free_port(), free_port()
    settings = sidecar_settings(kind, issuer.settings, listen)
    with gateway(kind, app, sidecar, tmp_path / kind, listen) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            async with serve(echo(), app):
                async with serve(create_sidecar(settings), sidecar):
                    assert (await http.get("/api/x", headers=bearer)).status_code == 200
                for method in METHODS:
                    unavailable(await http.request(method, "/api/x", headers=bearer))
                unavailable(await http.get("/api/x"))
            async with serve(create_sidecar(settings), sidecar):
                async with serve(echo(), app):
                    assert (await http.get("/api/x", headers=bearer)).status_code == 200
                reply = await http.get("/api/x", headers=bearer)
                assert reply.status_code in (502, 503), reply.text
                assert "verifier_unavailable" not in reply.text
                assert (await http.get("/api/x")).status_code == 401  # still checked first


@pytest.mark.slow
async def test_a_silent_sidecar_is_503_within_the_timeout(
    kind: str, issuer: Issuer, tmp_path: Path
) -> None:
    """A sidecar that accepts connections and never answers (hung, or frozen by a debugger):
    each gateway gives up after its 2 s (nginx waited 60 s, Caddy forever) and answers 503."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshakes; nobody reads
        async with serve(echo()) as app:
            with gateway(kind, port(app), silent.getsockname()[1], tmp_path / kind) as url:
                async with httpx.AsyncClient(base_url=url, timeout=15) as http:
                    start = time.monotonic()
                    replies = await asyncio.gather(
                        *(http.get("/api/x", headers=bearer) for _ in range(3))
                    )
                    took = time.monotonic() - start
    for reply in replies:
        unavailable(reply)
    assert 1.5 < took < 6, took
