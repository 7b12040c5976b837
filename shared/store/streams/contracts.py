"""The snapshot scripts, declared: a stream's state, read in one step (``follow.py``)."""

from __future__ import annotations

from revocast.store.contracts import Contract

SNAPSHOT_PARTITION = Contract(
    "snapshot_partition", "none", list,
    keys=("EVENTS", "CHAIN", "EPOCH", "HEARTBEAT", "REVOKED_SESSIONS", "REVOKED_USERS",
          "USERS_UNTIL", "REVOKED_ROLES", "ROLES_UNTIL"),
)  # fmt: skip

SNAPSHOT_GLOBAL = Contract(
    "snapshot_global", "none", list,
    keys=("EVENTS", "CHAIN", "EPOCH", "HEARTBEAT", "REVOKED_KEYS", "JWKS"),
)  # fmt: skip
