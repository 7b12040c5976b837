"""The set-up both replica benchmarks share: a Sentinel group, the issuer, and a writer.

Sentinel with one replica is the shape where every verifier reads the same replica, so
that replica's own accounting (``INFO``) is the cost of the verifiers on it. The issuer
runs as its own process (it writes the heartbeats) and reads the primary; the benchmark
process writes revocations with ``Store``, as the issuer's logout does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._deploy import Deployment, deployment
from bench._env import cpu_seconds
from bench._issuer import revocast_env, start_issuer
from bench._processes import Child, Children
from bench._redis_info import Sample, sample
from revocast.settings import Settings
from revocast.store import Backend, Store


@dataclass
class Scene:
    deployment: Deployment
    children: Children
    env: dict[str, str]  # the issuer's and the writer's: read the primary
    issuer: Child
    store: Store

    @property
    def verifier_env(self) -> dict[str, str]:
        """What the followers get: snapshot and follow on the replica."""
        return self.env | {"REVOCAST_READ_FROM_REPLICAS": "1"}

    @property
    def replica_port(self) -> int:
        return self.deployment.replicas[0].port

    def replica(self) -> Sample:
        return sample(self.replica_port)

    def others(self) -> dict[str, Sample]:
        """The primary and each sentinel: what the followers cost besides the replica."""
        found = {"primary": sample(self.deployment.primaries[0].port)}
        for i, sentinel in enumerate(self.deployment.sentinels):
            found[f"sentinel{i}"] = sample(sentinel.port)
        return found

    def process_cpu(self, pids: Sequence[int]) -> dict[str, float]:
        """CPU seconds so far: the given (follower) processes, the issuer, this process."""
        return {
            "followers": sum(cpu_seconds(pid) for pid in pids),
            "issuer": cpu_seconds(self.issuer.process.pid),
            "writer": time.process_time(),
        }


@contextlib.asynccontextmanager
async def replica_scene(tmp: Path, extra_args: Sequence[str] = ()) -> AsyncIterator[Scene]:
    with deployment("sentinel", tmp, extra_args) as deployed:
        children = Children(tmp)
        env = revocast_env(deployed.url, tmp)
        backend = Backend(Settings.from_env(env))
        try:
            issuer, _ = await start_issuer(children, env)
            await backend.start()
            yield Scene(deployed, children, env, issuer, Store(backend))
        finally:
            await backend.aclose()
            children.stop()


class Peaks:
    """Polls a server's INFO in the background (every ``every_s``), keeping the maxima."""

    FIELDS = ("used_memory", "mem_clients_normal", "connected_clients", "blocked_clients")

    def __init__(self, port: int, every_s: float = 0.2) -> None:
        self.port = port
        self.every_s = every_s
        self.peaks: dict[str, int] = dict.fromkeys(self.FIELDS, 0)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            found = await asyncio.to_thread(sample, self.port)
            for name in self.FIELDS:
                self.peaks[name] = max(self.peaks[name], found.field(name))
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> Peaks:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
