"""Self-service: a user's own sessions and password."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import WrongPassword
from revocast.events import ActorKind
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
    sessions = await ctx.store.sessions.of_user(claims.sub)
    views = [session_view(s) | {"current": s["sid"] == claims.sid} for s in sessions]
    return json_response({"sessions": views})


async def end_my_session(request: Request) -> Response:
    """End one of the caller's own sessions; another user's session is simply not found. A
    session ended already answers 204 with the id of the event that ended it."""
    ctx = IssuerContext.of(request)
    claims = caller(ctx, request)
    event_id = await ctx.store.sessions.end_session(
        path_id(request, "session_id"), owner=claims.sub, reason="user", actor_kind=ActorKind.USER
    )
    return Response(status_code=204, headers={EVENT_ID_HEADER: event_id})


async def change_password(request: Request) -> Response:
    """Set a new password; every other session of the user ends.

    A repeat (after 503 not_durable: the current password is the new one already) from
    the session that made the change is answered as the change was, once durable.
    """
    ctx = IssuerContext.of(request)
    claims = caller(ctx, request)
    body = await read_body(request, PasswordBody, ctx.settings.http.max_body_bytes)
    check_password_rules(body.new_password)
    stored = await ctx.store.users.password_hash(claims.sub)
    # A second hash check only for the session that made the last change.
    if await ctx.store.users.password_changed_by(
        claims.sub
    ) == claims.sid and await ctx.passwords.verify(stored, body.new_password):
        ended, event_id = await ctx.store.users.repeat_password_change(claims.sub, claims.sid)
    elif await ctx.passwords.verify(stored, body.current_password):
        ended, event_id = await ctx.store.users.change_password(
            claims.sub,
            await ctx.passwords.hash(body.new_password),
            claims.sid,
            actor=claims.sub,
            actor_kind=ActorKind.USER,
        )
    else:
        raise WrongPassword()
    headers = {EVENT_ID_HEADER: event_id} if event_id else {}
    return json_response({"other_sessions_ended": ended, "event_id": event_id}, headers=headers)
