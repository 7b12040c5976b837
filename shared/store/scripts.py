"""Every script revocast declares, gathered from the aggregates (for tests and tooling: a
caller needs only its own declaration, ``Contract.call``).

Each aggregate's ``contracts.py`` declares the scripts whose Lua lies beside it; the Lua
locals naming each KEYS and ARGV entry are generated from those declarations
(``revocast.store.contracts``): no file reads KEYS or ARGV itself.
"""

from __future__ import annotations

from typing import Any

from revocast.store.authority import contracts as authority
from revocast.store.contracts import Contract, Part, Script, lua_files
from revocast.store.sessions import contracts as sessions
from revocast.store.signals import contracts as signals
from revocast.store.signing import contracts as signing
from revocast.store.streams import contracts as streams
from revocast.store.users import contracts as users

__all__ = ["CONTRACTS", "SCRIPTS", "load_scripts", "lua_files"]

_DECLARED = (users, sessions, authority, signing, signals, streams)
CONTRACTS: dict[str, Contract[Any]] = {
    c.name: c for m in _DECLARED for c in vars(m).values() if isinstance(c, Contract)
}
# Script -> the prelude part it needs (its fixed KEYS).
SCRIPTS: dict[str, Part] = {name: contract.part for name, contract in CONTRACTS.items()}


def load_scripts() -> dict[str, Script]:
    """Every script, assembled; their SHA-1s are what Redis knows them by."""
    return {name: contract.script for name, contract in CONTRACTS.items()}
