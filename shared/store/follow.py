"""What a verifier reads: each stream's snapshot, its entries, and where it ends.

With ``read_from_replicas`` these go to a replica of the stream's primary; the
snapshot and the status then carry the primary's heartbeat, so that a lagging
replica shows as stale (DESIGN.md invariant 11). No script runs in the steady
state: entries come from ``XREAD``, the status from ``MGET`` and ``TIME``. The one write is
the verifier's receipt (``revocast.proof``), to the global slot's primary.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from revocast.keyspace import GLOBAL, Keyspace, StreamKeys
from revocast.proof import Receipt
from revocast.store.backend import Backend
from revocast.store.contracts import ScriptCall
from revocast.store.presence import Presence
from revocast.store.records import Snapshot, Status
from revocast.store.streams import contracts

Entries = list[tuple[str, dict[str, str]]]


class Follow:
    """Snapshot, poll and wait on one deployment's streams."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.presence = Presence(backend)

    @property
    def on_replicas(self) -> bool:
        return self.backend.topology.read_from_replicas

    async def start(self) -> Keyspace:
        return await self.backend.start()

    async def interrupt(self) -> None:
        """Drop every connection, so that a blocked wait fails at once."""
        await self.backend.topology.disconnect()

    def snapshot_script(self, stream: StreamKeys) -> ScriptCall[list[Any]]:
        """The call that snapshots ``stream``."""
        head = {
            "EVENTS": stream.events,
            "CHAIN": stream.chain,
            "EPOCH": stream.epoch,
            "HEARTBEAT": stream.heartbeat,
        }
        if stream.name == GLOBAL:
            g = self.backend.keys.global_
            keys = {**head, "REVOKED_KEYS": g.revoked_keys, "JWKS": g.jwks}
            return contracts.SNAPSHOT_GLOBAL.call(keys=keys)
        p = self.backend.keys.partition(int(stream.name.removeprefix("p")))
        return contracts.SNAPSHOT_PARTITION.call(
            keys={
                **head,
                "REVOKED_SESSIONS": p.revoked_sessions,
                "REVOKED_USERS": p.revoked_users,
                "USERS_UNTIL": p.revoked_users_until,
                "REVOKED_ROLES": p.revoked_roles,
                "ROLES_UNTIL": p.revoked_roles_until,
            }
        )

    async def snapshot(self, stream: StreamKeys) -> Snapshot:
        """The stream's revocation state and position, read in one step."""
        reply = await self.backend.call_on_reader(self.snapshot_script(stream), stream.events)
        epoch, heartbeat, now, last_id, link, *state = reply
        position = {
            "stream": stream.name,
            "epoch": epoch,
            "heartbeat_ms": _int_or_none(heartbeat),
            "now_ms": int(now),
            "last_id": last_id,
            "link": link,
        }
        if stream.name == GLOBAL:
            revoked, jwks = state
            return Snapshot(**position, revoked_keys=_scores(revoked), jwks=_pairs(jwks))
        sessions, users, roles = state
        return Snapshot(
            **position, sessions=_scores(sessions), users=_triples(users), roles=_triples(roles)
        )

    async def status(self, stream: StreamKeys) -> Status:
        """The stream's last link, the epoch, the primary's heartbeat and the server's time."""

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.mget([stream.chain, stream.epoch, stream.heartbeat])
                pipe.time()
                return await pipe.execute()

        (link, epoch, heartbeat), (seconds, micros) = await self.backend.on_reader(
            stream.events, read
        )
        return Status(link, epoch, _int_or_none(heartbeat), seconds * 1000 + micros // 1000)

    async def hand_in_receipt(self, receipt: Receipt, ttl_ms: int) -> None:
        """Write this verifier's receipt (``Presence``: the liveness registry)."""
        await self.presence.hand_in_receipt(receipt, ttl_ms)

    async def withdraw_receipt(self, instance_id: str) -> None:
        await self.presence.withdraw_receipt(instance_id)

    async def read(
        self, stream: StreamKeys, after_id: str, count: int, block_ms: int | None
    ) -> Entries:
        """``XREAD``: entries after ``after_id``; with ``block_ms``, waiting that long for one."""
        reply = await self.backend.on_reader(
            stream.events,
            lambda client: client.xread({stream.events: after_id}, count=count, block=block_ms),
        )
        entries: Entries = []
        for _name, found in cast(list[tuple[str, Entries]], reply or []):
            entries.extend(found)
        return entries


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)


def _scores(flat: list[str]) -> dict[str, int]:
    """A WITHSCORES reply: member -> integer score (Redis may send it as a float)."""
    return {flat[i]: int(float(flat[i + 1])) for i in range(0, len(flat), 2)}


def _triples(flat: list[str]) -> dict[str, tuple[int, int]]:
    return {flat[i]: (int(flat[i + 1]), int(float(flat[i + 2]))) for i in range(0, len(flat), 3)}


def _pairs(flat: list[str]) -> dict[str, str]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
