"""RFC 7009 token revocation and RFC 7662 token introspection.

Both take ``application/x-www-form-urlencoded`` bodies with ``token`` and an
optional ``token_type_hint``. Revoking either token of a session ends the
whole session (its refresh token and every access token minted for it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import InvalidRequest, TokenRejected, VerifierStale
from revocast.http import json_response
from revocast.issuer.bodies import read_raw
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import INTROSPECTOR_ROLES, caller_with_role

FORM = "application/x-www-form-urlencoded"
_HINTS = ("refresh_token", "access_token")


async def _token_and_order(ctx: IssuerContext, request: Request) -> tuple[str, tuple[str, ...]]:
    raw = await read_raw(request, FORM, ctx.settings.max_body_bytes)
    try:
        form = parse_qs(
            raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw), errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("body is not a valid form") from None
    tokens = form.get("token", [])
    if len(tokens) != 1 or not tokens[0] or len(tokens[0]) > 8192:
        raise InvalidRequest("exactly one non-empty token parameter is required")
    hint = form.get("token_type_hint", [""])[0]
    # An unknown hint is ignored, as RFC 7009 section 2.1 allows.
    order = (hint, *(kind for kind in _HINTS if kind != hint)) if hint in _HINTS else _HINTS
    return tokens[0], order


async def revoke(request: Request) -> Response:
    """200 whether or not the token was known (RFC 7009 section 2.2); a repeat of a revoked
    token records its revocation again, so repeating after a 503 is how to make it durable."""
    ctx = IssuerContext.of(request)
    token, order = await _token_and_order(ctx, request)
    for kind in order:
        session = await _session_of(ctx, token, kind)
        if session is not None:
            sid, uid = session
            await ctx.writes.revoke_session(sid, uid, "oauth_revoke")
            break
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


async def _session_of(ctx: IssuerContext, token: str, kind: str) -> tuple[str, str] | None:
    if kind == "refresh_token":
        return await ctx.reads.refresh_token_owner(token, live_only=False)
    try:
        claims = ctx.verifier.decode(token)
    except TokenRejected:
        return None
    return claims.sid, claims.sub


async def introspect(request: Request) -> Response:
    """``{"active": false}`` for revoked, expired or unknown tokens; callers need a role."""
    ctx = IssuerContext.of(request)
    caller_with_role(ctx, request, INTROSPECTOR_ROLES)
    token, order = await _token_and_order(ctx, request)
    for kind in order:
        answer = await _introspect(ctx, token, kind)
        if answer is not None:
            return json_response(answer, headers={"Cache-Control": "no-store"})
    return json_response({"active": False}, headers={"Cache-Control": "no-store"})


async def _introspect(ctx: IssuerContext, token: str, kind: str) -> dict[str, Any] | None:
    if kind == "refresh_token":
        session = await ctx.reads.refresh_token_owner(token, live_only=True)
        if session is None:
            return None
        sid, uid = session
        return {"active": True, "token_type": "refresh_token", "sub": uid, "sid": sid,
                "iss": ctx.settings.issuer}  # fmt: skip
    try:
        claims = ctx.verifier.verify(token)
    except TokenRejected:
        return None
    except VerifierStale:
        claims = ctx.verifier.decode(token)  # the online check below decides alone
    if not await ctx.reads.session_live(claims.sid):
        return None
    return {
        "active": True,
        "token_type": "access_token",
        "scope": " ".join(claims.roles),
        "username": await ctx.reads.username_of(claims.sub),
        "sub": claims.sub,
        "sid": claims.sid,
        "roles": list(claims.roles),
        "iss": claims.iss,
        "aud": claims.aud,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "jti": claims.jti,
    }
