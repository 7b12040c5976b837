"""Acknowledged means durable: with REVOCAST_MIN_REPLICAS, a revocation answers 2xx only once
WAIT confirms a replica has it; otherwise 503 not_durable, and repeating the call is safe: it
writes no new event and, once durable, answers as the first call would have.

A private primary with one replica (``--replicaof``), or a Sentinel group (slow); the replica
is frozen (SIGSTOP) to make it unreachable without losing its connection state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from revocast.errors import NotDurable
from revocast.events import ActorKind
from revocast.issuer import create_app, operator
from revocast.proof import EVENT_ID_HEADER, EventRef
from revocast.settings import Settings
from revocast.store import Store
from revocast.store.sessions import keys as session_keys
from revocast.verifier import Verifier
from revocast.verifier.followers import Followers
from revocast_tools.redis_server import RedisServer, free_port
from revocast_tools.topologies import SentinelGroup
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import eventually, serve


@dataclass
class Pair:
    primary: RedisServer
    replica: RedisServer
    settings: Settings

    async def on_replica(self, key: str) -> bool:
        client = Redis(port=self.replica.port)
        try:
            return bool(await client.exists(key))
        finally:
            await client.aclose()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    # No 5 s wait before the first full sync (Redis' default for diskless replication).
    primary = RedisServer(
        tmp_path / "primary", appendonly=False, extra_args=["--repl-diskless-sync-delay", "0"]
    )
    primary.start()
    replica = RedisServer(
        tmp_path / "replica",
        appendonly=False,
        extra_args=["--replicaof", "127.0.0.1", str(primary.port)],
    )
    replica.start()
    client = Redis(port=replica.port, decode_responses=True)

    async def in_sync() -> bool:
        info = await client.info("replication")
        return bool(info.get("master_link_status") == "up")

    await eventually(in_sync, timeout_s=10)
    await client.aclose()
    settings = Settings.from_values(
        redis_url=primary.url,
        key_prefix="durable",
        key_dir=str(tmp_path / "keys"),
        min_replicas=1,
        replica_ack_timeout_ms=200,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    yield Pair(primary, replica, settings)
    replica.stop()
    primary.stop()


async def repeated(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Repeat a call while it answers 503 not_durable (a resumed replica catches up first),
    as a client honouring Retry-After would; the first other answer."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        reply = await call()
        if reply.status_code != 503 or asyncio.get_running_loop().time() > deadline:
            return reply
        assert reply.json()["error"] == "not_durable"
        await asyncio.sleep(0.1)


@pytest.fixture
async def durable_issuer(pair: Pair) -> AsyncIterator[Issuer]:
    app = create_app(pair.settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Issuer(url, http, pair.settings, app)


async def test_a_revocation_is_acknowledged_once_a_replica_has_it(
    pair: Pair, durable_issuer: Issuer
) -> None:
    issuer = durable_issuer
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    keys = issuer.ctx.store.keys
    session = session_keys.session(keys.of(tokens["user_id"]), tokens["session_id"])
    await eventually(lambda: pair.on_replica(session))  # a login is not waited for
    assert (await issuer.post_bearer("/v1/logout", tokens["access_token"])).status_code == 204
    # WAIT returned before the reply: the replica already has the deletion.
    assert not await pair.on_replica(session)


async def test_logout_all_repeat_does_not_end_later_sessions(
    pair: Pair, durable_issuer: Issuer
) -> None:
    """A repeated logout-all records the first call's cut-off, not a new one."""
    issuer = durable_issuer
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    pair.replica.pause()
    try:
        first = await issuer.post_bearer("/v1/logout-all", tokens["access_token"])
        assert (first.status_code, first.json()["error"]) == (503, "not_durable")
    finally:
        pair.replica.resume()
    verifier = issuer.ctx.verifier
    await eventually(lambda: tokens["user_id"] in verifier.cache.users)
    later = await issuer.login("alice")  # made after the first call
    again = await repeated(lambda: issuer.post_bearer("/v1/logout-all", tokens["access_token"]))
    assert again.status_code == 204
    assert await issuer.ctx.store.sessions.live(later["session_id"])
    assert (await issuer.refresh(later["refresh_token"])).status_code == 200


