"""Login throttling: per-username failures and per-client attempts, counted in Redis."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from revocast.issuer import create_app
from revocast.settings import Settings
from revocast_tools.redis_server import free_port
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import serve
from tests.test_cli import stopped, wait_ok


def _loopback_aliases() -> bool:
    """Linux routes all of 127.0.0.0/8 to loopback: a client can bind any of it."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.1.1", 0))
        except OSError:
            return False
    return True


many_addresses = pytest.mark.skipif(
    not _loopback_aliases(),
    reason="this host cannot bind 127.0.1.x (Linux can): no second source address to test with",
)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[str, Starlette]]:
    """An issuer with ``settings`` (the test's Redis prefix and users)."""
    app = create_app(settings)
    async with serve(app) as url:
        yield url, app


@contextlib.asynccontextmanager
async def clients(url: str, *addresses: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per source address (each a real TCP peer of the issuer)."""
    async with contextlib.AsyncExitStack() as stack:
        made = []
        for address in addresses:
            transport = httpx.AsyncHTTPTransport(local_address=address)
            client = httpx.AsyncClient(base_url=url, transport=transport)
            made.append(await stack.enter_async_context(client))
        yield made


@pytest.fixture
async def strict(settings: Settings, issuer: Issuer) -> AsyncIterator[httpx.AsyncClient]:
    """An issuer with small limits, sharing the test's Redis prefix and users."""
    tight = settings.with_overrides(
        login_max_failures_per_user=3, login_max_attempts_per_client=8, login_window_s=60
    )
    async with serve(create_app(tight)) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


async def login(http: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await http.post("/v1/login", json={"username": name, "password": password})


async def test_failures_lock_the_username_not_the_others(
    issuer: Issuer, strict: httpx.AsyncClient
) -> None:
    await issuer.add_user("alice")
    await issuer.add_user("bob")
    for _ in range(3):
        assert (await login(strict, "alice", "wrong guess")).status_code == 401
    locked = await login(strict, "alice", PASSWORD)  # even the right password waits
    assert (locked.status_code, locked.json()["error"]) == (429, "too_many_attempts")
    assert 0 < int(locked.headers["retry-after"]) <= 60
    assert (await login(strict, "bob", PASSWORD)).status_code == 200


async def test_unknown_and_known_names_are_throttled_alike(
    issuer: Issuer, strict: httpx.AsyncClient
) -> None:
    await issuer.add_user("alice")
    answers = []
    for name in ("alice", "nobody"):
        replies = [await login(strict, name, "wrong guess") for _ in range(4)]
        answers.append([(r.status_code, r.json()["error"]) for r in replies])
    assert answers[0] == answers[1]
    assert answers[0][-1] == (429, "too_many_attempts")


async def test_success_clears_the_failures(issuer: Issuer, strict: httpx.AsyncClient) -> None:
    await issuer.add_user("alice")
    for _ in range(2):
        await login(strict, "alice", "wrong guess")
    assert (await login(strict, "alice", PASSWORD)).status_code == 200
    for _ in range(2):
        assert (await login(strict, "alice", "wrong guess")).status_code == 401
    assert (await login(strict, "alice", PASSWORD)).status_code == 200


async def test_one_client_cannot_spray_many_names(
    issuer: Issuer, strict: httpx.AsyncClient
) -> None:
    await issuer.add_user("alice")
    statuses = [(await login(strict, f"user{i}", "guess")).status_code for i in range(9)]
    assert statuses == [401] * 8 + [429]
    assert (await login(strict, "alice", PASSWORD)).status_code == 429  # the client waits


# Point 3: the address is the peer's unless a trusted proxy says otherwise ----------------------


def test_forwarded_for_from_an_untrusted_peer_is_ignored(env: dict[str, str]) -> None:
    """`revocast issuer` as shipped: a local client sending a new X-Forwarded-For with each
    attempt is still one address, refused past its 100 attempts."""
    port = free_port()
    issuer = subprocess.Popen(
        [sys.executable, "-m", "revocast", "issuer", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ok(f"{url}/healthz", issuer)
        with httpx.Client(base_url=url) as http:
            statuses = [
                http.post(
                    "/v1/login",
                    json={"username": f"nobody{i}", "password": "guess"},
                    headers={"X-Forwarded-For": f"203.0.113.{i % 250}"},
                ).status_code
                for i in range(110)
            ]
    finally:
        issuer.terminate()
        stopped(issuer)
    assert statuses == [401] * 100 + [429] * 10


@many_addresses
async def test_a_trusted_proxy_names_the_client(settings: Settings, issuer: Issuer) -> None:
    await issuer.add_user("alice")
    behind = settings.with_overrides(
        trusted_proxies=("127.0.5.1",), login_max_attempts_per_client=3
    )

    def forwarded(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": address}

    async with (
        running(behind) as (url, _),
        clients(url, "127.0.5.1", "127.0.5.2") as (proxy, direct),
    ):

        async def attempt(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
            reply = await http.post(
                "/v1/login", json={"username": "nobody", "password": "x"}, headers=headers
            )
            return reply.status_code

        # The proxy's clients are counted apart, each by the address the proxy gives.
        one = [await attempt(proxy, forwarded("203.0.113.7")) for _ in range(4)]
        assert one == [401, 401, 401, 429]
        assert await attempt(proxy, forwarded("203.0.113.8")) == 401
        # A chain: the last address no trusted proxy holds is the client, not the first.
        spoofed = forwarded("198.51.100.1, 203.0.113.7")
        assert await attempt(proxy, spoofed) == 429
        # From a peer nobody trusts, the header counts for nothing.
        untrusted = [await attempt(direct, forwarded(f"203.0.113.{i}")) for i in range(20, 24)]
        assert untrusted == [401, 401, 401, 429]

        logged_in = await proxy.post(
            "/v1/login",
            json={"username": "alice", "password": PASSWORD},
            headers=forwarded("198.51.100.7"),
        )
        token = logged_in.json()["access_token"]
        mine = await proxy.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
        assert [s["client_address"] for s in mine.json()["sessions"]] == ["198.51.100.7"]
