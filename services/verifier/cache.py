"""The verifier's local copy of the revocation state: plain dictionaries.

The state only grows (a revocation is never undone) until an entry outlives
every token it covers and is pruned. Merging a snapshot therefore never loses a
revocation, even if Redis came back empty (DESIGN.md invariant 6).
"""

from __future__ import annotations

import logging

from revocast.events import (
    AnyEvent,
    KeyPublished,
    KeyRevoked,
    RolesChanged,
    SessionRevoked,
    UserRevoked,
)
from revocast.keys import PublicKey
from revocast.store import Snapshot

log = logging.getLogger("revocast.verifier")


class RevocationCache:
    """Revoked sessions, user not-before times, role changes, revoked and trusted keys."""

    __slots__ = ("keys", "revoked_keys", "roles_changed", "sessions", "users")

    def __init__(self) -> None:
        self.sessions: dict[str, int] = {}  # sid -> until_ms
        self.users: dict[str, tuple[int, int]] = {}  # uid -> (not_before_ms, until_ms)
        # uid -> (roles changed at ms, until_ms): tokens issued by then carry stale roles
        self.roles_changed: dict[str, tuple[int, int]] = {}
        self.revoked_keys: dict[str, int] = {}  # kid -> at_ms; kept for good
        self.keys: dict[str, PublicKey] = {}  # kid -> trusted public key

    def __len__(self) -> int:
        tables = (self.sessions, self.users, self.roles_changed, self.revoked_keys)
        return sum(len(table) for table in tables)

    def merge(self, snapshot: Snapshot) -> None:
        """Union with one stream's snapshot; keeps what this cache knew and Redis forgot."""
        for sid, until_ms in snapshot.sessions.items():
            self._revoke_session(sid, until_ms)
        for uid, (not_before_ms, until_ms) in snapshot.users.items():
            self._revoke_user(uid, not_before_ms, until_ms)
        for uid, (changed_ms, until_ms) in snapshot.roles.items():
            self._change_roles(uid, changed_ms, until_ms)
        for kid, at_ms in snapshot.revoked_keys.items():
            self._revoke_key(kid, at_ms)
        for text in snapshot.jwks.values():
            self._trust(text)

    def apply(self, event: AnyEvent) -> None:
        match event:
            case SessionRevoked(sid=sid, until_ms=until_ms):
                self._revoke_session(sid, until_ms)
            case UserRevoked(uid=uid, not_before_ms=nb, until_ms=until_ms):
                self._revoke_user(uid, nb, until_ms)
            case RolesChanged(uid=uid, not_before_ms=nb, until_ms=until_ms):
                self._change_roles(uid, nb, until_ms)
            case KeyRevoked(kid=kid, at_ms=at_ms):
                self._revoke_key(kid, at_ms)
            case KeyPublished(jwk=jwk):
                self._trust(jwk)

    def prune(self, now_ms: int) -> int:
        """Forget entries whose tokens have all expired; returns how many went."""
        dead_sessions = [sid for sid, until in self.sessions.items() if until < now_ms]
        for sid in dead_sessions:
            del self.sessions[sid]
        pruned = len(dead_sessions)
        for table in (self.users, self.roles_changed):
            dead = [uid for uid, (_, until) in table.items() if until < now_ms]
            for uid in dead:
                del table[uid]
            pruned += len(dead)
        return pruned

    def _revoke_session(self, sid: str, until_ms: int) -> None:
        if until_ms > self.sessions.get(sid, 0):
            self.sessions[sid] = until_ms

    def _revoke_user(self, uid: str, not_before_ms: int, until_ms: int) -> None:
        self._not_before(self.users, uid, not_before_ms, until_ms)

    def _change_roles(self, uid: str, changed_ms: int, until_ms: int) -> None:
        self._not_before(self.roles_changed, uid, changed_ms, until_ms)

    @staticmethod
    def _not_before(
        table: dict[str, tuple[int, int]], uid: str, not_before_ms: int, until_ms: int
    ) -> None:
        old_nb, old_until = table.get(uid, (0, 0))
        table[uid] = (max(old_nb, not_before_ms), max(old_until, until_ms))

    def _revoke_key(self, kid: str, at_ms: int) -> None:
        self.revoked_keys.setdefault(kid, at_ms)

    def _trust(self, jwk_text: str) -> None:
        try:
            key = PublicKey.from_jwk(jwk_text)
        except ValueError as exc:
            # Tokens naming it will be refused as signed by an unknown key.
            log.error("ignoring a published key: %s", exc)
            return
        self.keys[key.kid] = key
