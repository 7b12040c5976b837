"""The shared-signals state the issuer writes: links to an upstream IdP's users and sessions
(back-channel logout, CAEP), and the queues of the SSF streams it transmits.

Plain commands, transactions and small scripts on the global slot's keys: none of it
revokes anything by itself, so none of it is a revocation script.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from revocast.keyspace import Keyspace, upstream_digest
from revocast.lifetimes import UPSTREAM_SESSION_TTL_S
from revocast.store import contracts
from revocast.store.backend import Backend
from revocast.store.records import UpstreamLink

StreamAdded = Literal["added", "deployment_full", "owner_full"]
TokenAction = Literal["claim", "done", "release"]
LinkResult = Literal["linked", "kept", "spent", "taken"]  # upstream_link.lua says what each is


class SignalWrites:
    """The writes of the issuer's IdP receivers (``auth.py``, ``signals.py``) and of its SSF
    transmitter (``ssf.py``, ``ssf_push.py``)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    async def upstream_nonce_key(self) -> bytes:
        """The deployment's key for upstream login nonces: made once, by whichever issuer
        needs it first (every issuer then checks what any other issued)."""
        key = self.keys.global_.upstream_nonce_key

        async def work(client: Redis) -> str:
            await client.set(key, base64.urlsafe_b64encode(os.urandom(32)).decode(), nx=True)
            return cast(str, await client.get(key))

        return base64.urlsafe_b64decode(await self.backend.read(key, work))

    async def link_upstream(
        self, link: UpstreamLink, uid: str, *, nonce: str, nonce_ttl_s: int, sid: str
    ) -> LinkResult:
        """Spend the login's ``nonce`` and link the IdP's user to ``uid`` (unless it is another
        user's: a link never moves), and its session, if any, to ``sid``: one step."""
        g = self.keys.global_
        sessions = None
        if link.sid is not None:
            sessions = g.upstream_session(upstream_digest(link.issuer, link.sid))
        call = contracts.UPSTREAM_LINK.call(
            keys={
                "NONCE": g.upstream_nonce(upstream_digest(link.issuer, nonce)),
                "LINK": g.upstream_user(link.link_id),
                "LINKS": g.upstream_links,
                "AUDIT": g.audit,
                "UPSTREAM_SESSIONS": sessions,
            },
            uid=uid,
            link_id=link.link_id,
            iss=link.issuer,
            sub=link.sub,
            nonce_ttl_s=max(nonce_ttl_s, 1),
            member=f"{uid} {sid}",
            session_ttl_s=UPSTREAM_SESSION_TTL_S,
        )
        return cast(LinkResult, await self.backend.run(call))

    async def unlink_upstream(self, uid: str, link_id: str, actor: str, reason: str) -> bool:
        """Remove the link ``link_id`` of ``uid``, audited; False if there is none."""
        g = self.keys.global_
        keys = {"LINK": g.upstream_user(link_id), "LINKS": g.upstream_links, "AUDIT": g.audit}
        reply = await self.backend.run(
            contracts.UPSTREAM_UNLINK.call(
                keys=keys, uid=uid, link_id=link_id, actor=actor, reason=reason
            )
        )
        return bool(reply == "unlinked")

    async def upstream_token(
        self, action: TokenAction, issuer: str, jti: str, owner: str, ttl_s: int
    ) -> str:
        """Claim, mark done or release the IdP's token ``jti`` for ``owner`` (the request
        acting on it), in one step: ``upstream_token.lua`` says what each answers."""
        key = self.keys.global_.upstream_token(upstream_digest(issuer, jti))
        call = contracts.UPSTREAM_TOKEN.call(
            keys={"TOKEN": key}, action=action, owner=owner, ttl_s=ttl_s
        )
        return str(await self.backend.run(call))

    async def add_ssf_stream(
        self,
        stream_id: str,
        config: str,
        cursors: dict[str, str],
        *,
        owner: str,
        max_streams: int,
        max_per_owner: int,
    ) -> StreamAdded:
        """Add the stream unless the deployment holds ``max_streams`` or ``owner`` holds
        ``max_per_owner`` already: counted and written in one transaction (the streams are
        watched), so concurrent creations cannot pass a cap together."""
        g = self.keys.global_

        async def work(client: Redis) -> StreamAdded:
            async with client.pipeline(transaction=True) as pipe:
                while True:  # until no other creation or removal lands between count and write
                    try:
                        await pipe.watch(g.ssf_streams)
                        held = cast(list[str], await pipe.hvals(g.ssf_streams))
                        if len(held) >= max_streams:
                            return "deployment_full"
                        mine = sum(json.loads(found).get("owner") == owner for found in held)
                        if mine >= max_per_owner:
                            return "owner_full"
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.hset(g.ssf_streams, stream_id, config)
                        pipe.hset(g.ssf_cursor(stream_id), mapping=dict(cursors.items()))
                        await pipe.execute()
                        return "added"
                    except WatchError:
                        continue

        return await self.backend.read(g.ssf_streams, work)

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
        call = contracts.SSF_LEASE.call(keys={"LEASE": key}, owner=owner, ttl_ms=ttl_ms)
        return bool(await self.backend.run(call))

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
