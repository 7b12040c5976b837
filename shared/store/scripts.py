"""revocast's Lua scripts: loaded once, called by SHA on whichever server a key lives on.

A script is the lifetimes it may use (``revocast.lifetimes``), the prelude, the part its
keys call for (``partition.lua``, after the Lua set of ``revocast.roles.SERVICE_ROLES`` and
the status list's helpers, ``status_list.lua``, or ``global.lua``) and its body; a ``#!lua``
flags line in the body moves to the top. The Lua locals naming each KEYS and ARGV entry
(the part's fixed keys, then the script's own) are generated from its declaration in
``revocast.store.contracts``: no file reads KEYS or ARGV itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from revocast.events import lua_vocabulary
from revocast.lifetimes import lua_constants
from revocast.roles import SERVICE_ROLES
from revocast.store.contracts import CONTRACTS, Contract, Part, lua_fixed, lua_header

# Script -> the prelude part it needs (its fixed KEYS).
SCRIPTS: dict[str, Part] = {name: contract.part for name, contract in CONTRACTS.items()}


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    text: str
    sha: str

    async def __call__(self, client: Redis, keys: list[str], args: list[str | int]) -> Any:
        """EVALSHA, loading the script first if this server has not seen it."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.text, len(keys), *keys, *args)


def _source(name: str) -> str:
    return (resources.files("revocast") / "lua" / f"{name}.lua").read_text()


def _service_roles() -> str:
    """``SERVICE_ROLES`` as a Lua set: Python's one definition, never a copy kept by hand."""
    members = ", ".join(f'["{role}"] = true' for role in sorted(SERVICE_ROLES))
    return f"local SERVICE_ROLES = {{{members}}}  -- revocast.roles.SERVICE_ROLES"


def _assemble(contract: Contract[Any]) -> Script:
    name, part = contract.name, contract.part
    body = _source(name)
    flags = ""
    if body.startswith("#!"):
        flags, _, body = body.partition("\n")
        flags += "\n"
    parts = [lua_constants(), lua_vocabulary(), _source("prelude")]
    if part != "none":
        parts.append(lua_fixed(part))
    if part == "partition":
        parts.append(_service_roles())  # partition.lua's authority rules read it
        parts.append(_source("status_list"))  # partition.lua's revocations flag the list
    if part != "none":
        parts.append(_source(part))
    text = flags + "\n".join([*parts, lua_header(contract), body])
    return Script(name, text, hashlib.sha1(text.encode()).hexdigest())  # noqa: S324 (Redis' id)


def load_scripts() -> dict[str, Script]:
    """Every script, assembled; their SHA-1s are what Redis knows them by."""
    return {name: _assemble(contract) for name, contract in CONTRACTS.items()}
