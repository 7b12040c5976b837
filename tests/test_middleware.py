"""The ASGI middleware in a small Starlette app (FastAPI mounts it the same way)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from revocast.chaos.proxy import TcpProxy
from revocast.verifier import RevocastMiddleware, Verifier
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually


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
