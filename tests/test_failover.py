"""Failover on real Sentinel and Cluster topologies, with no revocast process restarted.

A revocation acknowledged just before the primary dies stays in force everywhere,
on the verifiers that were running and on one started afterwards, and logins work
again once the replica is promoted. Without a replica nothing is acknowledged; a
replica that stops receiving makes the verifiers reading it stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from revocast.issuer import create_app
from revocast.settings import Settings
from revocast.store.sessions import keys as session_keys
from revocast.verifier import Verifier
from revocast_tools.redis_server import RedisServer, free_port
from revocast_tools.topologies import ClusterGroup, SentinelGroup
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import eventually, serve
from tests.support.topologies import ClusterFactory, SentinelFactory
from tests.support.verdicts import outcome

pytestmark = pytest.mark.slow

Group = SentinelGroup | ClusterGroup


@pytest.fixture(params=["sentinel", "cluster"])
def group(
    request: pytest.FixtureRequest,
    make_sentinel_group: SentinelFactory,
    make_cluster_group: ClusterFactory,
) -> Group:
    """A topology of the test's own: these tests kill and freeze its nodes."""
    return make_sentinel_group() if request.param == "sentinel" else make_cluster_group()


def deployment(group: Group, tmp_path: Path, **changes: object) -> Settings:
    settings = Settings.from_values(
        redis_url=group.url,
        key_prefix="failover",
        key_dir=str(tmp_path / "keys"),
        max_staleness_s=1.0,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    return settings.with_overrides(**changes)


@contextlib.asynccontextmanager
async def running_issuer(settings: Settings) -> AsyncIterator[Issuer]:
    app = create_app(settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield Issuer(url, http, settings, app)


@contextlib.asynccontextmanager
async def verifiers(
    settings: Settings, *overrides: dict[str, object]
) -> AsyncIterator[list[Verifier]]:
    started = [Verifier(settings.with_overrides(**o)) for o in overrides]
    try:
        for verifier in started:
            await verifier.start()
        yield started
    finally:
        for verifier in started:
            await verifier.stop()


def home_primary(group: Group, issuer: Issuer, uid: str) -> RedisServer:
    """The data node that holds the user's partition as primary."""
    if isinstance(group, SentinelGroup):
        return group.primary()
    events = issuer.ctx.store.keys.of(uid).stream.events
    return group.primary_for_slot(group.slot_of(events))


def home_replica(group: Group, primary: RedisServer) -> RedisServer:
    if isinstance(group, SentinelGroup):
        [replica] = group.replicas()
        return replica
    [replica] = group.replicas_of(primary)
    return replica


async def first_login(issuer: Issuer, name: str, timeout_s: float = 30.0) -> float:
    """Monotonic time of the first successful login (retrying through the failover)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            reply = await issuer.http.post(
                "/v1/login", json={"username": name, "password": PASSWORD}
            )
            if reply.status_code == 200:
                return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no login within {timeout_s} s of the failover")


async def test_an_acknowledged_revocation_survives_the_primarys_death(
    group: Group, tmp_path: Path
) -> None:
    settings = deployment(group, tmp_path)
    async with (
        running_issuer(settings) as issuer,
        verifiers(settings, {}, {"read_from_replicas": True}) as running,
    ):
        uid = await issuer.add_user("alice")
        revoked, live = await issuer.login("alice"), await issuer.login("alice")
        reply = await issuer.post_bearer("/v1/logout", revoked["access_token"])
        assert reply.status_code == 204  # WAIT: a replica has it
        victim = home_primary(group, issuer, uid)
        killed = time.monotonic()
        victim.kill()
        promoted = await asyncio.to_thread(group.wait_failover, victim)
        promoted_s = time.monotonic() - killed
        login_s = await first_login(issuer, "alice") - killed
        every = [*running, issuer.ctx.verifier]  # the issuer checks callers with its own
        await eventually(lambda: all(v.ready for v in every), timeout_s=30)
        fresh_s = time.monotonic() - killed
        print(f"\n{type(group).__name__}: primary killed -> promoted {promoted_s:.2f} s, "
              f"first login {login_s:.2f} s, every verifier fresh {fresh_s:.2f} s")  # fmt: skip
        assert promoted is not victim
        # Nothing came back: not the session, not its refresh token, on no verifier.
        assert (await issuer.refresh(revoked["refresh_token"])).status_code == 401
        for verifier in running:
            assert outcome(verifier, revoked["access_token"]) == "session_revoked"
            assert outcome(verifier, live["access_token"]) == "accepted"
        async with verifiers(settings, {}) as (newborn,):
            assert newborn.ready
            assert outcome(newborn, revoked["access_token"]) == "session_revoked"
            assert outcome(newborn, live["access_token"]) == "accepted"
        # The promoted primary has no replica yet: a revocation is made, not acknowledged.
        reply = await issuer.post_bearer("/v1/logout", live["access_token"])
        assert (reply.status_code, reply.json()["error"]) == (503, "not_durable")
        # Once the dead node is back and in sync (as a replica), a repeat is acknowledged.
        await asyncio.to_thread(group.restart, victim)

        async def repeat_acknowledged() -> bool:
            again = await issuer.post_bearer("/v1/logout", live["access_token"])
            if again.status_code == 204:  # answered as the logout, now durable
                return True
            assert again.json()["error"] == "not_durable"
            return False

        await eventually(repeat_acknowledged, timeout_s=20, every_s=0.2)


async def test_without_a_replica_nothing_is_acknowledged(group: Group, tmp_path: Path) -> None:
    settings = deployment(group, tmp_path, replica_ack_timeout_ms=200)
    async with running_issuer(settings) as issuer:
        uid = await issuer.add_user("alice")
        tokens = await issuer.login("alice")
        replica = home_replica(group, home_primary(group, issuer, uid))
        replica.pause()
        try:
            reply = await issuer.post_bearer("/v1/logout", tokens["access_token"])
            assert (reply.status_code, reply.json()["error"]) == (503, "not_durable")
        finally:
            replica.resume()
        again = await issuer.post_bearer("/v1/logout", tokens["access_token"])
        assert again.status_code == 204  # the repeat writes nothing and answers as the logout
        session = session_keys.session(issuer.ctx.store.keys.of(uid), tokens["session_id"])
        client = Redis(port=replica.port, decode_responses=True)
        try:
            if isinstance(group, ClusterGroup):
                await client.readonly()  # a cluster replica's reads need it
            assert not await client.exists(session)
        finally:
            await client.aclose()


async def test_a_replica_that_stops_receiving_makes_its_readers_stale(
    make_sentinel_group: SentinelFactory, tmp_path: Path
) -> None:
    """No revocation acknowledged on the primary after the replica stopped is ever accepted by
    a verifier reading that replica: it goes stale (503) within the bound instead."""
    group = make_sentinel_group()
    settings = deployment(group, tmp_path, min_replicas=0)  # acknowledged by the primary alone
    async with (
        running_issuer(settings) as issuer,
        verifiers(settings, {"read_from_replicas": True}) as (reader,),
    ):
        await issuer.add_user("alice")
        tokens = await issuer.login("alice")
        await eventually(lambda: outcome(reader, tokens["access_token"]) == "accepted")
        [replica] = group.replicas()
        client = Redis(port=replica.port, decode_responses=True)
        try:
            await client.replicaof("127.0.0.1", free_port())  # a port nobody listens on
            broken = time.monotonic()
            logout = await issuer.post_bearer("/v1/logout", tokens["access_token"])
            assert logout.status_code == 204
            acknowledged = time.monotonic()
            while (answer := outcome(reader, tokens["access_token"])) == "accepted":
                # Accepting is allowed only within the bound after the acknowledgement.
                assert time.monotonic() - acknowledged < settings.freshness.max_staleness_s
                await asyncio.sleep(0.01)
            assert answer == "stale"
            assert (
                time.monotonic() - broken < settings.freshness.max_staleness_s + 1.0
            )  # bound + a block
            await client.replicaof("127.0.0.1", group.primary().port)
        finally:
            await client.aclose()
        await eventually(lambda: reader.ready, timeout_s=15)
        assert outcome(reader, tokens["access_token"]) == "session_revoked"


async def test_replica_readers_read_replicas(group: Group, tmp_path: Path) -> None:
    """With REVOCAST_READ_FROM_REPLICAS=1, the stream reads land on replicas, not primaries."""
    settings = deployment(group, tmp_path)
    async with running_issuer(settings), verifiers(settings, {"read_from_replicas": True}):
        replicas = (
            group.replicas()
            if isinstance(group, SentinelGroup)
            else [r for p in group.primaries() for r in group.replicas_of(p)]
        )

        async def reads_on_replicas() -> bool:
            counts = []
            for replica in replicas:
                client = Redis(port=replica.port, decode_responses=True)
                try:
                    stats = await client.info("commandstats")
                finally:
                    await client.aclose()
                counts.append(stats.get("cmdstat_xread", {}).get("calls", 0))
            return all(count > 0 for count in counts)

        await eventually(reads_on_replicas, timeout_s=15)


async def test_replica_readers_need_the_heartbeat(
    make_cluster_group: ClusterFactory, tmp_path: Path
) -> None:
    """On a cluster's replicas, freshness is the primaries' heartbeat: with no issuer writing
    it, every reader goes stale within the bound; with one, they are fresh."""
    group = make_cluster_group()
    settings = deployment(group, tmp_path)
    async with verifiers(settings, {"read_from_replicas": True}) as (reader,):
        async with running_issuer(settings):
            await eventually(lambda: reader.ready, timeout_s=10)
        stopped = time.monotonic()
        await eventually(lambda: not reader.ready, timeout_s=5)
        assert time.monotonic() - stopped < settings.freshness.max_staleness_s + 1.0
