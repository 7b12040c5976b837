"""The clients aggregate's key name, in the global slot (placement: ``revocast.keyspace``)."""

from __future__ import annotations

from revocast.keyspace import GlobalKeys


def clients(g: GlobalKeys) -> str:
    """HASH client_id -> client record (JSON; a confidential one's secret hashed)."""
    return f"{g.prefix}:clients"
