"""Typed calls to revocast's Lua scripts: the only code that changes revocation state.

Every revoking call writes the state change and its stream event in one script,
so Redis never holds one without the other (DESIGN.md invariant 1).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from revocast.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidRequest,
    NotFound,
    RevocastError,
    SigningKeyUnavailable,
    StoreUnavailable,
    UserBlocked,
)
from revocast.keyspace import Keyspace
from revocast.settings import Settings

log = logging.getLogger("revocast.store")

_SCRIPT_ERRORS: dict[str, type[RevocastError]] = {
    "invalid_grant": InvalidRefreshToken,
    "invalid_credentials": InvalidCredentials,
    "user_blocked": UserBlocked,
    "conflict": Conflict,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "key_revoked": SigningKeyUnavailable,
    "invalid_request": InvalidRequest,
}


def _script(name: str) -> str:
    lua = resources.files("revocast") / "lua"
    return (lua / "prelude.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


@dataclass(frozen=True, slots=True)
class RefreshResult:
    status: Literal["rotated", "grace"]
    sid: str
    uid: str
    now_ms: int
    roles_json: str
    sealed_next: str
    signing_kid: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The revocation state at stream position ``last_id``."""

    epoch: str | None
    last_id: str
    entries_added: int  # the stream's XADD counter at last_id
    now_ms: int
    sessions: dict[str, int]  # sid -> until_ms
    users: dict[str, tuple[int, int]]  # uid -> (not_before_ms, until_ms)
    claims: dict[str, tuple[int, int]]  # uid -> (roles changed at ms, until_ms)
    revoked_keys: dict[str, int]  # kid -> at_ms
    jwks: dict[str, str]  # kid -> JWK JSON


@dataclass(frozen=True, slots=True)
class Poll:
    epoch: str | None
    stream_exists: bool
    entries_added: int
    length: int
    first_id: str
    last_id: str  # last-generated-id
    now_ms: int  # Redis time
    entries: list[tuple[str, dict[str, str]]]


