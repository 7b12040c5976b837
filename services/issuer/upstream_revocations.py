"""Revocations from the upstream IdP: OIDC Back-Channel Logout 1.0, and CAEP events pushed
as Security Event Tokens (RFC 8417 over RFC 8935).

Each ends the local session or user that login linked to the IdP's ``sid`` or ``sub``, with
the same revocation and event as a local logout or logout-all. A token is acted on once:
its ``jti`` is claimed before acting (of concurrent copies, one acts and the others get 503),
remembered for a day once the revocation is written, and given back if it fails, so that
an IdP that retries after a 503 is served again. A replayed token is refused, and so is
one issued longer ago than its ``jti`` is remembered.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import (
    BodyTooLarge,
    NotFound,
    RequestError,
    RevocastError,
    StoreUnavailable,
    UnsupportedMediaType,
)
from revocast.events import ActorKind
from revocast.http import error_answer, json_response
from revocast.issuer.bodies import read_raw
from revocast.issuer.context import IssuerContext
from revocast.issuer.oauth import NO_STORE, Form
from revocast.issuer.upstream import Upstream, UpstreamTokenRefused
from revocast.lifetimes import HOUR_S
from revocast.lifetimes import UPSTREAM_CLAIM_TTL_S as CLAIM_TTL_S
from revocast.lifetimes import UPSTREAM_REPLAY_TTL_S as REPLAY_TTL_S
from revocast.proof import EVENT_ID_HEADER

BACKCHANNEL_LOGOUT = "http://schemas.openid.net/event/backchannel-logout"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = f"{CAEP}session-revoked"
CREDENTIAL_CHANGE = f"{CAEP}credential-change"
SET_MEDIA_TYPE = "application/secevent+jwt"
MAX_AGE_S = REPLAY_TTL_S - HOUR_S  # an older token is refused: its jti may be forgotten


class UpstreamTokenBusy(StoreUnavailable):
    """Another request is acting on the same token right now: 503 with Retry-After, so
    that the sender learns on its retry how that ended (done: 400; failed: it acts)."""

    code = "token_in_progress"
    explanation = "another request is acting on this token now: send it again in a moment"


def _upstream(ctx: IssuerContext) -> Upstream:
    if ctx.upstream is None:
        raise NotFound(
            "no upstream IdP is configured here: an operator sets REVOCAST_UPSTREAM_ISSUER first"
        )
    return ctx.upstream


async def backchannel_logout(request: Request) -> Response:
    """OIDC Back-Channel Logout 1.0 §2.5-2.8: form field ``logout_token``; 200 once the
    session (``sid``) or every session of the user (``sub`` alone) is revoked, 400 for a
    token that is not valid here."""
    ctx = IssuerContext.of(request)
    try:
        upstream = _upstream(ctx)
        token = (await Form.read(ctx, request)).required("logout_token")
        # Some IdPs (Keycloak among them) type logout tokens "JWT"; the checks below (events,
        # no nonce, sid or sub) keep an ID token from passing for one.
        claims = await upstream.decode(
            token, typ="logout+jwt", required=["exp", "jti"], also_typ="jwt"
        )
        _fresh(claims, "logout token")
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT), dict):
            raise UpstreamTokenRefused(f"events must hold {BACKCHANNEL_LOGOUT} with an object")
        if "nonce" in claims:
            raise UpstreamTokenRefused("a logout token must not carry a nonce")
        sub, sid = _text(claims, "sub"), _text(claims, "sid")
        if sub is None and sid is None:
            raise UpstreamTokenRefused("a logout token names a sid, a sub, or both")
        event_id = await _once(
            ctx, upstream, _text(claims, "jti") or "", "this logout token was already used",
            lambda: _end(ctx, upstream, sub=sub, sid=sid, reason="backchannel_logout"),
        )  # fmt: skip
    except RequestError as exc:
        # §2.8: 400, in RFC 6749's error shape, never cached.
        refused = error_answer(exc, oauth=True)
        refused.headers.update(NO_STORE)
        return refused
    headers = NO_STORE | ({EVENT_ID_HEADER: event_id} if event_id else {})
    return Response(status_code=200, headers=headers)


async def pushed_event(request: Request) -> Response:
    """RFC 8935: a SET in the body (``application/secevent+jwt``); 202 when acted on,
    400 ``{"err", "description"}`` otherwise. CAEP ``session-revoked`` ends the session (or,
    with only a user as subject, every session of the user); ``credential-change`` ends
    every session of the user."""
    ctx = IssuerContext.of(request)
    try:
        upstream = _upstream(ctx)
        raw = await read_raw(request, SET_MEDIA_TYPE, ctx.settings.http.max_body_bytes)
        claims = await upstream.decode(_ascii(raw), typ="secevent+jwt", required=["jti"])
        _fresh(claims, "SET")
        event_type, event = _single_event(claims)
        user, session = _subject(claims, event, upstream.issuer)
        if event_type == CREDENTIAL_CHANGE:
            session = None  # a changed credential ends every session of the user
        reason = "caep_" + event_type.removeprefix(CAEP).replace("-", "_")
        event_id = await _once(
            ctx, upstream, _text(claims, "jti") or "", "this SET was already received",
            lambda: _end(ctx, upstream, sub=user, sid=session, reason=reason),
        )  # fmt: skip
    except RequestError as exc:
        return _set_refused(exc)
    headers = NO_STORE | ({EVENT_ID_HEADER: event_id} if event_id else {})
    return Response(status_code=202, headers=headers)


def _set_refused(exc: RequestError) -> Response:
    """RFC 8935 section 2.4: 400 ``{"err", "description"}``, never stored by a cache; a body
    in another media type than a SET's (415) or too large (413) keeps its HTTP status, in
    the same shape."""
    code: str = "invalid_request"
    if isinstance(exc, UpstreamTokenRefused):
        code = exc.set_error
    elif isinstance(exc, NotFound):
        code = "invalid_audience"  # no IdP configured: no SET is meant for this recipient
    status = exc.status if isinstance(exc, UnsupportedMediaType | BodyTooLarge) else 400
    return json_response({"err": code, "description": exc.detail}, status, NO_STORE)


def _fresh(claims: dict[str, Any], what: str) -> None:
    """Refuse a token issued longer ago than its jti is remembered: a replay of it would
    not be recognised (``iat`` is a number: the decoder checked)."""
    if claims["iat"] < time.time() - MAX_AGE_S:
        raise UpstreamTokenRefused(
            f"the {what} is older than {MAX_AGE_S} s (iat), so a replay of it could pass "
            f"unseen (a jti is remembered {REPLAY_TTL_S} s): send a fresh one"
        )


async def _once(
    ctx: IssuerContext,
    upstream: Upstream,
    jti: str,
    replayed: str,
    act: Callable[[], Awaitable[str | None]],
) -> str | None:
    """Run ``act`` for the token ``jti`` at most once, and answer its event id.

    The jti is claimed first, atomically: of concurrent copies one acts, the others get
    UpstreamTokenBusy (503). Once ``act`` has written the revocation, the jti is remembered
    for REPLAY_TTL_S and a copy is refused (``replayed``, 400). If ``act`` fails (Redis, a
    replica that did not confirm), the claim is given back so that the IdP's retry acts; if
    even that fails, the claim lapses after CLAIM_TTL_S.
    """
    owner = secrets.token_hex(16)
    signals = ctx.store.signals
    claimed = await signals.upstream_token("claim", upstream.issuer, jti, owner, CLAIM_TTL_S)
    if claimed == "busy":
        raise UpstreamTokenBusy()
    if claimed != "claimed":
        raise UpstreamTokenRefused(replayed)
    try:
        event_id = await act()
    except Exception:
        with contextlib.suppress(RevocastError):
            await signals.upstream_token("release", upstream.issuer, jti, owner, CLAIM_TTL_S)
        raise
    await signals.upstream_token("done", upstream.issuer, jti, owner, REPLAY_TTL_S)
    return event_id


def _ascii(raw: bytes) -> str:
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise UpstreamTokenRefused("a SET is ASCII (a compact JWS)") from None


def _single_event(claims: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise UpstreamTokenRefused("a SET carries exactly one event (SSF 1.0 §4.1.8)")
    ((event_type, event),) = events.items()
    if event_type not in (SESSION_REVOKED, CREDENTIAL_CHANGE) or not isinstance(event, dict):
        raise UpstreamTokenRefused(f"event {event_type} is not one revocast acts on")
    return event_type, event


def _subject(
    claims: dict[str, Any], event: dict[str, Any], issuer: str
) -> tuple[str | None, str | None]:
    """(upstream sub, upstream session id) from SSF's ``sub_id`` or CAEP's ``subject``."""
    subject = claims.get("sub_id", event.get("subject"))
    if not isinstance(subject, dict):
        raise UpstreamTokenRefused("the SET has no subject (sub_id)")
    parts = {"user": subject} if subject.get("format") == "iss_sub" else subject
    user, session = parts.get("user"), parts.get("session")
    sub = sid = None
    if isinstance(user, dict) and user.get("format") == "iss_sub":
        if user.get("iss") != issuer:
            raise UpstreamTokenRefused("the subject's iss is not the configured IdP")
        sub = _text(user, "sub")
    if isinstance(session, dict) and session.get("format") == "opaque":
        sid = _text(session, "id")
    if sub is None and sid is None:
        raise UpstreamTokenRefused("the subject names neither an iss_sub user nor a session")
    return sub, sid


def _text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 255:
        raise UpstreamTokenRefused(f"{name} must be a string of 1 to 255 characters")
    return value


async def _end(
    ctx: IssuerContext, upstream: Upstream, *, sub: str | None, sid: str | None, reason: str
) -> str | None:
    """Revoke what the IdP's ``sid`` (or else ``sub``) is linked to; its event id, or None
    when nothing here is linked to it (there is nothing to end)."""
    if sid is not None:
        linked = await ctx.store.signals.upstream_sessions(upstream.issuer, sid)
        event_ids = [
            await ctx.store.sessions.revoke_session(s, uid, reason, actor_kind=ActorKind.UPSTREAM)
            for uid, s in linked
        ]
        if event_ids or sub is None:
            return event_ids[-1] if event_ids else None
        # No session linked to that sid (logged in without it, or the link expired): the
        # user's sessions all go, rather than none.
    assert sub is not None
    user = await ctx.store.signals.upstream_user(upstream.issuer, sub)
    if user is None:
        return None
    return await ctx.store.sessions.revoke_user(user, reason, actor_kind=ActorKind.UPSTREAM)
