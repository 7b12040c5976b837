"""The two ways the driver revokes a session, and what each outcome means for the ledger.

An *acknowledged* revocation (204, or the Store call returned) is surely written.
A refusal (4xx, or a script error) wrote nothing, and neither did a request that
could not connect. Anything else (a connection lost mid-request, a timeout, 5xx,
Redis unavailable) may or may not have written it: the token is then
"unacknowledged" and neither counted as revoked nor as live.
"""

from __future__ import annotations

import enum
import time

import httpx

from revocast.errors import NotDurable, RevocastError, StoreUnavailable
from revocast.events import ActorKind
from revocast.store import Store
from revocast_tools.chaos.ledger import Ledger, TokenRecord


class Outcome(enum.Enum):
    ACKED = "acked"
    REFUSED = "refused"
    UNKNOWN = "unknown"


async def revoke_http(issuer: httpx.AsyncClient, ledger: Ledger, token: TokenRecord) -> Outcome:
    """``POST /v1/logout`` with the token itself."""
    _sent(ledger, token)
    try:
        reply = await issuer.post("/v1/logout", headers={"Authorization": f"Bearer {token.access}"})
    except httpx.ConnectError:
        return _settle(ledger, token, Outcome.REFUSED)  # it never reached the issuer
    except httpx.TransportError:
        return _settle(ledger, token, Outcome.UNKNOWN)
    if reply.status_code == 204:
        return _settle(ledger, token, Outcome.ACKED)
    if reply.status_code < 500:
        return _settle(ledger, token, Outcome.REFUSED)
    return _settle(ledger, token, Outcome.UNKNOWN)


async def revoke_store(store: Store, ledger: Ledger, token: TokenRecord) -> Outcome:
    """The ``revoke_session`` script called directly: the high-rate path."""
    _sent(ledger, token)
    try:
        await store.sessions.revoke_session(
            token.sid, token.uid, "chaos", actor_kind=ActorKind.USER
        )
    except (StoreUnavailable, NotDurable):
        return _settle(ledger, token, Outcome.UNKNOWN)
    except RevocastError:
        return _settle(ledger, token, Outcome.REFUSED)
    return _settle(ledger, token, Outcome.ACKED)


def _sent(ledger: Ledger, token: TokenRecord) -> None:
    if token.revoke_sent is None:
        token.revoke_sent = time.monotonic()
    ledger.revocations_sent += 1


def _settle(ledger: Ledger, token: TokenRecord, outcome: Outcome) -> Outcome:
    match outcome:
        case Outcome.ACKED:
            if token.revoked_at is None:
                token.revoked_at = time.monotonic()
            ledger.revocations_acked += 1
        case Outcome.UNKNOWN:
            token.unacknowledged = True
            ledger.revocations_unacked += 1
        case Outcome.REFUSED:
            ledger.revocations_refused += 1
            if token.revoked_at is None and not token.unacknowledged:
                token.revoke_sent = None  # nothing was written: the token is live again
    return outcome
