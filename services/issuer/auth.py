"""Login, refresh, logout and logout-all: the session lifecycle."""

from __future__ import annotations

import json
import math

from starlette.requests import Request
from starlette.responses import Response

from revocast.browser import (
    REFRESH_COOKIE,
    clear_token_cookies,
    csrf_problem,
    new_csrf_token,
    set_token_cookies,
)
from revocast.errors import (
    CsrfFailed,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidRequest,
    TooManyAttempts,
)
from revocast.http import json_response
from revocast.issuer.bodies import LoginBody, RefreshBody, read_body
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import by_cookie, caller
from revocast.issuer.tokens import (
    hash_refresh_token,
    new_refresh_token,
    new_session_id,
    seal_successor,
    unseal_successor,
)


async def _ensure_signing_key(ctx: IssuerContext) -> None:
    """Fail with 503 before writing anything when no token could be signed."""
    ctx.minter.keys.get(await ctx.store.signing_kid() or "")


def _token_response(
    ctx: IssuerContext,
    *,
    uid: str,
    sid: str,
    roles_json: str,
    issued_ms: int,
    refresh_token: str,
    kid: str,
    cookies: bool,
) -> Response:
    roles = json.loads(roles_json)
    access = ctx.minter.mint(uid=uid, sid=sid, roles=roles, issued_ms=issued_ms, kid=kid)
    common = {"expires_in": ctx.settings.access_ttl_s, "session_id": sid, "user_id": uid}
    if not cookies:
        body = {"access_token": access, "refresh_token": refresh_token, "token_type": "Bearer"}
        return json_response(body | common, headers={"Cache-Control": "no-store"})
    # Browser mode: the tokens never appear where a script could read them.
    csrf = new_csrf_token()
    response = json_response(common | {"csrf_token": csrf}, headers={"Cache-Control": "no-store"})
    set_token_cookies(response, ctx.settings, access=access, refresh=refresh_token, csrf=csrf)
    return response


async def login(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    body = await read_body(request, LoginBody, ctx.settings.max_body_bytes)
    client = request.client.host if request.client else ""
    wait_ms = await ctx.store.login_throttle(body.username, client, "attempt", ctx.settings)
    if wait_ms:
        raise TooManyAttempts(math.ceil(wait_ms / 1000))
    found = await ctx.store.find_user(body.username)
    if not await ctx.passwords.verify(found[1] if found else None, body.password) or found is None:
        # Counted for unknown names too: the same answer, work and trace either way.
        await ctx.store.login_throttle(body.username, client, "failure", ctx.settings)
        raise InvalidCredentials("unknown user or wrong password")
    await ctx.store.login_throttle(body.username, client, "success", ctx.settings)
    uid = found[0]
    await _ensure_signing_key(ctx)
    sid = new_session_id()
    refresh_token = new_refresh_token()
    issued_ms, roles_json, kid = await ctx.store.login(
        uid,
        sid,
        hash_refresh_token(refresh_token),
        refresh_ttl_s=ctx.settings.refresh_ttl_s,
        user_agent=request.headers.get("user-agent", "")[:256],
        client=client,
        max_sessions=ctx.settings.max_sessions_per_user,
        lifetime_ms=ctx.settings.revocation_lifetime_ms,
        retention_ms=ctx.settings.stream_retention_ms,
    )
    return _token_response(
        ctx,
        uid=uid,
        sid=sid,
        roles_json=roles_json,
        issued_ms=issued_ms,
        refresh_token=refresh_token,
        kid=kid,
        cookies=body.delivery == "cookie",
    )


async def refresh(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    body = await read_body(request, RefreshBody, ctx.settings.max_body_bytes, optional=True)
    presented, from_cookie = body.refresh_token, False
    if not presented and REFRESH_COOKIE in request.cookies:
        problem = csrf_problem(request.method, request.headers, request.cookies, ctx.settings)
        if problem:
            raise CsrfFailed(problem)
        presented, from_cookie = request.cookies[REFRESH_COOKIE], True
    if not presented:
        raise InvalidRequest("refresh_token is required (in the body, or the refresh cookie)")
    await _ensure_signing_key(ctx)
    successor = new_refresh_token()
    result = await ctx.store.refresh(
        hash_refresh_token(presented),
        hash_refresh_token(successor),
        seal_successor(presented, successor),
        int(ctx.settings.refresh_grace_s * 1000),
        ctx.settings.refresh_ttl_s,
        ctx.settings.revocation_lifetime_ms,
        ctx.settings.stream_retention_ms,
    )
    if result.status == "grace":
        # A retry or a second tab: hand out the successor already issued.
        unsealed = unseal_successor(presented, result.sealed_next)
        if unsealed is None:
            raise InvalidRefreshToken("refresh token is not valid")
        successor = unsealed
    return _token_response(
        ctx,
        uid=result.uid,
        sid=result.sid,
        roles_json=result.roles_json,
        issued_ms=result.now_ms,
        refresh_token=successor,
        kid=result.signing_kid,
        cookies=from_cookie,
    )


async def logout(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    claims = caller(ctx, request)
    await ctx.store.revoke_session(
        claims.sid,
        claims.sub,
        ctx.settings.revocation_lifetime_ms,
        ctx.settings.stream_retention_ms,
        "logout",
    )
    return _ended(ctx, request)


async def logout_all(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    claims = caller(ctx, request)
    await ctx.store.revoke_user(
        claims.sub,
        ctx.settings.revocation_lifetime_ms,
        ctx.settings.stream_retention_ms,
        "logout_all",
    )
    return _ended(ctx, request)


def _ended(ctx: IssuerContext, request: Request) -> Response:
    response = Response(status_code=204)
    if by_cookie(request):
        clear_token_cookies(response, ctx.settings)
    return response
