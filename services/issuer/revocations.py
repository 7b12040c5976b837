"""Proof that a revocation took effect: the event id on every revoking answer, the status
of an event (``GET /v1/admin/revocations/{event_id}``) and ``?wait=`` on admin calls."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from revocast.enforcement import MAX_WAIT_S, check_exists, status, wait_applied
from revocast.errors import InvalidRequest
from revocast.http import json_response
from revocast.issuer.context import IssuerContext
from revocast.issuer.guards import MODERATOR_ROLES, authorize, caller_with_role
from revocast.proof import EVENT_ID_HEADER, EventRef


async def revocation_status(request: Request) -> Response:
    """For each live verifier, whether it has applied the event (moderators and admins)."""
    ctx = IssuerContext.of(request)
    actor = caller_with_role(ctx, request, MODERATOR_ROLES)
    wait_s = wait_seconds(request)
    try:
        event = EventRef.parse(str(request.path_params["event_id"]))
    except ValueError as exc:
        raise InvalidRequest(f"{exc}: use an event id a revoking call answered") from None
    await authorize(ctx, actor)
    await check_exists(ctx.store, event)
    if wait_s is None:
        return json_response(await status(ctx.store, event))
    return json_response(await wait_applied(ctx.store, event, wait_s))


def wait_seconds(request: Request) -> float | None:
    """``?wait=SECONDS`` (0 < s <= 30), read before the call acts: a bad one changes nothing."""
    raw = request.query_params.get("wait")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_WAIT_S:
        raise InvalidRequest(
            f"wait must be a number of seconds above 0 and at most {MAX_WAIT_S:g}, e.g. ?wait=5"
        )
    return seconds


async def revoked(
    ctx: IssuerContext, event_id: str, wait_s: float | None, body: dict[str, Any] | None = None
) -> Response:
    """The answer to a revoking call: its body (204 without one) with the event id, and with
    ``wait_s`` the proof of which verifiers applied it (``proof.proven``)."""
    headers = {EVENT_ID_HEADER: event_id} if event_id else {}
    if body is None and wait_s is None:
        return Response(status_code=204, headers=headers)
    answer = (body or {}) | {"event_id": event_id or None}
    if wait_s is not None and event_id:
        answer["proof"] = await wait_applied(ctx.store, EventRef.parse(event_id), wait_s)
    return json_response(answer, headers=headers)
