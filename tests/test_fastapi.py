"""revocast.fastapi: dependencies for claims and roles, /docs' Authorize button, WebSockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from fastapi import Depends, FastAPI, Security, WebSocket
from websockets.asyncio.client import connect  # websockets.connect before 14: the legacy one

from revocast.browser import ACCESS_COOKIE
from revocast.claims import AccessClaims
from revocast.fastapi import Revocast
from revocast.settings import Settings
from revocast_tools.proxy import TcpProxy
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import eventually, serve


def build(settings: Settings, mode: Any = "bearer") -> FastAPI:
    auth = Revocast(settings, mode=mode)
    app = FastAPI(lifespan=auth.lifespan, exception_handlers=auth.exception_handlers)

    @app.get("/me")
    async def me(claims: AccessClaims = Depends(auth.authenticated)) -> dict[str, str]:
        return {"sub": claims.sub}

    @app.get("/maybe")
    async def maybe(claims: AccessClaims | None = Depends(auth.optional)) -> dict[str, Any]:
        return {"sub": claims.sub if claims else None}

    @app.post("/moderation")
    async def moderate(
        claims: AccessClaims = Security(auth.require, scopes=["moderator", "admin"]),
    ) -> dict[str, str]:
        return {"sub": claims.sub}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, claims: AccessClaims = Depends(auth.authenticated)) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": claims.sub})
        await websocket.close()

    return app


async def test_claims_roles_and_refusals(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    mod = await issuer.add_user("mod", ["moderator"])
    alice, moderator = await issuer.login("alice"), await issuer.login("mod")
    as_alice = {"Authorization": f"Bearer {alice['access_token']}"}
    as_mod = {"Authorization": f"Bearer {moderator['access_token']}"}
    async with serve(build(issuer.settings)) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/me", headers=as_alice)).json() == {"sub": uid}
        missing = await http.get("/me")
        assert (missing.status_code, missing.json()["error"]) == (401, "missing_token")
        assert missing.headers["www-authenticate"] == 'Bearer realm="revocast"'
        assert set(missing.json()) == {"error", "detail"}  # revocast's shape, not {"detail"}

        assert (await http.get("/maybe")).json() == {"sub": None}
        assert (await http.get("/maybe", headers=as_alice)).json() == {"sub": uid}
        bad = await http.get("/maybe", headers={"Authorization": "Bearer x.y.z"})
        assert bad.status_code == 401  # optional, but a bad token is not no token

        assert (await http.post("/moderation", headers=as_mod)).json() == {"sub": mod}
        refused = await http.post("/moderation", headers=as_alice)
        assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope")
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]

        await issuer.post_bearer("/v1/logout", alice["access_token"])

        async def revoked() -> bool:
            reply = await http.get("/me", headers=as_alice)
            return reply.status_code == 401 and reply.json()["error"] == "session_revoked"

        await eventually(revoked)


async def test_docs_show_the_authorize_button(issuer: Issuer) -> None:
    for mode, scheme in (("bearer", "revocastBearer"), ("cookie", "revocastCookie")):
        async with (
            serve(build(issuer.settings, mode)) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            spec = (await http.get("/openapi.json")).json()
        schemes = spec["components"]["securitySchemes"]
        assert list(schemes) == [scheme]
        if mode == "bearer":
            assert schemes[scheme] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        else:
            assert schemes[scheme] == {"type": "apiKey", "in": "cookie",
                                       "name": "__Host-revocast-at"}  # fmt: skip
        assert spec["paths"]["/me"]["get"]["security"] == [{scheme: []}]
        assert spec["paths"]["/moderation"]["post"]["security"] == [
            {scheme: ["moderator", "admin"]}
        ]


async def test_a_stale_verifier_is_503(issuer: Issuer, proxy: TcpProxy) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    settings = issuer.settings.with_overrides(redis_url=proxy.url, max_staleness_s=0.3)
    async with serve(build(settings)) as url, httpx.AsyncClient(base_url=url) as http:

        async def fresh() -> bool:
            return (await http.get("/me", headers=bearer)).status_code == 200

        # 0.3 s is a tight bound: on a busy host a fresh verifier may be late to prove it.
        await eventually(fresh, timeout_s=3)
        proxy.cut()

        async def stale() -> bool:
            return (await http.get("/me", headers=bearer)).status_code == 503

        await eventually(stale, timeout_s=3)
        reply = await http.get("/me", headers=bearer)
        assert (reply.headers["retry-after"], reply.json()["error"]) == ("1", "verifier_stale")


async def test_websocket_routes(issuer: Issuer) -> None:
    uid = await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with serve(build(issuer.settings)) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        async with connect(ws_url, additional_headers=bearer) as ws:
            assert json.loads(await ws.recv()) == {"sub": uid}
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(ws_url):
                pass
        assert refused.value.response.status_code == 403  # the handshake closed with 1008


async def test_a_cross_site_websocket_handshake_carries_no_cookie(issuer: Issuer) -> None:
    """A browser sends the cookie on a cross-site handshake too, and no CSRF token can ride
    along: the Origin must be allowed, as in the middleware."""
    uid = await issuer.add_user("alice")
    login = await issuer.http.post(
        "/v1/login", json={"username": "alice", "password": PASSWORD, "delivery": "cookie"}
    )
    cookie = {"Cookie": f"{ACCESS_COOKIE}={login.cookies[ACCESS_COOKIE]}"}
    settings = issuer.settings.with_overrides(allowed_origins=("https://app.example",))
    async with serve(build(settings, "cookie")) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        ours = cookie | {"Origin": "https://app.example"}
        async with connect(ws_url, additional_headers=ours, origin=None) as ws:
            assert json.loads(await ws.recv()) == {"sub": uid}
        theirs = cookie | {"Origin": "https://evil.example"}
        with pytest.raises(websockets.InvalidStatus):
            async with connect(ws_url, additional_headers=theirs, origin=None):
                pass
