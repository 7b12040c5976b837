"""One deployment under test: private Redis nodes, an issuer, N verifier sidecars.

The Redis side is one server (each verifier then reaches it through a proxy of
its own, the link faults' target), a Sentinel group or a Redis Cluster (the
verifiers use the topology's URL directly; the faults hit the nodes).
Everything is on loopback with free ports in a temporary directory, and
everything is torn down on exit (terminate, then kill), whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast_tools.chaos.nodes import Kind, RedisNodes
from revocast_tools.chaos.processes import Service
from revocast_tools.chaos.proxyhost import ProxyHost, RemoteProxy
from revocast_tools.chaos.server import ChaosRedis
from revocast_tools.redis_server import free_port

KEY_PREFIX = "chaos"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    verifiers: int = 2
    topology: Kind = "single"
    appendonly: bool = True
    fsync_always: bool = True
    # Verifiers reach a single Redis through a TcpProxy each (fault targets); never on
    # Sentinel or Cluster, where they must find the nodes themselves.
    proxied: bool = True
    max_staleness_s: float = 1.0
    access_ttl_s: int = 60
    # Extra environment for every service (and the harness's own store calls).
    env: Mapping[str, str] = field(default_factory=dict)
    # Extra environment per verifier, cycled (verifier i gets entry i % len).
    verifier_env: Sequence[Mapping[str, str]] = field(default_factory=tuple)

    @property
    def through_proxies(self) -> bool:
        return self.proxied and self.topology == "single"


class Cluster:
    """Start with ``async with``; the attributes are the live parts to inject faults into."""

    def __init__(self, options: ClusterOptions) -> None:
        self.options = options
        self.dir = Path(tempfile.mkdtemp(prefix="revocast-chaos-"))
        self.nodes = RedisNodes(
            options.topology,
            self.dir / "redis",
            appendonly=options.appendonly,
            fsync_always=options.fsync_always,
        )
        self.env = _service_env(self.nodes.url, self.dir, options)
        self.settings = Settings.from_env(self.env)
        self.proxies = ProxyHost()
        self.links: list[RemoteProxy] = []
        self.issuer = Service("issuer", "issuer", free_port(), self.env, self.dir)
        self.verifiers: list[Service] = []
        self.http = httpx.AsyncClient(timeout=2.0)
        self.backend = Backend(self.settings)
        self.store = Store(self.backend)

    @property
    def redis(self) -> ChaosRedis:
        """The one Redis server (of a single-server run)."""
        return self.nodes.single

    async def __aenter__(self) -> Cluster:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _start(self) -> None:
        await self.nodes.start()
        self.proxies.start()
        self.issuer.spawn()
        await self.add_verifiers(self.options.verifiers, also_wait=[self.issuer])
        await self.backend.start()  # the harness's own connections (users, bulk revocations)

    async def add_verifiers(self, count: int, also_wait: Sequence[Service] = ()) -> None:
        """Spawn ``count`` more verifiers (each behind its own proxy if proxied); wait ready."""
        new: list[Service] = []
        for _ in range(count):
            index = len(self.verifiers)
            env = dict(self.env)
            if self.options.through_proxies:
                link = self.proxies.add(self.redis.port)
                self.links.append(link)
                env["REDIS_URL"] = link.url
            if self.options.verifier_env:
                env.update(self.options.verifier_env[index % len(self.options.verifier_env)])
            service = Service(f"verifier{index}", "verifier", free_port(), env, self.dir)
            service.spawn()
            self.verifiers.append(service)
            new.append(service)
        await asyncio.gather(
            *(s.wait_ready(self.http, START_TIMEOUT_S) for s in [*also_wait, *new])
        )

    async def ready(self, service: Service) -> bool:
        try:
            reply = await self.http.get(service.url + service.ready_path, timeout=0.5)
        except httpx.TransportError:
            return False
        return reply.status_code == 200

    async def wait_all_ready(self, timeout_s: float) -> float | None:
        """Monotonic time when the issuer and every verifier were ready; None on timeout."""
        return await self.wait_until(True, [self.issuer, *self.verifiers], timeout_s)

    async def wait_until(
        self, ready: bool, services: Sequence[Service], timeout_s: float
    ) -> float | None:
        """Monotonic time when every one of ``services`` had answered ``ready`` (or not ready)
        at least once since the call; None on timeout."""
        deadline = time.monotonic() + timeout_s
        pending = list(services)
        while pending:
            answers = await asyncio.gather(*(self.ready(s) for s in pending))
            pending = [s for s, ok in zip(pending, answers, strict=True) if ok != ready]
            if not pending:
                break
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.01)
        return time.monotonic()

    async def restart(self, service: Service) -> None:
        service.kill()
        service.spawn()
        await service.wait_ready(self.http, START_TIMEOUT_S)

    def log_tails(self, lines: int = 8) -> dict[str, str]:
        return {s.name: s.log_tail(lines) for s in [self.issuer, *self.verifiers]}

    async def close(self) -> None:
        """Terminate every child (kill what lingers), stop proxies and Redis, remove the files."""
        services = [self.issuer, *self.verifiers]
        for service in services:
            service.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for service in services:
            service.reap(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(Exception):
            await self.http.aclose()
        with contextlib.suppress(Exception):
            await self.backend.aclose()
        self.proxies.stop()
        self.nodes.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _service_env(redis_url: str, root: Path, options: ClusterOptions) -> dict[str, str]:
    """Our environment without any revocast setting of the caller's, plus the run's settings
    (those of the scenario last)."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("REVOCAST_") and k != "REDIS_URL"
    }
    run = {
        "REDIS_URL": redis_url,
        "REVOCAST_KEY_PREFIX": KEY_PREFIX,
        "REVOCAST_KEY_DIR": str(root / "keys"),
        "REVOCAST_MAX_STALENESS_S": str(options.max_staleness_s),
        "REVOCAST_ACCESS_TTL_S": str(options.access_ttl_s),
        # Cheap hashes: the runs measure revocation, not argon2.
        "REVOCAST_ARGON2_TIME_COST": "1",
        "REVOCAST_ARGON2_MEMORY_KIB": "1024",
        "REVOCAST_ARGON2_PARALLELISM": "1",
        # Hundreds of logins from one address, and retries for users a data loss removed:
        # login throttling would refuse the harness, not exercise revocation. So would the
        # revocation limit: 8 users log out at the run's rate (tens a second).
        "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT": "0",
        "REVOCAST_LOGIN_MAX_FAILURES_PER_USER": "0",
        "REVOCAST_REVOCATIONS_PER_MINUTE": "0",
        "REVOCAST_LOGIN_MAX_FAILURES_PER_USER_ADDRESS": "0",
    }
    return inherited | run | dict(options.env)
