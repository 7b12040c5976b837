"""Who may act on whom: moderation, the copies of each user's power, and the rule itself.

A user's power (``admin``, ``moderator`` or none; none when blocked) is copied, versioned,
into every partition's AUTHORITY hash, so a script anywhere checks an actor atomically
(``partition.lua``: ``authority``, ``require_authority``). ``Authority.authorize`` is that
rule's one Python statement, for reads that run no script (``revocast.roles``'
``OPERATOR_PREFIX``, which names the operators, is injected into the Lua).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from revocast.errors import Forbidden
from revocast.events import ActorKind
from revocast.keyspace import Keyspace, PartitionKeys
from revocast.roles import ADMIN, MODERATOR, OPERATOR_PREFIX
from revocast.store.authority import contracts
from revocast.store.backend import Backend
from revocast.store.records import Power, event_id
from revocast.store.sessions import Sessions
from revocast.store.sessions import keys as session_keys

RANK = {"": 0, MODERATOR: 1, ADMIN: 2}
NO_POWER = "only admins and moderators may do this: ask an admin for the role"
OVER_ADMIN = "moderators cannot act on admins: ask an admin to do it"


class Authority:
    """Moderation, and each user's power over others as every partition has it."""

    def __init__(self, backend: Backend, sessions: Sessions) -> None:
        self.backend = backend
        self._sessions = sessions

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    # Reads -------------------------------------------------------------------------------

    async def authority(self, actor: str) -> str:
        """'operator', 'admin', 'moderator', or '' (no power, or blocked), as Redis has it now."""
        if actor.startswith(OPERATOR_PREFIX):
            return "operator"
        p = self.keys.of(actor)
        entry = await self.backend.hget(p.authority, actor)
        return entry.rpartition(":")[0] if entry else ""

    async def authorize(self, actor: str, target: str = "") -> str:
        """The actor's power for a read, as Redis has it now; Forbidden if none, or if a
        moderator would act on an admin (the user ``target``, if given). The same rule as
        ``require_authority`` in ``partition.lua``."""
        level = await self.authority(actor)
        if not level:
            raise Forbidden(NO_POWER)
        if target and level == "moderator" and ADMIN in await self.roles_of(target):
            raise Forbidden(OVER_ADMIN)
        return level

    async def roles_of(self, uid: str) -> list[str]:
        """The user's roles as its record holds them ([] if none, or unreadable)."""
        text = await self.backend.hget(self.keys.of(uid).user(uid), "roles")
        try:
            roles = json.loads(text or "[]")
        except ValueError:
            return []
        return [str(role) for role in roles] if isinstance(roles, list) else []

    # Writes ------------------------------------------------------------------------------

    async def moderate(
        self,
        actor: str,
        action: Literal["block", "unblock", "roles"],
        target: str,
        *,
        reason: str = "",
        roles_json: str = "[]",
        actor_kind: ActorKind,
    ) -> str:
        """Block, unblock or set roles, authorized and audited atomically; the event id or ''.

        A change to an admin's or moderator's power is copied to every partition
        before this returns, so that nowhere can they act on what they lost.
        """
        p = self.keys.of(target)
        budget, limit = self._sessions.budget(p, actor)

        async def attempt(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                contracts.MODERATE.call(
                    p.fixed(),
                    keys={
                        "USER": p.user(target),
                        "SESSIONS": session_keys.user_sessions(p, target),
                        "BUDGET": budget,
                        "SESSION_KEYS": [session_keys.session(p, s) for s in sids],
                    },
                    actor=actor,
                    action=action,
                    target=target,
                    reason=reason,
                    roles=roles_json,
                    limit=limit,
                    actor_kind=actor_kind,
                    sids=sids,
                ),
                durable=lambda reply: reply[0] != "",
            )

        if action in ("block", "roles"):  # roles: the sessions' status list indexes retire
            reply = await self._sessions.with_sessions(p, target, attempt)
        else:
            reply = await attempt([])
        await self.spread(target, reply[1:])
        return event_id(p.stream, reply[0]) if reply[0] else ""

    async def spread(self, uid: str, reply: list[Any]) -> None:
        """Copy a change of ``uid``'s power (a script's reply: old level, level, version) to
        every other partition."""
        power = Power(uid, str(reply[0]), str(reply[1]), int(reply[2]))
        if power.version == 0:
            return  # never had power, has none: nothing anywhere to change
        home = self.keys.of(uid)
        await asyncio.gather(
            *(self.sync_authority(p, power) for p in self.keys.all_partitions if p is not home)
        )

    async def sync_authority(self, partition: PartitionKeys, power: Power) -> bool:
        """Copy a user's power to one partition unless it has a newer version; durable when
        power was lost. True if it changed something."""
        lost = RANK[power.level] < RANK[power.old_level]
        reply = await self.backend.run(
            contracts.AUTHORITY_SYNC.call(
                keys={"AUTHORITY": partition.authority},
                uid=power.uid,
                level=power.level,
                version=power.version,
            ),
            durable=lost,
        )
        return bool(reply)

    async def reconcile_authority(self) -> int:
        """Repair partitions whose copy of someone's power is older than the user's own
        partition's (an issuer died mid-way); returns how many copies were fixed."""
        partitions = self.keys.all_partitions
        tables = await asyncio.gather(*(self.backend.hgetall(p.authority) for p in partitions))
        fixed = 0
        for uid in set().union(*tables):
            home = self.keys.of(uid)
            source = tables[home.index].get(uid)
            if source is None:
                continue
            level, _, version = source.rpartition(":")
            for p, table in zip(partitions, tables, strict=True):
                copy = table.get(uid)
                if copy is None or _version(copy) < int(version):
                    power = Power(uid, _level(copy), level, int(version))
                    fixed += await self.sync_authority(p, power)
        return fixed


def _version(entry: str) -> int:
    return int(entry.rpartition(":")[2] or 0)


def _level(entry: str | None) -> str:
    return entry.rpartition(":")[0] if entry else ""
