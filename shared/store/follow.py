"""What a verifier reads: each stream's snapshot, its entries, and a blocking wait for more.

With ``read_from_replicas`` these go to a replica of the stream's primary; the
replies then carry the primary's heartbeat, so that a lagging replica shows as
stale (DESIGN.md invariant 11).
"""

from __future__ import annotations

from typing import cast

from revocast.keyspace import GLOBAL, Keyspace, StreamKeys
from revocast.store.backend import Backend
from revocast.store.records import Poll, Snapshot

Entries = list[tuple[str, dict[str, str]]]


class Follow:
    """Snapshot, poll and wait on one deployment's streams."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def on_replicas(self) -> bool:
        return self.backend.topology.read_from_replicas

    async def start(self) -> Keyspace:
        return await self.backend.start()

    async def interrupt(self) -> None:
        """Drop every connection, so that a blocked wait fails at once."""
        await self.backend.topology.disconnect()

    def snapshot_script(self, stream: StreamKeys) -> tuple[str, list[str]]:
        """The script that snapshots ``stream``, and its keys."""
        head = [stream.events, stream.epoch, stream.heartbeat]
        if stream.name == GLOBAL:
            g = self.backend.keys.global_
            return "snapshot_global", [*head, g.revoked_keys, g.jwks]
        p = self.backend.keys.partition(int(stream.name.removeprefix("p")))
        return "snapshot_partition", [
            *head,
            p.revoked_sessions,
            p.revoked_users,
            p.revoked_users_until,
            p.revoked_roles,
            p.revoked_roles_until,
        ]

    async def snapshot(self, stream: StreamKeys) -> Snapshot:
        """The stream's revocation state and position, read in one step."""
        script, keys = self.snapshot_script(stream)
        reply = await self.backend.call(script, stream.events, keys, [], replica=True)
        epoch, heartbeat, now, added, last_id, *state = reply
        position = {
            "stream": stream.name,
            "epoch": epoch,
            "heartbeat_ms": _int_or_none(heartbeat),
            "now_ms": int(now),
            "last_id": last_id,
            "entries_added": int(added),
        }
        if stream.name == GLOBAL:
            revoked, jwks = state
            return Snapshot(**position, revoked_keys=_scores(revoked), jwks=_pairs(jwks))
        sessions, users, roles = state
        return Snapshot(
            **position, sessions=_scores(sessions), users=_triples(users), roles=_triples(roles)
        )

    async def poll(self, stream: StreamKeys, after_id: str, count: int) -> Poll:
        """Entries after ``after_id`` and the stream's position, in one step."""
        reply = await self.backend.call(
            "poll",
            stream.events,
            [stream.events, stream.epoch, stream.heartbeat],
            [after_id, count],
            replica=True,
        )
        epoch, heartbeat, now, exists, added, length, first_id, last_id, entries, at = reply
        return Poll(
            epoch=epoch,
            heartbeat_ms=_int_or_none(heartbeat),
            now_ms=int(now),
            stream_exists=bool(exists),
            entries_added=int(added),
            length=int(length),
            first_id=first_id,
            last_id=last_id,
            entries=[(entry_id, _pairs(fields)) for entry_id, fields in entries],
            at_entry=_pairs(at) if at else None,
        )

    async def wait(self, stream: StreamKeys, after_id: str, count: int, block_ms: int) -> Entries:
        """``XREAD BLOCK``: entries after ``after_id``, or none once ``block_ms`` passed."""
        reply = await self.backend.read(
            stream.events,
            lambda client: client.xread({stream.events: after_id}, count=count, block=block_ms),
            replica=True,
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
