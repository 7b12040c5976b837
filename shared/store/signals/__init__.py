"""Shared signals: links to an upstream IdP's users and sessions (back-channel logout,
CAEP), its tokens already acted on, and the SSF streams the issuer transmits (their
configuration, cursors, queues and leases).

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

from revocast.keyspace import Keyspace, starting_with, upstream_digest
from revocast.lifetimes import UPSTREAM_SESSION_TTL_S
from revocast.store.backend import Backend
from revocast.store.records import LinkRecord, UpstreamLink
from revocast.store.signals import contracts
from revocast.store.signals import keys as signal_keys

StreamAdded = Literal["added", "deployment_full", "owner_full"]
TokenAction = Literal["claim", "done", "release"]
LinkResult = Literal["linked", "kept", "spent", "taken"]  # upstream_link.lua says what each is


class Signals:
    """The state of the issuer's IdP receivers (``auth.py``, ``signals.py``) and of its SSF
    transmitter (``ssf.py``, ``ssf_push.py``)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    async def upstream_nonce_key(self) -> bytes:
        """The deployment's key for upstream login nonces: made once, by whichever issuer
        needs it first (every issuer then checks what any other issued)."""
        key = signal_keys.upstream_nonce_key(self.keys.global_)

        async def work(client: Redis) -> str:
            await client.set(key, base64.urlsafe_b64encode(os.urandom(32)).decode(), nx=True)
            return cast(str, await client.get(key))

        return base64.urlsafe_b64decode(await self.backend.on_primary(key, work))

    async def link_upstream(
        self, link: UpstreamLink, uid: str, *, nonce: str, nonce_ttl_s: int, sid: str
    ) -> LinkResult:
        """Spend the login's ``nonce`` and link the IdP's user to ``uid`` (unless it is another
        user's: a link never moves), and its session, if any, to ``sid``: one step."""
        g = self.keys.global_
        sessions = None
        if link.sid is not None:
            sessions = signal_keys.upstream_session(g, upstream_digest(link.issuer, link.sid))
        call = contracts.UPSTREAM_LINK.call(
            keys={
                "NONCE": signal_keys.upstream_nonce(g, upstream_digest(link.issuer, nonce)),
                "LINK": signal_keys.upstream_user(g, link.link_id),
                "LINKS": signal_keys.upstream_links(g),
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
        keys = {
            "LINK": signal_keys.upstream_user(g, link_id),
            "LINKS": signal_keys.upstream_links(g),
            "AUDIT": g.audit,
        }
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
        key = signal_keys.upstream_token(self.keys.global_, upstream_digest(issuer, jti))
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
                        await pipe.watch(signal_keys.ssf_streams(g))
                        held = cast(list[str], await pipe.hvals(signal_keys.ssf_streams(g)))
                        if len(held) >= max_streams:
                            return "deployment_full"
                        mine = sum(json.loads(found).get("owner") == owner for found in held)
                        if mine >= max_per_owner:
                            return "owner_full"
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.hset(signal_keys.ssf_streams(g), stream_id, config)
                        pipe.hset(
                            signal_keys.ssf_cursor(g, stream_id), mapping=dict(cursors.items())
                        )
                        await pipe.execute()
                        return "added"
                    except WatchError:
                        continue

        return await self.backend.on_primary(signal_keys.ssf_streams(g), work)

    async def remove_ssf_stream(self, stream_id: str) -> bool:
        g = self.keys.global_

        async def work(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hdel(signal_keys.ssf_streams(g), stream_id)
                pipe.delete(
                    signal_keys.ssf_cursor(g, stream_id),
                    signal_keys.ssf_queue(g, stream_id),
                    signal_keys.ssf_lease(g, stream_id),
                    signal_keys.ssf_status(g, stream_id),
                )
                return await pipe.execute()

        return bool((await self.backend.on_primary(signal_keys.ssf_streams(g), work))[0])

    async def take_lease(self, stream_id: str, owner: str, ttl_ms: int) -> bool:
        """Whether ``owner`` delivers the push stream for the next ``ttl_ms`` (taken or kept)."""
        key = signal_keys.ssf_lease(self.keys.global_, stream_id)
        call = contracts.SSF_LEASE.call(keys={"LEASE": key}, owner=owner, ttl_ms=ttl_ms)
        return bool(await self.backend.run(call))

    async def queue_ssf_set(self, stream_id: str, entry: str) -> None:
        key = signal_keys.ssf_queue(self.keys.global_, stream_id)
        await self.backend.on_primary(key, lambda c: c.rpush(key, entry))

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
        key = signal_keys.ssf_cursor(g, stream_id)

        async def work(client: Redis) -> bool:
            async with client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    if cast(dict[str, str], await pipe.hgetall(key)) != seen:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if entries:
                        pipe.rpush(signal_keys.ssf_queue(g, stream_id), *entries)
                    pipe.hset(key, mapping=dict(moved.items()))
                    if loss is not None:
                        gaps, reason = loss
                        pipe.hincrby(signal_keys.ssf_status(g, stream_id), "lost", gaps)
                        pipe.hset(signal_keys.ssf_status(g, stream_id), "reason", reason)
                    await pipe.execute()
                    return True
                except WatchError:
                    return False

        return await self.backend.on_primary(signal_keys.ssf_streams(g), work)

    async def pause_ssf(self, stream_id: str, now_ms: int) -> bool:
        """Mark copying into the stream's queue paused; True if this call paused it."""
        key = signal_keys.ssf_status(self.keys.global_, stream_id)
        return bool(
            await self.backend.on_primary(key, lambda c: c.hsetnx(key, "paused_ms", now_ms))
        )

    async def resume_ssf(self, stream_id: str) -> bool:
        """Clear the pause; True if this call cleared it."""
        key = signal_keys.ssf_status(self.keys.global_, stream_id)
        return bool(await self.backend.on_primary(key, lambda c: c.hdel(key, "paused_ms")))

    async def ack_ssf(self, stream_id: str, entries: list[str]) -> None:
        """Drop acknowledged (or delivered) entries from the stream's queue."""
        key = signal_keys.ssf_queue(self.keys.global_, stream_id)

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for entry in entries:
                    pipe.lrem(key, 1, entry)
                await pipe.execute()

        await self.backend.on_primary(key, work)

    # Reads -------------------------------------------------------------------------------

    async def upstream_user(self, issuer: str, sub: str) -> str | None:
        return await self.backend.get(
            signal_keys.upstream_user(self.keys.global_, upstream_digest(issuer, sub))
        )

    async def find_upstream_nonce_key(self) -> bytes | None:
        """The key upstream login nonces are MACed with, if one was ever made (a read:
        ``upstream_nonce_key`` makes it)."""
        text = await self.backend.get(signal_keys.upstream_nonce_key(self.keys.global_))
        return base64.urlsafe_b64decode(text) if text else None

    async def upstream_nonce_spent(self, issuer: str, nonce: str) -> bool:
        key = signal_keys.upstream_nonce(self.keys.global_, upstream_digest(issuer, nonce))
        return await self.backend.exists(key)

    async def upstream_links(self, uid: str | None = None) -> list[LinkRecord]:
        """Every link to an upstream IdP's user (of ``uid`` only, if given), by link id.

        The links themselves are the truth (a SCAN of them: an operator's command, not a
        request's); the records beside them add what the IdP named.
        """
        g = self.keys.global_
        pattern = starting_with(signal_keys.upstream_user(g, ""))
        skip = len(signal_keys.upstream_user(g, ""))

        async def read(client: Redis) -> tuple[list[str], list[str | None], list[str | None]]:
            keys = sorted({key async for key in client.scan_iter(match=pattern, count=500)})
            if not keys:
                return [], [], []
            users = cast(list[str | None], await client.mget(keys))
            ids = [key[skip:] for key in keys]
            records = cast(list[str | None], await client.hmget(signal_keys.upstream_links(g), ids))
            return ids, users, records

        ids, users, records = await self.backend.on_primary(signal_keys.upstream_links(g), read)
        found = []
        for link_id, user, record in zip(ids, users, records, strict=True):
            if user is None or (uid is not None and user != uid):
                continue
            try:
                known = json.loads(record) if record else {}
            except ValueError:
                known = {}
            linked_ms = known.get("linked_ms")
            found.append(LinkRecord(link_id, user, known.get("iss"), known.get("sub"),
                                    int(linked_ms) if linked_ms is not None else None))  # fmt: skip
        return found

    async def upstream_sessions(self, issuer: str, sid: str) -> list[tuple[str, str]]:
        """(uid, local sid) of every session linked to the IdP's session ``sid``."""
        key = signal_keys.upstream_session(self.keys.global_, upstream_digest(issuer, sid))
        members = await self.backend.smembers(key)
        return [(m.partition(" ")[0], m.partition(" ")[2]) for m in sorted(members)]

    async def ssf_status(self, stream_id: str) -> dict[str, str]:
        """What copying into the SSF stream's queue met: a pause, the losses (``ssf_spool``)."""
        return await self.backend.hgetall(signal_keys.ssf_status(self.keys.global_, stream_id))

    async def ssf_streams(self) -> dict[str, dict[str, Any]]:
        """Every SSF stream's configuration."""
        found = await self.backend.hgetall(signal_keys.ssf_streams(self.keys.global_))
        return {stream_id: json.loads(config) for stream_id, config in found.items()}

    async def ssf_stream(self, stream_id: str) -> tuple[str, dict[str, str], int] | None:
        """(configuration JSON, spool cursors, queue length) of an SSF stream, or None."""
        g = self.keys.global_

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hget(signal_keys.ssf_streams(g), stream_id)
                pipe.hgetall(signal_keys.ssf_cursor(g, stream_id))
                pipe.llen(signal_keys.ssf_queue(g, stream_id))
                return await pipe.execute()

        config, cursors, queued = await self.backend.on_primary(signal_keys.ssf_streams(g), read)
        return None if config is None else (config, cursors, int(queued))

    async def ssf_queue(self, stream_id: str, limit: int) -> list[str]:
        key = signal_keys.ssf_queue(self.keys.global_, stream_id)
        return cast(
            list[str], await self.backend.on_primary(key, lambda c: c.lrange(key, 0, limit - 1))
        )
