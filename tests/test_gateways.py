"""Through real nginx and Caddy, each with its shipped config (deploy/), to the sidecar.

A valid token reaches the upstream, which sees the subject; a revoked one gets 401 with
the challenge; a stale verifier gets 503 with Retry-After, not 500; a cookie change from a
foreign origin gets 403; what a client sends in X-Auth-* or method headers decides
nothing; POST, PUT and DELETE pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
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
from revocast.settings import Settings
from revocast.verifier import create_sidecar
from revocast_tools.proxy import TcpProxy
from tests.conftest import PASSWORD, Issuer
from tests.support.gateways import GATEWAYS, gateway
from tests.support.servers import eventually, serve

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


@contextlib.asynccontextmanager
async def through(kind: str, settings: Settings, folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``kind`` in front of the echo upstream, checked by a sidecar that trusts
    the gateway (both on loopback)."""
    checked = settings.with_overrides(trusted_proxies=("127.0.0.1",))
    async with serve(echo()) as app, serve(create_sidecar(checked)) as sidecar:
        with gateway(kind, port(app), port(sidecar), folder) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                yield http


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

        await issuer.post_bearer("/v1/logout", tokens["access_token"])

        async def refused() -> bool:
            return (await http.get("/api/orders/7", headers=bearer)).status_code == 401

        await eventually(refused)
        revoked = await http.get("/api/orders/7", headers=bearer)
        assert 'error="invalid_token"' in revoked.headers["www-authenticate"]
        assert 'error_description="session_revoked"' in revoked.headers["www-authenticate"]


async def test_client_headers_speak_for_nobody(kind: str, issuer: Issuer, tmp_path: Path) -> None:
    """X-Auth-* from the client never reaches the upstream under the sidecar's names (Caddy
    drops them all); a client's method headers cannot make a cookie change look like a read."""
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
        assert (await http.get("/api/x", headers=bearer)).status_code == 200
        proxy.cut()

        async def unavailable() -> bool:
            return (await http.get("/api/x", headers=bearer)).status_code == 503

        await eventually(unavailable, timeout_s=5)
        reply = await http.get("/api/x", headers=bearer)
        assert reply.headers["retry-after"] == "1"
        assert reply.json()["error"] == "verifier_stale"
