"""The revocation streams and the audit trail, as the issuer and the operators read them
(from the primaries); what verifiers read is ``follow.py``, whose snapshot scripts these
folders hold (``snapshot_*.lua``).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import Redis

from revocast.keyspace import Keyspace, StreamKeys
from revocast.proof import entry_key
from revocast.store.backend import Backend

AuditEntry = tuple[str, dict[str, str]]
Entries = list[tuple[str, dict[str, str]]]


class Streams:
    """Reads of one deployment's streams (each partition's and the global one) and audit."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    def _stream(self, stream: str) -> StreamKeys:
        for keys in self.keys.streams():
            if keys.name == stream:
                return keys
        raise KeyError(stream)

    async def last_entry(self, stream: str, before_ms: int | None = None) -> str | None:
        """Id of the last entry of ``stream`` (written before ``before_ms``, if given)."""
        events = self._stream(stream).events
        upper = "+" if before_ms is None else f"({before_ms}-0"
        reply = await self.backend.on_primary(
            events, lambda c: c.xrevrange(events, max=upper, min="-", count=1)
        )
        return str(reply[0][0]) if reply else None

    async def events_after(self, stream: str, entry_id: str, limit: int) -> Entries:
        """Up to ``limit`` entries of ``stream`` after ``entry_id``, with their fields."""
        events = self._stream(stream).events
        reply = await self.backend.on_primary(
            events, lambda c: c.xrange(events, min=f"({entry_id}", count=limit)
        )
        return [(str(i), cast(dict[str, str], f)) for i, f in reply or []]

    async def entries_after(self, stream: str, entry_id: str, limit: int) -> list[str]:
        """Ids of up to ``limit`` entries of ``stream`` after ``entry_id``."""
        return [entry_id for entry_id, _ in await self.events_after(stream, entry_id, limit)]

    async def stream_end(self, stream: str) -> tuple[str, str]:
        """(id of the stream's last entry or "0-0", the link its next entry will name), read
        in one step: where a copy of the stream from now on starts."""
        keys = self._stream(stream)

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.xrevrange(keys.events, count=1)
                pipe.get(keys.chain)
                return await pipe.execute()

        last, chain = await self.backend.on_primary(keys.events, read)
        return (str(last[0][0]) if last else "0-0"), chain or ""

    async def entries_and_link(self, stream: str, entry_id: str, limit: int) -> tuple[Entries, str]:
        """Up to ``limit`` entries of ``stream`` after ``entry_id``, and the link of its last
        entry ("" if none yet), read in one step: if the entries reach the end, the last
        one's link is that link, unless entries after ``entry_id`` were trimmed."""
        keys = self._stream(stream)

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.xrange(keys.events, min=f"({entry_id}", count=limit)
                pipe.get(keys.chain)
                return await pipe.execute()

        found, chain = await self.backend.on_primary(keys.events, read)
        entries = [(str(i), cast(dict[str, str], f)) for i, f in found or []]
        return entries, chain or ""

    async def audit_page(self, before: str, limit: int) -> list[AuditEntry]:
        """Entries of every partition and the global slot, newest first, strictly before the id
        ``before`` ("+" for the newest). Entries of other streams with the same id as the last
        one are included, so that the next page (before that id) misses none."""
        upper = before if before == "+" else f"({before}"
        streams = [self.keys.global_.audit, *(p.audit for p in self.keys.all_partitions)]

        async def page(key: str) -> list[AuditEntry]:
            return cast(
                list[AuditEntry],
                await self.backend.on_primary(
                    key, lambda c: c.xrevrange(key, upper, "-", count=limit)
                ),
            )

        pages = await asyncio.gather(*(page(key) for key in streams))
        merged = sorted(
            (entry for page in pages for entry in page), key=lambda e: entry_key(e[0]), reverse=True
        )
        if len(merged) <= limit:
            return merged
        last = entry_key(merged[limit - 1][0])
        return [entry for entry in merged if entry_key(entry[0]) >= last]
