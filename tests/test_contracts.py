"""Each script's contract is declared once (beside its Lua, in its aggregate's contracts.py):
the Lua reads names the declaration generates, never KEYS or ARGV itself, and a caller that
strays from the declaration fails before anything reaches Redis."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import cast

import pytest
from redis.asyncio import Redis

from revocast.events import SCHEMA_VERSION, ActorKind, Reason, event_kinds
from revocast.keyspace import Keyspace
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast.store.constants import Constants, lua_names
from revocast.store.contracts import FIXED_KEYS, Part
from revocast.store.scripts import CONTRACTS, SCRIPTS, load_scripts, lua_files
from revocast.store.sessions import contracts as sessions
from revocast.store.signals import contracts as signals

LUA = sorted(lua_files())
POSITIONAL = re.compile(r"#?\b(KEYS|ARGV)\b\s*\[|#\s*(KEYS|ARGV)\b|\bunpack\s*\(\s*(KEYS|ARGV)")


def _code(name: str) -> str:
    text = lua_files()[name].read_text()
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


@pytest.mark.parametrize("name", LUA)
def test_no_lua_file_reads_keys_or_argv_itself(name: str) -> None:
    found = [line for line in _code(name).splitlines() if POSITIONAL.search(line)]
    assert not found, f"{name}: name it in revocast.store.contracts instead:\n" + "\n".join(found)


def test_every_script_file_is_declared() -> None:
    parts = {"prelude.lua", "partition.lua", "global.lua", "status_list.lua"}
    assert {name.removesuffix(".lua") for name in LUA if name not in parts} == set(CONTRACTS)
    assert set(SCRIPTS) == set(CONTRACTS)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_every_declared_name_is_used_in_the_body(name: str) -> None:
    contract = CONTRACTS[name]
    body = _code(f"{name}.lua")
    declared = [
        *contract.keys,
        *contract.optional,
        *(n for n, _ in contract.args),
        *(n for n in (contract.rest_keys, contract.rest_args) if n is not None),
    ]
    unused = [n for n in declared if not re.search(rf"\b{n}\b", body)]
    assert not unused, f"{name}.lua never reads {unused}"


@pytest.mark.parametrize("part", ["partition", "global"])
def test_every_fixed_key_is_used_by_its_part_or_its_scripts(part: Part) -> None:
    sources = [_code(f"{part}.lua"), _code("prelude.lua")]
    if part == "partition":
        sources.append(_code("status_list.lua"))
    sources += [_code(f"{n}.lua") for n, c in CONTRACTS.items() if c.part == part]
    text = "\n".join(sources)
    assert [n for n in FIXED_KEYS[part] if not re.search(rf"\b{n}\b", text)] == []


def test_the_fixed_keys_are_named_in_keyspace_order() -> None:
    """FIXED_KEYS['partition'] names keyspace.PartitionKeys.fixed() in its order."""
    p = Keyspace("t", 1).partition(0)
    attributes = {
        "EVENTS": p.stream.events,
        "CHAIN": p.stream.chain,
        "REVOKED_SESSIONS": p.revoked_sessions,
        "REVOKED_USERS": p.revoked_users,
        "USERS_UNTIL": p.revoked_users_until,
        "REVOKED_ROLES": p.revoked_roles,
        "ROLES_UNTIL": p.revoked_roles_until,
        "AUDIT": p.audit,
        "AUTHORITY": p.authority,
        "SESSION_EVENTS": p.revoked_session_events,
        "USER_EVENTS": p.revoked_user_events,
        "HEARTBEAT": p.stream.heartbeat,
        "STATUS_BITS": p.status_bits,
        "STATUS_LEASES": p.status_leases,
    }
    assert [attributes[n] for n in FIXED_KEYS["partition"]] == p.fixed()


def test_the_header_is_generated_from_the_declaration() -> None:
    text = load_scripts()["revoke_session"].text
    assert "local SESSION = KEYS[FIXED + 1]" in text
    assert "local BUDGET = KEYS[FIXED + 3]" in text
    assert "local issued_ms = tonumber(ARGV[4])" in text
    assert "local EVENTS = KEYS[1]" in text
    assert "local FIXED = 14" in text
    publish = load_scripts()["publish_key"].text
    assert "local activate = ARGV[4] == '1'" in publish
    assert "local FIXED = 10" in publish


FIXED = [f"k{i}" for i in range(14)]
GOOD_KEYS = {"SESSION": "s", "SESSIONS": "ss", "BUDGET": "b"}
GOOD_ARGS: dict[str, object] = {
    "sid": "S",
    "uid": "U",
    "reason": "logout",
    "issued_ms": None,
    "limit": 0,
    "actor_kind": "user",
}


def test_a_call_lays_out_keys_and_arguments_in_declared_order() -> None:
    call = sessions.REVOKE_SESSION.call(FIXED, keys=GOOD_KEYS, **GOOD_ARGS)
    assert call.keys == [*FIXED, "s", "ss", "b"]
    assert call.args == ["S", "U", "logout", "", 0, "user"]


@pytest.mark.parametrize(
    ("keys", "args"),
    [
        ({"SESSION": "s", "SESSIONS": "ss"}, GOOD_ARGS),  # a key missing
        ({**GOOD_KEYS, "USER": "u"}, GOOD_ARGS),  # a key not declared
        (GOOD_KEYS, {k: v for k, v in GOOD_ARGS.items() if k != "reason"}),  # an argument missing
        (GOOD_KEYS, {**GOOD_ARGS, "actor": "a"}),  # an argument not declared
        (GOOD_KEYS, {**GOOD_ARGS, "lifetime_ms": 10}),  # a deployment's constant: no argument
        (GOOD_KEYS, {**GOOD_ARGS, "limit": "0"}),  # an int given as text
        (GOOD_KEYS, {**GOOD_ARGS, "sid": 5}),  # text given as an int
        (GOOD_KEYS, {**GOOD_ARGS, "limit": True}),  # a bool is not an int
    ],
)
def test_a_call_that_strays_from_the_declaration_is_a_type_error(
    keys: dict[str, str], args: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        sessions.REVOKE_SESSION.call(FIXED, keys=keys, **args)


def test_the_fixed_part_is_counted() -> None:
    with pytest.raises(TypeError):
        sessions.REVOKE_SESSION.call(FIXED[:-1], keys=GOOD_KEYS, **GOOD_ARGS)
    with pytest.raises(TypeError):
        sessions.THROTTLE.call(["x"], keys={"COUNTER": "c"})


def test_rest_and_optional_keys() -> None:
    call = sessions.REVOKE_USER.call(
        FIXED,
        keys={"SESSIONS": "ss", "BUDGET": "b", "SESSION_KEYS": ["s1", "s2"]},
        uid="U",
        reason="r",
        covers_ms=5,
        limit=0,
        actor_kind="upstream",
        sids=["1", "2"],
    )
    assert call.keys[-4:] == ["ss", "b", "s1", "s2"]
    assert call.args[-4:] == [0, "upstream", "1", "2"]
    link = {"NONCE": "n", "LINK": "l", "LINKS": "ls", "AUDIT": "a", "UPSTREAM_SESSIONS": None}
    args: dict[str, object] = {
        "uid": "U",
        "link_id": "L",
        "iss": "i",
        "sub": "s",
        "nonce_ttl_s": 1,
        "member": "U S",
        "session_ttl_s": 2,
    }
    assert signals.UPSTREAM_LINK.call(keys=link, **args).keys == ["n", "l", "ls", "a"]
    with pytest.raises(TypeError):  # left out is None, never absent
        signals.UPSTREAM_LINK.call(keys={k: v for k, v in link.items() if v is not None}, **args)


def test_event_kinds_reasons_and_the_version_are_python_s_in_lua() -> None:
    """Lua spells no event kind or reason of its own: revocast.events' values, injected."""
    text = load_scripts()["revoke_session"].text
    assert f"local EVENT_VERSION = '{SCHEMA_VERSION}'" in text
    for name, tag in event_kinds().items():
        assert f"local {name} = '{tag}'" in text
    for reason in Reason:
        assert f"local REASON_{reason.name} = '{reason.value}'" in text
    code = "\n".join(_code(name) for name in LUA)
    spelled = [tag for tag in event_kinds().values() if f"'{tag}'" in code]
    assert not spelled, f"use the kind's local, not {spelled}"
    # A reason is the last argument of revoke_session/revoke_user: never a literal there.
    literal = re.findall(r"\brevoke_(?:session|user)\([^()]*'[^']*'\s*\)", code.replace("\n", " "))
    assert not literal, literal
    used = [r.name for r in Reason if not re.search(rf"\bREASON_{r.name}\b", code)]
    assert not used, f"reasons no script gives: {used}"


