"""Acknowledged means durable: with REVOCAST_MIN_REPLICAS, a revocation answers 2xx only once
WAIT confirms a replica has it; otherwise 503 not_durable, and repeating the call is safe.

A private primary with one replica (``--replicaof``); the replica is frozen (SIGSTOP) to
make it unreachable without losing its connection state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from revocast.errors import NotDurable
from revocast.issuer import create_app, operator
from revocast.issuer.context import IssuerContext
from revocast.settings import Settings
from revocast.store import Writes
from revocast.verifier import Verifier
from revocast_tools.redis_server import RedisServer, free_port
from tests.conftest import Issuer
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
    settings = Settings(
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
    keys = issuer.ctx.writes.keys
    session = keys.of(tokens["user_id"]).session(tokens["session_id"])
    await eventually(lambda: pair.on_replica(session))  # a login is not waited for
    assert (await issuer.post_bearer("/v1/logout", tokens["access_token"])).status_code == 204
    # WAIT returned before the reply: the replica already has the deletion.
    assert not await pair.on_replica(session)


async def test_no_replica_no_acknowledgement_and_a_repeat_is_safe(
    pair: Pair, durable_issuer: Issuer
) -> None:
    issuer = durable_issuer
    mod_uid = await issuer.add_user("mod", ["moderator"])
    uid = await issuer.add_user("alice")
    mod = await issuer.login("mod")
    tokens, other = await issuer.login("alice"), await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {mod['access_token']}"}
    pair.replica.pause()
    try:
        reply = await issuer.post_bearer("/v1/logout", tokens["access_token"])
        assert (reply.status_code, reply.json()["error"]) == (503, "not_durable")
        assert reply.headers["retry-after"] == "1"
        block = await issuer.http.post(f"/v1/admin/users/{uid}/block", headers=bearer)
        assert (block.status_code, block.json()["error"]) == (503, "not_durable")
        revoke = await issuer.http.post("/oauth/revoke", data={"token": other["refresh_token"]})
        assert (revoke.status_code, revoke.json()["error"]) == (503, "not_durable")
        ctx = IssuerContext.of_app(issuer.app)
        # Unacknowledged is not undone: the primary has every change.
        assert not await ctx.reads.session_live(tokens["session_id"])
    finally:
        pair.replica.resume()
    # Repeats: each records its change again and waits again; now a replica confirms.
    again = await repeated(lambda: issuer.post_bearer("/v1/logout", tokens["access_token"]))
    assert (again.status_code, again.json()["error"]) == (401, "session_revoked")
    block = await repeated(lambda: issuer.http.post(f"/v1/admin/users/{uid}/block", headers=bearer))
    assert block.status_code == 200
    revoke = await repeated(
        lambda: issuer.http.post("/oauth/revoke", data={"token": other["refresh_token"]})
    )
    assert revoke.status_code == 200
    keys = issuer.ctx.writes.keys
    assert not await pair.on_replica(keys.of(uid).session(tokens["session_id"]))
    assert not await pair.on_replica(keys.of(uid).session(other["session_id"]))
    assert mod_uid


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
    assert (again.status_code, again.json()["error"]) == (401, "user_revoked")
    assert await issuer.ctx.reads.session_live(later["session_id"])
    assert (await issuer.refresh(later["refresh_token"])).status_code == 200


async def test_operator_key_revocation_waits_too(pair: Pair, durable_issuer: Issuer) -> None:
    ctx = durable_issuer.ctx
    rotated = await operator.rotate_key(ctx.writes, ctx.reads, pair.settings)
    pair.replica.pause()
    try:
        with pytest.raises(NotDurable):
            await operator.revoke_key(
                ctx.writes, ctx.reads, pair.settings, str(rotated["kid"]), "x"
            )
    finally:
        pair.replica.resume()
    assert await ctx.reads.revoked(str(rotated["kid"]))


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


async def test_many_revocations_at_once_never_run_out_of_connections(writes: Writes) -> None:
    """redis-py 8 caps a pool at 100 connections unless told otherwise; 300 concurrent
    revocations (each holding its connection through a WAIT on a replicated deployment)
    must queue on Redis, not fail."""
    results = await asyncio.gather(
        *(writes.revoke_session(f"s{i}", f"u{i}", "load") for i in range(300)),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
