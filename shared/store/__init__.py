"""revocast's Redis state, split along its readers.

- ``Backend``: the topology, the key layout and the scripts of one deployment;
  revoking calls are durable there.
- ``Writes``: the issuer's and the operators' changes (one script each); its ``signals``
  (``SignalWrites``) keep the upstream IdP links and the SSF queues, its ``logins``
  (``Logins``) count login attempts and find the user in the same step.
- ``Reads``: what the issuer and the operators read, from the primaries.
- ``Follow``: what verifiers read: snapshots, polls and the blocking wait.
"""

from __future__ import annotations

from revocast.store.backend import Backend, Retry
from revocast.store.follow import Follow
from revocast.store.reads import Reads
from revocast.store.records import Power, RefreshResult, Snapshot, Status
from revocast.store.writes import Writes

__all__ = [
    "Backend",
    "Follow",
    "Power",
    "Reads",
    "RefreshResult",
    "Retry",
    "Snapshot",
    "Status",
    "Writes",
]
