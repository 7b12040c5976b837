"""What the issuer and the operators read: users, sessions, keys, authority, the audit trail.

Always from the primaries: these answers decide logins and admin actions, so a
lagging replica must not give them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from typing import Any, cast

from redis.asyncio import Redis
from redis.client import NEVER_DECODE

from revocast import usernames
from revocast.clients import DEFAULT_CLIENT_ID
from revocast.ids import hash_refresh_token
from revocast.keyspace import Keyspace, PartitionKeys, upstream_digest
from revocast.proof import Receipt, entry_key
from revocast.proof import decode as decode_receipt
from revocast.store.backend import Backend
from revocast.store.records import LinkRecord, RefreshGrant

log = logging.getLogger("revocast.store")

AuditEntry = tuple[str, dict[str, str]]
_GLOB = re.compile(r"([*?\[\]\\])")


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH pattern (a key prefix may hold ``*?[]\\``)."""
    return _GLOB.sub(r"\\\1", text)


class Reads:
    """Typed reads of the deployment's state."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    async def _get(self, key: str) -> str | None:
        return await self.backend.get(key)

    async def _hget(self, key: str, name: str) -> str | None:
        return await self.backend.hget(key, name)

    # Users -------------------------------------------------------------------------------

    async def find_user(self, username: str) -> tuple[str, str] | None:
        """(user id, password hash) for a username in any of its forms (``usernames``), or None."""
        username = usernames.normalize(username)
        p = self.keys.of(username)
        uid = await self._get(p.username(username))
        if uid is None or self.keys.of(uid) is not p:
            return None
        password_hash = await self._hget(p.user(uid), "password_hash")
        return (uid, password_hash) if password_hash else None

    async def user_exists(self, uid: str) -> bool:
        return await self.backend.exists(self.keys.of(uid).user(uid))

    async def password_hash(self, uid: str) -> str | None:
        return await self._hget(self.keys.of(uid).user(uid), "password_hash")

    async def password_changed_by(self, uid: str) -> str | None:
        """The session that made the user's last password change ('' for an operator's
        reset), or None: what tells a repeat of that change (``Writes.repeat_password_change``)."""
        made = await self._hget(self.keys.of(uid).user(uid), "password_change")
        return made.partition(" ")[0] if made else None

    async def username_of(self, uid: str) -> str | None:
        return await self._hget(self.keys.of(uid).user(uid), "username")

    async def roles_of(self, uid: str) -> list[str]:
        text = await self._hget(self.keys.of(uid).user(uid), "roles")
        try:
            roles = json.loads(text or "[]")
        except ValueError:
            return []
        return [str(role) for role in roles] if isinstance(roles, list) else []

    async def user(self, uid: str) -> dict[str, str]:
        """The user's record without its password hash; {} if there is no such user."""
        record = await self.backend.hgetall(self.keys.of(uid).user(uid))
        record.pop("password_hash", None)
        return record

    async def users(self) -> list[tuple[str, dict[str, str]]]:
        """Every user as (id, record without the password hash), by name. For operators:
        it SCANs the whole keyspace of each partition's server for the names (cost grows with
        every key there), and nothing on a request path lists users."""

        async def partition_users(p: PartitionKeys) -> list[tuple[str, dict[str, str]]]:
            async def read(client: Redis) -> list[tuple[str, dict[str, str]]]:
                pattern = _glob_escape(p.username("")) + "*"
                names = [key async for key in client.scan_iter(match=pattern, count=500)]
                async with client.pipeline(transaction=False) as pipe:
                    for name in names:
                        pipe.get(name)
                    uids = cast(list[str | None], await pipe.execute())
                async with client.pipeline(transaction=False) as pipe:
                    for uid in uids:
                        pipe.hgetall(p.user(uid or "-"))
                    records = cast(list[dict[str, str]], await pipe.execute())
                return [(uid, r) for uid, r in zip(uids, records, strict=True) if uid and r]

            return await self.backend.read(p.username(""), read)

        found = await asyncio.gather(*(partition_users(p) for p in self.keys.all_partitions))
        users = [(uid, record) for part in found for uid, record in part]
        for _, record in users:
            record.pop("password_hash", None)
        return sorted(users, key=lambda user: user[1].get("username", ""))

    async def authority(self, actor: str) -> str:
        """'operator', 'admin', 'moderator', or '' (no power, or blocked), as Redis has it now."""
        if actor.startswith("cli:"):
            return "operator"
        p = self.keys.of(actor)
        entry = await self._hget(p.authority, actor)
        return entry.rpartition(":")[0] if entry else ""

    # Sessions ----------------------------------------------------------------------------

    async def sessions(self, uid: str) -> list[dict[str, str]]:
        """The user's live sessions, oldest first (each with its ``sid``)."""
        p = self.keys.of(uid)
        set_key = p.user_sessions(uid)

        async def read(client: Redis) -> list[dict[str, str]]:
            sids = sorted(cast(set[str], await client.smembers(set_key)))
            async with client.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.hgetall(p.session(sid))
                records = cast(list[dict[str, str]], await pipe.execute())
            return [
                record | {"sid": sid} for sid, record in zip(sids, records, strict=True) if record
            ]

        live = await self.backend.read(set_key, read)
        return sorted(live, key=lambda record: int(record.get("created_ms", 0)))

    async def refresh_grant(self, token: str) -> RefreshGrant | None:
        """What a refresh token stands for, live or already rotated; None if Redis has no trace."""
        p = self.keys.of(token)
        key = p.refresh_token(hash_refresh_token(token))
        fields = ["sid", "uid", "state", "client_id", "issued_ms"]
        sid, uid, state, client_id, issued_ms = await self.backend.hmget(key, fields)
        if sid is None or uid is None or self.keys.of(uid) is not p:
            return None
        return RefreshGrant(sid, uid, client_id or DEFAULT_CLIENT_ID, state == "live",
                            int(issued_ms) if issued_ms else None)  # fmt: skip

    async def session_scope(self, sid: str) -> tuple[bool, list[str] | None]:
        """(whether the session lives, the roles its login asked for: None for all of them)."""
        p = self.keys.of(sid)
        uid, scope = await self.backend.hmget(p.session(sid), ["uid", "scope"])
        return uid is not None, json.loads(scope) if scope else None

    async def session_live(self, sid: str) -> bool:
        return await self.backend.exists(self.keys.of(sid).session(sid))

    # Keys and the epoch ------------------------------------------------------------------

    async def client(self, client_id: str) -> str | None:
        """One registered client's record (JSON), or None."""
        return await self._hget(self.keys.global_.clients, client_id)

    async def clients(self) -> dict[str, str]:
        """Every registered client: client_id -> record (JSON)."""
        return await self.backend.hgetall(self.keys.global_.clients)

    async def jwks(self) -> dict[str, str]:
        """Every published public key (kid -> JWK JSON) that is not revoked."""
        g = self.keys.global_

        async def read(client: Redis) -> tuple[dict[str, str], list[str]]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(g.jwks)
                pipe.zrange(g.revoked_keys, 0, -1)
                published, revoked = await pipe.execute()
            return published, revoked

        published, revoked = await self.backend.read(g.jwks, read)
        return {kid: jwk for kid, jwk in published.items() if kid not in set(revoked)}

    async def keys_overview(self) -> tuple[dict[str, str], set[str], str | None]:
        """(published kid -> JWK, revoked kids, active kid), for ``revocast keys list``."""
        g = self.keys.global_
        published = await self.backend.hgetall(g.jwks)
        revoked = cast(
            list[str],
            await self.backend.read(g.revoked_keys, lambda c: c.zrange(g.revoked_keys, 0, -1)),
        )
        return published, set(revoked), await self.signing_kid()

    async def sealed_key(self, kid: str) -> str | None:
        return await self._hget(self.keys.global_.sealed_keys, kid)

    async def signing_kid(self) -> str | None:
        return await self._get(self.keys.global_.signing_kid)

    async def status_list(self, partition: int) -> tuple[bytes, int]:
        """A partition's Token Status List: (its bytes as Redis holds them, how many indexes
        were ever drawn). The count is read first, so every index it counts is in a list
        made from the bytes read after it (drawn later ones are VALID when new)."""
        p = self.keys.partition(partition)

        async def read(client: Redis) -> tuple[bytes, int]:
            drawn = int(await client.zcard(p.status_leases))
            # The bytes as they are: the client decodes every other reply as text.
            raw = await client.execute_command(  # type: ignore[no-untyped-call]
                "GET", p.status_bits, **{NEVER_DECODE: True}
            )
            return bytes(raw or b""), drawn

        return await self.backend.read(p.status_bits, read)

    async def revoked(self, kid: str) -> bool:
        key = self.keys.global_.revoked_keys
        return await self.backend.read(key, lambda c: c.zscore(key, kid)) is not None

    async def epochs(self) -> dict[str, str | None]:
        """Each stream's epoch (global and every partition)."""
        streams = self.keys.streams()
        values = await asyncio.gather(*(self._get(s.epoch) for s in streams))
        return {s.name: value for s, value in zip(streams, values, strict=True)}

    async def live_issuers(self) -> dict[str, dict[str, str]]:
        """Issuer id -> its record (host, pid, started_ms, kids), for every live issuer."""
        g = self.keys.global_

        async def read(client: Redis) -> dict[str, dict[str, str]]:
            ids = cast(list[str], await client.zrange(g.issuers, 0, -1))
            async with client.pipeline(transaction=False) as pipe:
                for issuer_id in ids:
                    pipe.hgetall(g.issuer(issuer_id))
                records = cast(list[dict[str, str]], await pipe.execute())
            return {i: record for i, record in zip(ids, records, strict=True) if record}

        return await self.backend.read(g.issuers, read)

    async def upstream_user(self, issuer: str, sub: str) -> str | None:
        return await self._get(self.keys.global_.upstream_user(upstream_digest(issuer, sub)))

    async def upstream_nonce_key(self) -> bytes | None:
        """The key upstream login nonces are MACed with, if one was ever issued."""
        text = await self._get(self.keys.global_.upstream_nonce_key)
        return base64.urlsafe_b64decode(text) if text else None

    async def upstream_nonce_spent(self, issuer: str, nonce: str) -> bool:
        key = self.keys.global_.upstream_nonce(upstream_digest(issuer, nonce))
        return await self.backend.exists(key)

    async def upstream_links(self, uid: str | None = None) -> list[LinkRecord]:
        """Every link to an upstream IdP's user (of ``uid`` only, if given), by link id.

        The links themselves are the truth (a SCAN of them: an operator's command, not a
        request's); the records beside them add what the IdP named.
        """
        g = self.keys.global_
        pattern = _glob_escape(g.upstream_user("")) + "*"
        skip = len(g.upstream_user(""))

        async def read(client: Redis) -> tuple[list[str], list[str | None], list[str | None]]:
            keys = sorted({key async for key in client.scan_iter(match=pattern, count=500)})
            if not keys:
                return [], [], []
            users = cast(list[str | None], await client.mget(keys))
            ids = [key[skip:] for key in keys]
            records = cast(list[str | None], await client.hmget(g.upstream_links, ids))
            return ids, users, records

        ids, users, records = await self.backend.read(g.upstream_links, read)
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
        key = self.keys.global_.upstream_session(upstream_digest(issuer, sid))
        members = await self.backend.smembers(key)
        return [(m.partition(" ")[0], m.partition(" ")[2]) for m in sorted(members)]

    async def receipts(self) -> list[Receipt]:
        """The receipt of every live verifier (a lapsed one has expired: it is left out)."""
        g = self.keys.global_

        async def read(client: Redis) -> list[str | None]:
            ids = cast(list[str], await client.zrange(g.verifiers, 0, -1))
            if not ids:
                return []
            return cast(list[str | None], await client.mget([g.verifier(i) for i in ids]))

        found = await self.backend.read(g.verifiers, read)
        receipts = []
        for raw in filter(None, found):
            try:
                receipts.append(decode_receipt(raw))
            except ValueError:  # another version's, or damaged: not a proof of anything
                log.warning("an unreadable verifier receipt was left out")
        return receipts

    def _events(self, stream: str) -> str:
        for keys in self.keys.streams():
            if keys.name == stream:
                return keys.events
        raise KeyError(stream)

    async def last_entry(self, stream: str, before_ms: int | None = None) -> str | None:
        """Id of the last entry of ``stream`` (written before ``before_ms``, if given)."""
        events = self._events(stream)
        upper = "+" if before_ms is None else f"({before_ms}-0"
        reply = await self.backend.read(
            events, lambda c: c.xrevrange(events, max=upper, min="-", count=1)
        )
        return str(reply[0][0]) if reply else None

    async def events_after(
        self, stream: str, entry_id: str, limit: int
    ) -> list[tuple[str, dict[str, str]]]:
        """Up to ``limit`` entries of ``stream`` after ``entry_id``, with their fields."""
        events = self._events(stream)
        reply = await self.backend.read(
            events, lambda c: c.xrange(events, min=f"({entry_id}", count=limit)
        )
        return [(str(i), cast(dict[str, str], f)) for i, f in reply or []]

    async def stream_end(self, stream: str) -> tuple[str, str]:
        """(id of the stream's last entry or "0-0", the link its next entry will name), read
        in one step: where a copy of the stream from now on starts."""
        keys = next(k for k in self.keys.streams() if k.name == stream)

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.xrevrange(keys.events, count=1)
                pipe.get(keys.chain)
                return await pipe.execute()

        last, chain = await self.backend.read(keys.events, read)
        return (str(last[0][0]) if last else "0-0"), chain or ""

    async def entries_and_link(
        self, stream: str, entry_id: str, limit: int
    ) -> tuple[list[tuple[str, dict[str, str]]], str]:
        """Up to ``limit`` entries of ``stream`` after ``entry_id``, and the link of its last
        entry ("" if none yet), read in one step: if the entries reach the end, the last
        one's link is that link, unless entries after ``entry_id`` were trimmed."""
        keys = next(k for k in self.keys.streams() if k.name == stream)

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.xrange(keys.events, min=f"({entry_id}", count=limit)
                pipe.get(keys.chain)
                return await pipe.execute()

        found, chain = await self.backend.read(keys.events, read)
        entries = [(str(i), cast(dict[str, str], f)) for i, f in found or []]
        return entries, chain or ""

    async def ssf_status(self, stream_id: str) -> dict[str, str]:
        """What copying into the SSF stream's queue met: a pause, the losses (``ssf_spool``)."""
        return await self.backend.hgetall(self.keys.global_.ssf_status(stream_id))

    async def ssf_streams(self) -> dict[str, dict[str, Any]]:
        """Every SSF stream's configuration."""
        found = await self.backend.hgetall(self.keys.global_.ssf_streams)
        return {stream_id: json.loads(config) for stream_id, config in found.items()}

    async def ssf_stream(self, stream_id: str) -> tuple[str, dict[str, str], int] | None:
        """(configuration JSON, spool cursors, queue length) of an SSF stream, or None."""
        g = self.keys.global_

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hget(g.ssf_streams, stream_id)
                pipe.hgetall(g.ssf_cursor(stream_id))
                pipe.llen(g.ssf_queue(stream_id))
                return await pipe.execute()

        config, cursors, queued = await self.backend.read(g.ssf_streams, read)
        return None if config is None else (config, cursors, int(queued))

    async def ssf_queue(self, stream_id: str, limit: int) -> list[str]:
        key = self.keys.global_.ssf_queue(stream_id)
        return cast(list[str], await self.backend.read(key, lambda c: c.lrange(key, 0, limit - 1)))

    async def entries_after(self, stream: str, entry_id: str, limit: int) -> list[str]:
        """Ids of up to ``limit`` entries of ``stream`` after ``entry_id``."""
        return [entry_id for entry_id, _ in await self.events_after(stream, entry_id, limit)]

    # The audit trail ---------------------------------------------------------------------

    async def audit_page(self, before: str, limit: int) -> list[AuditEntry]:
        """Entries of every partition and the global slot, newest first, strictly before the id
        ``before`` ("+" for the newest). Entries of other streams with the same id as the last
        one are included, so that the next page (before that id) misses none."""
        upper = before if before == "+" else f"({before}"
        streams = [self.keys.global_.audit, *(p.audit for p in self.keys.all_partitions)]

        async def page(key: str) -> list[AuditEntry]:
            return cast(
                list[AuditEntry],
                await self.backend.read(key, lambda c: c.xrevrange(key, upper, "-", count=limit)),
            )

        pages = await asyncio.gather(*(page(key) for key in streams))
        merged = sorted(
            (entry for page in pages for entry in page), key=lambda e: entry_key(e[0]), reverse=True
        )
        if len(merged) <= limit:
            return merged
        last = entry_key(merged[limit - 1][0])
        return [entry for entry in merged if entry_key(entry[0]) >= last]
