"""What a verifier reads: each stream's snapshot, its entries, and where it ends.

A partition's snapshot comes in pages (``SNAPSHOT_PAGE`` entries of each set), so that a
million revocations neither hold Redis in one script for the whole read nor pass through the
verifier's heap at once (where Python's allocator would keep megabytes of it for good).
Every page must come from a server at least as far along the stream as the first, in the
same epoch; the first page's position is the snapshot's.

With ``read_from_replicas`` these go to a replica of the stream's primary; the
snapshot and the status then carry the primary's heartbeat, so that a lagging
replica shows as stale (DESIGN.md invariant 11). No script runs in the steady
state: entries come from ``XREAD``, the status from ``MGET`` and ``TIME``. The one write is
the verifier's receipt (``revocast.proof``), to the global slot's primary.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

from redis.asyncio import Redis

from revocast.errors import StoreUnavailable
from revocast.keyspace import GLOBAL, Keyspace, StreamKeys
from revocast.proof import Receipt, entry_key
from revocast.store.backend import Backend
from revocast.store.contracts import ScriptCall
from revocast.store.presence import Presence
from revocast.store.records import Snapshot, Status
from revocast.store.streams import contracts

Entries = list[tuple[str, dict[str, str]]]
SNAPSHOT_PAGE = 1_000  # entries of each set per page: some 100 KB of reply
FIRST: tuple[str, str, str] = ("", "", "")  # the cursors of a first page (from now)
DONE = "-"  # the cursor of a set with no page left
LAST = (DONE, DONE, DONE)  # the cursors after the last page
# A page read from a replica behind the first page's is read again after these pauses
# (replicas of one primary differ by milliseconds), then the snapshot is taken again.
BEHIND_WAITS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


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

    def snapshot_script(
        self, stream: StreamKeys, after: tuple[str, str, str] = FIRST, page: int = SNAPSHOT_PAGE
    ) -> ScriptCall[list[Any]]:
        """The call that reads ``stream``'s snapshot (a partition's: the page after the
        cursors ``after`` of its sessions, users and roles)."""
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
            },
            after_sessions=after[0],
            after_users=after[1],
            after_roles=after[2],
            page=page,
        )

    async def snapshot_pages(
        self, stream: StreamKeys, page: int = SNAPSHOT_PAGE
    ) -> AsyncGenerator[Snapshot, None]:
        """The stream's revocation state, page by page; each page carries the position and
        clock of its own read, and the first page's position is the snapshot's: their union
        holds every revocation live at the first read (and perhaps later ones, which the
        stream has after that position anyway). A page from a replica behind the first page's
        is read again once it caught up (``BEHIND_WAITS``); another epoch ends the snapshot."""
        after = FIRST
        first: Snapshot | None = None
        while True:
            snapshot, following = await self._page(stream, after, page, first)
            first = first or snapshot
            yield snapshot
            after = following
            if after == LAST:
                return

    async def _page(
        self,
        stream: StreamKeys,
        after: tuple[str, str, str],
        page: int,
        first: Snapshot | None,
    ) -> tuple[Snapshot, tuple[str, str, str]]:
        call = self.snapshot_script(stream, after, page)
        for wait_s in (*BEHIND_WAITS, None):
            snapshot, following = _snapshot(
                stream.name, await self.backend.call_on_reader(call, stream.events)
            )
            if first is None:
                return snapshot, following
            if snapshot.epoch == first.epoch and (
                entry_key(snapshot.last_id) >= entry_key(first.last_id)
            ):
                return snapshot, following
            if snapshot.epoch != first.epoch or wait_s is None:
                break
            await asyncio.sleep(wait_s)
        raise StoreUnavailable(
            f"stream {stream.name}: a page of the snapshot came from a server behind its first "
            "page, or in another epoch: taking it again"
        )

    async def snapshot(self, stream: StreamKeys, page: int = SNAPSHOT_PAGE) -> Snapshot:
        """The whole snapshot in one object, at its first page's position (tests, bench)."""
        pages = [snapshot async for snapshot in self.snapshot_pages(stream, page)]
        whole = pages[0]
        for more in pages[1:]:
            whole.sessions.update(more.sessions)
            whole.users.update(more.users)
            whole.roles.update(more.roles)
        return whole

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


def _snapshot(name: str, reply: list[Any]) -> tuple[Snapshot, tuple[str, str, str]]:
    """A snapshot script's reply: the (page of the) snapshot, and the next page's cursors."""
    epoch, heartbeat, now, last_id, link, *state = reply
    position = {
        "stream": name,
        "epoch": epoch,
        "heartbeat_ms": _int_or_none(heartbeat),
        "now_ms": int(now),
        "last_id": last_id,
        "link": link,
    }
    if name == GLOBAL:
        revoked, jwks = state
        snapshot = Snapshot(**position, revoked_keys=_scores(revoked), jwks=_pairs(jwks))
        return snapshot, LAST
    sessions, users, roles, *_ = state
    snapshot = Snapshot(
        **position, sessions=_scores(sessions), users=_triples(users), roles=_triples(roles)
    )
    return snapshot, next_cursors(reply)


def next_cursors(reply: list[Any]) -> tuple[str, str, str]:
    """Where the page after a partition's snapshot page starts, from the script's reply."""
    sessions, users, roles = (cursor or DONE for cursor in reply[-3:])
    return sessions, users, roles


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)


def _scores(flat: list[str]) -> dict[str, int]:
    """A WITHSCORES reply: member -> integer score (Redis may send it as a float)."""
    return {flat[i]: int(float(flat[i + 1])) for i in range(0, len(flat), 2)}


def _triples(flat: list[str]) -> dict[str, tuple[int, int]]:
    return {flat[i]: (int(flat[i + 1]), int(float(flat[i + 2]))) for i in range(0, len(flat), 3)}


def _pairs(flat: list[str]) -> dict[str, str]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
