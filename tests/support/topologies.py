"""Fixtures for real Sentinel and Cluster topologies, started by the test session.

Import these from a conftest (or list this module in ``pytest_plugins``).
``sentinel_group`` and ``cluster_group`` are shared by the session and started
only when a test asks for them; tests that kill nodes take their own group from
``make_sentinel_group`` / ``make_cluster_group``, stopped after the test. With no
server binary, or a topology that cannot start, the test is skipped with the
reason: never a silent pass.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from revocast_tools.redis_server import find_server_binary
from revocast_tools.topologies import ClusterGroup, SentinelGroup

G = TypeVar("G", SentinelGroup, ClusterGroup)

# What ``topology`` (tests/conftest.py) can be; a module that runs on all of them says
#     @pytest.fixture(params=EVERY_TOPOLOGY)
#     def topology(request: pytest.FixtureRequest) -> str: return str(request.param)
# Sentinel and Cluster runs are marked slow: the default run keeps to one server.
EVERY_TOPOLOGY = (
    "single",
    "partitioned",
    pytest.param("sentinel", marks=pytest.mark.slow),
    pytest.param("cluster", marks=pytest.mark.slow),
)

SentinelFactory = Callable[..., SentinelGroup]
ClusterFactory = Callable[..., ClusterGroup]


def _started(kind: type[G], base_dir: Path, **options: Any) -> G:
    """A started group, or a skip saying why there is none."""
    try:
        find_server_binary()
    except RuntimeError as exc:
        pytest.skip(f"{kind.__name__}: {exc}")
    try:
        group = kind(base_dir, **options)
        group.start()
    except (RuntimeError, TimeoutError, OSError, redis.RedisError) as exc:
        pytest.skip(f"{kind.__name__} did not start (logs in {base_dir}): {exc}")
    return group


@pytest.fixture(scope="session")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A primary, one replica and three sentinels for the session: do not kill its nodes."""
    group = _started(SentinelGroup, tmp_path_factory.mktemp("sentinel"))
    yield group
    group.stop()


@pytest.fixture(scope="session")
def cluster_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    """Three shards of primary and replica for the session: do not kill its nodes."""
    group = _started(ClusterGroup, tmp_path_factory.mktemp("cluster"))
    yield group
    group.stop()


@contextlib.contextmanager
def _own_groups(kind: type[G], base_dir: Path) -> Iterator[Callable[..., G]]:
    """``make(**options)`` starts a group of ``kind`` under ``base_dir``; all stop at the end."""
    groups: list[G] = []
    numbers = itertools.count()

    def make(**options: Any) -> G:
        group = _started(kind, base_dir / f"{kind.__name__.lower()}{next(numbers)}", **options)
        groups.append(group)
        return group

    try:
        yield make
    finally:
        for group in groups:
            group.stop()


@pytest.fixture
def make_sentinel_group(tmp_path: Path) -> Iterator[SentinelFactory]:
    """``make(**SentinelGroup options)``: a started group of the test's own."""
    with _own_groups(SentinelGroup, tmp_path) as make:
        yield make


@pytest.fixture
def make_cluster_group(tmp_path: Path) -> Iterator[ClusterFactory]:
    """``make(**ClusterGroup options)``: a started cluster of the test's own."""
    with _own_groups(ClusterGroup, tmp_path) as make:
        yield make