# What a deployment chooses is in its scripts, never an argument: each Backend assembles its own.
PER_DEPLOYMENT = {f.name for f in fields(Constants)} | {
    "known_ms", "known_max", "pair_limit", "user_limit", "window_s", "max_delay_ms", "memory_s",
}  # fmt: skip


def test_no_contract_declares_a_deployment_constant() -> None:
    declared = [(name, arg) for name, c in CONTRACTS.items() for arg, _ in c.args]
    assert [(name, arg) for name, arg in declared if arg in PER_DEPLOYMENT] == []
    code = "\n".join(_code(name) for name in LUA)
    assert [name for name in sorted(PER_DEPLOYMENT) if re.search(rf"\b{name}\b", code)] == []


def test_every_deployment_constant_is_read_by_a_script() -> None:
    code = "\n".join(_code(name) for name in LUA)
    assert [name for name in lua_names() if not re.search(rf"\b{name}\b", code)] == []


def test_a_deployment_s_scripts_carry_its_constants() -> None:
    short = Settings.from_values(access_ttl_s=60)
    long = Settings.from_values(access_ttl_s=600, max_sessions_per_user=3)
    assert short.tokens.revocation_lifetime_ms == 65_000  # (60 s + 2 leeways of 2 s) + 1 s
    for settings in (short, long):
        constants = Constants.of(settings)
        lines = load_scripts(settings)["revoke_session"].text.splitlines()
        lifetime = f"local LIFETIME_MS = {settings.tokens.revocation_lifetime_ms}"
        assert lifetime in lines
        for f in fields(constants):
            assert f"local {f.name.upper()} = {getattr(constants, f.name)}" in lines
        for script in load_scripts(settings).values():
            assert lifetime in script.text.splitlines(), script.name
    first, second = load_scripts(short), load_scripts(long)
    assert [name for name in CONTRACTS if first[name].sha == second[name].sha] == []


