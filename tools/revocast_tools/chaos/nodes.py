"""The Redis side of a run: one server, a Sentinel group, or a Redis Cluster.

Scenarios reach the kind they asked for through ``single``, ``sentinel`` or
``redis_cluster`` (asking for another kind is a bug in the scenario). The
groups' own operations (``wait_failover``, ``restart``, ``replicas``...) block
while they poll the servers: ``call`` runs them on one thread of this object's,
so that the traffic on the event loop goes on meanwhile. One thread, kept for
the whole run, because a node started there gets PR_SET_PDEATHSIG from that
thread: it must not exit before the node is stopped.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

from revocast_tools.chaos.server import ChaosRedis
from revocast_tools.topologies import ClusterGroup, SentinelGroup

Kind = Literal["single", "sentinel", "cluster"]
P = ParamSpec("P")
T = TypeVar("T")


class RedisNodes:
    """Start, reach and stop the Redis processes of one deployment under test."""

    def __init__(self, kind: Kind, data_dir: Path, *, appendonly: bool, fsync_always: bool) -> None:
        self.kind = kind
        fsync = ["--appendfsync", "always"] if appendonly and fsync_always else []
        self._nodes: ChaosRedis | SentinelGroup | ClusterGroup
        if kind == "single":
            self._nodes = ChaosRedis(data_dir, appendonly=appendonly, fsync_always=fsync_always)
        elif kind == "sentinel":
            self._nodes = SentinelGroup(data_dir, appendonly=appendonly, extra_args=fsync)
        else:
            self._nodes = ClusterGroup(data_dir, appendonly=appendonly, extra_args=fsync)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chaos-redis")

    @property
    def url(self) -> str:
        """The ``REDIS_URL`` every service uses (verifiers too, unless behind a proxy)."""
        return self._nodes.url

    @property
    def single(self) -> ChaosRedis:
        if not isinstance(self._nodes, ChaosRedis):
            raise RuntimeError(f"this run's Redis is a {self.kind} deployment, not one server")
        return self._nodes

    @property
    def sentinel(self) -> SentinelGroup:
        if not isinstance(self._nodes, SentinelGroup):
            raise RuntimeError(f"this run's Redis is a {self.kind} deployment, not Sentinel")
        return self._nodes

    @property
    def redis_cluster(self) -> ClusterGroup:
        if not isinstance(self._nodes, ClusterGroup):
            raise RuntimeError(f"this run's Redis is a {self.kind} deployment, not a Cluster")
        return self._nodes

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking group operation on the nodes' thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    async def start(self) -> None:
        await self.call(self._nodes.start)

    def stop(self) -> None:
        """Stop every node (on the thread that started them), then the thread."""
        try:
            self._thread.submit(self._nodes.stop).result()
        finally:
            self._thread.shutdown(wait=True)
