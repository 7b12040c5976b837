"""The sessions' scripts, declared: login, refresh, revocation, the login throttle."""

from __future__ import annotations

from revocast.store.contracts import INT_OR_NONE, Contract

LOGIN = Contract(
    "login", "partition", list,
    keys=("USER", "SESSIONS", "SESSION", "RT", "FAILURES", "PAIR", "KNOWN"),
    args=(("uid", str), ("sid", str), ("user_agent", str), ("client", str), ("client_id", str),
          ("scope", str), ("address", str)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip

REFRESH = Contract(
    "refresh", "partition", list,
    keys=("RT", "USER", "SESSIONS", "SESSION", "NEXT_RT"),
    args=(("sid", str), ("uid", str), ("sealed", str), ("client_id", str)),
)  # fmt: skip

REVOKE_SESSION = Contract(
    "revoke_session", "partition", str,
    keys=("SESSION", "SESSIONS", "BUDGET"),
    args=(("sid", str), ("uid", str), ("reason", str), ("issued_ms", INT_OR_NONE),
          ("limit", int), ("actor_kind", str)),
)  # fmt: skip

REVOKE_USER = Contract(
    "revoke_user", "partition", str,
    keys=("SESSIONS", "BUDGET"),
    args=(("uid", str), ("reason", str), ("covers_ms", INT_OR_NONE), ("limit", int),
          ("actor_kind", str)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip

END_SESSION = Contract(
    "end_session", "partition", str,
    keys=("SESSION", "SESSIONS", "USER", "BUDGET"),
    args=(("sid", str), ("expected", str), ("owner", str), ("actor", str), ("reason", str),
          ("limit", int), ("actor_kind", str)),
)  # fmt: skip

THROTTLE = Contract("throttle", "none", int, keys=("COUNTER",))

LOGIN_ATTEMPT = Contract(
    "login_attempt", "none", list,
    keys=("FAILURES", "PAIR", "KNOWN", "USERNAME"),
    optional=("USER", "SESSIONS"),  # left out when no user is expected
    args=(("expected", str), ("address", str)),
)  # fmt: skip

UNLOCK_LOGIN = Contract(
    "unlock_login", "partition", list,
    keys=("FAILURES",),
    args=(("uid", str), ("actor", str), ("reason", str)),
)  # fmt: skip