class Store:
    """Revocast's Redis state for one key prefix. The client must decode responses."""

    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        self.redis = redis
        self.keys = keyspace
        self._scripts = {
            name: redis.register_script(_script(name))
            for name in (
                "publish_key",
                "revoke_key",
                "recover",
                "add_user",
                "login",
                "refresh",
                "revoke_session",
                "revoke_user",
                "end_session",
                "moderate",
                "authorize",
                "change_password",
                "rate_limit",
                "snapshot",
                "poll",
            )
        }

    async def _run(self, name: str, *args: str | int) -> Any:
        with _wrap_errors():
            return await self._scripts[name](args=[self.keys.prefix, *args])

    async def find_user(self, username: str) -> tuple[str, str] | None:
        """(user id, password hash) for a username, or None."""
        with _wrap_errors():
            # The client decodes responses, so every reply is str (redis-py's types can't say so).
            uid = cast(str | None, await self.redis.get(self.keys.username(username)))
            if uid is None:
                return None
            user = self.keys.user(uid)
            password_hash = cast(str | None, await self.redis.hget(user, "password_hash"))
        return (uid, password_hash) if password_hash else None

    async def jwks(self) -> dict[str, str]:
        """Every published public key (kid -> JWK JSON) that is not revoked."""
        with _wrap_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(self.keys.jwks)
                pipe.zrange(self.keys.revoked_keys, 0, -1)
                published, revoked = await pipe.execute()
        return {kid: jwk for kid, jwk in published.items() if kid not in set(revoked)}

    async def publish_key(
        self,
        kid: str,
        jwk_json: str,
        epoch: str,
        retention_ms: int,
        *,
        activate: bool = False,
        actor: str = "",
    ) -> str:
        """Publish a public key (and the epoch, if given and missing); returns the active kid."""
        return str(
            await self._run("publish_key", kid, jwk_json, epoch, retention_ms, int(activate), actor)
        )

    async def revoke_key(self, kid: str, retention_ms: int, actor: str, reason: str) -> str:
        """Withdraw a key for good; returns the event id."""
        return str(await self._run("revoke_key", kid, retention_ms, actor, reason))

    async def recover(
        self, new_epoch: str, kid: str, jwk_json: str, retention_ms: int, old_kids: list[str]
    ) -> bool:
        """After a data loss: revoke ``old_kids``, activate ``kid``, set the epoch. Once."""
        return bool(await self._run("recover", new_epoch, kid, jwk_json, retention_ms, *old_kids))

    async def epoch(self) -> str | None:
        with _wrap_errors():
            return cast(str | None, await self.redis.get(self.keys.epoch))

    async def signing_kid(self) -> str | None:
        with _wrap_errors():
            return cast(str | None, await self.redis.get(self.keys.signing_kid))

    async def add_user(self, uid: str, username: str, password_hash: str, roles_json: str) -> None:
        await self._run("add_user", uid, username, password_hash, roles_json)

    async def login(
        self,
        uid: str,
        sid: str,
        rt_hash: str,
        *,
        refresh_ttl_s: int,
        user_agent: str,
        client: str,
        max_sessions: int,
        lifetime_ms: int,
        retention_ms: int,
    ) -> tuple[int, str, str]:
        """Create a session; returns (Redis time ms, roles JSON, active signing kid)."""
        now_ms, roles, kid = await self._run(
            "login",
            uid,
            sid,
            rt_hash,
            refresh_ttl_s,
            user_agent,
            client,
            max_sessions,
            lifetime_ms,
            retention_ms,
        )
        return int(now_ms), str(roles), str(kid)

    async def refresh(
        self,
        rt_hash: str,
        next_rt_hash: str,
        sealed_next: str,
        grace_ms: int,
        refresh_ttl_s: int,
        lifetime_ms: int,
        retention_ms: int,
    ) -> RefreshResult:
        status, sid, uid, now_ms, roles, sealed, kid = await self._run(
            "refresh",
            rt_hash,
            next_rt_hash,
            sealed_next,
            grace_ms,
            refresh_ttl_s,
            lifetime_ms,
            retention_ms,
        )
        return RefreshResult(status, sid, uid, int(now_ms), roles, sealed, kid)

    async def revoke_session(
        self, sid: str, uid: str, lifetime_ms: int, retention_ms: int, reason: str
    ) -> str:
        """Delete the session and publish its revocation; returns the event id."""
        return str(await self._run("revoke_session", sid, uid, lifetime_ms, retention_ms, reason))

    async def revoke_user(self, uid: str, lifetime_ms: int, retention_ms: int, reason: str) -> str:
        """Kill every session and token of the user; returns the event id."""
        return str(await self._run("revoke_user", uid, lifetime_ms, retention_ms, reason))

    async def end_session(
        self,
        sid: str,
        *,
        owner: str = "",
        actor: str = "",
        lifetime_ms: int,
        retention_ms: int,
        reason: str,
    ) -> str:
        """End an existing session (the owner's own, or by a moderator's authority)."""
        return str(
            await self._run("end_session", sid, owner, actor, lifetime_ms, retention_ms, reason)
        )

    async def moderate(
        self,
        actor: str,
        action: Literal["block", "unblock", "roles"],
        target_uid: str,
        *,
        reason: str = "",
        lifetime_ms: int,
        retention_ms: int,
        roles_json: str = "[]",
    ) -> str:
        """Block, unblock or set roles, authorized and audited atomically."""
        return str(
            await self._run(
                "moderate",
                actor,
                action,
                target_uid,
                reason,
                lifetime_ms,
                retention_ms,
                roles_json,
            )
        )

    async def authorize(self, actor: str, target_uid: str = "") -> str:
        """The actor's authority for a read (admin, moderator, operator); Forbidden otherwise."""
        return str(await self._run("authorize", actor, target_uid))

    async def change_password(
        self, uid: str, new_hash: str, keep_sid: str, lifetime_ms: int, retention_ms: int
    ) -> int:
        """Store the new hash and end every other session; returns how many ended."""
        return int(
            await self._run("change_password", uid, new_hash, keep_sid, lifetime_ms, retention_ms)
        )

    async def password_hash(self, uid: str) -> str | None:
        with _wrap_errors():
            return cast(str | None, await self.redis.hget(self.keys.user(uid), "password_hash"))

    async def username_of(self, uid: str) -> str | None:
        with _wrap_errors():
            return cast(str | None, await self.redis.hget(self.keys.user(uid), "username"))

    async def login_throttle(
        self,
        username: str,
        client: str,
        action: Literal["attempt", "failure", "success"],
        settings: Settings,
    ) -> int:
        """Count a login attempt, failure or success; milliseconds to wait (0: go ahead)."""
        user_key = hashlib.sha256(username.encode()).hexdigest()[:32]  # no user text in keys
        return int(
            await self._run(
                "rate_limit",
                user_key,
                client or "unknown",
                settings.login_max_failures_per_user,
                settings.login_max_attempts_per_client,
                settings.login_window_s,
                action,
            )
        )

    async def user_exists(self, uid: str) -> bool:
        with _wrap_errors():
            return bool(await self.redis.exists(self.keys.user(uid)))

    async def sessions(self, uid: str) -> list[dict[str, str]]:
        """The user's live sessions, oldest first (each with its ``sid``)."""
        with _wrap_errors():
            sids = sorted(cast(set[str], await self.redis.smembers(self.keys.user_sessions(uid))))
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.hgetall(self.keys.session(sid))
                records = cast(list[dict[str, str]], await pipe.execute())
        live = [record | {"sid": sid} for sid, record in zip(sids, records, strict=True) if record]
        return sorted(live, key=lambda record: int(record.get("created_ms", 0)))

    async def refresh_token_session(self, rt_hash: str) -> tuple[str, str] | None:
        """(sid, uid) of a refresh token whose session is still live, else None."""
        with _wrap_errors():
            record = cast(
                list[str | None],
                await self.redis.hmget(self.keys.refresh_token(rt_hash), ["sid", "uid", "state"]),
            )
            sid, uid, state = record
            if sid is None or uid is None or state != "live":
                return None
            if not await self.redis.exists(self.keys.session(sid)):
                return None
        return sid, uid

    async def session_live(self, sid: str) -> bool:
        with _wrap_errors():
            return bool(await self.redis.exists(self.keys.session(sid)))

    async def audit_page(self, before: str, limit: int) -> list[tuple[str, dict[str, str]]]:
        """Audit entries newest first, strictly before the id ``before`` ("+" for the newest)."""
        with _wrap_errors():
            upper = before if before == "+" else f"({before}"
            return cast(
                list[tuple[str, dict[str, str]]],
                await self.redis.xrevrange(self.keys.audit, upper, "-", count=limit),
            )

    async def snapshot(self) -> Snapshot:
        epoch, last_id, added, now_ms, sessions, users, claims, keys, jwks = await self._run(
            "snapshot"
        )
        return Snapshot(
            epoch=epoch,
            last_id=last_id,
            entries_added=int(added),
            now_ms=int(now_ms),
            sessions={sessions[i]: int(float(sessions[i + 1])) for i in range(0, len(sessions), 2)},
            users=_triples(users),
            claims=_triples(claims),
            revoked_keys={keys[i]: int(float(keys[i + 1])) for i in range(0, len(keys), 2)},
            jwks={jwks[i]: jwks[i + 1] for i in range(0, len(jwks), 2)},
        )

    async def poll(self, after_id: str, count: int) -> Poll:
        epoch, exists, added, length, first_id, last_id, now_ms, entries = await self._run(
            "poll", after_id, count
        )
        return Poll(
            epoch=epoch,
            stream_exists=bool(exists),
            entries_added=int(added),
            length=int(length),
            first_id=first_id,
            last_id=last_id,
            now_ms=int(now_ms),
            entries=[(entry_id, _pairs(fields)) for entry_id, fields in entries],
        )


@contextlib.contextmanager
def _wrap_errors() -> Iterator[None]:
    """Turn redis-py errors into revocast's: script refusals keep their code."""
    try:
        yield
    except ResponseError as exc:
        error = _SCRIPT_ERRORS.get(str(exc))
        if error is None:
            # The raw text names scripts and lines: for the log, not for clients.
            log.error("redis refused a command: %s", exc)
            raise StoreUnavailable("redis refused the command") from None
        raise error() from None
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"redis unavailable: {type(exc).__name__}") from None


def _triples(flat: list[str]) -> dict[str, tuple[int, int]]:
    return {flat[i]: (int(flat[i + 1]), int(float(flat[i + 2]))) for i in range(0, len(flat), 3)}


def _pairs(flat: list[str]) -> dict[str, str]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def parse_id(stream_id: str) -> tuple[int, int]:
    """Stream ids compare as (ms, seq) pairs."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
