"""What a deployment chooses that its scripts read (the token lifetime, the stream's retention,
the login limits...): rendered once into each of its scripts as Lua constants
(``local LIFETIME_MS = 303000``), never sent as ARGV on every call.

A ``Backend`` assembles its scripts with its own ``Constants``, so two deployments in one
process get their own texts and SHAs. What an actor varies (a revocation budget) stays an
argument; what never varies is in ``revocast.lifetimes``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from revocast.lifetimes import DAY_S, SECOND_MS
from revocast.settings import Settings


@dataclass(frozen=True, slots=True)
class Constants:
    """One deployment's values, named as the scripts read them (upper-cased)."""

    lifetime_ms: int  # a revocation is kept until every token it covers has expired
    retention_ms: int  # stream entries older than this are trimmed
    refresh_ttl_s: int  # a session and its refresh token, sliding on each refresh
    grace_ms: int  # a refresh token used again within this is a retry, not a replay
    max_sessions: int  # per user; 0: no limit
    login_client_limit: int  # attempts per client address and window; 0: none
    login_pair_limit: int  # failures per user and address and window; 0: none
    login_user_limit: int  # failures per user before the delay; 0: none
    login_window_s: int
    login_max_delay_ms: int
    login_memory_s: int  # a username's failures, after its last attempt
    login_known_ms: int  # an address the user logged in from is known this long; 0: none

    @classmethod
    def of(cls, settings: Settings) -> Constants:
        tokens, throttle = settings.tokens, settings.throttle
        return cls(
            lifetime_ms=tokens.revocation_lifetime_ms,
            retention_ms=tokens.stream_retention_ms,
            refresh_ttl_s=tokens.refresh_ttl_s,
            grace_ms=int(tokens.refresh_grace_s * 1000),
            max_sessions=settings.limits.max_sessions_per_user,
            login_client_limit=throttle.login_max_attempts_per_client,
            login_pair_limit=throttle.login_max_failures_per_user_address,
            login_user_limit=throttle.login_max_failures_per_user,
            login_window_s=throttle.login_window_s,
            login_max_delay_ms=throttle.login_user_max_delay_s * SECOND_MS,
            login_memory_s=throttle.login_user_memory_s,
            login_known_ms=throttle.login_known_address_days * DAY_S * SECOND_MS,
        )

    def lua(self) -> str:
        """The values as Lua locals, the block every script of this deployment starts with."""
        lines = ["-- this deployment's settings: generated from revocast.store.constants"]
        lines += [f"local {f.name.upper()} = {getattr(self, f.name)}" for f in fields(self)]
        return "\n".join(lines)


def lua_names() -> tuple[str, ...]:
    """The constants' names in Lua."""
    return tuple(f.name.upper() for f in fields(Constants))
