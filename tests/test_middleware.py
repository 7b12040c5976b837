"""The ASGI middleware in a small Starlette app (FastAPI mounts it the same way)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from revocast.verifier import RevocastMiddleware, Verifier, create_sidecar
from revocast_tools.proxy import TcpProxy
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually, serve


def api(verifier: Verifier) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        claims = request.state.claims
        return JSONResponse({"sub": claims.sub, "roles": list(claims.roles)})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/me", me), Route("/health", health)],
        middleware=[Middleware(RevocastMiddleware, verifier=verifier, public_paths={"/health"})],
    )


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_claims_reach_the_handler(issuer: Issuer, make_verifier: VerifierFactory) -> None:
    uid = await issuer.add_user("alice", ["editor"])
    tokens = await issuer.login("alice")
    async with client(api(await make_verifier())) as http:
        reply = await http.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert reply.status_code == 200
    assert reply.json() == {"sub": uid, "roles": ["editor"]}


async def test_missing_and_revoked_tokens_get_401(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    verifier = await make_verifier()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with client(api(verifier)) as http:
        missing = await http.get("/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="revocast"'
        assert (await http.get("/health")).status_code == 200  # public path
        assert (await http.get("/me", headers=bearer)).status_code == 200
        await issuer.post_bearer("/v1/logout", tokens["access_token"])

        async def revoked() -> bool:
            return (await http.get("/me", headers=bearer)).status_code == 401

        await eventually(revoked)
        reply = await http.get("/me", headers=bearer)
    assert reply.json()["error"] == "session_revoked"
    assert 'error="invalid_token"' in reply.headers["www-authenticate"]


async def test_stale_verifier_gets_503(
    issuer: Issuer, make_verifier: VerifierFactory, proxy: TcpProxy
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    verifier = await make_verifier(redis_url=proxy.url, max_staleness_s=0.3)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with client(api(verifier)) as http:
        assert (await http.get("/me", headers=bearer)).status_code == 200
        proxy.cut()
        await eventually(lambda: not verifier.ready, timeout_s=3)
        reply = await http.get("/me", headers=bearer)
    assert reply.status_code == 503
    assert reply.json()["error"] == "verifier_stale"


async def test_non_http_scopes_pass_through(make_verifier: VerifierFactory) -> None:
    seen: list[str] = []

    async def inner(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(str(scope["type"]))

    middleware = RevocastMiddleware(inner, verifier=await make_verifier())  # type: ignore[arg-type]
    await middleware({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_two_authorization_headers_get_400(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    """Which of two Authorization headers counts differs between proxies and frameworks: the
    middleware, and the issuer with it, refuse to guess."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = ("Authorization", f"Bearer {tokens['access_token']}")
    async with client(api(await make_verifier())) as http:
        reply = await http.get("/me", headers=[bearer, ("Authorization", "Bearer other")])
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request")
    reply = await issuer.http.get("/v1/sessions", headers=[bearer, bearer])
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request")


def routes_app(verifier: Verifier, **options: Any) -> Starlette:
    async def answer(request: Request) -> JSONResponse:
        claims = getattr(request.state, "claims", None)
        return JSONResponse({"sub": claims.sub if claims else None})

    return Starlette(
        routes=[Route("/{path:path}", answer, methods=["GET", "POST", "OPTIONS"])],
        middleware=[Middleware(RevocastMiddleware, verifier=verifier, **options)],
    )


async def test_public_paths_take_prefixes_and_patterns(make_verifier: VerifierFactory) -> None:
    public = {"/health", "/docs*", "/public/*", re.compile(r"/assets/[a-z]+\.css")}
    async with client(routes_app(await make_verifier(), public_paths=public)) as http:
        for path in ("/health", "/docs", "/docs/oauth2-redirect", "/public/", "/public/a/b",
                     "/assets/site.css"):  # fmt: skip
            assert (await http.get(path)).status_code == 200, path
        for path in ("/health/x", "/doc", "/publicity", "/assets/site.css.map", "/api"):
            assert (await http.get(path)).status_code == 401, path


