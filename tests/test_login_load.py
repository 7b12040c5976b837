"""Logins past what the issuer can hash: refused at once with 503 and Retry-After, never
queued until the client gives up; readiness and verification answer meanwhile."""

from __future__ import annotations

import asyncio
import time

import httpx

from revocast.issuer import create_app
from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import serve


async def test_a_login_flood_is_refused_at_once_past_the_queue(
    issuer: Issuer, settings: Settings
) -> None:
    await issuer.add_user("alice")
    # One hashing thread, two waiting. A check must cost more than a burst of 60 requests
    # takes to arrive, or the thread drains the queue as fast as it fills: with 8 MiB a check
    # took about 10 ms, and on a host at load 10 none of the 60 was refused. 64 MiB and three
    # passes cost about 100 ms here.
    # The throttle off: 60 logins at once from one address would pass its limits, which
    # tests/security/test_login_throttle.py covers.
    loaded = settings.with_overrides(
        password_workers=1,
        password_queue=2,
        argon2_time_cost=3,
        argon2_memory_kib=64 * 1024,
        login_max_attempts_per_client=0,
        login_max_failures_per_user_address=0,
        login_max_failures_per_user=0,
    )
    app = create_app(loaded)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        tokens = (await http.post("/v1/login", json={"username": "alice",
                                                     "password": PASSWORD})).json()  # fmt: skip
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        async def login() -> tuple[int, float, httpx.Response]:
            started = time.monotonic()
            answer = await http.post("/v1/login", json={"username": "alice",
                                                        "password": PASSWORD})  # fmt: skip
            return answer.status_code, time.monotonic() - started, answer

        flood = [asyncio.create_task(login()) for _ in range(60)]
        await asyncio.sleep(0.01)
        # While the flood is on: readiness and a token check answer, and answer soon.
        for path in ("/readyz", "/v1/sessions"):
            started = time.monotonic()
            answer = await http.get(path, headers=bearer)
            assert answer.status_code == 200, answer.text
            assert time.monotonic() - started < 2.0
        results = await asyncio.gather(*flood)
        statuses = [status for status, _, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        refused = [answer for status, _, answer in results if status == 503]
        assert statuses.count(200) >= 3  # the thread and the two queued places served
        assert refused, "60 logins at once and none refused: the queue is not bounded"
        for answer in refused:
            assert answer.json()["error"] == "temporarily_unavailable"
            assert answer.headers["Retry-After"] == "1"
        # A refusal is immediate: it never waits behind the hashing.
        fastest_refusal = min(seconds for status, seconds, _ in results if status == 503)
        slowest_login = max(seconds for status, seconds, _ in results if status == 200)
        assert fastest_refusal < slowest_login
        metrics = (await http.get("/metrics")).text
        assert f"revocast_issuer_password_checks_refused_total {float(len(refused))}" in metrics
