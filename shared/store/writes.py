"""The issuer's and the operators' writes: with ``signals.py`` (IdP links, SSF queues), the
only code that changes revocast's state.

Every revoking call writes the state change and its stream event in one script,
so Redis never holds one without the other (DESIGN.md invariant 1), and is
durable: acknowledged only once the configured replicas have it (invariant 9).
Lifetimes and retention come from the settings, bound once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from revocast.clients import DEFAULT_CLIENT_ID
from revocast.errors import InvalidRefreshToken, NotFound, StoreUnavailable, WrongPassword
from revocast.ids import hash_refresh_token
from revocast.keyspace import GLOBAL, Keyspace, PartitionKeys, StreamKeys
from revocast.lifetimes import ISSUERS_HORIZON_MS, KNOWN_ADDRESSES_MAX
from revocast.proof import EventRef
from revocast.store import contracts
from revocast.store.backend import Backend, Retry
from revocast.store.contracts import ScriptCall
from revocast.store.logins import Attempt, Logins
from revocast.store.records import Power, RefreshGrant, RefreshResult
from revocast.store.signals import SignalWrites

T = TypeVar("T")

SESSION_SET_RETRIES = 10  # a user's session set changed between our read and the script
OPERATOR_PREFIX = "cli:"  # actors of the operator CLI: never limited
_RANK = {"": 0, "moderator": 1, "admin": 2}
NO_SESSION = "no such session: it has ended, or the id is wrong"


class Writes:
    """Typed calls to the writing scripts, for one deployment."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.signals = SignalWrites(backend)  # IdP links and SSF queues
        self.logins = Logins(backend)  # the login throttle and user lookup
        settings = backend.settings
        self._lifetime_ms = settings.revocation_lifetime_ms
        self._retention_ms = settings.stream_retention_ms
        self._refresh_ttl_s = settings.refresh_ttl_s
        self._grace_ms = int(settings.refresh_grace_s * 1000)
        self._max_sessions = settings.max_sessions_per_user
        self._revocations_per_minute = settings.revocations_per_minute

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    def _budget(self, partition: PartitionKeys, actor: str | None) -> tuple[str, int]:
        """The actor's revocation counter in ``partition`` and its limit per minute; no limit
        (0) without an actor (an IdP's signal) or for operators (``cli:``)."""
        if not actor or actor.startswith(OPERATOR_PREFIX):
            return partition.revocation_budget("-"), 0  # passed, never touched
        return partition.revocation_budget(actor), self._revocations_per_minute

    def _global_keys(self) -> list[str]:
        g = self.keys.global_
        return [
            g.stream.events,
            g.stream.chain,
            g.stream.epoch,
            g.jwks,
            g.revoked_keys,
            g.signing_kid,
            g.audit,
            g.sealed_keys,
            g.revoked_key_events,
            g.stream.heartbeat,
        ]

    async def _with_sessions(
        self,
        partition: PartitionKeys,
        uid: str,
        call: Callable[[list[str]], Awaitable[T]],
        known: tuple[str, ...] | None = None,
    ) -> T:
        """Read the user's session ids, run ``call`` with them declared; again if they moved.
        ``known``: the ids as read a moment ago, tried first (a round trip saved)."""
        key = partition.user_sessions(uid)
        for _ in range(SESSION_SET_RETRIES):
            sids = list(known) if known is not None else sorted(await self.backend.smembers(key))
            known = None
            try:
                return await call(sids)
            except Retry:
                await asyncio.sleep(0)
        raise StoreUnavailable("the user's sessions kept changing meanwhile: try again")

    # Users -------------------------------------------------------------------------------

    async def add_user(
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
        await self._spread_power(uid, reply)

    # Sessions ----------------------------------------------------------------------------

    async def login(
        self,
        uid: str,
        sid: str,
        refresh_token: str,
        *,
        attempt: Attempt | None,
        user_agent: str,
        client: str,
        client_id: str = DEFAULT_CLIENT_ID,
        scope: list[str] | None = None,
    ) -> tuple[int, str, int]:
        """Create a session for ``client_id``; returns (Redis time ms, roles JSON, the
        session's status list index). ``scope``
        (None: every role) must name roles the user holds (InvalidScope otherwise). Past the
        session limit, the oldest sessions are revoked (durably). The ``attempt`` whose
        password was right is forgiven (``Logins``), and the session ids it read are
        declared; None (a session made by tooling, without a password) forgives nothing."""
        p = self.keys.of(uid)
        # Without an attempt, the user key holds the attempt's places; the script skips them.
        forgive = attempt.forgive if attempt else (p.user(uid),) * 3
        failures, pair, known_addresses = forgive
        keys = {
            "USER": p.user(uid),
            "SESSIONS": p.user_sessions(uid),
            "SESSION": p.session(sid),
            "RT": p.refresh_token(hash_refresh_token(refresh_token)),
            "FAILURES": failures,
            "PAIR": pair,
            "KNOWN": known_addresses,
        }

        async def write(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                contracts.LOGIN.call(
                    p.fixed(),
                    keys={**keys, "SESSION_KEYS": [p.session(s) for s in sids]},
                    uid=uid,
                    sid=sid,
                    refresh_ttl_s=self._refresh_ttl_s,
                    user_agent=user_agent,
                    client=client,
                    max_sessions=self._max_sessions,
                    lifetime_ms=self._lifetime_ms,
                    retention_ms=self._retention_ms,
                    client_id=client_id,
                    scope="" if scope is None else json.dumps(scope),
                    address=attempt.address if attempt else "",
                    known_ms=self.logins.known_ms,
                    known_max=KNOWN_ADDRESSES_MAX,
                    sids=sids,
                ),
                durable=lambda reply: int(reply[2]) > 0,
            )

        if self._max_sessions > 0:
            known = attempt.sessions if attempt and attempt.uid == uid else None
            reply = await self._with_sessions(p, uid, write, known)
        else:
            reply = await write([])
        return int(reply[0]), str(reply[1]), int(reply[3])

    async def refresh(
        self, presented: str, grant: RefreshGrant, successor: str, sealed_next: str
    ) -> RefreshResult:
        """Claim a refresh token (``grant``: what Reads.refresh_grant found for it): rotated,
        grace (a retry), or reused (its session revoked)."""
        p = self.keys.of(presented)
        rt_key = p.refresh_token(hash_refresh_token(presented))
        sid, uid = grant.sid, grant.uid
        if self.keys.of(uid) is not p or self.keys.of(successor) is not p:
            raise InvalidRefreshToken()
        try:
            status, now_ms, roles, sealed, scope, status_idx = await self.backend.run(
                contracts.REFRESH.call(
                    p.fixed(),
                    keys={
                        "RT": rt_key,
                        "USER": p.user(uid),
                        "SESSIONS": p.user_sessions(uid),
                        "SESSION": p.session(sid),
                        "NEXT_RT": p.refresh_token(hash_refresh_token(successor)),
                    },
                    sid=sid,
                    uid=uid,
                    sealed=sealed_next,
                    grace_ms=self._grace_ms,
                    refresh_ttl_s=self._refresh_ttl_s,
                    lifetime_ms=self._lifetime_ms,
                    retention_ms=self._retention_ms,
                    client_id=grant.client_id,
                ),
                durable=lambda reply: reply[0] == "reused",
            )
        except Retry:
            raise InvalidRefreshToken() from None
        return RefreshResult(status, sid, uid, int(now_ms), roles, sealed, scope, int(status_idx))

    async def revoke_session(
        self,
        sid: str,
        uid: str,
        reason: str,
        *,
        issued_ms: int | None = None,
        actor: str | None = None,
    ) -> str:
        """Delete the session and publish its revocation; the event id (``EventRef`` as text,
        as every revoking write here returns). If the session is revoked already (by its own
        revocation, or, with ``issued_ms``, the issue time of the token acted on, by a cut-off
        of its user covering that token), nothing is written: the id of that revocation's
        event, once durable (DESIGN.md invariant 13). Otherwise it spends from ``actor``'s
        budget (TooManyRevocations past it)."""
        p = self.keys.of(uid)
        budget, limit = self._budget(p, actor)
        entry_id = await self.backend.run(
            contracts.REVOKE_SESSION.call(
                p.fixed(),
                keys={
                    "SESSION": p.session(sid),
                    "SESSIONS": p.user_sessions(uid),
                    "BUDGET": budget,
                },
                sid=sid,
                uid=uid,
                lifetime_ms=self._lifetime_ms,
                retention_ms=self._retention_ms,
                reason=reason,
                issued_ms=issued_ms,
                limit=limit,
            ),
            durable=True,
        )
        return _event_id(p.stream, entry_id)

    async def revoke_user(
        self, uid: str, reason: str, *, covers_ms: int | None = None, actor: str | None = None
    ) -> str:
        """Kill every session and token of the user issued up to now; the event id. With
        ``covers_ms`` (the issue time of the token acted on), a cut-off that covers it already
        is not made again: its event id, once durable, and sessions made since stay."""
        p = self.keys.of(uid)
        budget, limit = self._budget(p, actor)

        async def attempt(sids: list[str]) -> str:
            return await self.backend.run(
                contracts.REVOKE_USER.call(
                    p.fixed(),
                    keys={
                        "SESSIONS": p.user_sessions(uid),
                        "BUDGET": budget,
                        "SESSION_KEYS": [p.session(s) for s in sids],
                    },
                    uid=uid,
                    lifetime_ms=self._lifetime_ms,
                    retention_ms=self._retention_ms,
                    reason=reason,
                    covers_ms=covers_ms,
                    limit=limit,
                    sids=sids,
                ),
                durable=True,
            )

        return _event_id(p.stream, await self._with_sessions(p, uid, attempt))

    async def end_session(self, sid: str, *, owner: str = "", actor: str = "", reason: str) -> str:
        """End a session (the owner's own, or by a moderator's authority); one ended already
        answers its revocation's event id, once durable."""
        p = self.keys.of(sid)
        session = p.session(sid)
        uid = await self.backend.hget(session, "uid")
        if uid is None:  # ended already? Its revocation names the owner.
            known = await self.backend.hget(p.revoked_session_events, sid)
            uid = known.partition(" ")[2] if known else None
        if uid is None or self.keys.of(uid) is not p:
            raise NotFound(NO_SESSION)
        budget, limit = self._budget(p, actor or owner)
        try:
            entry_id = await self.backend.run(
                contracts.END_SESSION.call(
                    p.fixed(),
                    keys={
                        "SESSION": session,
                        "SESSIONS": p.user_sessions(uid),
                        "USER": p.user(uid),
                        "BUDGET": budget,
                    },
                    sid=sid,
                    expected=uid,
                    owner=owner,
                    actor=actor,
                    lifetime_ms=self._lifetime_ms,
                    retention_ms=self._retention_ms,
                    reason=reason,
                    limit=limit,
                ),
                durable=True,
            )
            return _event_id(p.stream, entry_id)
        except Retry:
            raise NotFound(NO_SESSION) from None

    async def change_password(
        self, uid: str, new_hash: str, keep_sid: str, actor: str
    ) -> tuple[int, str | None]:
        """Store the new hash and end every other session, audited as ``actor``'s; (how many
        ended, the last event id or None: events of one stream take effect in order, so the
        last proves them all)."""
        p = self.keys.of(uid)

        async def attempt(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                self._change_password(p, uid, new_hash, keep_sid, actor, sids),
                durable=lambda reply: int(reply[0]) > 0,
            )

        ended, entry_id = await self._with_sessions(p, uid, attempt)
        return int(ended), _event_id(p.stream, entry_id) if entry_id else None

    async def repeat_password_change(self, uid: str, keep_sid: str) -> tuple[int, str | None]:
        """The answer of the last password change, if session ``keep_sid`` made it (a repeat
        after not_durable: the password is the new one already), once durable; nothing is
        written. WrongPassword if another session or an operator made the last change."""
        p = self.keys.of(uid)
        ended, entry_id = await self.backend.run(
            self._change_password(p, uid, "", keep_sid, "", []),  # no actor: spends nothing
            durable=lambda reply: int(reply[0]) > 0,
        )
        if int(ended) < 0:
            raise WrongPassword()
        return int(ended), _event_id(p.stream, entry_id) if entry_id else None

    def _change_password(
        self, p: PartitionKeys, uid: str, new_hash: str, keep_sid: str, actor: str, sids: list[str]
    ) -> ScriptCall[list[Any]]:
        """The change (or, with no ``new_hash``, its repeat: spending nothing)."""
        budget, limit = self._budget(p, actor)
        return contracts.CHANGE_PASSWORD.call(
            p.fixed(),
            keys={
                "USER": p.user(uid),
                "SESSIONS": p.user_sessions(uid),
                "BUDGET": budget,
                "SESSION_KEYS": [p.session(s) for s in sids],
            },
            uid=uid,
            new_hash=new_hash,
            keep_sid=keep_sid,
            lifetime_ms=self._lifetime_ms,
            retention_ms=self._retention_ms,
            actor=actor,
            limit=limit,
            sids=sids,
        )

    async def remove_user(self, actor: str, uid: str, username: str, reason: str) -> str:
        """Delete a user and end every session and token of it, audited; the event id."""
        p = self.keys.of(uid)

        async def attempt(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                contracts.REMOVE_USER.call(
                    p.fixed(),
                    keys={
                        "USERNAME": p.username(username),
                        "USER": p.user(uid),
                        "SESSIONS": p.user_sessions(uid),
                        "SESSION_KEYS": [p.session(s) for s in sids],
                    },
                    actor=actor,
                    uid=uid,
                    reason=reason,
                    lifetime_ms=self._lifetime_ms,
                    retention_ms=self._retention_ms,
                    sids=sids,
                ),
                durable=True,
            )

        reply = await self._with_sessions(p, uid, attempt)
        await self._spread_power(uid, reply[1:])
        return _event_id(p.stream, reply[0])

    # Moderation --------------------------------------------------------------------------

    async def moderate(
        self,
        actor: str,
        action: Literal["block", "unblock", "roles"],
        target: str,
        *,
        reason: str = "",
        roles_json: str = "[]",
    ) -> str:
        """Block, unblock or set roles, authorized and audited atomically; the event id or ''.

        A change to an admin's or moderator's power is copied to every partition
        before this returns, so that nowhere can they act on what they lost.
        """
        p = self.keys.of(target)
        budget, limit = self._budget(p, actor)

        async def attempt(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                contracts.MODERATE.call(
                    p.fixed(),
                    keys={
                        "USER": p.user(target),
                        "SESSIONS": p.user_sessions(target),
                        "BUDGET": budget,
                        "SESSION_KEYS": [p.session(s) for s in sids],
                    },
                    actor=actor,
                    action=action,
                    target=target,
                    reason=reason,
                    lifetime_ms=self._lifetime_ms,
                    retention_ms=self._retention_ms,
                    roles=roles_json,
                    limit=limit,
                    sids=sids,
                ),
                durable=lambda reply: reply[0] != "",
            )

        if action in ("block", "roles"):  # roles: the sessions' status list indexes retire
            reply = await self._with_sessions(p, target, attempt)
        else:
            reply = await attempt([])
        await self._spread_power(target, reply[1:])
        return _event_id(p.stream, reply[0]) if reply[0] else ""

    async def _spread_power(self, uid: str, reply: list[Any]) -> None:
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
        lost = _RANK[power.level] < _RANK[power.old_level]
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

    # Signing keys and the epoch ----------------------------------------------------------

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
                    self._global_keys(),
                    keys={},
                    kid=kid,
                    jwk=jwk_json,
                    epoch=epoch,
                    retention_ms=self._retention_ms,
                    activate=activate,
                    actor=actor,
                    sealed=sealed,
                )
            )
        )

    async def revoke_key(self, kid: str, actor: str, reason: str) -> str:
        """Withdraw a key for good; returns the event id (a key revoked already: the event
        that revoked it, once durable, and nothing is written)."""
        entry_id = await self.backend.run(
            contracts.REVOKE_KEY.call(
                self._global_keys(),
                keys={},
                kid=kid,
                retention_ms=self._retention_ms,
                actor=actor,
                reason=reason,
            ),
            durable=True,
        )
        return _event_id(self.keys.global_.stream, entry_id)

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
                    self._global_keys(),
                    keys={},
                    old_epoch=old_epoch or "",
                    new_epoch=new_epoch,
                    new_kid=kid,
                    jwk=jwk_json,
                    retention_ms=self._retention_ms,
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
            values = await asyncio.gather(*(self.backend.get(s.epoch) for s in streams))
            epochs = {s.name: value for s, value in zip(streams, values, strict=True)}
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

    async def announce_issuer(self, issuer_id: str, record: dict[str, str], ttl_s: int) -> None:
        """Say this issuer is live (and which keys it holds) for the next ``ttl_s`` seconds."""
        g = self.keys.global_
        now_ms = int(time.time() * 1000)

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                fields: dict[FieldT, EncodableT] = dict(record.items())
                pipe.hset(g.issuer(issuer_id), mapping=fields)
                pipe.expire(g.issuer(issuer_id), ttl_s)
                pipe.zadd(g.issuers, {issuer_id: now_ms})
                pipe.zremrangebyscore(g.issuers, "-inf", now_ms - ISSUERS_HORIZON_MS)  # long gone
                await pipe.execute()

        await self.backend.read(g.issuers, work)

    async def add_client(self, client_id: str, record: str) -> bool:
        """Register a client; False if the id is taken."""
        g = self.keys.global_
        return bool(
            await self.backend.read(g.clients, lambda c: c.hsetnx(g.clients, client_id, record))
        )

    async def replace_client(self, client_id: str, old: str, new: str) -> bool:
        """Store ``new`` as the client's record if it is still ``old``; False if it changed or
        went meanwhile (a removed client stays removed)."""
        g = self.keys.global_

        async def work(client: Redis) -> bool:
            async with client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(g.clients)
                    if await pipe.hget(g.clients, client_id) != old:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(g.clients, client_id, new)
                    await pipe.execute()
                    return True
                except WatchError:
                    return False

        return await self.backend.read(g.clients, work)

    async def remove_client(self, client_id: str) -> bool:
        g = self.keys.global_
        return bool(await self.backend.read(g.clients, lambda c: c.hdel(g.clients, client_id)))

    async def forget_issuer(self, issuer_id: str) -> None:
        g = self.keys.global_

        async def work(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(g.issuer(issuer_id))
                pipe.zrem(g.issuers, issuer_id)
                await pipe.execute()

        await self.backend.read(g.issuers, work)

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


def _version(entry: str) -> int:
    return int(entry.rpartition(":")[2] or 0)


def _level(entry: str | None) -> str:
    return entry.rpartition(":")[0] if entry else ""


def _event_id(stream: StreamKeys, entry_id: object) -> str:
    return str(EventRef.of(stream.name, str(entry_id)))
