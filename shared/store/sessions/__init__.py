"""Sessions: login, refresh, the revocations of a session or of a user's every session,
the login throttle (``throttle.py``), and the session reads.

Every revoking call writes the state change and its stream event in one script, so Redis
never holds one without the other (DESIGN.md invariant 1), and is durable: acknowledged
only once the configured replicas have it (invariant 9). Lifetimes, retention and the
session limit are the deployment's constants, in its scripts (``revocast.store.constants``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.client import NEVER_DECODE

from revocast.clients import DEFAULT_CLIENT_ID
from revocast.errors import InvalidRefreshToken, NotFound, StoreUnavailable
from revocast.events import ActorKind
from revocast.ids import hash_refresh_token
from revocast.keyspace import Keyspace, PartitionKeys
from revocast.roles import OPERATOR_PREFIX
from revocast.store.backend import Backend
from revocast.store.contracts import Retry
from revocast.store.records import RefreshGrant, RefreshResult, event_id
from revocast.store.sessions import contracts
from revocast.store.sessions import keys as session_keys
from revocast.store.sessions.throttle import Attempt, Throttle

T = TypeVar("T")

SESSION_SET_RETRIES = 10  # a user's session set changed between our read and the script
NO_SESSION = "no such session: it has ended, or the id is wrong"


class Sessions:
    """Sessions of one deployment's users, and their revocations."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.throttle = Throttle(backend)  # the login throttle and user lookup
        limits = backend.settings.limits
        self._max_sessions = limits.max_sessions_per_user
        self._revocations_per_minute = limits.revocations_per_minute

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    def budget(self, partition: PartitionKeys, actor: str | None) -> tuple[str, int]:
        """The actor's revocation counter in ``partition`` and its limit per minute; no limit
        (0) without an actor (an IdP's signal) or for operators (``cli:``)."""
        if not actor or actor.startswith(OPERATOR_PREFIX):
            return session_keys.revocation_budget(partition, "-"), 0  # passed, never touched
        return session_keys.revocation_budget(partition, actor), self._revocations_per_minute

    async def with_sessions(
        self,
        partition: PartitionKeys,
        uid: str,
        call: Callable[[list[str]], Awaitable[T]],
        known: tuple[str, ...] | None = None,
    ) -> T:
        """Read the user's session ids, run ``call`` with them declared; again if they moved.
        ``known``: the ids as read a moment ago, tried first (a round trip saved)."""
        key = session_keys.user_sessions(partition, uid)
        for _ in range(SESSION_SET_RETRIES):
            sids = list(known) if known is not None else sorted(await self.backend.smembers(key))
            known = None
            try:
                return await call(sids)
            except Retry:
                await asyncio.sleep(0)
        raise StoreUnavailable("the user's sessions kept changing meanwhile: try again")

    # Writes ------------------------------------------------------------------------------

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
        password was right is forgiven (``Throttle``), and the session ids it read are
        declared; None (a session made by tooling, without a password) forgives nothing."""
        p = self.keys.of(uid)
        # Without an attempt, the user key holds the attempt's places; the script skips them.
        forgive = attempt.forgive if attempt else (p.user(uid),) * 3
        failures, pair, known_addresses = forgive
        keys = {
            "USER": p.user(uid),
            "SESSIONS": session_keys.user_sessions(p, uid),
            "SESSION": session_keys.session(p, sid),
            "RT": session_keys.refresh_token(p, hash_refresh_token(refresh_token)),
            "FAILURES": failures,
            "PAIR": pair,
            "KNOWN": known_addresses,
        }

        async def write(sids: list[str]) -> list[Any]:
            return await self.backend.run(
                contracts.LOGIN.call(
                    p.fixed(),
                    keys={**keys, "SESSION_KEYS": [session_keys.session(p, s) for s in sids]},
                    uid=uid,
                    sid=sid,
                    user_agent=user_agent,
                    client=client,
                    client_id=client_id,
                    scope="" if scope is None else json.dumps(scope),
                    address=attempt.address if attempt else "",
                    sids=sids,
                ),
                durable=lambda reply: int(reply[2]) > 0,
            )

        if self._max_sessions > 0:
            known = attempt.sessions if attempt and attempt.uid == uid else None
            reply = await self.with_sessions(p, uid, write, known)
        else:
            reply = await write([])
        return int(reply[0]), str(reply[1]), int(reply[3])

    async def refresh(
        self, presented: str, grant: RefreshGrant, successor: str, sealed_next: str
    ) -> RefreshResult:
        """Claim a refresh token (``grant``: what ``refresh_grant`` found for it): rotated,
        grace (a retry), or reused (its session revoked)."""
        p = self.keys.of(presented)
        rt_key = session_keys.refresh_token(p, hash_refresh_token(presented))
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
                        "SESSIONS": session_keys.user_sessions(p, uid),
                        "SESSION": session_keys.session(p, sid),
                        "NEXT_RT": session_keys.refresh_token(p, hash_refresh_token(successor)),
                    },
                    sid=sid,
                    uid=uid,
                    sealed=sealed_next,
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
        actor_kind: ActorKind,
    ) -> str:
        """Delete the session and publish its revocation, by ``actor_kind``; the event id
        (``EventRef`` as text, as every revoking write returns). If the session is revoked
        already (by its own revocation, or, with ``issued_ms``, the issue time of the token
        acted on, by a cut-off of its user covering that token), nothing is written: the id
        of that revocation's event, once durable (DESIGN.md invariant 13). Otherwise it
        spends from ``actor``'s budget (TooManyRevocations past it)."""
        p = self.keys.of(uid)
        budget, limit = self.budget(p, actor)
        entry_id = await self.backend.run(
            contracts.REVOKE_SESSION.call(
                p.fixed(),
                keys={
                    "SESSION": session_keys.session(p, sid),
                    "SESSIONS": session_keys.user_sessions(p, uid),
                    "BUDGET": budget,
                },
                sid=sid,
                uid=uid,
                reason=reason,
                issued_ms=issued_ms,
                limit=limit,
                actor_kind=actor_kind,
            ),
            durable=True,
        )
        return event_id(p.stream, entry_id)

    async def revoke_user(
        self,
        uid: str,
        reason: str,
        *,
        covers_ms: int | None = None,
        actor: str | None = None,
        actor_kind: ActorKind,
    ) -> str:
        """Kill every session and token of the user issued up to now; the event id. With
        ``covers_ms`` (the issue time of the token acted on), a cut-off that covers it already
        is not made again: its event id, once durable, and sessions made since stay."""
        p = self.keys.of(uid)
        budget, limit = self.budget(p, actor)

        async def attempt(sids: list[str]) -> str:
            return await self.backend.run(
                contracts.REVOKE_USER.call(
                    p.fixed(),
                    keys={
                        "SESSIONS": session_keys.user_sessions(p, uid),
                        "BUDGET": budget,
                        "SESSION_KEYS": [session_keys.session(p, s) for s in sids],
                    },
                    uid=uid,
                    reason=reason,
                    covers_ms=covers_ms,
                    limit=limit,
                    actor_kind=actor_kind,
                    sids=sids,
                ),
                durable=True,
            )

        return event_id(p.stream, await self.with_sessions(p, uid, attempt))

    async def end_session(
        self, sid: str, *, owner: str = "", actor: str = "", reason: str, actor_kind: ActorKind
    ) -> str:
        """End a session (the owner's own, or by a moderator's authority); one ended already
        answers its revocation's event id, once durable."""
        p = self.keys.of(sid)
        session = session_keys.session(p, sid)
        uid = await self.backend.hget(session, "uid")
        if uid is None:  # ended already? Its revocation names the owner.
            known = await self.backend.hget(p.revoked_session_events, sid)
            uid = known.partition(" ")[2] if known else None
        if uid is None or self.keys.of(uid) is not p:
            raise NotFound(NO_SESSION)
        budget, limit = self.budget(p, actor or owner)
        try:
            entry_id = await self.backend.run(
                contracts.END_SESSION.call(
                    p.fixed(),
                    keys={
                        "SESSION": session,
                        "SESSIONS": session_keys.user_sessions(p, uid),
                        "USER": p.user(uid),
                        "BUDGET": budget,
                    },
                    sid=sid,
                    expected=uid,
                    owner=owner,
                    actor=actor,
                    reason=reason,
                    limit=limit,
                    actor_kind=actor_kind,
                ),
                durable=True,
            )
            return event_id(p.stream, entry_id)
        except Retry:
            raise NotFound(NO_SESSION) from None

    # Reads (from the primaries: they decide logins and admin actions) --------------------

    async def of_user(self, uid: str) -> list[dict[str, str]]:
        """The user's live sessions, oldest first (each with its ``sid``)."""
        p = self.keys.of(uid)
        set_key = session_keys.user_sessions(p, uid)

        async def read(client: Redis) -> list[dict[str, str]]:
            sids = sorted(cast(set[str], await client.smembers(set_key)))
            async with client.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.hgetall(session_keys.session(p, sid))
                records = cast(list[dict[str, str]], await pipe.execute())
            return [
                record | {"sid": sid} for sid, record in zip(sids, records, strict=True) if record
            ]

        live = await self.backend.on_primary(set_key, read)
        return sorted(live, key=lambda record: int(record.get("created_ms", 0)))

    async def refresh_grant(self, token: str) -> RefreshGrant | None:
        """What a refresh token stands for, live or already rotated; None if Redis has no trace."""
        p = self.keys.of(token)
        key = session_keys.refresh_token(p, hash_refresh_token(token))
        fields = ["sid", "uid", "state", "client_id", "issued_ms"]
        sid, uid, state, client_id, issued_ms = await self.backend.hmget(key, fields)
        if sid is None or uid is None or self.keys.of(uid) is not p:
            return None
        return RefreshGrant(sid, uid, client_id or DEFAULT_CLIENT_ID, state == "live",
                            int(issued_ms) if issued_ms else None)  # fmt: skip

    async def scope(self, sid: str) -> tuple[bool, list[str] | None]:
        """(whether the session lives, the roles its login asked for: None for all of them)."""
        p = self.keys.of(sid)
        uid, scope = await self.backend.hmget(session_keys.session(p, sid), ["uid", "scope"])
        return uid is not None, json.loads(scope) if scope else None

    async def live(self, sid: str) -> bool:
        return await self.backend.exists(session_keys.session(self.keys.of(sid), sid))

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

        return await self.backend.on_primary(p.status_bits, read)
