"""Every Redis key revocast uses, under one prefix.

All revocation state lives on one Redis primary (no cluster): the Lua scripts
derive session and user keys from ids they read, so they must run where every
key lives.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keyspace:
    """Key names for one deployment (``prefix`` isolates deployments and tests)."""

    prefix: str = "revocast"

    @property
    def events(self) -> str:
        """Stream of revocation events, trimmed by age (MINID)."""
        return f"{self.prefix}:events"

    @property
    def epoch(self) -> str:
        """Random id set once; if it vanishes, Redis lost its data."""
        return f"{self.prefix}:epoch"

    @property
    def revoked_sessions(self) -> str:
        """ZSET sid -> forget-after time (ms)."""
        return f"{self.prefix}:revoked:sessions"

    @property
    def revoked_users(self) -> str:
        """HASH uid -> not-before time (ms)."""
        return f"{self.prefix}:revoked:users"

    @property
    def revoked_users_until(self) -> str:
        """ZSET uid -> forget-after time (ms), to prune ``revoked_users``."""
        return f"{self.prefix}:revoked:users:until"

    @property
    def revoked_claims(self) -> str:
        """HASH uid -> time (ms) up to which tokens carry stale roles."""
        return f"{self.prefix}:revoked:claims"

    @property
    def revoked_claims_until(self) -> str:
        """ZSET uid -> forget-after time (ms), to prune ``revoked_claims``."""
        return f"{self.prefix}:revoked:claims:until"

    @property
    def revoked_keys(self) -> str:
        """ZSET kid -> revocation time (ms); never pruned."""
        return f"{self.prefix}:revoked:keys"

    @property
    def jwks(self) -> str:
        """HASH kid -> public JWK (JSON)."""
        return f"{self.prefix}:jwks"

    @property
    def signing_kid(self) -> str:
        """STRING: the kid issuers sign new tokens with; absent when none may be used."""
        return f"{self.prefix}:signing_kid"

    @property
    def audit(self) -> str:
        """Stream of moderator and operator actions (about the last million kept)."""
        return f"{self.prefix}:audit"

    def username(self, name: str) -> str:
        """STRING -> user id."""
        return f"{self.prefix}:username:{name}"

    def user(self, uid: str) -> str:
        """HASH: username, password hash, roles (JSON), created_ms."""
        return f"{self.prefix}:user:{uid}"

    def user_sessions(self, uid: str) -> str:
        """SET of the user's live session ids."""
        return f"{self.prefix}:user:{uid}:sessions"

    def session(self, sid: str) -> str:
        """HASH: uid, created_ms, refreshed_ms, user_agent, client; TTL = refresh TTL."""
        return f"{self.prefix}:session:{sid}"

    def refresh_token(self, token_hash: str) -> str:
        """HASH: sid, uid, state (live|used), used_ms, successor; TTL = refresh TTL."""
        return f"{self.prefix}:rt:{token_hash}"
