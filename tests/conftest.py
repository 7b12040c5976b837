"""Fixtures: one private redis-server per test session, a fresh key prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from revocast.connection import redis_client
from revocast.issuer import create_app, operator
from revocast.issuer.context import IssuerContext
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast.verifier import Verifier
from revocast_tools.proxy import TcpProxy
from revocast_tools.redis_server import RedisServer
from tests.support.idp import AUDIENCE, IDP, IdP
from tests.support.servers import serve
from tests.support.topologies import (  # noqa: F401 (fixtures for every module)
    cluster_group,
    make_cluster_group,
    make_sentinel_group,
    sentinel_group,
)

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session", autouse=True)
def _private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default key directory (``$XDG_DATA_HOME/revocast/keys``) of every process the
    tests start is private: nothing is written to the home directory."""
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data-home"))
    yield
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private server on a free port: never the machine's shared Redis."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


Topology = Literal["single", "partitioned", "sentinel", "cluster"]


@pytest.fixture
def topology() -> Topology:
    """Where the test deployment runs; modules override this to run on every topology."""
    return "single"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, topology: Topology, redis_server: RedisServer, tmp_path: Path
) -> Settings:
    """A fresh key prefix on the test session's private server (or Sentinel group, or cluster)."""
    redis_url, partitions = redis_server.url, 0
    if topology == "partitioned":
        partitions = 4  # one server, four partitions: every cross-partition path runs
    elif topology == "sentinel":
        redis_url = request.getfixturevalue("sentinel_group").url
    elif topology == "cluster":
        redis_url = request.getfixturevalue("cluster_group").url
    return Settings.from_values(
        redis_url=redis_url,
        partitions=partitions,
        key_prefix=f"t{uuid.uuid4().hex[:12]}",
        key_dir=str(tmp_path / "keys"),
        max_staleness_s=2.0,
        # Cheap hashes keep the suite fast; production defaults are tested apart.
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The environment of a `revocast` process for the test deployment."""
    return os.environ | {
        "REDIS_URL": settings.redis.redis_url or "",
        "REVOCAST_PARTITIONS": str(settings.redis.partitions),
        "REVOCAST_KEY_PREFIX": f"cli{uuid.uuid4().hex[:10]}",
        "REVOCAST_KEY_DIR": str(tmp_path / "keys"),
        "REVOCAST_ARGON2_TIME_COST": "1",
        "REVOCAST_ARGON2_MEMORY_KIB": "1024",
        "REVOCAST_ARGON2_PARALLELISM": "1",
    }


@pytest.fixture
async def redis(settings: Settings, redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client to the session's single server; its keys under the prefix go after."""
    client = redis_client(redis_server.url)
    yield client
    keys = [key async for key in client.scan_iter(f"{settings.redis.key_prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def backend(settings: Settings, redis: Redis) -> AsyncIterator[Backend]:
    """The test deployment's store, started (its partition count fixed)."""
    store = Backend(settings)
    await store.start()
    yield store
    await store.aclose()


@pytest.fixture
def store(backend: Backend) -> Store:
    return Store(backend)


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    """The Authorization header for a login's access token."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@dataclass
class Issuer:
    url: str
    http: httpx.AsyncClient
    settings: Settings
    app: Starlette

    @property
    def ctx(self) -> IssuerContext:
        """The running issuer's own store, keys and verifier."""
        return IssuerContext.of_app(self.app)

    async def add_user(self, name: str, roles: list[str] | None = None) -> str:
        from revocast.issuer.passwords import Passwords
        from revocast.issuer.users import add_user

        backend = Backend(self.settings)
        try:
            await backend.start()
            store = Store(backend)
            passwords = Passwords(self.settings.passwords)
            return await add_user(store, passwords, name, PASSWORD, roles or [])
        finally:
            await backend.aclose()

    async def add_client(
        self, name: str, *, confidential: bool = False, roles: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Register an OAuth client; a confidential one's answer holds its client_secret."""
        return await operator.add_client(self.ctx.store, name, confidential, roles)

    async def login(self, name: str) -> dict[str, Any]:
        reply = await self.http.post("/v1/login", json={"username": name, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.http.post("/v1/refresh", json={"refresh_token": refresh_token})

    async def post_bearer(self, path: str, access_token: str) -> httpx.Response:
        return await self.http.post(path, headers={"Authorization": f"Bearer {access_token}"})


@pytest.fixture
async def issuer(settings: Settings, redis: Redis) -> AsyncIterator[Issuer]:
    app = create_app(settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Issuer(url, http, settings, app)


@pytest.fixture(scope="module")
def idp() -> IdP:
    """An upstream IdP (its own key) for the modules that link to one."""
    return IdP.new()


@pytest.fixture
async def linked(settings: Settings, idp: IdP) -> AsyncIterator[Issuer]:
    """An issuer that trusts the IdP (its key given as PEM)."""
    configured = settings.with_overrides(
        upstream_issuer=IDP, upstream_audience=AUDIENCE, upstream_key=idp.public_pem()
    )
    app = create_app(configured)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Issuer(url, http, configured, app)


VerifierFactory = Callable[..., Awaitable[Verifier]]


@pytest.fixture
async def make_verifier(settings: Settings) -> AsyncIterator[VerifierFactory]:
    """Start verifiers (optionally through a proxy URL or with other settings); stop them after."""
    started: list[Verifier] = []

    async def make(**overrides: object) -> Verifier:
        verifier = Verifier(settings.with_overrides(**overrides))
        await verifier.start()
        started.append(verifier)
        return verifier

    yield make
    for verifier in started:
        await verifier.stop()


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[TcpProxy]:
    """A fault-injecting path to the private Redis."""
    tcp = TcpProxy(redis_server.port)
    await tcp.start()
    yield tcp
    await tcp.stop()
