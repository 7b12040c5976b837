"""The snapshot scripts, declared: a stream's state with its position (``follow.py``); a
partition's in pages."""

from __future__ import annotations

from revocast.store.contracts import Contract

SNAPSHOT_PARTITION = Contract(
    "snapshot_partition", "none", list,
    keys=("EVENTS", "CHAIN", "EPOCH", "HEARTBEAT", "REVOKED_SESSIONS", "REVOKED_USERS",
          "USERS_UNTIL", "REVOKED_ROLES", "ROLES_UNTIL"),
    args=(("after_sessions", str), ("after_users", str), ("after_roles", str), ("page", int)),
)  # fmt: skip

SNAPSHOT_GLOBAL = Contract(
    "snapshot_global", "none", list,
    keys=("EVENTS", "CHAIN", "EPOCH", "HEARTBEAT", "REVOKED_KEYS", "JWKS"),
)  # fmt: skip
