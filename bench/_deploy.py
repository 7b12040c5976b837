"""The three Redis topologies revocast runs on, started as real servers for a benchmark.

``single`` is one redis-server; ``sentinel`` a primary, one replica and three sentinels
(``SentinelGroup``); ``cluster`` three shards of a primary and one replica each
(``ClusterGroup``). All on loopback, appendonly off, in a temporary directory, and every
server dies with this process. The benchmark sees the same URL forms a deployment uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from revocast_tools.redis_server import RedisServer
from revocast_tools.topologies import ClusterGroup, SentinelGroup

KINDS = ("single", "sentinel", "cluster")
# Enough for thousands of blocking readers (Redis lowers it to the open-file limit).
MAXCLIENTS = 16_000


@dataclass
class Deployment:
    """A running topology: its ``REDIS_URL`` and the servers behind it, by role."""

    kind: str
    url: str
    primaries: list[RedisServer]
    replicas: list[RedisServer] = field(default_factory=list)
    sentinels: list[RedisServer] = field(default_factory=list)

    @property
    def data_nodes(self) -> list[RedisServer]:
        return [*self.primaries, *self.replicas]

    def version(self) -> str:
        """``redis-server 7.0.15``: the binary and the version the first primary reports."""
        server = self.primaries[0]
        client = redis.Redis(port=server.port, decode_responses=True)
        try:
            version = str(client.info("server").get("redis_version", "?"))
        finally:
            client.close()
        return f"{Path(server.binary).name} {version}"


@contextlib.contextmanager
def deployment(kind: str, base_dir: Path, extra_args: Sequence[str] = ()) -> Iterator[Deployment]:
    """Start the topology ``kind``; stop every server when the block ends."""
    args = ["--maxclients", str(MAXCLIENTS), *extra_args]
    if kind == "single":
        server = RedisServer(base_dir / "single", appendonly=False, extra_args=args)
        server.start()
        try:
            yield Deployment(kind, server.url, [server])
        finally:
            server.stop()
    elif kind == "sentinel":
        with SentinelGroup(base_dir / "sentinel", extra_args=args) as group:
            primary = group.primary()
            yield Deployment(kind, group.url, [primary], group.replicas(), list(group.sentinels))
    elif kind == "cluster":
        with ClusterGroup(base_dir / "cluster", extra_args=args) as cluster:
            primaries = cluster.primaries()
            replicas = [r for p in primaries for r in cluster.replicas_of(p)]
            yield Deployment(kind, cluster.url, primaries, replicas)
    else:
        raise ValueError(f"unknown topology {kind!r}; one of {KINDS}")
