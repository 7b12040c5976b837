"""REDIS_URL forms reach redis-py's clients as their options say (no server needed here; every
form connects to real servers in the flow tests)."""

from __future__ import annotations

import pytest

from revocast.redis_url import parse_redis_url
from revocast.topology import ClusterTopology, SentinelTopology, SingleTopology, connect


def test_single_server_forms_are_redis_pys() -> None:
    for url in ("redis://:pw@127.0.0.1:6400/3", "rediss://127.0.0.1:6380", "unix:///tmp/r.sock"):
        topology = connect(parse_redis_url(url))
        assert isinstance(topology, SingleTopology)
        assert topology.default_min_replicas == 0
    assert parse_redis_url("redis://:pw@127.0.0.1:6400/3").db == 3


async def test_sentinel_passwords_tls_and_db_reach_the_clients() -> None:
    url = parse_redis_url(
        "rediss+sentinel://app:secret@10.0.0.1:26400,10.0.0.2:26400/mymaster/2"
        "?sentinel_password=watch&sentinel_username=watcher&ssl_ca_certs=/etc/ca.pem"
    )
    assert (url.kind, url.master_name, url.db, url.tls) == ("sentinel", "mymaster", 2, True)
    topology = connect(url, read_from_replicas=True)
    assert isinstance(topology, SentinelTopology)
    assert topology.default_min_replicas == 1
    data = (await topology.primary("k")).connection_pool.connection_kwargs
    assert (data["username"], data["password"], data["db"]) == ("app", "secret", 2)
    assert data["ssl_ca_certs"] == "/etc/ca.pem"
    assert data["ssl_cert_reqs"] == "required"
    replica = (await topology.reader("k")).connection_pool
    assert replica is not (await topology.primary("k")).connection_pool
    sentinel = topology._sentinel.sentinels[0].connection_pool.connection_kwargs
    assert (sentinel["username"], sentinel["password"]) == ("watcher", "watch")
    assert sentinel["ssl_ca_certs"] == "/etc/ca.pem"
    await topology.aclose()


def test_cluster_urls() -> None:
    url = parse_redis_url("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001")
    assert url.nodes == (("127.0.0.1", 7000), ("127.0.0.1", 7001))
    topology = connect(url)
    assert isinstance(topology, ClusterTopology)
    assert topology.default_min_replicas == 1


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("redis+sentinel://u:secret@h:1/m", "redis+sentinel://***@h:1/m"),
        ("redis://:secret@h:6400/0", "redis://***@h:6400/0"),
    ],
)
def test_passwords_stay_out_of_logs(text: str, redacted: str) -> None:
    assert parse_redis_url(text).redacted() == redacted
