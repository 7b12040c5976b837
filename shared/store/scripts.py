"""Every script revocast declares, gathered from the aggregates (for tests and tooling: a
caller needs only its own declaration, ``Contract.call``).

Each aggregate's ``contracts.py`` declares the scripts whose Lua lies beside it; the Lua
locals naming each KEYS and ARGV entry are generated from those declarations
(``revocast.store.contracts``): no file reads KEYS or ARGV itself.
"""

from __future__ import annotations

from typing import Any

from revocast.settings import Settings
from revocast.store.authority import contracts as authority
from revocast.store.constants import Constants
from revocast.store.contracts import Contract, Part, Script, assemble, lua_files
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


def load_scripts(settings: Settings | None = None) -> dict[str, Script]:
    """Every script, assembled for a deployment with these settings (the defaults unless
    given); their SHA-1s are what that deployment's Redis knows them by."""
    constants = Constants.of(Settings() if settings is None else settings)
    return {name: assemble(contract, constants) for name, contract in CONTRACTS.items()}
