"""Every key a Lua script touches arrives in KEYS, and every such key is named by keyspace.py
or an aggregate's keys.py.

The whole system runs (issuer, operator, verifier; 3 partitions) against a private
server whose MONITOR feed is recorded. Redis shows each script call followed by the
commands it ran inside (``[0 lua]``); ``COMMAND GETKEYS`` tells which arguments of
each are keys. This is Redis' scripting contract, which Cluster enforces; here it is
checked on a single server, where nothing else would catch a key built inside Lua.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import typing
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from revocast.issuer import create_app, operator
from revocast.issuer.context import IssuerContext
from revocast.keyspace import Keyspace, PartitionKeys, upstream_digest
from revocast.settings import Settings
from revocast.store.clients import keys as client_keys
from revocast.store.presence import keys as presence_keys
from revocast.store.scripts import SCRIPTS, load_scripts
from revocast.store.sessions import keys as session_keys
from revocast.store.signals import keys as signal_keys
from revocast.verifier import Verifier
from revocast_tools.redis_server import RedisServer
from tests.conftest import PASSWORD, Issuer
from tests.support.idp import AUDIENCE, IDP, IdP
from tests.support.servers import eventually, serve
from tests.test_upstream_revocations import linked_login, logout

UPSTREAM = IdP.new()
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_LINE = re.compile(r"^\+?[\d.]+ \[\d+ ([^\]]+)\] (.*)$")


def _unescape(text: str) -> str:
    """MONITOR quotes arguments like C strings (sdscatrepr)."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        code = text[i + 1]
        if code == "x":
            out.append(chr(int(text[i + 2 : i + 4], 16)))
            i += 4
            continue
        out.append({"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}.get(code, code))
        i += 2
    return "".join(out)


@dataclass
class Call:
    script: str
    declared: list[str]
    inside: list[list[str]] = field(default_factory=list)  # each command run by the script


class Monitor:
    """Records MONITOR lines on a raw connection until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Monitor:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"MONITOR\r\n")
        await writer.drain()
        assert (await reader.readline()).strip() == b"+OK"
        self._writer = writer

        async def read() -> None:
            while line := await reader.readline():
                self.lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))

        self._task = asyncio.create_task(read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.2)  # the feed trails the commands a little
        self._writer.close()
        assert self._task is not None
        with contextlib.suppress(Exception):
            await self._task

    def calls(self, settings: Settings) -> list[Call]:
        """The script calls seen, by name (the scripts of the deployment with ``settings``)."""
        scripts = load_scripts(settings)
        by_sha = {script.sha: name for name, script in scripts.items()}
        by_text = {script.text: name for name, script in scripts.items()}
        calls: list[Call] = []
        current: Call | None = None
        for line in self.lines:
            match = _LINE.match(line)
            if match is None:
                continue
            source, rest = match.groups()
            args = [_unescape(arg) for arg in _QUOTED.findall(rest)]
            if not args:
                continue
            if source == "lua":
                assert current is not None, f"a script command with no script: {line}"
                current.inside.append(args)
                continue
            current = None
            verb = args[0].lower()
            if verb in ("evalsha", "eval", "evalsha_ro", "eval_ro"):
                name = by_sha.get(args[1]) if verb.startswith("evalsha") else by_text.get(args[1])
                assert name is not None, f"an unknown script ran: {args[1][:60]}"
                count = int(args[2])
                current = Call(name, args[3 : 3 + count])
                calls.append(current)
        return calls


# Each aggregate's key names, beside it (keyspace.py places them: slots and fixed keys).
KEY_MODULES: tuple[ModuleType, ...] = (
    client_keys,
    presence_keys,
    session_keys,
    signal_keys,
)


def aggregate_names(keys: Keyspace, hole: str) -> list[str]:
    """Every name the aggregates' keys modules build, an id being ``hole``."""
    names: list[str] = []
    for module in KEY_MODULES:
        for name, build in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(build):
                continue
            if build.__module__ != module.__name__:
                continue
            hints = typing.get_type_hints(build)
            slot = next(iter(hints.values()))
            slots = keys.all_partitions if slot is PartitionKeys else (keys.global_,)
            ids = (hole,) * (len(inspect.signature(build).parameters) - 1)
            names += [build(s, *ids) for s in slots]
    return names


def key_patterns(keys: Keyspace) -> list[re.Pattern[str]]:
    """Every key name keyspace.py and the aggregates' keys modules can produce, as
    patterns (ids become wildcards)."""
    hole = "\x00"
    g = keys.global_
    names = [g.partitions, *g.fixed(), *aggregate_names(keys, hole)]
    for stream in keys.streams():
        names += [stream.events, stream.chain, stream.epoch, stream.heartbeat]
    for p in keys.all_partitions:
        names += [*p.fixed(), p.username(hole), p.user(hole)]
    return [re.compile(re.escape(n).replace(re.escape(hole), "[^{}]+")) for n in names]


@pytest.fixture
async def monitored(tmp_path: Path) -> AsyncIterator[tuple[RedisServer, Settings]]:
    server = RedisServer(tmp_path / "redis", appendonly=False)
    server.start()
    settings = Settings.from_values(
        redis_url=server.url,
        key_prefix="keys-test",
        key_dir=str(tmp_path / "keys"),
        partitions=3,
        max_sessions_per_user=2,
        refresh_grace_s=0,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        upstream_issuer=IDP,
        upstream_audience=AUDIENCE,
        upstream_key=UPSTREAM.public_pem(),
    )
    yield server, settings
    server.stop()


async def _exercise(settings: Settings, server: RedisServer) -> None:
    """Every script, through the paths the product calls them by."""
    app = create_app(settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, settings, app)
        ctx = IssuerContext.of_app(app)
        mod = await issuer.add_user("mod", ["moderator"])
        alice = await issuer.add_user("alice")
        async with Verifier(settings) as verifier:
            await http.post("/v1/login", json={"username": "alice", "password": "wrong!!!"})
            _, second, third = [await issuer.login("alice") for _ in range(3)]  # limit: 2
            rotated = (await issuer.refresh(third["refresh_token"])).json()
            assert (await issuer.refresh(third["refresh_token"])).status_code == 401  # reuse
            await issuer.post_bearer("/v1/logout", second["access_token"])
            await issuer.post_bearer("/v1/logout", second["access_token"])  # a repeat: no event
            tokens = await issuer.login("alice")
            await http.request(
                "DELETE", f"/v1/sessions/{tokens['session_id']}",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )  # fmt: skip
            tokens = await issuer.login("alice")
            await http.post(
                "/v1/password",
                json={"current_password": PASSWORD, "new_password": PASSWORD},
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
            await http.post("/oauth/revoke", data={"token": rotated["refresh_token"]})
            moderator = await issuer.login("mod")
            bearer = {"Authorization": f"Bearer {moderator['access_token']}"}
            other = await issuer.login("alice")
            await http.delete(f"/v1/admin/sessions/{other['session_id']}", headers=bearer)
            await http.post(f"/v1/admin/users/{alice}/block", headers=bearer)
            await http.post(f"/v1/admin/users/{alice}/unblock", headers=bearer)
            await http.put(f"/v1/admin/users/{alice}/roles", json={"roles": ["x"]}, headers=bearer)
            last = await issuer.login("alice")
            await http.post(
                "/v1/logout-all", headers={"Authorization": f"Bearer {last['access_token']}"}
            )
            # The upstream IdP: a linked login, its logout, an operator's unlink.
            assert (await linked_login(issuer, UPSTREAM, "up-alice", "up-s1")).status_code == 200
            token = UPSTREAM.logout_token(sid="up-s1")
            assert (await logout(issuer, token)).status_code == 200
            link_id = upstream_digest(IDP, "up-alice")
            await operator.upstream_unlink(ctx.store, "alice", link_id, "test")
            await operator.unlock_user(ctx.store, "alice", "forgiven")
            await ctx.store.signals.take_lease("stream-1", "issuer-1", 1000)  # SSF push
            await operator.set_blocked(ctx.store, mod, "demoted", blocked=True)  # power lost
            await operator.remove_user(ctx.store, "mod", "left")
            rotated_key = await operator.rotate_key(ctx.store, settings)
            await operator.revoke_key(ctx.store, settings, str(rotated_key["kid"]), "x")
            # A partition loses its epoch: the issuer recovers (and the partitions adopt).
            lost = ctx.store.keys.partition(1).stream.epoch
            client = Redis(port=server.port)
            await client.delete(lost)
            await client.aclose()

            async def recovered() -> bool:
                epochs = await ctx.store.signing.epochs()
                return None not in epochs.values() and len(set(epochs.values())) == 1

            await eventually(recovered, timeout_s=5)
            await eventually(lambda: verifier.ready, timeout_s=5)


async def test_every_script_key_is_declared_and_named_by_the_keyspace(
    monitored: tuple[RedisServer, Settings],
) -> None:
    server, settings = monitored
    async with Monitor(server.port) as monitor:
        await _exercise(settings, server)
    calls = monitor.calls(settings)
    assert {call.script for call in calls} == set(SCRIPTS), "every script was exercised"
    patterns = key_patterns(Keyspace(settings.redis.key_prefix, 3))
    probe = Redis(port=server.port, decode_responses=True)
    try:
        touched_checked = 0
        for call in calls:
            for key in call.declared:
                assert any(p.fullmatch(key) for p in patterns), f"{call.script}: {key}"
            for command in call.inside:
                try:
                    keys = await probe.command_getkeys(*command)
                except ResponseError:
                    continue  # a command without keys (TIME)
                for touched in keys:
                    assert touched in call.declared, f"{call.script} touched {touched!r} undeclared"
                    touched_checked += 1
    finally:
        await probe.aclose()
    assert touched_checked > 200
