"""Login throttling (SECURITY.md): every attempt is counted in Redis before its password is
checked; per client address, per (username, address), and per username as a growing delay
that the addresses where the user logs in do not wait for."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from revocast.issuer import create_app
from revocast.issuer.context import IssuerContext
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


class Evaluations:
    """The password checks (argon2) a running issuer makes: what the throttle must ration."""

    def __init__(self, app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
        passwords = IssuerContext.of_app(app).passwords
        check = passwords.verify
        self.count = 0

        async def counted(stored_hash: str | None, password: str) -> bool:
            self.count += 1
            return await check(stored_hash, password)

        monkeypatch.setattr(passwords, "verify", counted)


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


async def login(http: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await http.post("/v1/login", json={"username": name, "password": password})


@pytest.fixture
async def strict(settings: Settings, issuer: Issuer) -> AsyncIterator[httpx.AsyncClient]:
    """An issuer with small limits, sharing the test's Redis prefix and users."""
    tight = settings.with_overrides(
        login_max_attempts_per_client=8,
        login_max_failures_per_user_address=3,
        login_max_failures_per_user=3,
        login_window_s=60,
    )
    async with running(tight) as (url, _), httpx.AsyncClient(base_url=url) as http:
        yield http


# Point 1: counted before the hash is checked, atomically ------------------------------------


@many_addresses
async def test_concurrent_wrong_passwords_are_checked_at_most_the_limit(
    settings: Settings, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 wrong passwords sent at once from 40 addresses: the username's limit (10) holds."""
    await issuer.add_user("alice")
    limit = settings.throttle.login_max_failures_per_user
    addresses = [f"127.0.1.{i}" for i in range(1, 41)]
    async with running(settings) as (url, app), clients(url, *addresses) as each:
        checked = Evaluations(app, monkeypatch)
        replies = await asyncio.gather(
            *(login(http, "alice", f"guess {i}") for i, http in enumerate(each))
        )
        metrics = (await each[0].get("/metrics")).text
    statuses = sorted(reply.status_code for reply in replies)
    assert checked.count == limit == 10
    assert statuses == [401] * limit + [429] * (40 - limit)
    refused = [reply for reply in replies if reply.status_code == 429]
    assert {reply.json()["error"] for reply in refused} == {"too_many_attempts"}
    assert {reply.headers["retry-after"] for reply in refused} == {"1"}  # a delay, not a lock
    assert 'revocast_login_throttled_total{limit="user"} 30.0' in metrics.splitlines()


# Point 2: no lockout button --------------------------------------------------------------------


@many_addresses
async def test_failures_elsewhere_do_not_lock_the_owner_out(
    settings: Settings, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten wrong passwords from one address lock that address out of that username; where
    the owner logs in, nothing waits, and from a new address only the short delay."""
    await issuer.add_user("carol")
    home, elsewhere, mallory = "127.0.2.1", "127.0.2.2", "127.0.2.3"
    async with running(settings) as (url, app), clients(url, home, elsewhere, mallory) as http:
        assert (await login(http[0], "carol", PASSWORD)).status_code == 200  # home is known
        guesses = [(await login(http[2], "carol", "wrong")).status_code for _ in range(10)]
        assert guesses == [401] * 10
        checked = Evaluations(app, monkeypatch)
        delayed = await login(http[1], "carol", PASSWORD)  # at once after the 10th failure
        assert (delayed.status_code, delayed.headers["retry-after"]) == (429, "1")
        assert (await login(http[0], "carol", PASSWORD)).status_code == 200  # home: no wait
        locked = await login(http[2], "carol", PASSWORD)  # the right one too: not checked
        assert locked.status_code == 429
        assert 800 < int(locked.headers["retry-after"]) <= 900  # the address's window
        assert checked.count == 1  # the home login's
        await asyncio.sleep(1.05)
        assert (await login(http[1], "carol", PASSWORD)).status_code == 200
        assert (await login(http[2], "carol", PASSWORD)).status_code == 429  # still refused


async def failures_key(redis: Redis, settings: Settings) -> str:
    (key,) = await redis.keys(f"{settings.redis.key_prefix}:*:rl:name:*")
    return str(key)


@many_addresses
async def test_the_delay_doubles_up_to_its_cap_and_never_locks(
    settings: Settings, issuer: Issuer, redis: Redis
) -> None:
    """Past the limit, each attempt from a new address may come 1, 2, 4... s after the one
    before, at most REVOCAST_LOGIN_USER_MAX_DELAY_S; the test moves the clock of that
    delay instead of sleeping through it."""
    await issuer.add_user("dave")
    tight = settings.with_overrides(login_max_failures_per_user=3, login_user_max_delay_s=20)
    addresses = [f"127.0.3.{i}" for i in range(1, 21)]
    async with running(tight) as (url, _), clients(url, *addresses) as each:
        fresh = iter(each)
        for _ in range(3):
            assert (await login(next(fresh), "dave", "wrong")).status_code == 401
        waits = []
        for _ in range(7):
            refused = await login(next(fresh), "dave", "wrong")
            assert refused.status_code == 429
            waits.append(int(refused.headers["retry-after"]))
            await redis.hset(await failures_key(redis, settings), "next_ms", 0)  # time passes
            assert (await login(next(fresh), "dave", "wrong")).status_code == 401
    assert waits == [1, 2, 4, 8, 16, 20, 20]


@many_addresses
async def test_a_known_address_that_keeps_failing_waits_like_any_other(
    settings: Settings, issuer: Issuer
) -> None:
    """An address where the user logged in is exempt from the delay only until it reaches
    the (username, address) limit: someone sharing it cannot guess on without bound."""
    await issuer.add_user("erin")
    short = settings.with_overrides(
        login_max_failures_per_user_address=3, login_max_failures_per_user=3, login_window_s=1
    )
    async with running(short) as (url, _), clients(url, "127.0.4.1") as (shared,):
        assert (await login(shared, "erin", PASSWORD)).status_code == 200
        assert [(await login(shared, "erin", "wrong")).status_code for _ in range(4)] == [
            401, 401, 401, 429]  # fmt: skip
        await asyncio.sleep(1.1)  # the address's window is over
        assert (await login(shared, "erin", "wrong")).status_code == 401
        assert (await login(shared, "erin", "wrong")).status_code == 429  # no longer exempt


# The limits every name and client share ---------------------------------------------------------


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


async def test_a_login_forgives_the_failures_before_it(
    issuer: Issuer, strict: httpx.AsyncClient
) -> None:
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