# Repeats of every revoking call (issue 20, point 4) ----------------------------------------


@dataclass
class Frozen:
    """A deployment whose one replica can be frozen: the pair above, or a Sentinel group."""

    settings: Settings
    primary_port: int
    replica: RedisServer


@pytest.fixture(params=["pair", pytest.param("sentinel", marks=pytest.mark.slow)])
def frozen(request: pytest.FixtureRequest, tmp_path: Path) -> Frozen:
    if request.param == "pair":
        pair: Pair = request.getfixturevalue("pair")
        return Frozen(pair.settings, pair.primary.port, pair.replica)
    group: SentinelGroup = request.getfixturevalue("make_sentinel_group")()
    settings = Settings.from_values(
        redis_url=group.url,  # REVOCAST_MIN_REPLICAS is 1 on Sentinel by default
        key_prefix="repeat",
        key_dir=str(tmp_path / "keys"),
        replica_ack_timeout_ms=200,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    (replica,) = group.replicas()
    return Frozen(settings, group.primary().port, replica)


@dataclass
class Case:
    name: str
    call: Callable[[], Awaitable[httpx.Response]]
    status: int
    body: Callable[[str], object] | None = None  # the JSON answer, given the event id


async def revoking_calls(issuer: Issuer) -> list[Case]:
    """One of each revoking call, each on a user of its own."""
    http = issuer.http
    await issuer.add_user("mod", ["moderator"])
    mod = {"Authorization": f"Bearer {(await issuer.login('mod'))['access_token']}"}
    users: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for name in ("out", "all", "pass", "own", "ended", "blocked", "roles", "oauth"):
        uid = await issuer.add_user(name)
        users[name] = (uid, await issuer.login(name), await issuer.login(name))

    def bearer(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {users[name][1]['access_token']}"}

    change = {"current_password": PASSWORD, "new_password": "a new passphrase"}
    own_other = users["own"][2]["session_id"]
    ended = users["ended"][1]["session_id"]
    blocked, promoted = users["blocked"][0], users["roles"][0]
    refresh = users["oauth"][1]["refresh_token"]
    return [
        Case("logout", lambda: http.post("/v1/logout", headers=bearer("out")), 204),
        Case("logout-all", lambda: http.post("/v1/logout-all", headers=bearer("all")), 204),
        Case("password", lambda: http.post("/v1/password", headers=bearer("pass"), json=change),
             200, lambda e: {"other_sessions_ended": 1, "event_id": e}),
        Case("own session", lambda: http.delete(f"/v1/sessions/{own_other}",
                                                headers=bearer("own")), 204),
        Case("session end", lambda: http.delete(f"/v1/admin/sessions/{ended}", headers=mod),
             204),
        Case("block", lambda: http.post(f"/v1/admin/users/{blocked}/block", headers=mod), 200,
             lambda e: {"user_id": blocked, "blocked": True, "event_id": e}),
        Case("roles", lambda: http.put(f"/v1/admin/users/{promoted}/roles", headers=mod,
                                       json={"roles": ["vip"]}), 200,
             lambda e: {"user_id": promoted, "roles": ["vip"], "event_id": e}),
        Case("oauth revoke", lambda: http.post("/oauth/revoke", data={"token": refresh}), 200),
    ]  # fmt: skip


async def test_every_revoking_call_repeated_answers_as_the_first_once_durable(
    frozen: Frozen,
) -> None:
    """Replica frozen: each call answers 503 not_durable, and so does its repeat, which writes
    no event. Replica resumed: the repeat answers as the first call would have, with the id
    of the event the first call wrote."""
    app = create_app(frozen.settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        issuer = Issuer(url, http, frozen.settings, app)
        cases = await revoking_calls(issuer)
        (partition,) = issuer.ctx.store.keys.all_partitions  # one stream: entries in order
        stream, store = partition.stream, issuer.ctx.store
        redis = Redis(port=frozen.primary_port, decode_responses=True)
        written: dict[str, str] = {}
        try:
            frozen.replica.pause()
            try:
                for case in cases:
                    before = await redis.xlen(stream.events)
                    for _ in range(2):  # the call, then its repeat while still frozen
                        reply = await case.call()
                        assert (reply.status_code, reply.json()["error"]) == (503, "not_durable")
                        assert reply.headers["retry-after"] == "1"
                        assert await redis.xlen(stream.events) == before + 1, case.name
                    # Unacknowledged is not undone: the primary has the change and its event.
                    last = await store.streams.last_entry(stream.name)
                    assert last is not None
                    written[case.name] = str(EventRef.of(stream.name, last))
            finally:
                frozen.replica.resume()
            length = await redis.xlen(stream.events)
            for case in cases:
                reply = await repeated(case.call)
                assert reply.status_code == case.status, (case.name, reply.text)
                assert reply.headers[EVENT_ID_HEADER] == written[case.name], case.name
                if case.body is not None:
                    assert reply.json() == case.body(written[case.name]), case.name
            assert await redis.xlen(stream.events) == length  # the repeats wrote nothing
        finally:
            await redis.aclose()


async def test_operator_key_revocation_waits_too(pair: Pair, durable_issuer: Issuer) -> None:
    """And a repeat writes no event: NotDurable again while frozen, then the first answer."""
    ctx = durable_issuer.ctx
    rotated = await operator.rotate_key(ctx.store, pair.settings)
    kid = str(rotated["kid"])
    pair.replica.pause()
    try:
        for _ in range(2):
            with pytest.raises(NotDurable):
                await operator.revoke_key(ctx.store, pair.settings, kid, "x")
        written = await ctx.store.streams.last_entry("global")
    finally:
        pair.replica.resume()
    assert await ctx.store.signing.revoked(kid)
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # until the replica has caught up
        try:
            again = await operator.revoke_key(ctx.store, pair.settings, kid, "x")
            break
        except NotDurable:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    assert await ctx.store.streams.last_entry("global") == written  # no event since the first call
    assert again["event_id"] == f"global.{written}"


async def test_a_single_server_without_replicas_never_waits(issuer: Issuer, redis: Redis) -> None:
    """The default on one server (REVOCAST_MIN_REPLICAS unset): no WAIT, as before."""
    before = (await redis.info("commandstats")).get("cmdstat_wait", {}).get("calls", 0)
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    assert (await issuer.post_bearer("/v1/logout", tokens["access_token"])).status_code == 204
    assert issuer.ctx.backend.min_replicas == 0
    after = (await redis.info("commandstats")).get("cmdstat_wait", {}).get("calls", 0)
    assert after == before


async def test_a_verifier_pointed_at_a_replica_reads_it_as_one(
    pair: Pair, durable_issuer: Issuer
) -> None:
    """REDIS_URL naming a replica (no REVOCAST_READ_FROM_REPLICAS): the verifier notices, and
    proves its freshness by the primary's heartbeat, so a replica that stops receiving
    makes it stale instead of silently behind."""
    settings = pair.settings.with_overrides(redis_url=pair.replica.url, max_staleness_s=1.0)
    async with Verifier(settings) as verifier:
        assert isinstance(verifier.follower, Followers)
        assert verifier.follower.follow.on_replicas
        await eventually(lambda: verifier.ready, timeout_s=5)
        client = Redis(port=pair.replica.port)
        try:
            await client.replicaof("127.0.0.1", free_port())
            await eventually(lambda: not verifier.ready, timeout_s=3)
            await client.replicaof("127.0.0.1", pair.primary.port)
            await eventually(lambda: verifier.ready, timeout_s=10)
        finally:
            await client.aclose()


async def test_many_revocations_at_once_never_run_out_of_connections(store: Store) -> None:
    """redis-py 8 caps a pool at 100 connections unless told otherwise; 300 concurrent
    revocations (each holding its connection through a WAIT on a replicated deployment)
    must queue on Redis, not fail."""
    results = await asyncio.gather(
        *(
            store.sessions.revoke_session(f"s{i}", f"u{i}", "load", actor_kind=ActorKind.USER)
            for i in range(300)
        ),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
