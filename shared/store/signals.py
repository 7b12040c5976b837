"""The shared-signals state the issuer writes: links to an upstream IdP's users and sessions
(back-channel logout, CAEP), and the queues of the SSF streams it transmits.

Plain commands and transactions on the global slot's keys: none of it revokes anything by
itself, so none of it is a revocation script.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from revocast.keyspace import Keyspace, upstream_digest
from revocast.store.backend import Backend

# Take the lease if free, keep it if ours: one step, so it cannot be extended for another.
_LEASE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
UPSTREAM_SESSION_TTL_S = 90 * 86_400  # refreshed sessions outlive the refresh TTL


class SignalWrites:
    """The writes of the issuer's IdP receivers (``auth.py``, ``signals.py``) and of its SSF
    transmitter (``ssf.py``, ``ssf_push.py``)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    async def claim_upstream_user(self, issuer: str, sub: str, uid: str) -> bool:
        """Link the IdP's ``sub`` to ``uid`` unless it is linked to another user: False then."""
        key = self.keys.global_.upstream_user(upstream_digest(issuer, sub))

        async def work(client: Redis) -> bool:
            await client.set(key, uid, nx=True)
            return bool(await client.get(key) == uid)

        return await self.backend.read(key, work)

    async def link_upstream_session(
        self, issuer: str, upstream_sid: str, uid: str, sid: str
    ) -> None:
        """Add ``sid`` to the local sessions the IdP's session ``upstream_sid`` ends."""
        key = self.keys.global_.upstream_session(upstream_digest(issuer, upstream_sid))

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.sadd(key, f"{uid} {sid}")
                pipe.expire(key, UPSTREAM_SESSION_TTL_S)
                await pipe.execute()

        await self.backend.read(key, work)

    async def remember_upstream_token(self, issuer: str, jti: str, ttl_s: int) -> None:
        key = self.keys.global_.upstream_token(upstream_digest(issuer, jti))
        await self.backend.read(key, lambda c: c.set(key, "1", ex=ttl_s))

    async def add_ssf_stream(self, stream_id: str, config: str, cursors: dict[str, str]) -> None:
        g = self.keys.global_

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(g.ssf_streams, stream_id, config)
                pipe.hset(g.ssf_cursor(stream_id), mapping=dict(cursors.items()))
                await pipe.execute()

        await self.backend.read(g.ssf_streams, work)

    async def remove_ssf_stream(self, stream_id: str) -> bool:
        g = self.keys.global_

        async def work(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hdel(g.ssf_streams, stream_id)
                pipe.delete(
                    g.ssf_cursor(stream_id),
                    g.ssf_queue(stream_id),
                    g.ssf_lease(stream_id),
                    g.ssf_status(stream_id),
                )
                return await pipe.execute()

        return bool((await self.backend.read(g.ssf_streams, work))[0])

    async def take_lease(self, stream_id: str, owner: str, ttl_ms: int) -> bool:
        """Whether ``owner`` delivers the push stream for the next ``ttl_ms`` (taken or kept)."""
        key = self.keys.global_.ssf_lease(stream_id)

        async def work(client: Redis) -> bool:
            return bool(await client.eval(_LEASE, 1, key, owner, ttl_ms))

        return await self.backend.read(key, work)

    async def queue_ssf_set(self, stream_id: str, entry: str) -> None:
        key = self.keys.global_.ssf_queue(stream_id)
        await self.backend.read(key, lambda c: c.rpush(key, entry))

    async def spool_ssf(
        self,
        stream_id: str,
        seen: dict[str, str],
        moved: dict[str, str],
        entries: list[str],
        loss: tuple[int, str] | None = None,
    ) -> bool:
        """Append ``entries`` to the stream's queue and move its cursors from ``seen`` to
        ``moved``, in one transaction; with ``loss`` (how many gaps, the reason), record them in
        the stream's status too. False (nothing written) if another issuer moved the cursors
        first."""
        g = self.keys.global_
        key = g.ssf_cursor(stream_id)

        async def work(client: Redis) -> bool:
            async with client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    if cast(dict[str, str], await pipe.hgetall(key)) != seen:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if entries:
                        pipe.rpush(g.ssf_queue(stream_id), *entries)
                    pipe.hset(key, mapping=dict(moved.items()))
                    if loss is not None:
                        gaps, reason = loss
                        pipe.hincrby(g.ssf_status(stream_id), "lost", gaps)
                        pipe.hset(g.ssf_status(stream_id), "reason", reason)
                    await pipe.execute()
                    return True
                except WatchError:
                    return False

        return await self.backend.read(g.ssf_streams, work)

    async def pause_ssf(self, stream_id: str, now_ms: int) -> bool:
        """Mark copying into the stream's queue paused; True if this call paused it."""
        key = self.keys.global_.ssf_status(stream_id)
        return bool(await self.backend.read(key, lambda c: c.hsetnx(key, "paused_ms", now_ms)))

    async def resume_ssf(self, stream_id: str) -> bool:
        """Clear the pause; True if this call cleared it."""
        key = self.keys.global_.ssf_status(stream_id)
        return bool(await self.backend.read(key, lambda c: c.hdel(key, "paused_ms")))

    async def ack_ssf(self, stream_id: str, entries: list[str]) -> None:
        """Drop acknowledged (or delivered) entries from the stream's queue."""
        key = self.keys.global_.ssf_queue(stream_id)

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for entry in entries:
                    pipe.lrem(key, 1, entry)
                await pipe.execute()

        await self.backend.read(key, work)
