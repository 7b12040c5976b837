"""Real Sentinel and Cluster topologies: they start, replicate, fail over and heal."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
import uuid

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from revocast.ids import new_user_id
from revocast.redis_url import parse_redis_url
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast.topology import ClusterTopology, SentinelTopology, connect
from revocast_tools.redis_server import free_port
from revocast_tools.topologies import (
    HOST,
    ClusterGroup,
    SentinelGroup,
    info,
    info_cluster,
    role,
)
from tests.support.topologies import ClusterFactory, SentinelFactory


def client(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=5)


def test_sentinel_group_replicates(sentinel_group: SentinelGroup) -> None:
    group = sentinel_group
    primary = group.primary()
    [replica] = group.replicas()
    assert primary in group.servers
    assert replica in group.servers
    assert role(primary.port) == "master"
    assert role(replica.port) == "slave"
    ports = ",".join(f"{HOST}:{port}" for port in group.sentinel_ports)
    assert group.url == f"redis+sentinel://{ports}/revocast"
    assert len(group.sentinel_ports) == 3

    with client(primary.port) as writer, client(replica.port) as reader:
        writer.set("topologies:sentinel", "hello")
        assert writer.wait(1, 5000) == 1
        assert reader.get("topologies:sentinel") == "hello"

    # What a sentinel-aware client finds through the same sentinels.
    addresses = [(HOST, port) for port in group.sentinel_ports]
    sentinel = Sentinel(addresses, socket_timeout=5)
    try:
        found = sentinel.discover_master("revocast")
        assert found == (HOST, primary.port)
    finally:
        for connection in sentinel.sentinels:
            connection.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sentinel_failover_and_rejoin(make_sentinel_group: SentinelFactory) -> None:
    group = make_sentinel_group()
    old = group.primary()
    with client(old.port) as writer:
        writer.set("before", "1")
        assert writer.wait(1, 5000) == 1

    old.kill()
    started = time.monotonic()
    new = group.wait_failover(old)
    failover_s = time.monotonic() - started
    print(f"sentinel failover: {failover_s:.2f}s (down-after {group.down_after_ms} ms)")
    assert new is not old
    assert new in group.servers
    assert group.primary() is new
    with client(new.port) as writer:
        assert writer.get("before") == "1"
        writer.set("after", "2")

    started = time.monotonic()
    group.restart(old)
    print(f"sentinel rejoin as replica: {time.monotonic() - started:.2f}s")
    fields = info(old.port, "replication")
    assert fields["role"] == "slave"
    assert fields["master_port"] == str(new.port)
    assert fields["master_link_status"] == "up"
    assert group.replicas() == [old]
    with client(new.port) as writer, client(old.port) as reader:
        assert writer.wait(1, 5000) == 1
        assert reader.get("after") == "2"


def test_cluster_group_shards(cluster_group: ClusterGroup) -> None:
    group = cluster_group
    primaries = group.primaries()
    assert len(primaries) == 3
    assert len(group.servers) == 6
    for primary in primaries:
        assert role(primary.port) == "master"
        [replica] = group.replicas_of(primary)
        assert info(replica.port, "replication")["master_port"] == str(primary.port)
    for server in group.servers:
        fields = info_cluster(server.port)
        assert fields["cluster_state"] == "ok"
        assert fields["cluster_known_nodes"] == "6"
        assert fields["cluster_slots_assigned"] == "16384"
    assert group.url == "redis+cluster://" + ",".join(f"{HOST}:{s.port}" for s in group.servers)

    # One key per shard, told apart by hash tag.
    key_on: dict[int, str] = {}
    for i in itertools.count():
        key = f"{{tag{i}}}:k"
        key_on.setdefault(group.primary_for_slot(group.slot_of(key)).port, key)
        if len(key_on) == 3:
            break
    assert set(key_on) == {p.port for p in primaries}
    for port, key in key_on.items():
        with client(port) as owner:
            owner.set(key, str(port))
        for other in primaries:
            if other.port != port:
                with (
                    client(other.port) as stranger,
                    pytest.raises(redis.exceptions.ResponseError) as refused,
                ):
                    stranger.get(key)
                # MOVED: redis-py from 6.0 raises its own class, before a bare ResponseError.
                moved = refused.value
                assert isinstance(moved, redis.exceptions.MovedError) or str(moved).startswith(
                    "MOVED "
                )

    # A cluster-aware client sees the same shards.
    nodes = [ClusterNode(HOST, s.port) for s in group.servers]  # type: ignore[no-untyped-call]
    with RedisCluster(startup_nodes=nodes, decode_responses=True) as cluster:
        for port, key in key_on.items():
            assert cluster.get(key) == str(port)


async def test_a_write_sent_to_the_wrong_shard_reads_the_map_again(
    cluster_group: ClusterGroup,
) -> None:
    """MOVED (the map is old: a failover, a resharding) makes the store read the slot map
    again and run the script once more, on the right primary. redis-py before 6.0 raised
    MOVED on our plain connections as a bare ResponseError, which this once missed."""
    settings = Settings.from_values(
        redis_url=cluster_group.url, key_prefix=f"t{uuid.uuid4().hex[:12]}"
    )
    backend = Backend(settings)
    try:
        keys = await backend.start()
        topology = backend.topology
        assert isinstance(topology, ClusterTopology)
        uid = new_user_id(keys, "alice")
        key = keys.of(uid).user(uid)
        owner = topology.shard_of(key)
        # Each primary's slots handed to the next one, in a map read a second ago (not yet
        # due again, but past the least time between two reads).
        primaries = sorted({shard.primary for shard in topology._ranges})
        following = dict(zip(primaries, primaries[1:] + primaries[:1], strict=True))
        topology._ranges = [
            dataclasses.replace(shard, primary=following[shard.primary])
            for shard in topology._ranges
        ]
        topology._refreshed_at = time.monotonic() - 1.0
        assert topology.shard_of(key) not in {owner, None}
        await Store(backend).users.add(uid, "alice", "hash", "[]")
        assert topology.shard_of(key) == owner
        assert (await Store(backend).users.record(uid))["username"] == "alice"
    finally:
        await backend.aclose()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cluster_failover_and_rejoin(make_cluster_group: ClusterFactory) -> None:
    group = make_cluster_group()
    dead = group.primaries()[0]
    [heir] = group.replicas_of(dead)
    key = next(
        key
        for key in (f"{{failover{i}}}:k" for i in itertools.count())
        if group.primary_for_slot(group.slot_of(key)) is dead
    )
    with client(dead.port) as owner:
        owner.set(key, "1")
        assert owner.wait(1, 5000) == 1

    dead.kill()
    started = time.monotonic()
    new = group.wait_failover(dead)
    print(f"cluster failover: {time.monotonic() - started:.2f}s")
    assert new is heir
    assert role(new.port) == "master"
    assert len(group.primaries()) == 3
    assert group.primary_for_slot(group.slot_of(key)) is new
    with client(new.port) as owner:
        assert owner.get(key) == "1"
        owner.set(key, "2")

    started = time.monotonic()
    group.restart(dead)
    print(f"cluster rejoin as replica: {time.monotonic() - started:.2f}s")
    assert role(dead.port) == "slave"
    assert group.replicas_of(new) == [dead]
    assert all(info_cluster(s.port)["cluster_state"] == "ok" for s in group.servers)


@pytest.mark.slow
def test_cluster_created_without_redis_cli(
    make_cluster_group: ClusterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("revocast_tools.topologies.find_cli", lambda: None)
    group = make_cluster_group(primaries=3, replicas_per_primary=1)
    primaries = group.primaries()
    assert len(primaries) == 3
    assert all(len(group.replicas_of(p)) == 1 for p in primaries)
    assert all(info_cluster(s.port)["cluster_state"] == "ok" for s in group.servers)


async def test_sentinel_discoveries_at_once_keep_every_sentinel(
    sentinel_group: SentinelGroup,
) -> None:
    """redis-py reorders its sentinel list after a discovery by an index read before the
    await; many discoveries at once, with the first sentinel down, must still leave every
    sentinel in the list once (else one is no longer asked, and its connection leaks)."""
    down = free_port()
    nodes = ",".join(f"{HOST}:{port}" for port in (down, *sentinel_group.sentinel_ports))
    url = parse_redis_url(f"redis+sentinel://{nodes}/{sentinel_group.master_name}")
    topology = connect(url)
    assert isinstance(topology, SentinelTopology)
    sentinels = topology._sentinel  # the client under test: redis-py's, one at a time
    try:
        before = sorted(s.connection_pool.connection_kwargs["port"] for s in sentinels.sentinels)
        found = await asyncio.gather(
            *(sentinels.discover_master(sentinel_group.master_name) for _ in range(200))
        )
        assert set(found) == {(HOST, sentinel_group.primary().port)}
        after = sorted(s.connection_pool.connection_kwargs["port"] for s in sentinels.sentinels)
        assert after == before
    finally:
        await topology.aclose()
