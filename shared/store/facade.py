"""``Store``: one deployment's state, by aggregate: what the issuer and the operators use."""

from __future__ import annotations

from revocast.keyspace import Keyspace
from revocast.store.authority import Authority
from revocast.store.backend import Backend
from revocast.store.clients import Clients
from revocast.store.presence import Presence
from revocast.store.sessions import Sessions
from revocast.store.signals import Signals
from revocast.store.signing import Signing
from revocast.store.streams import Streams
from revocast.store.users import Users


class Store:
    """The aggregates of one deployment, over one ``Backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.sessions = Sessions(backend)
        self.authority = Authority(backend, self.sessions)
        self.users = Users(backend, self.sessions, self.authority)
        self.signing = Signing(backend)
        self.clients = Clients(backend)
        self.presence = Presence(backend)
        self.signals = Signals(backend)
        self.streams = Streams(backend)

    @property
    def keys(self) -> Keyspace:
        """The key layout (``Backend.keys``)."""
        return self.backend.keys
