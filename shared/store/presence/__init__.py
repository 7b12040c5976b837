"""Presence: who is live, in one registry: issuers (their record, with a TTL, and a sorted
set of when each was last seen) and verifiers (their receipts, ``revocast.proof``).

Each entry expires when its process stops renewing it; the sorted sets are pruned past
their horizons (``revocast.lifetimes``).
"""

from __future__ import annotations

import logging
import time
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from revocast.keyspace import GlobalKeys
from revocast.lifetimes import ISSUERS_HORIZON_MS, VERIFIERS_HORIZON_MS
from revocast.proof import Receipt, encode
from revocast.proof import decode as decode_receipt
from revocast.store.backend import Backend
from revocast.store.presence import keys as presence_keys

log = logging.getLogger("revocast.store")


class Presence:
    """The live issuers and verifiers of one deployment."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def _global(self) -> GlobalKeys:
        return self.backend.keys.global_

    # Issuers -----------------------------------------------------------------------------

    async def announce_issuer(self, issuer_id: str, record: dict[str, str], ttl_s: int) -> None:
        """Say this issuer is live (and which keys it holds) for the next ``ttl_s`` seconds."""
        g = self._global
        now_ms = int(time.time() * 1000)

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                fields: dict[FieldT, EncodableT] = dict(record.items())
                pipe.hset(presence_keys.issuer(g, issuer_id), mapping=fields)
                pipe.expire(presence_keys.issuer(g, issuer_id), ttl_s)
                _seen(pipe, presence_keys.issuers(g), issuer_id, now_ms, ISSUERS_HORIZON_MS)
                await pipe.execute()

        await self.backend.on_primary(presence_keys.issuers(g), work)

    async def forget_issuer(self, issuer_id: str) -> None:
        g = self._global
        await self._leave(presence_keys.issuers(g), presence_keys.issuer(g, issuer_id), issuer_id)

    async def live_issuers(self) -> dict[str, dict[str, str]]:
        """Issuer id -> its record (host, pid, started_ms, kids), for every live issuer."""
        g = self._global

        async def read(client: Redis) -> dict[str, dict[str, str]]:
            ids = cast(list[str], await client.zrange(presence_keys.issuers(g), 0, -1))
            async with client.pipeline(transaction=False) as pipe:
                for issuer_id in ids:
                    pipe.hgetall(presence_keys.issuer(g, issuer_id))
                records = cast(list[dict[str, str]], await pipe.execute())
            return {i: record for i, record in zip(ids, records, strict=True) if record}

        return await self.backend.on_primary(presence_keys.issuers(g), read)

    # Verifiers ---------------------------------------------------------------------------

    async def hand_in_receipt(self, receipt: Receipt, ttl_ms: int) -> None:
        """Write a verifier's receipt (to the primary: the only thing a verifier writes)."""
        g = self._global

        async def write(client: Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(presence_keys.verifier(g, receipt.instance_id), encode(receipt), px=ttl_ms)
                _seen(pipe, presence_keys.verifiers(g), receipt.instance_id,
                      receipt.reported_ms, VERIFIERS_HORIZON_MS)  # fmt: skip
                await pipe.execute()

        await self.backend.on_primary(presence_keys.verifiers(g), write)

    async def withdraw_receipt(self, instance_id: str) -> None:
        g = self._global
        index = presence_keys.verifiers(g)
        await self._leave(index, presence_keys.verifier(g, instance_id), instance_id)

    async def _leave(self, index: str, record: str, member: str) -> None:
        """A member (an issuer, a verifier) stops being live: its record and its place in the
        index go together."""

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(record)
                pipe.zrem(index, member)
                await pipe.execute()

        await self.backend.on_primary(index, work)

    async def receipts(self) -> list[Receipt]:
        """The receipt of every live verifier (a lapsed one has expired: it is left out)."""
        g = self._global

        async def read(client: Redis) -> list[str | None]:
            ids = cast(list[str], await client.zrange(presence_keys.verifiers(g), 0, -1))
            if not ids:
                return []
            return cast(
                list[str | None], await client.mget([presence_keys.verifier(g, i) for i in ids])
            )

        found = await self.backend.on_primary(presence_keys.verifiers(g), read)
        receipts = []
        for raw in filter(None, found):
            try:
                receipts.append(decode_receipt(raw))
            except ValueError:  # another version's, or damaged: not a proof of anything
                log.warning("an unreadable verifier receipt was left out")
        return receipts


def _seen(pipe: Pipeline, index: str, member: str, at_ms: int, horizon_ms: int) -> None:
    """Mark a member seen at ``at_ms`` in the index, and drop those not seen within the
    horizon (long gone: their records expired already)."""
    pipe.zadd(index, {member: at_ms})
    pipe.zremrangebyscore(index, "-inf", at_ms - horizon_ms)
