"""revocast's revocations as Security Event Tokens (RFC 8417), for SSF receivers.

Each stream event becomes at most one SET (``typ: secevent+jwt``), signed when it is
delivered with the SET key of the active key (``KeyRing.set_key``): a key of its own,
published only in the SSF JWKS (``/ssf/jwks.json``), never in the access tokens' JWKS, so
no verifier of access tokens, revocast's or any library given that JWKS, can take a SET for
an access token. A SET also carries ``exp`` (``SET_TTL_S`` after signing) and no ``sub``,
and its ``aud`` is never the access tokens' (``ssf.create_stream``). Its ``jti`` is the
event id (``p3.<ms>-<seq>``): a receiver's ack names the entry it stands for. Subjects use
SSF's formats: the user as ``iss_sub`` (revocast's issuer, the user id), the session as
``opaque`` (the session id).

- a session revoked (logout, refresh reuse, a session ended, /oauth/revoke...): CAEP
  ``session-revoked``, the user and the session as subject;
- a session revoked by a password change: CAEP ``credential-change`` (password, update);
- a user revoked by a block: RISC ``account-disabled``;
- a user revoked otherwise (logout-all, an upstream logout): CAEP ``session-revoked``
  with the user alone as subject (every session);
- roles changed: CAEP ``token-claims-change`` (``roles`` as Redis has them when the SET
  is made);
- a key published or revoked: no SET (the JWKS carries it).

Every CAEP event says who the revocation came from, as CAEP's ``initiating_entity``, read
from the event's ``actor_kind`` (``INITIATING_ENTITY``).
"""

from __future__ import annotations

import time
from typing import Any

from revocast.events import ActorKind, AnyEvent, Reason, RolesChanged, SessionRevoked, UserRevoked
from revocast.issuer.context import IssuerContext
from revocast.issuer.grants import signing_kid
from revocast.issuer.tokens import compact_jws

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SESSION_REVOKED = f"{CAEP}session-revoked"
CREDENTIAL_CHANGE = f"{CAEP}credential-change"
TOKEN_CLAIMS_CHANGE = f"{CAEP}token-claims-change"
ACCOUNT_DISABLED = f"{RISC}account-disabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
STREAM_UPDATED = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
SUPPORTED = (SESSION_REVOKED, CREDENTIAL_CHANGE, TOKEN_CLAIMS_CHANGE, ACCOUNT_DISABLED)
SET_TYPE = "secevent+jwt"
# A SET is signed as it is delivered (pushed or polled), so a receiver checks it within
# seconds; 5 minutes (seconds here) covers clock skew and a slow receiver, and no more.
SET_TTL_S = 300
# CAEP's initiating_entity ("admin", "user", "policy", "system") for each actor kind: staff
# and operators administer; an upstream IdP's signal is a system's assertion.
INITIATING_ENTITY: dict[str, str] = {
    ActorKind.USER: "user",
    ActorKind.MODERATOR: "admin",
    ActorKind.ADMIN: "admin",
    ActorKind.OPERATOR: "admin",
    ActorKind.POLICY: "policy",
    ActorKind.UPSTREAM: "system",
    ActorKind.SYSTEM: "system",
}


def _initiated(actor_kind: str) -> dict[str, str]:
    """``initiating_entity`` for an event's actor kind; nothing for one written before it."""
    entity = INITIATING_ENTITY.get(actor_kind)
    return {"initiating_entity": entity} if entity else {}


async def describe(
    ctx: IssuerContext, event: AnyEvent
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(event type URI, event body, subject) for a revocation; None for key events."""
    user = {"format": "iss_sub", "iss": ctx.settings.tokens.issuer}
    stamp: dict[str, Any] = {"event_timestamp": event.ts_ms // 1000}
    if isinstance(event, SessionRevoked | UserRevoked | RolesChanged):
        stamp |= _initiated(event.actor_kind)
    if isinstance(event, SessionRevoked):
        subject = {"format": "complex", "user": user | {"sub": event.uid},
                   "session": {"format": "opaque", "id": event.sid}}  # fmt: skip
        if event.reason == Reason.PASSWORD_CHANGED:
            body = stamp | {"credential_type": "password", "change_type": "update"}
            return CREDENTIAL_CHANGE, body, subject
        return SESSION_REVOKED, stamp | {"reason_admin": {"en": event.reason}}, subject
    if isinstance(event, UserRevoked):
        if event.reason == Reason.BLOCKED:  # RISC: no initiating_entity, nor a timestamp
            return ACCOUNT_DISABLED, {}, user | {"sub": event.uid}
        return (
            SESSION_REVOKED,
            stamp | {"reason_admin": {"en": event.reason}},
            user | {"sub": event.uid},
        )
    if isinstance(event, RolesChanged):
        roles = await ctx.store.authority.roles_of(event.uid)
        return TOKEN_CLAIMS_CHANGE, stamp | {"claims": {"roles": roles}}, user | {"sub": event.uid}
    return None


async def sign(
    ctx: IssuerContext,
    *,
    jti: str,
    audience: str,
    event_type: str,
    body: dict[str, Any],
    subject: dict[str, Any],
) -> str:
    """A SET signed with the active key's SET key (receivers find it in the SSF JWKS)."""
    key = ctx.minter.keyring.set_key(await signing_kid(ctx))
    now = int(time.time())
    claims = {
        "iss": ctx.settings.tokens.issuer,
        "aud": audience,
        "iat": now,
        "exp": now + SET_TTL_S,
        "jti": jti,
        "sub_id": subject,
        "events": {event_type: body},
    }
    header = {"alg": ctx.settings.tokens.jws_alg, "kid": key.kid, "typ": SET_TYPE}
    return compact_jws(header, claims, key.private)
