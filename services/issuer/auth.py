"""Login, refresh, logout and logout-all: the session lifecycle."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from revocast.browser import (
    REFRESH_COOKIE,
    clear_token_cookies,
    csrf_problem,
    new_csrf_token,
    set_token_cookies,
)
from revocast.claims import AccessClaims
from revocast.errors import CsrfFailed, InvalidRequest, TokenRejected
from revocast.events import ActorKind
from revocast.http import json_response
from revocast.issuer import linking
from revocast.issuer.bodies import LoginBody, RefreshBody, read_body
from revocast.issuer.client_auth import BUILT_IN, identify
from revocast.issuer.context import IssuerContext
from revocast.issuer.grants import Issued, parse_scope, password_grant, refresh_grant
from revocast.issuer.guards import by_cookie, caller, revoked_caller
from revocast.proof import EVENT_ID_HEADER


def _token_response(ctx: IssuerContext, issued: Issued, *, cookies: bool) -> Response:
    common = {
        "expires_in": ctx.settings.tokens.access_ttl_s,
        "scope": issued.scope,
        "session_id": issued.sid,
        "user_id": issued.uid,
    }
    if not cookies:
        body = {"access_token": issued.access_token, "refresh_token": issued.refresh_token,
                "token_type": "Bearer"}  # fmt: skip
        return json_response(body | common, headers={"Cache-Control": "no-store"})
    # Browser mode: the tokens never appear where a script could read them.
    csrf = new_csrf_token()
    response = json_response(common | {"csrf_token": csrf}, headers={"Cache-Control": "no-store"})
    set_token_cookies(
        response, ctx.settings, access=issued.access_token, refresh=issued.refresh_token, csrf=csrf
    )
    return response


async def login(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    body = await read_body(request, LoginBody, ctx.settings.http.max_body_bytes)
    client = await identify(ctx, request.headers, body.client_id, body.client_secret)
    # Refused before any write; nothing is linked before the password is checked.
    upstream = await linking.claimed(ctx, body.upstream_id_token, body.upstream_nonce)
    if upstream is not None:
        await linking.check_linkable(ctx, upstream, body.username)
    issued = await password_grant(
        ctx,
        username=body.username,
        password=body.password,
        client=client or BUILT_IN,
        scope=parse_scope(body.scope),
        address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )
    if upstream is not None:
        await linking.link(ctx, upstream, issued)
    return _token_response(ctx, issued, cookies=body.delivery == "cookie")


async def refresh(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    body = await read_body(request, RefreshBody, ctx.settings.http.max_body_bytes, optional=True)
    presented, from_cookie = body.refresh_token, False
    if not presented and REFRESH_COOKIE in request.cookies:
        problem = csrf_problem(
            request.method, request.headers, request.cookies, ctx.settings.browser
        )
        if problem:
            raise CsrfFailed(problem)
        presented, from_cookie = request.cookies[REFRESH_COOKIE], True
    if not presented:
        raise InvalidRequest("refresh_token is missing: send it in the body or the refresh cookie")
    client = await identify(ctx, request.headers, body.client_id, body.client_secret)
    issued = await refresh_grant(ctx, presented, client)
    return _token_response(ctx, issued, cookies=from_cookie)


async def logout(request: Request) -> Response:
    """Revoke the caller's session.

    A token whose session is revoked already (a repeat after 503 not_durable, or
    revoked by anyone else: a logout-all, a block, a moderator) is answered as the
    logout that succeeded: 204 with the id of the event that revoked it, once that
    is durable, and nothing is written (DESIGN.md invariant 13).
    """
    ctx = IssuerContext.of(request)
    claims = _caller_or_revoked(ctx, request, ("session_revoked", "user_revoked"))
    event_id = await ctx.store.sessions.revoke_session(
        claims.sid,
        claims.sub,
        "logout",
        issued_ms=claims.issued_ms,
        actor=claims.sub,
        actor_kind=ActorKind.USER,
    )
    return _ended(ctx, request, event_id)


async def logout_all(request: Request) -> Response:
    """Revoke every session of the caller. A repeat with the same token (refused as revoked
    now) answers 204 with the first call's event id, once durable, and ends nothing that was
    made after the first call."""
    ctx = IssuerContext.of(request)
    claims = _caller_or_revoked(ctx, request, ("user_revoked",))
    event_id = await ctx.store.sessions.revoke_user(
        claims.sub,
        "logout_all",
        covers_ms=claims.issued_ms,
        actor=claims.sub,
        actor_kind=ActorKind.USER,
    )
    return _ended(ctx, request, event_id)


def _caller_or_revoked(
    ctx: IssuerContext, request: Request, codes: tuple[str, ...]
) -> AccessClaims:
    """The caller's claims, also when its token is refused for one of ``codes``: the call
    then only confirms the revocation that holds (its script finds it made)."""
    try:
        return caller(ctx, request)
    except TokenRejected as exc:
        if exc.code not in codes:
            raise
        return revoked_caller(ctx, request, exc)


def _ended(ctx: IssuerContext, request: Request, event_id: str) -> Response:
    response = Response(status_code=204, headers={EVENT_ID_HEADER: event_id})
    if by_cookie(request):
        clear_token_cookies(response, ctx.settings.browser)
    return response
