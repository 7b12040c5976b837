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
    TokenRejected,
    TooManyAttempts,
)
from revocast.http import json_response
from revocast.ids import new_refresh_token, new_session_id
from revocast.issuer.bodies import LoginBody, RefreshBody, read_body
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import by_cookie, caller, revoked_caller
from revocast.issuer.tokens import seal_successor, unseal_successor


async def _signing_kid(ctx: IssuerContext) -> str:
    """The active key; 503 before writing anything when no token could be signed with it.

    A key revoked between this read and the signature only makes the new token
    dead on arrival everywhere (verifiers refuse every token of a revoked key).
    """
    kid = await ctx.reads.signing_kid() or ""
    if kid:
        await ctx.minter.keys.fetch(ctx.reads, kid)
    return ctx.minter.keys.get(kid).kid


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
    wait_ms = max(
        await ctx.writes.throttle("client", client, "count"),
        await ctx.writes.throttle("user", body.username, "check"),
    )
    if wait_ms:
        raise TooManyAttempts(math.ceil(wait_ms / 1000))
    found = await ctx.reads.find_user(body.username)
    if not await ctx.passwords.verify(found[1] if found else None, body.password) or found is None:
        # Counted for unknown names too: the same answer, work and trace either way.
        await ctx.writes.throttle("user", body.username, "count")
        raise InvalidCredentials("unknown user or wrong password")
    await ctx.writes.throttle("user", body.username, "forget")
    uid = found[0]
    kid = await _signing_kid(ctx)
    keys = ctx.writes.keys
    sid = new_session_id(keys, uid)
    refresh_token = new_refresh_token(keys, uid)
    issued_ms, roles_json = await ctx.writes.login(
        uid,
        sid,
        refresh_token,
        user_agent=request.headers.get("user-agent", "")[:256],
        client=client,
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
    kid = await _signing_kid(ctx)
    successor = new_refresh_token(ctx.writes.keys, presented)
    result = await ctx.writes.refresh(presented, successor, seal_successor(presented, successor))
    if result.status == "reused":
        raise InvalidRefreshToken("refresh token reused: its session was revoked")
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
        kid=kid,
        cookies=from_cookie,
    )


async def logout(request: Request) -> Response:
    """Revoke the caller's session.

    A repeat with the same token (after a 503 not_durable) is refused as
    revoked, as before, but first records the revocation again and waits for
    the replicas again: its 401 means the revocation is durable, its 503 that it
    is still not.
    """
    ctx = IssuerContext.of(request)
    try:
        claims = caller(ctx, request)
    except TokenRejected as exc:
        if exc.code != "session_revoked":
            raise
        claims = revoked_caller(ctx, request, exc)
        await ctx.writes.revoke_session(claims.sid, claims.sub, "logout")
        raise
    await ctx.writes.revoke_session(claims.sid, claims.sub, "logout")
    return _ended(ctx, request)


async def logout_all(request: Request) -> Response:
    """Revoke every session of the caller. A repeat (refused as revoked, like a logout's)
    records the same cut-off again, so it ends nothing that was made after the first call."""
    ctx = IssuerContext.of(request)
    try:
        claims = caller(ctx, request)
    except TokenRejected as exc:
        if exc.code != "user_revoked":
            raise
        claims = revoked_caller(ctx, request, exc)
        cut_off = ctx.verifier.cache.users.get(claims.sub, (0, 0))[0]
        if cut_off:
            await ctx.writes.revoke_user(claims.sub, "logout_all", not_before_ms=cut_off)
        raise
    await ctx.writes.revoke_user(claims.sub, "logout_all")
    return _ended(ctx, request)


def _ended(ctx: IssuerContext, request: Request) -> Response:
    response = Response(status_code=204)
    if by_cookie(request):
        clear_token_cookies(response, ctx.settings)
    return response
