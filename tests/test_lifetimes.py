"""Lifetimes are declared once, in ``revocast.lifetimes``, and no Lua script carries its own."""

from __future__ import annotations

import re

import pytest

from revocast import lifetimes
from revocast.store.scripts import load_scripts, lua_files

LUA = sorted(lua_files())
# A number this large in a script is a duration, a size or a cap: KEYS and ARGV positions
# and string offsets stay below it (the largest today: 16, a link's hex digits).
LARGEST_BARE = 19
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


def code(name: str) -> list[tuple[int, str]]:
    """The script's lines without their comments."""
    text = lua_files()[name].read_text()
    return [(number, line.split("--", 1)[0]) for number, line in enumerate(text.splitlines(), 1)]


@pytest.mark.parametrize("name", LUA)
def test_no_script_carries_a_bare_duration_or_cap(name: str) -> None:
    bare = [
        f"{name}:{number}: {line.strip()}"
        for number, line in code(name)
        for literal in NUMBER.findall(line)
        if float(literal) > LARGEST_BARE
    ]
    assert not bare, "name it in shared/lifetimes.py (and its LUA list):\n" + "\n".join(bare)


def test_every_script_gets_the_lifetimes_from_the_module() -> None:
    for script in load_scripts().values():
        for name in lifetimes.LUA:
            declared = f"local {name} = {getattr(lifetimes, name)}  -- revocast.lifetimes"
            assert declared in script.text.splitlines(), (script.name, name)


def test_every_lifetime_given_to_lua_is_used_there() -> None:
    sources = "\n".join(line for name in LUA for _, line in code(name))
    unused = [name for name in lifetimes.LUA if not re.search(rf"\b{name}\b", sources)]
    assert not unused
