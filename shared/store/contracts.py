"""How a Lua script is declared (its keys and arguments by name, and its reply), assembled
and called: ``Contract.call`` gives the ``ScriptCall`` that ``Backend.run`` sends by SHA.

Each aggregate declares its own scripts beside their Lua (``sessions/contracts.py`` and
``sessions/login.lua``...); the parts every script shares (the prelude, ``partition.lua``,
``global.lua``, ``status_list.lua``) are in ``lua/``. A script is the lifetimes it may use
(``revocast.lifetimes``), the event vocabulary (``revocast.events``), its deployment's
constants (``revocast.store.constants``: each ``Backend`` assembles its own), the prelude,
the part its keys call for (``partition.lua``, after the Lua set of
``revocast.roles.SERVICE_ROLES``, the operators' prefix and the status list's helpers,
``status_list.lua``, or ``global.lua``) and its body; a ``#!lua`` flags line in the body
moves to the top.

``scripts.py`` generates every script's header from this (``local SESSION = KEYS[FIXED + 1]``,
``local issued_ms = tonumber(ARGV[4])``), so the Lua body reads names, never positions; a
caller builds a ``ScriptCall`` with ``Contract.call``, by name too: a missing or extra name,
or a value of the wrong type, is a TypeError before anything reaches Redis.

A script of a part (``partition``, ``global``) gets that part's fixed keys first, named by
``FIXED_KEYS`` (the order of ``keyspace.PartitionKeys.fixed`` and ``keyspace.GlobalKeys.fixed``).
``rest_keys``/``rest_args`` name a Lua table of every key/argument after the declared ones
(the sessions a caller read, and their ids); ``optional`` keys may be left out (None).
Argument types: ``str``; ``int`` (Lua ``tonumber``); ``int | None`` (None is sent as '', so
Lua reads nil); ``bool`` (sent as 1 or 0, Lua reads true or false).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from types import UnionType
from typing import Any, Generic, Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from revocast.events import lua_vocabulary
from revocast.lifetimes import lua_constants
from revocast.roles import OPERATOR_PREFIX, SERVICE_ROLES
from revocast.store.constants import Constants

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


class Retry(Exception):
    """A script found the data it was told about changed (a session set): read, call again."""


@dataclass(frozen=True, slots=True)
class Script:
    """A script's whole text, and the SHA-1 Redis knows it by."""

    name: str
    text: str
    sha: str

    async def __call__(self, client: Redis, keys: list[str], args: list[str | int]) -> Any:
        """EVALSHA, loading the script first if this server has not seen it."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.text, len(keys), *keys, *args)


@dataclass(frozen=True, slots=True)
class ScriptCall(Generic[R_co]):
    """One call of a script: its KEYS and ARGV in the declared order (the deployment that
    runs it has the script's text: ``Backend.script``)."""

    contract: Contract[Any]
    keys: list[str]
    args: list[str | int]

    @property
    def name(self) -> str:
        return self.contract.name


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
        return ScriptCall(self, flat, encoded)


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


def lua_files() -> dict[str, Traversable]:
    """Every Lua file of the store's folders, by file name (each name is in one folder)."""
    root = resources.files("revocast.store")
    return {
        f.name: f
        for folder in root.iterdir()
        if folder.is_dir()
        for f in folder.iterdir()
        if f.name.endswith(".lua")
    }


def _source(name: str) -> str:
    return lua_files()[f"{name}.lua"].read_text()


def _service_roles() -> str:
    """``SERVICE_ROLES`` as a Lua set: Python's one definition, never a copy kept by hand."""
    members = ", ".join(f'["{role}"] = true' for role in sorted(SERVICE_ROLES))
    return f"local SERVICE_ROLES = {{{members}}}  -- revocast.roles.SERVICE_ROLES"


@functools.cache
def assemble(contract: Contract[Any], constants: Constants) -> Script:
    """The script of ``contract`` for a deployment with these constants, assembled once (per
    process and deployment) from its files and its declaration."""
    name, part = contract.name, contract.part
    body = _source(name)
    flags = ""
    if body.startswith("#!"):
        flags, _, body = body.partition("\n")
        flags += "\n"
    parts = [lua_constants(), lua_vocabulary(), constants.lua(), _source("prelude")]
    if part != "none":
        parts.append(lua_fixed(part))
    if part == "partition":
        parts.append(_service_roles())  # partition.lua's authority rules read it
        parts.append(f"local OPERATOR_PREFIX = '{OPERATOR_PREFIX}'  -- revocast.roles")  # and it
        parts.append(_source("status_list"))  # partition.lua's revocations flag the list
    if part != "none":
        parts.append(_source(part))
    text = flags + "\n".join([*parts, lua_header(contract), body])
    return Script(name, text, hashlib.sha1(text.encode()).hexdigest())  # noqa: S324 (Redis' id)
