"""A login and a refresh wait for at most three and two Redis round trips, measured at the
socket on a real server (``tests/support/round_trips.py``), with every throttle on and the
session limit set, so each of their Redis steps runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from revocast.issuer import create_app
from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer
from tests.support.round_trips import Recorder, instrumented
from tests.support.servers import serve
from tests.support.topologies import EVERY_TOPOLOGY

LOGIN_ROUND_TRIPS = 3  # throttle and lookup; the session (argon2 runs in between)
REFRESH_ROUND_TRIPS = 2  # the token's record; the rotation


@pytest.fixture(params=EVERY_TOPOLOGY)
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(settings: Settings, topology: str) -> Settings:
    """The session limit on, for both issuers: one deployment's settings, so its scripts (their
    constants in them) are the ones both load. (``topology`` named here too: pytest 8.2 does
    not see a parametrized fixture that only the overridden ``settings`` requests.)"""
    return settings.with_overrides(max_sessions_per_user=5)


@pytest.fixture
def _patched() -> Iterator[None]:
    with instrumented():
        yield


@pytest.fixture
async def recorded(
    settings: Settings, issuer: Issuer, _patched: None
) -> AsyncIterator[tuple[Recorder, httpx.AsyncClient]]:
    """A second issuer of the deployment, its requests recorded."""
    recorder = Recorder(create_app(settings))
    async with serve(recorder) as url, httpx.AsyncClient(base_url=url) as http:
        yield recorder, http


async def login(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    reply = await http.post("/v1/login", json={"username": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    body: dict[str, str] = reply.json()
    return body


async def test_a_login_waits_for_at_most_three_round_trips(
    issuer: Issuer, recorded: tuple[Recorder, httpx.AsyncClient]
) -> None:
    recorder, http = recorded
    await issuer.add_user("alice")
    await issuer.add_user("bob")
    await issuer.login("bob")  # the scripts loaded on bob's server too (EVALSHA, not EVAL)
    await login(http, "alice")  # connections opened, the name's user id learnt
    await login(http, "alice")
    trips = recorder.last["/v1/login"]
    assert trips.round_trips <= LOGIN_ROUND_TRIPS, (trips.round_trips, trips.commands)
    await login(http, "bob")  # a name this issuer has not seen: its user id read beside
    trips = recorder.last["/v1/login"]
    assert trips.round_trips <= LOGIN_ROUND_TRIPS, (trips.round_trips, trips.commands)


async def test_a_refresh_waits_for_at_most_two_round_trips(
    issuer: Issuer, recorded: tuple[Recorder, httpx.AsyncClient]
) -> None:
    recorder, http = recorded
    await issuer.add_user("alice")
    first = await login(http, "alice")
    second = await http.post("/v1/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    third = await http.post("/v1/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert third.status_code == 200, third.text
    trips = recorder.last["/v1/refresh"]
    assert trips.round_trips <= REFRESH_ROUND_TRIPS, (trips.round_trips, trips.commands)
