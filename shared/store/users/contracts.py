"""The users' scripts, declared (``revocast.store.contracts`` says how to read one)."""

from __future__ import annotations

from revocast.store.contracts import Contract

ADD_USER = Contract(
    "add_user", "partition", list,
    keys=("USERNAME", "USER"),
    args=(("uid", str), ("username", str), ("password_hash", str), ("roles_json", str),
          ("actor", str)),  # actor: '' = not audited (the issuer's own sign-up)
)  # fmt: skip

CHANGE_PASSWORD = Contract(
    "change_password", "partition", list,
    keys=("USER", "SESSIONS", "BUDGET"),
    args=(("uid", str), ("new_hash", str), ("keep_sid", str), ("actor", str), ("limit", int),
          ("actor_kind", str)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip

REMOVE_USER = Contract(
    "remove_user", "partition", list,
    keys=("USERNAME", "USER", "SESSIONS"),
    args=(("actor", str), ("uid", str), ("reason", str), ("actor_kind", str)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip
