"""Login throttling, counted in Redis before any password is checked (SECURITY.md).

Three limits, each 0 to turn it off (``docs/configuration.md``):

- attempts per client address, a hard limit per window (``throttle.lua``, in the address's
  partition): one address spraying many names;
- failures per (username, address), a hard limit per window;
- failures per username from every address together, a soft one: past it, an attempt from
  an address the user has not logged in from lately waits a delay that doubles with each
  failure, at most ``REVOCAST_LOGIN_USER_MAX_DELAY_S``. It bounds guessing from many
  addresses without letting anyone lock a user out where the user logs in from.

The last two are counted by the script that finds the user (``login_attempt.lua``), in the
username's partition: concurrent attempts cannot all pass, and the login script forgives a
right one (``Sessions.login``). An IPv6 client counts as its /64, which one host can hold whole.

A login waits for three round trips: the address's count (with the active kid and, for a
name this process has not seen, its user id, read at the same time: ``learn``), the
username's count and lookup, the login script.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import Counter
from dataclasses import dataclass
from typing import Literal, NoReturn

from revocast.errors import StoreUnavailable, TooManyAttempts
from revocast.keyspace import Keyspace, PartitionKeys
from revocast.proxies import parse_address
from revocast.store.backend import Backend
from revocast.store.sessions import contracts
from revocast.store.sessions import keys as session_keys

Limit = Literal["client", "user_address", "user"]
UID_CACHE = 10_000  # usernames whose user id this process remembers (about 200 bytes each)
_IPV6_PREFIX = 64  # what one host or customer is given


def throttled_as(address: str) -> str:
    """What an address is counted as: itself, an IPv6 one as its /64."""
    parsed = parse_address(address)
    if parsed is None:
        return address or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/{_IPV6_PREFIX}", strict=False))
    return str(parsed)


def _digest(*parts: str, length: int = 32) -> str:
    """Key parts from user text and addresses: hashed, so no user text is in a key."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login attempt the throttle let through, counted: the user it names ('' for none,
    then its password is checked against a dummy hash), and what a login forgives."""

    uid: str
    password_hash: str
    forgive: tuple[str, str, str]  # keys: the username's failures, the pair's, its known ones
    address: str  # the address's hash, as the known addresses hold it
    sessions: tuple[str, ...] | None = None  # the user's session ids, read with it if asked


class Throttle:
    """The login throttle and user lookup of one deployment."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        settings = backend.settings.throttle
        self._client_limit = settings.login_max_attempts_per_client
        # the login script needs them
        self._with_sessions = backend.settings.limits.max_sessions_per_user > 0
        # The user key must be declared before the script reads the name, so the script is
        # called with the user id last seen for it; a stale one costs one more call.
        self._uids: dict[str, str] = {}
        self.refused: Counter[Limit] = Counter()  # attempts refused, by the limit that did

    @property
    def keys(self) -> Keyspace:
        return self.backend.keys

    async def count_client(self, address: str) -> None:
        """Count an attempt from this address; TooManyAttempts past its limit."""
        if self._client_limit == 0:
            return
        key = session_keys.throttle_client(self.keys.of(address), throttled_as(address))
        wait_ms = await self.backend.run(contracts.THROTTLE.call(keys={"COUNTER": key}))
        if int(wait_ms):
            self._refuse("client", int(wait_ms))

    async def learn(self, username: str) -> str:
        """The user id of ``username`` as last seen here, read (a GET, nothing counted) when
        this process has not seen the name: ``attempt`` must declare the user's keys."""
        if username in self._uids:
            return self._uids[username]
        p = self.keys.of(username)
        return self._remember(p, username, await self.backend.get(p.username(username)) or "")

    async def attempt(self, username: str, address: str, expected: str | None = None) -> Attempt:
        """Count an attempt for ``username`` (its normal form) from ``address`` and find the
        user (``expected``: its id as ``learn`` found it); TooManyAttempts, before any
        password is checked, past a limit."""
        p = self.keys.of(username)
        counted_as = throttled_as(address)
        name, at = _digest(username), _digest(counted_as, length=24)
        throttle = (
            session_keys.login_failures(p, name),
            session_keys.login_pair(p, _digest(username, counted_as)),
            session_keys.login_known(p, name),
        )
        if expected is None:
            expected = self._uids.get(username, "")
        for _ in range(3):
            failures, pair, known = throttle
            reply = await self.backend.run(
                contracts.LOGIN_ATTEMPT.call(
                    keys={
                        "FAILURES": failures,
                        "PAIR": pair,
                        "KNOWN": known,
                        "USERNAME": p.username(username),
                        "USER": p.user(expected) if expected else None,
                        "SESSIONS": session_keys.user_sessions(p, expected) if expected else None,
                    },
                    expected=expected,
                    address=at,
                )
            )
            if reply[0] == "wait":
                self._refuse(reply[2], int(reply[1]))
            if reply[0] == "go":
                sessions = tuple(sorted(map(str, reply[3:]))) if self._with_sessions else None
                return Attempt(str(reply[1]), str(reply[2]), throttle, at, sessions)
            expected = self._remember(p, username, str(reply[1]))
        raise StoreUnavailable("the user changed three times meanwhile: try again")

    def _refuse(self, limit: Limit, wait_ms: int) -> NoReturn:
        self.refused[limit] += 1
        raise TooManyAttempts(math.ceil(wait_ms / 1000))

    def _remember(self, p: PartitionKeys, username: str, uid: str) -> str:
        if uid and self.keys.of(uid) is not p:
            raise StoreUnavailable(f"user {uid} is not in its name's partition: tell an operator")
        self._uids.pop(username, None)
        if uid:
            if len(self._uids) >= UID_CACHE:
                del self._uids[next(iter(self._uids))]  # the oldest
            self._uids[username] = uid
        return uid

    async def unlock(self, username: str, uid: str, actor: str, reason: str) -> dict[str, int]:
        """Forgive every attempt counted for ``username`` (the user ``uid``'s name), audited."""
        p = self.keys.of(username)
        counted, wait_ms = await self.backend.run(
            contracts.UNLOCK_LOGIN.call(
                p.fixed(),
                keys={"FAILURES": session_keys.login_failures(p, _digest(username))},
                uid=uid,
                actor=actor,
                reason=reason,
            )
        )
        return {"attempts_forgiven": int(counted), "delay_lifted_ms": int(wait_ms)}
