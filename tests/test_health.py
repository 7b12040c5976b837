"""The issuer's /healthz (alive) and /readyz (Redis answers, key usable, verifier fresh), and
/metrics on a port of its own for both services."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time

import httpx
import pytest

from revocast.cli.serving import listening_socket
from revocast.issuer import create_app
from revocast.keys import SigningKey
from revocast_tools.proxy import TcpProxy
from revocast_tools.redis_server import free_port
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import eventually, serve
from tests.test_cli import wait_ok


async def test_readyz_says_why_when_redis_stops_answering(issuer: Issuer, proxy: TcpProxy) -> None:
    settings = issuer.settings.with_overrides(redis_url=proxy.url, max_staleness_s=1.0)
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"ready": True, "redis": "ok", "signing_key": "ok",
                                "verifier_ready": True}  # fmt: skip
        proxy.blackhole()  # a frozen Redis: connections stay open, nothing answers
        try:

            async def not_ready() -> bool:
                return (await http.get("/readyz", timeout=5)).status_code == 503

            await eventually(not_ready, timeout_s=5)
            body = (await http.get("/readyz", timeout=5)).json()
            assert body["ready"] is False
            assert body["redis"] == "no answer within 1 s"
            assert (await http.get("/healthz")).status_code == 200  # alive all the same
        finally:
            proxy.restore()

        async def ready_again() -> bool:
            return (await http.get("/readyz", timeout=5)).status_code == 200

        await eventually(ready_again, timeout_s=10)


async def test_readyz_fails_when_the_active_key_is_not_here(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    assert (await issuer.http.get("/readyz")).status_code == 200
    elsewhere = SigningKey.generate()  # made by another issuer, kept in another key directory
    await issuer.ctx.store.signing.publish_key(
        elsewhere.kid, json.dumps(elsewhere.public.jwk), activate=True, actor="cli:test"
    )
    body = (await issuer.http.get("/readyz")).json()
    assert body["ready"] is False
    assert elsewhere.kid in body["signing_key"]
    login = await issuer.http.post("/v1/login", json={"username": "alice", "password": PASSWORD})
    assert (login.status_code, login.json()["error"]) == (503, "signing_key_unavailable")


def test_metrics_on_their_own_port(env: dict[str, str]) -> None:
    for service in ("issuer", "verifier"):
        public, private = free_port(), free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "revocast", service, "--port", str(public),
             "--metrics-port", str(private), "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        try:
            wait_ok(f"http://127.0.0.1:{public}/readyz", process)
            assert httpx.get(f"http://127.0.0.1:{public}/metrics").status_code == 404
            scraped = httpx.get(f"http://127.0.0.1:{private}/metrics")
            assert scraped.status_code == 200
            assert "revocast_verifier_ready" in scraped.text
            assert httpx.get(f"http://127.0.0.1:{private}/readyz").status_code == 404
        finally:
            process.terminate()
            process.wait(10)

    several = subprocess.run(
        [sys.executable, "-m", "revocast", "verifier", "--workers", "2", "--metrics-port", "9"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert several.returncode == 2
    assert several.stderr.count("\n") == 1, several.stderr
    assert "--workers 1" in several.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_off(env: dict[str, str], workers: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "revocast", "verifier", "--port", str(port), "--workers", workers,
         "--metrics-port", "off", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    try:
        wait_ok(f"http://127.0.0.1:{port}/readyz", process)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
    finally:
        process.terminate()
        process.wait(10)


def test_a_busy_port_is_one_line(env: dict[str, str]) -> None:
    with listening_socket("127.0.0.1", 0) as taken:
        taken.listen()
        busy = str(taken.getsockname()[1])
        # The other port free, whatever else runs here (8000 is the default --port).
        for flags in (["--port", busy], ["--port", str(free_port()), "--metrics-port", busy]):
            result = subprocess.run(
                [sys.executable, "-m", "revocast", "issuer", *flags],
                env=env, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert result.returncode == 2, result.stderr
            assert result.stderr.count("\n") == 1, result.stderr
            assert f"cannot listen on 127.0.0.1:{busy}" in result.stderr
            assert "pick another port" in result.stderr


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_a_host_that_is_not_this_machines_is_one_line_about_the_host(
    env: dict[str, str], host: str
) -> None:
    """Before, an address of no interface here was told to pick another port."""
    result = subprocess.run(
        [sys.executable, "-m", "revocast", "verifier", "--host", host, "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"cannot listen on {host}" in result.stderr
    assert "give --host an address of this machine" in result.stderr
    assert "pick another port" not in result.stderr


def test_keep_alive_answers_are_not_held_back(env: dict[str, str]) -> None:
    """The services listen on sockets bound before uvicorn starts; without TCP_NODELAY on
    them, every answer on a kept-alive connection waited ~40 ms for a delayed ACK (a loose
    bound: a loopback round trip takes about 1 ms)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "revocast", "verifier", "--port", str(port), "--log-level",
         "warning"],
        env=env,
    )  # fmt: skip
    try:
        wait_ok(f"http://127.0.0.1:{port}/healthz", process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            http.get("/healthz")
            times = []
            for _ in range(21):
                started = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                times.append(time.perf_counter() - started)
        assert statistics.median(times) < 0.02, times
    finally:
        process.terminate()
        process.wait(10)
    with listening_socket("127.0.0.1", 0) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
