"""Each Lua script's contract, declared once: its keys and arguments by name, and its reply.

``scripts.py`` generates every script's header from this (``local SESSION = KEYS[FIXED + 1]``,
``local lifetime_ms = tonumber(ARGV[4])``), so the Lua body reads names, never positions; a
caller builds a ``ScriptCall`` with ``Contract.call``, by name too: a missing or extra name,
or a value of the wrong type, is a TypeError before anything reaches Redis.

A script of a part (``partition``, ``global``) gets that part's fixed keys first, named by
``FIXED_KEYS`` (the order of ``keyspace.PartitionKeys.fixed`` and ``Writes._global_keys``).
``rest_keys``/``rest_args`` name a Lua table of every key/argument after the declared ones
(the sessions a caller read, and their ids); ``optional`` keys may be left out (None).
Argument types: ``str``; ``int`` (Lua ``tonumber``); ``int | None`` (None is sent as '', so
Lua reads nil); ``bool`` (sent as 1 or 0, Lua reads true or false).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Any, Generic, Literal, TypeVar

Part = Literal["partition", "global", "none"]
ArgType = type | UnionType
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

INT_OR_NONE: ArgType = int | None

FIXED_KEYS: dict[Part, tuple[str, ...]] = {
    "partition": (
        "EVENTS", "CHAIN", "REVOKED_SESSIONS", "REVOKED_USERS", "USERS_UNTIL", "REVOKED_ROLES",
        "ROLES_UNTIL", "AUDIT", "AUTHORITY", "SESSION_EVENTS", "USER_EVENTS", "HEARTBEAT",
        "STATUS_BITS", "STATUS_LEASES",
    ),
    "global": (
        "EVENTS", "CHAIN", "EPOCH", "JWKS", "REVOKED_KEYS", "SIGNING_KID", "AUDIT",
        "SEALED_KEYS", "REVOKED_KEY_EVENTS", "HEARTBEAT",
    ),
    "none": (),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScriptCall(Generic[R_co]):
    """One call of a script: its KEYS and ARGV in the declared order."""

    name: str
    keys: list[str]
    args: list[str | int]


@dataclass(frozen=True, slots=True)
class Contract(Generic[R]):
    """What a script takes and answers; ``call`` checks a caller against it."""

    name: str
    part: Part
    reply: type[R]
    keys: tuple[str, ...] = ()
    args: tuple[tuple[str, ArgType], ...] = ()
    optional: tuple[str, ...] = ()  # keys after ``keys`` that may be left out
    rest_keys: str | None = None
    rest_args: str | None = None

    @property
    def fixed(self) -> tuple[str, ...]:
        return FIXED_KEYS[self.part]

    def call(
        self,
        fixed: Sequence[str] = (),
        /,
        *,
        keys: Mapping[str, str | Sequence[str] | None],
        **args: object,
    ) -> ScriptCall[R]:
        """The call with these keys (and ``fixed``, the part's) and arguments, by name."""
        if len(fixed) != len(self.fixed):
            raise TypeError(f"{self.name}: {len(self.fixed)} fixed keys, got {len(fixed)}")
        key_names = (*self.keys, *self.optional, *_some(self.rest_keys))
        arg_names = (*(name for name, _ in self.args), *_some(self.rest_args))
        _same_names(self.name, "keys", key_names, keys)
        _same_names(self.name, "arguments", arg_names, args)
        flat = [*fixed, *(_text(self.name, name, keys[name]) for name in self.keys)]
        for name in self.optional:
            value = keys[name]
            if value is not None:
                flat.append(_text(self.name, name, value))
            elif name != self.optional[-1] and keys[self.optional[-1]] is not None:
                raise TypeError(f"{self.name}: optional key {name} left out before a later one")
        encoded = [_encode(self.name, name, kind, args[name]) for name, kind in self.args]
        if self.rest_keys is not None:
            flat.extend(_texts(self.name, self.rest_keys, keys[self.rest_keys]))
        if self.rest_args is not None:
            encoded.extend(_texts(self.name, self.rest_args, args[self.rest_args]))
        return ScriptCall(self.name, flat, encoded)


def _some(name: str | None) -> tuple[str, ...]:
    return () if name is None else (name,)


def _same_names(
    script: str, what: str, declared: tuple[str, ...], given: Mapping[str, Any]
) -> None:
    missing = [name for name in declared if name not in given]
    extra = [name for name in given if name not in declared]
    if missing or extra:
        raise TypeError(f"{script}: {what} missing {missing}, not declared {extra}")


def _text(script: str, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{script}: {name} must be a str, not {type(value).__name__}")
    return value


def _texts(script: str, name: str, values: object) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"{script}: {name} must be a sequence of str")
    return [_text(script, name, value) for value in values]


def _encode(script: str, name: str, kind: ArgType, value: object) -> str | int:
    if kind is bool and isinstance(value, bool):
        return int(value)
    if kind is str and isinstance(value, str):
        return value
    if kind in (int, INT_OR_NONE) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == INT_OR_NONE and value is None:
        return ""
    raise TypeError(f"{script}: {name} must be {kind}, not {type(value).__name__}")


# Users and sessions (the partition's scripts) ---------------------------------------------

ADD_USER = Contract(
    "add_user", "partition", list,
    keys=("USERNAME", "USER"),
    args=(("uid", str), ("username", str), ("password_hash", str), ("roles_json", str),
          ("actor", str)),  # actor: '' = not audited (the issuer's own sign-up)
)  # fmt: skip
LOGIN = Contract(
    "login", "partition", list,
    keys=("USER", "SESSIONS", "SESSION", "RT", "FAILURES", "PAIR", "KNOWN"),
    args=(("uid", str), ("sid", str), ("refresh_ttl_s", int), ("user_agent", str),
          ("client", str), ("max_sessions", int), ("lifetime_ms", int), ("retention_ms", int),
          ("client_id", str), ("scope", str), ("address", str), ("known_ms", int),
          ("known_max", int)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip
REFRESH = Contract(
    "refresh", "partition", list,
    keys=("RT", "USER", "SESSIONS", "SESSION", "NEXT_RT"),
    args=(("sid", str), ("uid", str), ("sealed", str), ("grace_ms", int),
          ("refresh_ttl_s", int), ("lifetime_ms", int), ("retention_ms", int),
          ("client_id", str)),
)  # fmt: skip
REVOKE_SESSION = Contract(
    "revoke_session", "partition", str,
    keys=("SESSION", "SESSIONS", "BUDGET"),
    args=(("sid", str), ("uid", str), ("lifetime_ms", int), ("retention_ms", int),
          ("reason", str), ("issued_ms", INT_OR_NONE), ("limit", int)),
)  # fmt: skip
REVOKE_USER = Contract(
    "revoke_user", "partition", str,
    keys=("SESSIONS", "BUDGET"),
    args=(("uid", str), ("lifetime_ms", int), ("retention_ms", int), ("reason", str),
          ("covers_ms", INT_OR_NONE), ("limit", int)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip
END_SESSION = Contract(
    "end_session", "partition", str,
    keys=("SESSION", "SESSIONS", "USER", "BUDGET"),
    args=(("sid", str), ("expected", str), ("owner", str), ("actor", str),
          ("lifetime_ms", int), ("retention_ms", int), ("reason", str), ("limit", int)),
)  # fmt: skip
CHANGE_PASSWORD = Contract(
    "change_password", "partition", list,
    keys=("USER", "SESSIONS", "BUDGET"),
    args=(("uid", str), ("new_hash", str), ("keep_sid", str), ("lifetime_ms", int),
          ("retention_ms", int), ("actor", str), ("limit", int)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip
REMOVE_USER = Contract(
    "remove_user", "partition", list,
    keys=("USERNAME", "USER", "SESSIONS"),
    args=(("actor", str), ("uid", str), ("reason", str), ("lifetime_ms", int),
          ("retention_ms", int)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip
MODERATE = Contract(
    "moderate", "partition", list,
    keys=("USER", "SESSIONS", "BUDGET"),
    args=(("actor", str), ("action", str), ("target", str), ("reason", str),
          ("lifetime_ms", int), ("retention_ms", int), ("roles", str), ("limit", int)),
    rest_keys="SESSION_KEYS",  # the sessions the caller read, for declared_sessions
    rest_args="sids",
)  # fmt: skip
UNLOCK_LOGIN = Contract(
    "unlock_login", "partition", list,
    keys=("FAILURES",),
    args=(("uid", str), ("actor", str), ("reason", str), ("memory_s", int)),
)  # fmt: skip
AUTHORITY_SYNC = Contract(
    "authority_sync", "none", int,
    keys=("AUTHORITY",),
    args=(("uid", str), ("level", str), ("version", int)),
)  # fmt: skip
THROTTLE = Contract(
    "throttle", "none", int, keys=("COUNTER",), args=(("limit", int), ("window_s", int))
)  # fmt: skip
LOGIN_ATTEMPT = Contract(
    "login_attempt", "none", list,
    keys=("FAILURES", "PAIR", "KNOWN", "USERNAME"),
    optional=("USER", "SESSIONS"),  # left out when no user is expected
    args=(("expected", str), ("address", str), ("pair_limit", int), ("window_s", int),
          ("user_limit", int), ("max_delay_ms", int), ("memory_s", int), ("known_ms", int),
          ("sessions", bool)),
)  # fmt: skip

# IdP links and tokens (the global slot's keys, no part) ---------------------------------

UPSTREAM_LINK = Contract(
    "upstream_link", "none", str,
    keys=("NONCE", "LINK", "LINKS", "AUDIT"),
    optional=("UPSTREAM_SESSIONS",),  # the IdP session's local sessions, when it named one
    args=(("uid", str), ("link_id", str), ("iss", str), ("sub", str), ("nonce_ttl_s", int),
          ("member", str), ("session_ttl_s", int)),
)  # fmt: skip
UPSTREAM_UNLINK = Contract(
    "upstream_unlink", "none", str,
    keys=("LINK", "LINKS", "AUDIT"),
    args=(("uid", str), ("link_id", str), ("actor", str), ("reason", str)),
)  # fmt: skip
UPSTREAM_TOKEN = Contract(
    "upstream_token", "none", str,
    keys=("TOKEN",),
    args=(("action", str), ("owner", str), ("ttl_s", int)),
)  # fmt: skip
SSF_LEASE = Contract(
    "ssf_lease", "none", int, keys=("LEASE",), args=(("owner", str), ("ttl_ms", int))
)  # fmt: skip

# Streams: heartbeat, epoch, snapshots ---------------------------------------------------

HEARTBEAT = Contract("heartbeat", "none", list, keys=("HEARTBEAT", "EPOCH"))
ADOPT_EPOCH = Contract(
    "adopt_epoch", "none", int,
    keys=("EPOCH",),
    args=(("new_epoch", str), ("old_epoch", str)),  # old_epoch: '' = none
)  # fmt: skip
SNAPSHOT_PARTITION = Contract(
    "snapshot_partition", "none", list,
    keys=("EVENTS", "CHAIN", "EPOCH", "HEARTBEAT", "REVOKED_SESSIONS", "REVOKED_USERS",
          "USERS_UNTIL", "REVOKED_ROLES", "ROLES_UNTIL"),
)  # fmt: skip
SNAPSHOT_GLOBAL = Contract(
    "snapshot_global", "none", list,
    keys=("EVENTS", "CHAIN", "EPOCH", "HEARTBEAT", "REVOKED_KEYS", "JWKS"),
)  # fmt: skip

# Signing keys (the global part) ---------------------------------------------------------

PUBLISH_KEY = Contract(
    "publish_key", "global", str,
    args=(("kid", str), ("jwk", str), ("epoch", str), ("retention_ms", int),
          ("activate", bool), ("actor", str), ("sealed", str)),  # epoch, sealed: '' = none
)  # fmt: skip
REVOKE_KEY = Contract(
    "revoke_key", "global", str,
    args=(("kid", str), ("retention_ms", int), ("actor", str), ("reason", str)),
)  # fmt: skip
RECOVER = Contract(
    "recover", "global", int,
    args=(("old_epoch", str), ("new_epoch", str), ("new_kid", str), ("jwk", str),
          ("retention_ms", int), ("sealed", str)),
    rest_args="kids",  # keys the caller holds, revoked too
)  # fmt: skip

CONTRACTS: dict[str, Contract[Any]] = {
    c.name: c
    for c in (ADD_USER, LOGIN, REFRESH, REVOKE_SESSION, REVOKE_USER, END_SESSION,
              CHANGE_PASSWORD, REMOVE_USER, MODERATE, UNLOCK_LOGIN, AUTHORITY_SYNC, THROTTLE,
              LOGIN_ATTEMPT, UPSTREAM_LINK, UPSTREAM_UNLINK, UPSTREAM_TOKEN, SSF_LEASE, HEARTBEAT,
              ADOPT_EPOCH, SNAPSHOT_PARTITION, SNAPSHOT_GLOBAL, PUBLISH_KEY, REVOKE_KEY, RECOVER)
}  # fmt: skip


def lua_header(contract: Contract[Any]) -> str:
    """The Lua locals a script's body reads, from its contract (KEYS and ARGV by position
    here, and nowhere else)."""
    base = "FIXED + " if contract.fixed else ""
    lines = [f"-- {contract.name}: generated from revocast.store.contracts"]
    names = (*contract.keys, *contract.optional)
    lines += [f"local {name} = KEYS[{base}{i}]" for i, name in enumerate(names, 1)]
    if contract.rest_keys is not None:
        lines += _rest(contract.rest_keys, "KEYS", f"{base}{len(names) + 1}")
    for i, (name, kind) in enumerate(contract.args, 1):
        lines.append(f"local {name} = {_decode(kind, f'ARGV[{i}]')}")
    if contract.rest_args is not None:
        lines += _rest(contract.rest_args, "ARGV", str(len(contract.args) + 1))
    return "\n".join(lines)


def lua_fixed(part: Part) -> str:
    """The part's fixed keys as Lua locals, with ``FIXED``, their count."""
    names = FIXED_KEYS[part]
    lines = [f"-- {part}'s fixed keys: generated from revocast.store.contracts"]
    lines += [f"local {name} = KEYS[{i}]" for i, name in enumerate(names, 1)]
    return "\n".join([*lines, f"local FIXED = {len(names)}"])


def _rest(name: str, table: str, first: str) -> list[str]:
    return [
        f"local {name} = {{}}",
        f"for i = {first}, #{table} do {name}[#{name} + 1] = {table}[i] end",
    ]


def _decode(kind: ArgType, source: str) -> str:
    if kind is bool:
        return f"{source} == '1'"
    if kind in (int, INT_OR_NONE):
        return f"tonumber({source})"
    return source
