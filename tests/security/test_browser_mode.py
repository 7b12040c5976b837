"""Browser mode: HttpOnly cookies, and the CSRF defence every cookie-authenticated change needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from revocast.browser import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from revocast.issuer import create_app
from revocast.settings import Settings
from revocast.verifier import RevocastMiddleware, Verifier, create_sidecar
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import serve

APP = "https://app.example"


@pytest.fixture
async def browser_issuer(settings: Settings, redis: Any) -> AsyncIterator[Issuer]:
    configured = settings.with_overrides(allowed_origins=(APP,))
    app = create_app(configured)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Issuer(url, http, configured, app)


async def cookie_login(issuer: Issuer) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    reply = await issuer.http.post(
        "/v1/login", json={"username": "alice", "password": PASSWORD, "delivery": "cookie"}
    )
    assert reply.status_code == 200
    set_cookies = reply.headers.get_list("set-cookie")
    jar = {line.split("=", 1)[0]: line.split("=", 1)[1].split(";", 1)[0] for line in set_cookies}
    return reply.json(), jar, set_cookies


def cookie_header(jar: dict[str, str], *names: str) -> str:
    return "; ".join(f"{name}={jar[name]}" for name in names)


def csrf(jar: dict[str, str], origin: str = APP) -> dict[str, str]:
    return {"Origin": origin, "X-CSRF-Token": jar[CSRF_COOKIE]}


async def test_login_sets_locked_down_cookies(browser_issuer: Issuer) -> None:
    await browser_issuer.add_user("alice")
    body, jar, set_cookies = await cookie_login(browser_issuer)
    assert "access_token" not in body
    assert "refresh_token" not in body
    assert body["csrf_token"] == jar[CSRF_COOKIE]
    attributes = {line.split("=", 1)[0]: line.lower() for line in set_cookies}
    for name in (ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE):
        assert "secure" in attributes[name]
        assert "samesite=strict" in attributes[name]
    assert "httponly" in attributes[ACCESS_COOKIE]
    assert "path=/;" in attributes[ACCESS_COOKIE]
    assert "httponly" in attributes[REFRESH_COOKIE]
    assert "path=/v1/refresh" in attributes[REFRESH_COOKIE]
    assert "httponly" not in attributes[CSRF_COOKIE]  # the page's script must read it
    assert f"max-age={browser_issuer.settings.tokens.access_ttl_s}" in attributes[ACCESS_COOKIE]


async def test_issuer_routes_accept_the_cookie_and_demand_csrf_for_changes(
    browser_issuer: Issuer,
) -> None:
    await browser_issuer.add_user("alice")
    _, jar, _ = await cookie_login(browser_issuer)
    http = browser_issuer.http
    cookies = {"Cookie": cookie_header(jar, ACCESS_COOKIE, CSRF_COOKIE)}
    assert (await http.get("/v1/sessions", headers=cookies)).status_code == 200
    for attempt in (
        {},
        {"Origin": "https://evil.example", "X-CSRF-Token": jar[CSRF_COOKIE]},
        {"Origin": APP},
        {"Origin": APP, "X-CSRF-Token": "guessed"},
    ):
        refused = await http.post("/v1/logout", headers=cookies | attempt)
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        assert (await http.get("/v1/sessions", headers=cookies)).status_code == 200
    done = await http.post("/v1/logout", headers=cookies | csrf(jar))
    assert done.status_code == 204
    cleared = " ".join(done.headers.get_list("set-cookie")).lower()
    assert all(name.lower() in cleared for name in (ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE))
    assert "max-age=0" in cleared


async def test_refresh_by_cookie_needs_csrf_and_rotates_the_cookies(
    browser_issuer: Issuer,
) -> None:
    await browser_issuer.add_user("alice")
    _, jar, _ = await cookie_login(browser_issuer)
    http = browser_issuer.http
    cookies = {"Cookie": cookie_header(jar, REFRESH_COOKIE, CSRF_COOKIE)}
    refused = await http.post("/v1/refresh", headers=cookies | {"Origin": APP})
    assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
    # The refused attempt spent nothing: the same cookie still refreshes.
    reply = await http.post("/v1/refresh", headers=cookies | csrf(jar))
    assert reply.status_code == 200
    assert "refresh_token" not in reply.json()
    renewed = {line.split("=", 1)[0] for line in reply.headers.get_list("set-cookie")}
    assert renewed == {ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE}


async def test_bearer_mode_is_unchanged(browser_issuer: Issuer) -> None:
    await browser_issuer.add_user("alice")
    tokens = await browser_issuer.login("alice")
    assert "refresh_token" in tokens
    reply = await browser_issuer.post_bearer("/v1/logout", tokens["access_token"])
    assert reply.status_code == 204  # no Origin, no CSRF token: bearer needs neither


def api(verifier: Verifier) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.claims.sub})

    return Starlette(
        routes=[Route("/me", me, methods=["GET", "POST"])],
        middleware=[Middleware(RevocastMiddleware, verifier=verifier)],
    )


async def test_middleware_takes_the_cookie_and_checks_csrf(browser_issuer: Issuer) -> None:
    uid = await browser_issuer.add_user("alice")
    _, jar, _ = await cookie_login(browser_issuer)
    bearer = await browser_issuer.login("alice")
    async with Verifier(browser_issuer.settings) as verifier:
        transport = httpx.ASGITransport(app=api(verifier))
        async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as http:
            cookies = {"Cookie": cookie_header(jar, ACCESS_COOKIE, CSRF_COOKIE)}
            assert (await http.get("/me", headers=cookies)).json() == {"sub": uid}
            refused = await http.post("/me", headers=cookies)
            assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
            assert (await http.post("/me", headers=cookies | csrf(jar))).status_code == 200
            same_site = csrf(jar, origin="https://api.example")  # the API's own origin
            assert (await http.post("/me", headers=cookies | same_site)).status_code == 200
            authorization = {"Authorization": f"Bearer {bearer['access_token']}"}
            assert (await http.post("/me", headers=authorization)).status_code == 200

            sent: list[dict[str, Any]] = []

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            async def receive() -> dict[str, Any]:
                return {"type": "websocket.connect"}

            handshake = {
                "type": "websocket", "path": "/me", "headers": [
                    (b"cookie", cookies["Cookie"].encode()),
                    (b"origin", b"https://evil.example"),
                    (b"host", b"api.example"),
                ],
            }  # fmt: skip
            await RevocastMiddleware(api(verifier), verifier=verifier)(handshake, receive, send)  # type: ignore[arg-type]
            assert sent == [{"type": "websocket.close", "code": 1008, "reason": "missing_token"}]


async def test_sidecar_trusts_the_original_method_only_from_trusted_proxies(
    browser_issuer: Issuer,
) -> None:
    """A cookie is checked as for a state-changing request unless a trusted proxy said the
    original method was safe; a method header from anyone else, or repeated, decides nothing."""
    uid = await browser_issuer.add_user("alice")
    _, jar, _ = await cookie_login(browser_issuer)
    cookies = {"Cookie": cookie_header(jar, ACCESS_COOKIE, CSRF_COOKIE)}
    untrusted = create_sidecar(browser_issuer.settings)
    async with serve(untrusted) as url, httpx.AsyncClient(base_url=url) as http:
        for said in ({}, {"X-Forwarded-Method": "GET"}, {"X-Original-Method": "GET"}):
            refused = await http.get("/verify", headers=cookies | said)
            assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        # Without a trusted host, only REVOCAST_ALLOWED_ORIGINS may send cookie changes.
        allowed = await http.post("/verify", headers=cookies | csrf(jar))
        assert (allowed.status_code, allowed.headers["x-auth-subject"]) == (200, uid)
    trusted = create_sidecar(browser_issuer.settings.with_overrides(trusted_proxies=("127.0.0.1",)))
    async with serve(trusted) as url, httpx.AsyncClient(base_url=url) as http:
        read = {"X-Forwarded-Method": "GET"}
        ok = await http.get("/verify", headers=cookies | read)
        assert (ok.status_code, ok.headers["x-auth-subject"]) == (200, uid)
        post = {"X-Forwarded-Method": "POST"}
        refused = await http.get("/verify", headers=cookies | post)
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        assert (await http.get("/verify", headers=cookies | post | csrf(jar))).status_code == 200
        # The client's own copy beside the gateway's: ambiguous, so unknown, so checked.
        both = [("X-Forwarded-Method", "GET"), ("X-Forwarded-Method", "POST")]
        refused = await http.get("/verify", headers=[*cookies.items(), *both])
        assert refused.status_code == 403
        # The gateway names the host the browser saw: a same-origin cookie change passes.
        same = {"X-Forwarded-Host": "shop.example", "X-Forwarded-Proto": "https"}
        own = csrf(jar, origin="https://shop.example")
        assert (await http.get("/verify", headers=cookies | post | same | own)).status_code == 200
        # Envoy's ext_authz: the original method and path themselves, no method header.
        assert (await http.get("/verify/orders/7", headers=cookies)).status_code == 200
        refused = await http.delete("/verify/orders/7", headers=cookies)
        assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
        foreign = csrf(jar, origin="https://evil.example")
        assert (
            await http.get("/verify", headers=cookies | post | same | foreign)
        ).status_code == 403
