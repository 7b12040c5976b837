"""Clients: the registered OAuth clients (one hash in the global slot, records in JSON)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import WatchError

from revocast.store.backend import Backend
from revocast.store.clients import keys as client_keys


class Clients:
    """The registered clients of one deployment."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def _key(self) -> str:
        return client_keys.clients(self.backend.keys.global_)

    async def add(self, client_id: str, record: str) -> bool:
        """Register a client; False if the id is taken."""
        key = self._key
        return bool(await self.backend.on_primary(key, lambda c: c.hsetnx(key, client_id, record)))

    async def replace(self, client_id: str, old: str, new: str) -> bool:
        """Store ``new`` as the client's record if it is still ``old``; False if it changed or
        went meanwhile (a removed client stays removed)."""
        key = self._key

        async def work(client: Redis) -> bool:
            async with client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    if await pipe.hget(key, client_id) != old:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, client_id, new)
                    await pipe.execute()
                    return True
                except WatchError:
                    return False

        return await self.backend.on_primary(key, work)

    async def remove(self, client_id: str) -> bool:
        key = self._key
        return bool(await self.backend.on_primary(key, lambda c: c.hdel(key, client_id)))

    async def get(self, client_id: str) -> str | None:
        """One registered client's record (JSON), or None."""
        return await self.backend.hget(self._key, client_id)

    async def every(self) -> dict[str, str]:
        """Every registered client: client_id -> record (JSON)."""
        return await self.backend.hgetall(self._key)
