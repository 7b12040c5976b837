"""Signing: the published keys, the active kid, each stream's epoch, recovery after a data
loss, and the heartbeat that proves a replica current (DESIGN.md invariant 11).

The keys live in the global slot, whose scripts get ``keyspace.GlobalKeys.fixed()`` first;
the epochs and heartbeats are one per stream (the global one and each partition's).
"""

from __future__ import annotations

import asyncio
from typing import cast

from redis.asyncio import Redis

from revocast.events import ActorKind
from revocast.keyspace import GLOBAL, Keyspace, StreamKeys
from revocast.store.backend import Backend
from revocast.store.records import event_id
from revocast.store.signing import contracts


class Signing:
    """The signing keys and epochs of one deployment."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    # Writes ------------------------------------------------------------------------------

    async def publish_key(
        self,
        kid: str,
        jwk_json: str,
        epoch: str = "",
        *,
        activate: bool = False,
        actor: str = "",
        sealed: str = "",
    ) -> str:
        """Publish a public key (and its sealed private key); returns the active kid."""
        return str(
            await self.backend.run(
                contracts.PUBLISH_KEY.call(
                    self.keys.global_.fixed(),
                    keys={},
                    kid=kid,
                    jwk=jwk_json,
                    epoch=epoch,
                    activate=activate,
                    actor=actor,
                    sealed=sealed,
                )
            )
        )

    async def revoke_key(self, kid: str, actor: str, reason: str, *, actor_kind: ActorKind) -> str:
        """Withdraw a key for good; returns the event id (a key revoked already: the event
        that revoked it, once durable, and nothing is written)."""
        entry_id = await self.backend.run(
            contracts.REVOKE_KEY.call(
                self.keys.global_.fixed(),
                keys={},
                kid=kid,
                actor=actor,
                reason=reason,
                actor_kind=actor_kind,
            ),
            durable=True,
        )
        return event_id(self.keys.global_.stream, entry_id)

    async def recover(
        self,
        old_epoch: str | None,
        new_epoch: str,
        kid: str,
        jwk_json: str,
        old_kids: list[str],
        sealed: str = "",
    ) -> bool:
        """After a data loss: revoke every older key, activate ``kid``, set the epoch. Once."""
        return bool(
            await self.backend.run(
                contracts.RECOVER.call(
                    self.keys.global_.fixed(),
                    keys={},
                    old_epoch=old_epoch or "",
                    new_epoch=new_epoch,
                    new_kid=kid,
                    jwk=jwk_json,
                    sealed=sealed,
                    kids=old_kids,
                ),
                durable=True,
            )
        )

    async def adopt_epoch(self, stream: StreamKeys, new: str, old: str | None) -> bool:
        """Give a partition the deployment's epoch after a recovery, unless it moved on."""
        reply = await self.backend.run(
            contracts.ADOPT_EPOCH.call(
                keys={"EPOCH": stream.epoch}, new_epoch=new, old_epoch=old or ""
            )
        )
        return bool(reply)

    async def align_epochs(self, epochs: dict[str, str | None] | None = None) -> str | None:
        """Give every partition the global epoch (a new deployment, or after a recovery);
        returns the global epoch. ``epochs`` as last read, if the caller has them."""
        streams = self.keys.streams()
        if epochs is None:
            epochs = await self.epochs()
        deployment = epochs.get(GLOBAL)
        if deployment is not None:
            await asyncio.gather(
                *(
                    self.adopt_epoch(s, deployment, epochs.get(s.name))
                    for s in streams
                    if s.name != GLOBAL and epochs.get(s.name) != deployment
                )
            )
        return deployment

    async def heartbeat(self) -> dict[str, str | None]:
        """Stamp the primary's time on every stream; returns each stream's epoch."""
        streams = self.keys.streams()
        replies = await asyncio.gather(
            *(
                self.backend.run(
                    contracts.HEARTBEAT.call(keys={"HEARTBEAT": s.heartbeat, "EPOCH": s.epoch})
                )
                for s in streams
            )
        )
        return {s.name: reply[0] for s, reply in zip(streams, replies, strict=True)}

    # Reads -------------------------------------------------------------------------------

    async def jwks(self) -> dict[str, str]:
        """Every published public key (kid -> JWK JSON) that is not revoked."""
        g = self.keys.global_

        async def read(client: Redis) -> tuple[dict[str, str], list[str]]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(g.jwks)
                pipe.zrange(g.revoked_keys, 0, -1)
                published, revoked = await pipe.execute()
            return published, revoked

        published, revoked = await self.backend.on_primary(g.jwks, read)
        return {kid: jwk for kid, jwk in published.items() if kid not in set(revoked)}

    async def keys_overview(self) -> tuple[dict[str, str], set[str], str | None]:
        """(published kid -> JWK, revoked kids, active kid), for ``revocast keys list``."""
        g = self.keys.global_
        published = await self.backend.hgetall(g.jwks)
        revoked = cast(
            list[str],
            await self.backend.on_primary(
                g.revoked_keys, lambda c: c.zrange(g.revoked_keys, 0, -1)
            ),
        )
        return published, set(revoked), await self.signing_kid()

    async def sealed_key(self, kid: str) -> str | None:
        return await self.backend.hget(self.keys.global_.sealed_keys, kid)

    async def signing_kid(self) -> str | None:
        return await self.backend.get(self.keys.global_.signing_kid)

    async def revoked(self, kid: str) -> bool:
        key = self.keys.global_.revoked_keys
        return await self.backend.on_primary(key, lambda c: c.zscore(key, kid)) is not None

    async def epochs(self) -> dict[str, str | None]:
        """Each stream's epoch (global and every partition)."""
        streams = self.keys.streams()
        values = await asyncio.gather(*(self.backend.get(s.epoch) for s in streams))
        return {s.name: value for s, value in zip(streams, values, strict=True)}
