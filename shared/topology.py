"""Which Redis server to talk to for a key: one server, Sentinel, or Cluster.

Every caller names the key it is about to use; ``primary(key)`` returns a
client whose connections go to the primary serving that key, ``reader(key)`` one
for reads (a replica of that primary with ``read_from_replicas``, else the
primary). After a failure the caller calls ``invalidate()``: Sentinel clients
ask the sentinels again on their next connection, and the cluster map is read
again from any node that answers. No command is retried here, because only the
caller knows whether repeating it is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection, ConnectionPool, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisError

from revocast.errors import StoreUnavailable
from revocast.redis_url import RedisUrl

log = logging.getLogger("revocast.redis")

CLUSTER_MAP_MIN_AGE_S = 0.05  # re-read the slot map at most this often after failures
# ... and at least this often anyway: CLUSTER SLOTS lists a replica only once it has
# replicated something, and a node back from a failover rejoins as a replica.
CLUSTER_MAP_MAX_AGE_S = 5.0
CONNECT_TIMEOUT_S = 2.0
# redis-py 8 caps a pool at 100 connections and then fails calls (MaxConnectionsError). An
# issuer holds one through each revocation's WAIT, a verifier one per stream it follows:
# the server's maxclients is the real limit.
MAX_CONNECTIONS = 10_000


def client_options(url: RedisUrl, socket_timeout_s: float) -> dict[str, Any]:
    """What every revocast connection uses: decoded replies and no hidden retries."""
    return {
        "decode_responses": True,
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": min(socket_timeout_s, CONNECT_TIMEOUT_S),
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "max_connections": MAX_CONNECTIONS,
        "username": url.username,
        "password": url.password,
    }


class Topology(ABC):
    """Clients for the servers behind one ``REDIS_URL``; close with ``aclose()``."""

    kind: str

    def __init__(self, url: RedisUrl, *, read_from_replicas: bool) -> None:
        self.url = url
        self.read_from_replicas = read_from_replicas

    async def start(self) -> None:  # noqa: B027 (only the cluster has something to learn)
        """Learn the servers (the cluster's slot map); a no-op for the others."""

    @abstractmethod
    async def primary(self, key: str) -> Redis:
        """A client to the primary that serves ``key``."""

    @abstractmethod
    async def reader(self, key: str) -> Redis:
        """A client for reads of ``key``: a replica with ``read_from_replicas``."""

    def invalidate(self) -> None:  # noqa: B027 (only the cluster keeps a map to refresh)
        """A call failed in a way that may mean the servers changed roles."""

    @abstractmethod
    def clients(self) -> list[Redis]:
        """Every client made so far (to close them, or to drop their connections)."""

    @property
    def default_min_replicas(self) -> int:
        """Replicas that must confirm a revocation unless configured: one if there are any."""
        return 0 if self.kind == "single" else 1

    async def disconnect(self) -> None:
        """Drop every connection at once: a blocked read fails and its loop can end."""
        for client in self.clients():
            with contextlib.suppress(Exception):
                await client.connection_pool.disconnect()

    async def aclose(self) -> None:
        for client in self.clients():
            with contextlib.suppress(Exception):
                await client.aclose()


class SingleTopology(Topology):
    """One server: every key lives there. It may itself be a replica (a verifier pointed at
    one): ``read_from_replicas`` then says so, and freshness comes from the heartbeat."""

    kind = "single"

    def __init__(self, url: RedisUrl, *, read_from_replicas: bool, socket_timeout_s: float) -> None:
        super().__init__(url, read_from_replicas=read_from_replicas)
        options = client_options(url, socket_timeout_s)
        del options["username"], options["password"]  # the URL carries its own
        self._client = Redis.from_url(url.url, **options)

    async def primary(self, key: str) -> Redis:
        return self._client

    async def reader(self, key: str) -> Redis:
        return self._client

    def clients(self) -> list[Redis]:
        return [self._client]


class _Sentinels(Sentinel):
    """redis-py's Sentinel, with one discovery at a time.

    After an answer, redis-py moves the sentinel that gave it to the front of its list by an
    index read before its await: two discoveries at once (every new connection runs one) can
    leave one sentinel in the list twice and drop another. After failovers that was seen
    here: the dropped sentinel was no longer asked, nor closed (its connection leaked).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._discovery = asyncio.Lock()

    async def discover_master(self, service_name: str) -> Any:
        async with self._discovery:
            return await super().discover_master(service_name)

    async def discover_slaves(self, service_name: str) -> Any:
        async with self._discovery:
            return await super().discover_slaves(service_name)


class SentinelTopology(Topology):
    """A primary and its replicas, found through the sentinels on every new connection."""

    kind = "sentinel"

    def __init__(self, url: RedisUrl, *, read_from_replicas: bool, socket_timeout_s: float) -> None:
        super().__init__(url, read_from_replicas=read_from_replicas)
        sentinel_options: dict[str, Any] = {
            "socket_timeout": min(socket_timeout_s, CONNECT_TIMEOUT_S),
            "socket_connect_timeout": min(socket_timeout_s, CONNECT_TIMEOUT_S),
            "username": url.sentinel_username,
            "password": url.sentinel_password,
            "decode_responses": True,
            **url.tls_options(),
        }
        self._sentinel = _Sentinels(
            list(url.nodes), sentinel_kwargs=sentinel_options, **client_options(url, 5.0)
        )
        self._sentinel_clients: list[Redis] = list(self._sentinel.sentinels)
        options = client_options(url, socket_timeout_s) | {"db": url.db} | url.tls_options()
        self._primary: Redis = self._sentinel.master_for(url.master_name, **options)
        self._reader: Redis = (
            self._sentinel.slave_for(url.master_name, **options)
            if read_from_replicas
            else self._primary
        )

    async def primary(self, key: str) -> Redis:
        return self._primary

    async def reader(self, key: str) -> Redis:
        return self._reader

    def clients(self) -> list[Redis]:
        return list({id(c): c for c in (self._primary, self._reader)}.values())

    async def aclose(self) -> None:
        await super().aclose()
        for sentinel in self._sentinel_clients:
            with contextlib.suppress(Exception):
                await sentinel.aclose()


# redis-py 5 sets a connection up in on_connect; later ones in on_connect_check_health, which
# on_connect then only calls.
_SET_UP_IN_ON_CONNECT = not hasattr(Connection, "on_connect_check_health")


class _ReadOnlyConnection(Connection):
    """A cluster replica serves reads only to connections that said READONLY."""

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await super().on_connect_check_health(check_health)
        await self._read_only()

    async def on_connect(self) -> None:
        await super().on_connect()
        if _SET_UP_IN_ON_CONNECT:
            await self._read_only()

    async def _read_only(self) -> None:
        await self.send_command("READONLY", check_health=False)
        await self.read_response()


class _ReadOnlySSLConnection(_ReadOnlyConnection, SSLConnection):
    pass


@dataclass(frozen=True, slots=True)
class _SlotRange:
    start: int
    end: int
    primary: tuple[str, int]
    replicas: tuple[tuple[str, int], ...]


class ClusterTopology(Topology):
    """Redis Cluster: a slot map read with CLUSTER SLOTS, one client per node.

    Each reader sticks to one replica per shard, picked at random, so that many
    verifiers spread over the replicas.
    """

    kind = "cluster"

    def __init__(self, url: RedisUrl, *, read_from_replicas: bool, socket_timeout_s: float) -> None:
        super().__init__(url, read_from_replicas=read_from_replicas)
        self._options = client_options(url, socket_timeout_s) | url.tls_options()
        self._ranges: list[_SlotRange] = []
        self._clients: dict[tuple[str, int, bool], Redis] = {}
        self._replica_pick: dict[tuple[str, int], tuple[str, int]] = {}
        self._stale = True
        self._refreshed_at = -1.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._refresh()

    def invalidate(self) -> None:
        self._stale = True

    async def primary(self, key: str) -> Redis:
        shard = await self._shard(key)
        return self._client(shard.primary, readonly=False)

    async def reader(self, key: str) -> Redis:
        shard = await self._shard(key)
        if not self.read_from_replicas or not shard.replicas:
            return self._client(shard.primary, readonly=False)
        pick = self._replica_pick.get(shard.primary)
        if pick not in shard.replicas:
            pick = random.choice(shard.replicas)  # noqa: S311 (load spreading, not secrecy)
            self._replica_pick[shard.primary] = pick
        return self._client(pick, readonly=True)

    def clients(self) -> list[Redis]:
        return list(self._clients.values())

    def shard_of(self, key: str) -> tuple[str, int] | None:
        """The primary's address for ``key`` in the current map (for tests and metrics)."""
        slot = key_slot(key.encode())
        for shard in self._ranges:
            if shard.start <= slot <= shard.end:
                return shard.primary
        return None

    async def _shard(self, key: str) -> _SlotRange:
        age = time.monotonic() - self._refreshed_at
        if age >= CLUSTER_MAP_MAX_AGE_S or (self._stale and age >= CLUSTER_MAP_MIN_AGE_S):
            self._stale = True
            await self._refresh()
        slot = key_slot(key.encode())
        for shard in self._ranges:
            if shard.start <= slot <= shard.end:
                return shard
        self._stale = True
        raise StoreUnavailable(
            "no Redis cluster node serves this data now (a resharding?): retry in a moment"
        )

    def _client(self, address: tuple[str, int], *, readonly: bool) -> Redis:
        found = self._clients.get((*address, readonly))
        if found is None:
            options = dict(self._options)
            if readonly:
                tls = bool(options.pop("ssl", False))
                pool = ConnectionPool(
                    connection_class=_ReadOnlySSLConnection if tls else _ReadOnlyConnection,
                    host=address[0],
                    port=address[1],
                    **options,
                )
                found = Redis.from_pool(pool)  # closing the client closes its pool
            else:
                found = Redis(host=address[0], port=address[1], **options)
            self._clients[(*address, readonly)] = found
        return found

    async def _refresh(self) -> None:
        async with self._lock:
            if not self._stale:
                return  # another caller refreshed while we waited
            self._refreshed_at = time.monotonic()
            known = [shard.primary for shard in self._ranges]
            known += [replica for shard in self._ranges for replica in shard.replicas]
            candidates = list(dict.fromkeys([*known, *self.url.nodes]))
            errors = []
            for address in candidates:
                try:
                    client = self._client(address, readonly=False)
                    reply = await client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
                except (RedisError, OSError) as exc:
                    errors.append(f"{address[0]}:{address[1]} {type(exc).__name__}")
                    continue
                ranges = _parse_slots(reply)
                if ranges:
                    self._ranges = ranges
                    self._stale = False
                    return
            # Node addresses are for the log, not for HTTP clients.
            log.warning("no cluster node gave a slot map: %s", ", ".join(errors))
            raise StoreUnavailable(
                f"none of the {len(errors)} Redis cluster nodes tried answered (the log names "
                "them): check REDIS_URL and that the cluster is up"
            )


def _parse_slots(reply: list[Any]) -> list[_SlotRange]:
    """CLUSTER SLOTS: [start, end, [host, port, id, ...], replica...]; failed replicas absent."""
    ranges = []
    for entry in reply:
        start, end, primary, *replicas = entry
        ranges.append(
            _SlotRange(
                int(start),
                int(end),
                (str(primary[0]), int(primary[1])),
                tuple((str(r[0]), int(r[1])) for r in replicas),
            )
        )
    return sorted(ranges, key=lambda r: r.start)


def connect(
    url: RedisUrl, *, read_from_replicas: bool = False, socket_timeout_s: float = 5.0
) -> Topology:
    """The topology a parsed ``REDIS_URL`` names (not yet started)."""
    if url.kind == "sentinel":
        return SentinelTopology(
            url, read_from_replicas=read_from_replicas, socket_timeout_s=socket_timeout_s
        )
    if url.kind == "cluster":
        return ClusterTopology(
            url, read_from_replicas=read_from_replicas, socket_timeout_s=socket_timeout_s
        )
    return SingleTopology(
        url, read_from_replicas=read_from_replicas, socket_timeout_s=socket_timeout_s
    )