async def test_cors_preflights_pass_and_plain_options_do_not(
    make_verifier: VerifierFactory,
) -> None:
    async with client(routes_app(await make_verifier())) as http:
        preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        assert (await http.options("/api/x", headers=preflight)).status_code == 200
        assert (await http.options("/api/x")).status_code == 401
        only_origin = {"Origin": "https://app.example"}
        assert (await http.options("/api/x", headers=only_origin)).status_code == 401


async def test_routes_set_their_own_staleness_bound(
    issuer: Issuer, make_verifier: VerifierFactory, proxy: TcpProxy
) -> None:
    """A stricter bound for a sensitive route, a looser one for public reads; the default
    elsewhere; and never one above the access-token lifetime."""
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    verifier = await make_verifier(redis_url=proxy.url, max_staleness_s=1.0)
    bounds = {"/admin*": 0.2, "/feed/*": 30.0}
    async with client(routes_app(verifier, staleness=bounds)) as http:
        for path in ("/admin/users", "/feed/today", "/orders"):
            assert (await http.get(path, headers=bearer)).status_code == 200
        proxy.cut()

        async def strict_first() -> bool:
            return (await http.get("/admin/users", headers=bearer)).status_code == 503

        await eventually(strict_first, timeout_s=3)
        assert (await http.get("/orders", headers=bearer)).status_code == 200  # 1 s not yet past
        await asyncio.sleep(1.2)
        assert (await http.get("/orders", headers=bearer)).status_code == 503
        assert (await http.get("/feed/today", headers=bearer)).status_code == 200
    with pytest.raises(ValueError, match="access-token lifetime"):
        RevocastMiddleware(routes_app(verifier), verifier, staleness={"/feed/*": 301.0})


async def test_cors_outside_reaches_the_refusals(make_verifier: VerifierFactory) -> None:
    """The documented order: CORSMiddleware first in the list (outermost), so a browser can
    read the 401 of a cross-origin call and its preflight gets CORS's answer."""
    verifier = await make_verifier()

    async def answer(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.claims.sub})

    app = Starlette(
        routes=[Route("/api", answer)],
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["https://app.example"],
                       allow_methods=["*"], allow_headers=["authorization"]),
            Middleware(RevocastMiddleware, verifier=verifier),
        ],
    )  # fmt: skip
    origin = {"Origin": "https://app.example"}
    async with client(app) as http:
        refused = await http.get("/api", headers=origin)
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        preflight = await http.options(
            "/api", headers=origin | {"Access-Control-Request-Method": "GET",
                                      "Access-Control-Request-Headers": "authorization"}
        )  # fmt: skip
        assert preflight.status_code == 200
        assert "GET" in preflight.headers["access-control-allow-methods"]


MALFORMED = ["Bearer", "bearer a b", "Bearer a,b", 'Bearer a"b']


async def test_rfc_6750_malformed_is_400_other_schemes_401(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    """A malformed Bearer header is 400 invalid_request (RFC 6750 §3.1); another scheme
    carries no bearer credentials: 401 with a challenge that names no error. The same from
    the middleware, the issuer and the sidecar."""
    sidecar = create_sidecar(issuer.settings)
    async with (
        client(api(await make_verifier())) as http,
        serve(sidecar) as url,
        httpx.AsyncClient(base_url=url) as side,
    ):
        for target, path in ((http, "/me"), (issuer.http, "/v1/sessions"), (side, "/verify")):

            async def send(headers: dict[str, str]) -> httpx.Response:
                return await target.get(path, headers=headers)  # noqa: B023 (awaited at once)

            for value in MALFORMED:
                reply = await send({"Authorization": value})
                assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request")
            for value in ("Basic dXNlcjpwdw==", "Negotiate abc"):
                reply = await send({"Authorization": value})
                assert reply.status_code == 401
                assert reply.headers["www-authenticate"] == 'Bearer realm="revocast"'
