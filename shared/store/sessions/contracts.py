"""The sessions' scripts, declared: login, refresh, revocation, the login throttle."""

from __future__ import annotations

from revocast.store.contracts import INT_OR_NONE, Contract

LOGIN = Contract(
    "login", "partition", list,
    keys=("USER", "SESSIONS", "SESSION", "RT", "FAILURES", "PAIR", "KNOWN"),
    args=(("uid", str), ("sid", str), ("refresh_ttl_s", int), ("user_agent", str),
          ("client", str), ("max_sessions", int), ("lifetime_ms", int), ("retention_ms", int),
          ("client_id", str), ("scope", str), ("address", str), ("known_ms", int),
          ("known_max", int)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip

REFRESH = Contract(
    "refresh", "partition", list,
    keys=("RT", "USER", "SESSIONS", "SESSION", "NEXT_RT"),
    args=(("sid", str), ("uid", str), ("sealed", str), ("grace_ms", int),
          ("refresh_ttl_s", int), ("lifetime_ms", int), ("retention_ms", int),
          ("client_id", str)),
)  # fmt: skip

REVOKE_SESSION = Contract(
    "revoke_session", "partition", str,
    keys=("SESSION", "SESSIONS", "BUDGET"),
    args=(("sid", str), ("uid", str), ("lifetime_ms", int), ("retention_ms", int),
          ("reason", str), ("issued_ms", INT_OR_NONE), ("limit", int),
          ("actor_kind", str)),
)  # fmt: skip

REVOKE_USER = Contract(
    "revoke_user", "partition", str,
    keys=("SESSIONS", "BUDGET"),
    args=(("uid", str), ("lifetime_ms", int), ("retention_ms", int), ("reason", str),
          ("covers_ms", INT_OR_NONE), ("limit", int),
          ("actor_kind", str)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip

END_SESSION = Contract(
    "end_session", "partition", str,
    keys=("SESSION", "SESSIONS", "USER", "BUDGET"),
    args=(("sid", str), ("expected", str), ("owner", str), ("actor", str),
          ("lifetime_ms", int), ("retention_ms", int), ("reason", str), ("limit", int),
          ("actor_kind", str)),
)  # fmt: skip

THROTTLE = Contract(
    "throttle", "none", int, keys=("COUNTER",), args=(("limit", int), ("window_s", int))
)  # fmt: skip

LOGIN_ATTEMPT = Contract(
    "login_attempt", "none", list,
    keys=("FAILURES", "PAIR", "KNOWN", "USERNAME"),
    optional=("USER", "SESSIONS"),  # left out when no user is expected
    args=(("expected", str), ("address", str), ("pair_limit", int), ("window_s", int),
          ("user_limit", int), ("max_delay_ms", int), ("memory_s", int), ("known_ms", int),
          ("sessions", bool)),
)  # fmt: skip

UNLOCK_LOGIN = Contract(
    "unlock_login", "partition", list,
    keys=("FAILURES",),
    args=(("uid", str), ("actor", str), ("reason", str), ("memory_s", int)),
)  # fmt: skip
