"""revocast's Redis state, cut by aggregate; each owns its reads, its writes, its scripts
(their Lua beside their ``contracts.py``) and its key names (its ``keys.py``;
``revocast.keyspace`` places every key: slots, streams, the fixed keys, and the user's own
keys, which three aggregates read).

- ``Backend``: transport only: topology, scripts by SHA, ``WAIT``, errors.
- ``Store``: the aggregates over one backend:
  ``users`` (records, passwords), ``sessions`` (login, refresh, revocations, the login
  throttle), ``authority`` (moderation, roles, the copies of power, the authority rule),
  ``signing`` (keys, epochs, recovery, heartbeat), ``clients``, ``presence`` (live issuers
  and verifiers' receipts), ``signals`` (IdP links and tokens, SSF queues, cursors,
  leases) and ``streams`` (the revocation streams and the audit trail, read).
- ``Follow``: what verifiers read: snapshots, polls and the blocking wait.
- ``contracts`` declares how a script is called, ``scripts`` assembles them (the prelude
  and the parts every script shares are in ``lua/``).
"""

from __future__ import annotations

from revocast.store.backend import Backend
from revocast.store.contracts import Retry
from revocast.store.facade import Store
from revocast.store.follow import Follow
from revocast.store.records import Power, RefreshResult, Snapshot, Status

# The names of the store before it was cut by aggregate: one ``Store`` serves both.
Writes = Store
Reads = Store

__all__ = [
    "Backend",
    "Follow",
    "Power",
    "Reads",
    "RefreshResult",
    "Retry",
    "Snapshot",
    "Status",
    "Store",
    "Writes",
]
