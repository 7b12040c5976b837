"""The presence aggregate's key names: live issuers and verifier receipts, in the global
slot (placement: ``revocast.keyspace``)."""

from __future__ import annotations

from revocast.keyspace import GlobalKeys


def issuers(g: GlobalKeys) -> str:
    """ZSET issuer id -> last seen (ms): the live issuers."""
    return f"{g.prefix}:issuers"


def issuer(g: GlobalKeys, issuer_id: str) -> str:
    """HASH: host, pid, started_ms, kids (JSON list of loaded keys); expires if it dies."""
    return f"{g.prefix}:issuer:{issuer_id}"


def verifiers(g: GlobalKeys) -> str:
    """ZSET verifier instance id -> its receipt's last renewal (ms)."""
    return f"{g.prefix}:verifiers"


def verifier(g: GlobalKeys, instance_id: str) -> str:
    """STRING: the verifier's receipt (``revocast.proof.Receipt``, JSON); expires if it dies."""
    return f"{g.prefix}:verifier:{instance_id}"
