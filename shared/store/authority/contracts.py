"""The authority's scripts, declared: moderation and the copies of a user's power."""

from __future__ import annotations

from revocast.store.contracts import Contract

MODERATE = Contract(
    "moderate", "partition", list,
    keys=("USER", "SESSIONS", "BUDGET"),
    args=(("actor", str), ("action", str), ("target", str), ("reason", str), ("roles", str),
          ("limit", int), ("actor_kind", str)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip

AUTHORITY_SYNC = Contract(
    "authority_sync", "none", int,
    keys=("AUTHORITY",),
    args=(("uid", str), ("level", str), ("version", int)),
)  # fmt: skip
