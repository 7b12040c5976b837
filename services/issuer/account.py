"""Self-service: a user's own sessions and password."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import WrongPassword
from revocast.http import json_response
from revocast.issuer.admin import path_id, session_view
from revocast.issuer.bodies import PasswordBody, read_body
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import caller
from revocast.issuer.users import check_password_rules
from revocast.proof import EVENT_ID_HEADER


async def my_sessions(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    claims = caller(ctx, request)
    sessions = await ctx.reads.sessions(claims.sub)
    views = [session_view(s) | {"current": s["sid"] == claims.sid} for s in sessions]
    return json_response({"sessions": views})


async def end_my_session(request: Request) -> Response:
    """End one of the caller's own sessions; another user's session is simply not found."""
    ctx = IssuerContext.of(request)
    claims = caller(ctx, request)
    event_id = await ctx.writes.end_session(
        path_id(request, "session_id"), owner=claims.sub, reason="user"
    )
    return Response(status_code=204, headers={EVENT_ID_HEADER: event_id})


async def change_password(request: Request) -> Response:
    """Set a new password; every other session of the user ends."""
    ctx = IssuerContext.of(request)
    claims = caller(ctx, request)
    body = await read_body(request, PasswordBody, ctx.settings.max_body_bytes)
    check_password_rules(body.new_password)
    stored = await ctx.reads.password_hash(claims.sub)
    if not await ctx.passwords.verify(stored, body.current_password):
        raise WrongPassword()
    ended, event_id = await ctx.writes.change_password(
        claims.sub, await ctx.passwords.hash(body.new_password), claims.sid, actor=claims.sub
    )
    headers = {EVENT_ID_HEADER: event_id} if event_id else {}
    return json_response({"other_sessions_ended": ended, "event_id": event_id}, headers=headers)
