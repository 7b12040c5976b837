"""Moderator routes: block, unblock, change roles, list and end sessions, read the audit trail.

Every change runs one Lua script, in the target's partition, that checks the
actor's current power there (each partition holds a copy of every admin's and
moderator's), makes the change, publishes the revocation and appends the audit
entry together. Reads check the actor's power as Redis has it now.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from revocast.clients import DEFAULT_CLIENT_ID
from revocast.errors import InvalidRequest, NotFound
from revocast.http import json_response
from revocast.issuer.bodies import BlockBody, RolesBody, read_body
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import MODERATOR_ROLES, authorize, caller_with_role, kind_of
from revocast.issuer.revocations import revoked, wait_seconds

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# As Redis writes them: ASCII digits without leading zeros, so one id has one spelling.
_STREAM_ID = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})")
_LIMIT = re.compile(r"[0-9]{1,6}")  # str.isdigit() takes "²", which int() refuses
MAX_ID_PART = 2**64 - 1  # Redis stream ids are two unsigned 64-bit numbers
MAX_PAGE = 200


def path_id(request: Request, name: str) -> str:
    """A user or session id from the path; anything malformed is simply not found."""
    value = str(request.path_params[name])
    if not _ID.fullmatch(value):
        kind = name.removesuffix("_id")
        raise NotFound(f"no such {kind}: check the {kind} id")
    return value


def iso(ms: str | int) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="milliseconds")


def session_view(record: dict[str, str]) -> dict[str, str]:
    return {
        "session_id": record["sid"],
        "created_at": iso(record.get("created_ms", 0)),
        "last_refreshed_at": iso(record.get("refreshed_ms", 0)),
        "user_agent": record.get("user_agent", ""),
        "client_address": record.get("client", ""),
        "client_id": record.get("client_id", DEFAULT_CLIENT_ID),
    }


async def block(request: Request) -> Response:
    return await _set_blocked(request, blocked=True)


async def unblock(request: Request) -> Response:
    return await _set_blocked(request, blocked=False)


async def _set_blocked(request: Request, *, blocked: bool) -> Response:
    ctx = IssuerContext.of(request)
    actor = caller_with_role(ctx, request, MODERATOR_ROLES)
    target = path_id(request, "user_id")
    wait_s = wait_seconds(request)
    body = await read_body(request, BlockBody, ctx.settings.http.max_body_bytes, optional=True)
    event_id = await ctx.store.authority.moderate(
        actor.sub,
        "block" if blocked else "unblock",
        target,
        reason=body.reason,
        actor_kind=kind_of(actor),
    )
    return await revoked(ctx, event_id, wait_s, {"user_id": target, "blocked": blocked})


async def set_roles(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    actor = caller_with_role(ctx, request, MODERATOR_ROLES)
    target = path_id(request, "user_id")
    wait_s = wait_seconds(request)
    body = await read_body(request, RolesBody, ctx.settings.http.max_body_bytes)
    roles = sorted(set(body.roles))
    event_id = await ctx.store.authority.moderate(
        actor.sub,
        "roles",
        target,
        reason=body.reason,
        roles_json=json.dumps(roles),
        actor_kind=kind_of(actor),
    )
    return await revoked(ctx, event_id, wait_s, {"user_id": target, "roles": roles})


async def user_sessions(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    actor = caller_with_role(ctx, request, MODERATOR_ROLES)
    target = path_id(request, "user_id")
    if not await ctx.store.users.exists(target):
        raise NotFound("no such user: check the user id")
    await authorize(ctx, actor, target)
    sessions = await ctx.store.sessions.of_user(target)
    return json_response({"user_id": target, "sessions": [session_view(s) for s in sessions]})


async def end_session(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    actor = caller_with_role(ctx, request, MODERATOR_ROLES)
    wait_s = wait_seconds(request)
    event_id = await ctx.store.sessions.end_session(
        path_id(request, "session_id"),
        actor=actor.sub,
        reason="moderator",
        actor_kind=kind_of(actor),
    )
    return await revoked(ctx, event_id, wait_s)


def _is_entry_id(text: str) -> bool:
    """``<ms>-<seq>`` as Redis reads a stream id: each part a number up to 2^64 - 1."""
    match = _STREAM_ID.fullmatch(text)
    return match is not None and max(int(match[1]), int(match[2])) <= MAX_ID_PART


async def audit(request: Request) -> Response:
    """Newest first; ``?before=<id>`` pages back, ``?limit=`` up to 200."""
    ctx = IssuerContext.of(request)
    actor = caller_with_role(ctx, request, MODERATOR_ROLES)
    before = request.query_params.get("before", "+")
    limit_text = request.query_params.get("limit", "50")
    if (before != "+" and not _is_entry_id(before)) or not _LIMIT.fullmatch(limit_text):
        raise InvalidRequest(
            f"before must be an entry id (as next_before gives) and limit a number up to "
            f"{MAX_PAGE}: correct the query"
        )
    limit = min(max(int(limit_text), 1), MAX_PAGE)
    await authorize(ctx, actor)
    # Nothing comes before 0-0 (and Redis refuses an interval that ends just before it).
    entries = [] if before == "0-0" else await ctx.store.streams.audit_page(before, limit)
    page = [
        {
            "id": entry_id,
            "at": iso(fields.get("ts_ms", 0)),
            "actor": fields.get("actor", ""),
            "action": fields.get("action", ""),
            "target": fields.get("target", ""),
            "reason": fields.get("reason", ""),
        }
        for entry_id, fields in entries
    ]
    following = page[-1]["id"] if len(page) == limit else None
    return json_response({"entries": page, "next_before": following})
