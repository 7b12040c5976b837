"""Login throttling: per-username failures and per-client attempts, counted in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from revocast.issuer import create_app
from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import serve


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
