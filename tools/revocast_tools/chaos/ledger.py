"""What happened during a run: every token, its revocation, every probe, every data loss.

All times are ``time.monotonic()``, which on Linux is one clock for every process
on the host, so the harness's times compare with the services' behaviour.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenRecord:
    """One access token; a revocation is *acknowledged* only when the revoke call succeeded."""

    index: int
    access: str
    sid: str
    uid: str
    exp_s: float  # wall-clock expiry (Redis time) from the token's claims
    login_sent: float
    minted_at: float  # the login reply (or direct mint) arrived
    revoke_sent: float | None = None  # first revocation attempt left the harness
    revoked_at: float | None = None  # its success arrived (204, or the Store call returned)
    unacknowledged: bool = False  # an attempt failed in a way that may still have revoked it


@dataclass(frozen=True, slots=True)
class Loss:
    """Redis lost its data: killed at ``killed_at``, back (empty) at ``restored_at``."""

    killed_at: float
    restored_at: float


@dataclass(frozen=True, slots=True)
class Probe:
    """One ``GET /verify``: status 0 means no answer (transport error)."""

    verifier: int
    token: int
    sent: float
    received: float
    status: int
    subject: str
    session: str
    code: str
    final: bool = False  # part of the after-recovery check


@dataclass(slots=True)
class Ledger:
    tokens: list[TokenRecord] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    revocations_sent: int = 0
    revocations_acked: int = 0
    revocations_unacked: int = 0
    revocations_refused: int = 0
    logins: int = 0
    login_failures: int = 0
    login_errors: Counter[str] = field(default_factory=Counter)  # why logins failed
    readiness_requests: int = 0
    wall_offset: float = field(default_factory=lambda: time.time() - time.monotonic())

    def add_token(
        self, access: str, sid: str, uid: str, login_sent: float, minted_at: float
    ) -> TokenRecord:
        record = TokenRecord(
            index=len(self.tokens),
            access=access,
            sid=sid,
            uid=uid,
            exp_s=token_exp(access),
            login_sent=login_sent,
            minted_at=minted_at,
        )
        self.tokens.append(record)
        self.logins += 1
        return record

    def revoked_at(self, token: TokenRecord) -> float | None:
        """When the token was surely dead: acknowledged revocation, or the data loss it predates.

        A token minted before Redis lost its data counts as revoked when the empty
        server came back, the first moment the loss can be seen (the issuer's
        fail-safe then withdraws every older key). That is later than the kill, so
        the most lenient reading; until then verifiers cannot be fresh anyway.
        """
        times = [t for t in [token.revoked_at] if t is not None]
        times += [loss.restored_at for loss in self.losses if token.minted_at < loss.restored_at]
        return min(times, default=None)

    def maybe_revoked_from(self, token: TokenRecord) -> float | None:
        """Since when a rejection is legitimate: a revocation attempt, or the kill before a loss."""
        times = [t for t in [token.revoke_sent] if t is not None]
        times += [loss.killed_at for loss in self.losses if token.minted_at < loss.restored_at]
        return min(times, default=None)

    def uncertain(self, token: TokenRecord) -> bool:
        """Logged in across a loss: written before the kill or after the restart, we can't say."""
        return any(token.login_sent < loss.restored_at <= token.minted_at for loss in self.losses)


def token_exp(access: str) -> float:
    """The ``exp`` claim, read without verification (the harness only schedules by it)."""
    try:
        payload = access.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0