async def test_two_deployments_on_one_redis_each_use_their_own_lifetime(
    settings: Settings, redis: Redis
) -> None:
    """One process, one server, two access TTLs: each deployment loads its own scripts (its
    SHAs) and its revocations last its own lifetime."""
    other_prefix = f"{settings.redis.key_prefix}b"
    deployments = [
        settings.with_overrides(access_ttl_s=60),
        settings.with_overrides(access_ttl_s=600, key_prefix=other_prefix),
    ]
    backends = [Backend(deployment) for deployment in deployments]
    try:
        lasted = []
        for backend in backends:
            await backend.start()
            for sid in ("s1", "s2"):  # the second by EVALSHA: loaded by the first
                await Store(backend).sessions.revoke_session(
                    sid, "u1", "logout", actor_kind=ActorKind.USER
                )
            events = backend.keys.of("u1").stream.events
            newest = await redis.xrevrange(events, count=1)
            [(_, event)] = cast(list[tuple[str, dict[str, str]]], newest)
            lasted.append(int(event["until_ms"]) - int(event["at_ms"]))
        assert lasted == [65_000, 605_000]
        assert lasted == [d.tokens.revocation_lifetime_ms for d in deployments]
        shas = [backend.script(sessions.REVOKE_SESSION).sha for backend in backends]
        assert shas[0] != shas[1]
        assert await redis.script_exists(*shas) == [True, True]
    finally:
        for backend in backends:
            await backend.aclose()
        stale = [key async for key in redis.scan_iter(f"{other_prefix}:*")]
        if stale:
            await redis.delete(*stale)
