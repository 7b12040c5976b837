"""Users: their records (name, password hash, roles), made, changed and removed.

A user's partition holds its record, its name and its sessions; removing the user or
changing its password ends sessions in the same script (``Sessions`` lends its budget and
its read of the session set), and a change of power is copied everywhere (``Authority``).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import Redis

from revocast import usernames
from revocast.errors import WrongPassword
from revocast.events import ActorKind
from revocast.keyspace import Keyspace, PartitionKeys, starting_with
from revocast.store.authority import Authority
from revocast.store.backend import Backend
from revocast.store.contracts import ScriptCall
from revocast.store.records import event_id
from revocast.store.sessions import Sessions
from revocast.store.sessions import keys as session_keys
from revocast.store.users import contracts


class Users:
    """The users of one deployment."""

    def __init__(self, backend: Backend, sessions: Sessions, authority: Authority) -> None:
        self.backend = backend
        self._sessions = sessions
        self._authority = authority

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    # Writes ------------------------------------------------------------------------------

    async def add(
        self, uid: str, username: str, password_hash: str, roles_json: str, actor: str = ""
    ) -> None:
        """Create a user (Conflict if the name is taken); ``uid`` from ``ids.new_user_id``.
        An ``actor`` (an operator) is recorded in the audit trail."""
        p = self.keys.of(username)
        if self.keys.of(uid) is not p:
            raise ValueError("the user id must be drawn in its username's partition")
        reply = await self.backend.run(
            contracts.ADD_USER.call(
                p.fixed(),
                keys={"USERNAME": p.username(username), "USER": p.user(uid)},
                uid=uid,
                username=username,
                password_hash=password_hash,
                roles_json=roles_json,
                actor=actor,
            )
        )
        await self._authority.spread(uid, reply)

    async def remove(
        self, actor: str, uid: str, username: str, reason: str, *, actor_kind: ActorKind
    ) -> str:
        """Delete a user and end every session and token of it, audited; the event id."""
        p = self.keys.of(uid)
        s = self._sessions

        async def attempt(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                contracts.REMOVE_USER.call(
                    p.fixed(),
                    keys={
                        "USERNAME": p.username(username),
                        "USER": p.user(uid),
                        "SESSIONS": session_keys.user_sessions(p, uid),
                        "SESSION_KEYS": [session_keys.session(p, s) for s in sids],
                    },
                    actor=actor,
                    uid=uid,
                    reason=reason,
                    actor_kind=actor_kind,
                    sids=sids,
                ),
                durable=True,
            )

        reply = await s.with_sessions(p, uid, attempt)
        await self._authority.spread(uid, reply[1:])
        return event_id(p.stream, reply[0])

    async def change_password(
        self, uid: str, new_hash: str, keep_sid: str, actor: str, *, actor_kind: ActorKind
    ) -> tuple[int, str | None]:
        """Store the new hash and end every other session, audited as ``actor``'s; (how many
        ended, the last event id or None: events of one stream take effect in order, so the
        last proves them all)."""
        p = self.keys.of(uid)

        async def attempt(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                self._change_password(p, uid, new_hash, keep_sid, actor, actor_kind, sids),
                durable=lambda reply: int(reply[0]) > 0,
            )

        ended, entry_id = await self._sessions.with_sessions(p, uid, attempt)
        return int(ended), event_id(p.stream, entry_id) if entry_id else None

    async def repeat_password_change(self, uid: str, keep_sid: str) -> tuple[int, str | None]:
        """The answer of the last password change, if session ``keep_sid`` made it (a repeat
        after not_durable: the password is the new one already), once durable; nothing is
        written. WrongPassword if another session or an operator made the last change."""
        p = self.keys.of(uid)
        ended, entry_id = await self.backend.run(
            # no actor: spends nothing; it writes no event, so who it is says nothing
            self._change_password(p, uid, "", keep_sid, "", ActorKind.USER, []),
            durable=lambda reply: int(reply[0]) > 0,
        )
        if int(ended) < 0:
            raise WrongPassword()
        return int(ended), event_id(p.stream, entry_id) if entry_id else None

    def _change_password(
        self,
        p: PartitionKeys,
        uid: str,
        new_hash: str,
        keep_sid: str,
        actor: str,
        actor_kind: ActorKind,
        sids: list[str],
    ) -> ScriptCall[list[Any]]:
        """The change (or, with no ``new_hash``, its repeat: spending nothing)."""
        budget, limit = self._sessions.budget(p, actor)
        return contracts.CHANGE_PASSWORD.call(
            p.fixed(),
            keys={
                "USER": p.user(uid),
                "SESSIONS": session_keys.user_sessions(p, uid),
                "BUDGET": budget,
                "SESSION_KEYS": [session_keys.session(p, s) for s in sids],
            },
            uid=uid,
            new_hash=new_hash,
            keep_sid=keep_sid,
            actor=actor,
            limit=limit,
            actor_kind=actor_kind,
            sids=sids,
        )

    # Reads (from the primaries: they decide logins and admin actions) --------------------

    async def find(self, username: str) -> tuple[str, str] | None:
        """(user id, password hash) for a username in any of its forms (``usernames``), or None."""
        username = usernames.normalize(username)
        p = self.keys.of(username)
        uid = await self.backend.get(p.username(username))
        if uid is None or self.keys.of(uid) is not p:
            return None
        password_hash = await self.backend.hget(p.user(uid), "password_hash")
        return (uid, password_hash) if password_hash else None

    async def exists(self, uid: str) -> bool:
        return await self.backend.exists(self.keys.of(uid).user(uid))

    async def password_hash(self, uid: str) -> str | None:
        return await self.backend.hget(self.keys.of(uid).user(uid), "password_hash")

    async def password_changed_by(self, uid: str) -> str | None:
        """The session that made the user's last password change ('' for an operator's
        reset), or None: what tells a repeat of that change (``repeat_password_change``)."""
        made = await self.backend.hget(self.keys.of(uid).user(uid), "password_change")
        return made.partition(" ")[0] if made else None

    async def username_of(self, uid: str) -> str | None:
        return await self.backend.hget(self.keys.of(uid).user(uid), "username")

    async def record(self, uid: str) -> dict[str, str]:
        """The user's record without its password hash; {} if there is no such user."""
        record = await self.backend.hgetall(self.keys.of(uid).user(uid))
        record.pop("password_hash", None)
        return record

    async def every(self) -> list[tuple[str, dict[str, str]]]:
        """Every user as (id, record without the password hash), by name. For operators:
        it SCANs the whole keyspace of each partition's server for the names (cost grows with
        every key there), and nothing on a request path lists users."""

        async def partition_users(p: PartitionKeys) -> list[tuple[str, dict[str, str]]]:
            async def read(client: Redis) -> list[tuple[str, dict[str, str]]]:
                pattern = starting_with(p.username(""))
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

            return await self.backend.on_primary(p.username(""), read)

        found = await asyncio.gather(*(partition_users(p) for p in self.keys.all_partitions))
        users = [(uid, record) for part in found for uid, record in part]
        for _, record in users:
            record.pop("password_hash", None)
        return sorted(users, key=lambda user: user[1].get("username", ""))
