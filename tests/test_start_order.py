"""Any start order: the issuer and the verifier, started before their Redis is reachable or
durable, run on, answer /readyz 503 with the reason, and become ready once Redis is, without
a restart (DESIGN.md invariant 15). Before, an issuer whose start-up write met replicas
still syncing printed "Application startup failed. Exiting." and exited."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import redis

from revocast_tools.redis_server import RedisServer, free_port
from revocast_tools.topologies import ClusterGroup, SentinelGroup
from tests.support.topologies import ClusterFactory, SentinelFactory

SERVICES = ("issuer", "verifier")


class Service:
    """`revocast issuer` or `revocast verifier` as a process, its log in a file."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "revocast", name, "--port", str(self.port),
                 "--log-level", "info"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def ready(self) -> httpx.Response | None:
        assert self.process.poll() is None, (
            f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}"
        )
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
        return None

    def wait(self, status: int, timeout_s: float) -> httpx.Response:
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self.ready()
            if answer is not None and answer.status_code == status:
                return answer
            assert time.monotonic() < deadline, (
                f"{self.name} /readyz never {status}; last: "
                f"{answer.text if answer else None}\n{self.log.read_text()}"
            )
            time.sleep(0.1)

    def answering(self, timeout_s: float) -> httpx.Response:
        """Its /readyz answer, ready or not, once it listens (a start takes seconds under load)."""
        deadline = time.monotonic() + timeout_s
        while (answer := self.ready()) is None:
            assert time.monotonic() < deadline, (
                f"{self.name} never answered:\n{self.log.read_text()}"
            )
            time.sleep(0.1)
        return answer

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def services(env: dict[str, str], logs: Path) -> Iterator[list[Service]]:
    started = [Service(name, env, logs / f"{name}.log") for name in SERVICES]
    try:
        yield started
    finally:
        for service in started:
            service.stop()


def environment(redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REVOCAST_")} | {
        "REDIS_URL": redis_url,
        "REVOCAST_KEY_PREFIX": f"order{uuid.uuid4().hex[:8]}",
        "REVOCAST_KEY_DIR": str(tmp_path / "keys"),
        "REVOCAST_MAX_STALENESS_S": "2",
    }


def warnings_in(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if " WARNING " in line]


def test_started_with_redis_down_both_become_ready_once_it_is(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis", appendonly=False)  # its port, not yet listening
    with services(environment(redis.url, tmp_path), tmp_path) as started:
        for service in started:
            body = service.wait(503, 20).json()
            assert body["ready"] is False
        issuer_body = started[0].wait(503, 5).json()
        assert "connecting to Redis" in issuer_body["starting"]
        health = httpx.get(f"http://127.0.0.1:{started[0].port}/healthz", timeout=2)
        assert health.status_code == 200  # alive all the same
        login = httpx.post(f"http://127.0.0.1:{started[0].port}/v1/login", timeout=2,
                           json={"username": "nobody", "password": "x"})  # fmt: skip
        assert (login.status_code, login.json()["error"]) == (503, "store_unavailable")
        assert login.headers["Retry-After"] == "1"
        time.sleep(4)  # retried about 40 times meanwhile: the log says so once, not 40 times
        for service in started:
            assert len(warnings_in(service.log)) <= 6, service.log.read_text()
        redis.start()
        try:
            for service in started:
                service.wait(200, 30)
        finally:
            for service in started:
                service.stop()
            redis.stop()
    assert "Application startup failed" not in (tmp_path / "issuer.log").read_text()


def _all_replicas(group: SentinelGroup | ClusterGroup) -> list[RedisServer]:
    if isinstance(group, SentinelGroup):
        return group.replicas()
    return [replica for primary in group.primaries() for replica in group.replicas_of(primary)]


@contextlib.contextmanager
def frozen(servers: Sequence[RedisServer]) -> Iterator[None]:
    for server in servers:
        server.pause()
    try:
        yield
    finally:
        for server in servers:
            server.resume()


GroupMaker = Callable[[], SentinelGroup | ClusterGroup]


@pytest.fixture(params=["sentinel", "cluster"])
def make_group(
    request: pytest.FixtureRequest,
    make_sentinel_group: SentinelFactory,
    make_cluster_group: ClusterFactory,
) -> GroupMaker:
    return make_sentinel_group if request.param == "sentinel" else make_cluster_group


def _flush(group: SentinelGroup | ClusterGroup) -> None:
    """Every primary loses its data (and its replicas with it), as a new deployment would."""
    primaries = [group.primary()] if isinstance(group, SentinelGroup) else group.primaries()
    for primary in primaries:
        with redis.Redis(port=primary.port) as client:
            client.flushall()
            assert client.wait(1, 5000) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["first-start", "restart", "recovery"])
def test_started_with_every_replica_frozen_both_become_ready_once_they_answer(
    tmp_path: Path, make_group: GroupMaker, moment: str
) -> None:
    """Every replica paused, so no write can be made durable. Both services start (a first
    start, a restart, or a restart that finds Redis emptied, whose recovery write must be
    durable), run on without exiting, and become ready once the replicas answer again."""
    group = make_group()
    env = environment(group.url, tmp_path) | {"REVOCAST_REPLICA_ACK_TIMEOUT_MS": "300"}
    if moment in ("restart", "recovery"):
        (tmp_path / "first").mkdir()
        with services(env, tmp_path / "first") as first:
            for service in first:
                service.wait(200, 60)
    if moment == "recovery":
        _flush(group)  # the issuer's key folder remembers an epoch Redis no longer has
    replicas = _all_replicas(group)
    assert replicas
    (tmp_path / "frozen").mkdir()
    with frozen(replicas), services(env, tmp_path / "frozen") as started:
        time.sleep(3)  # long enough for a start-up that would exit to have exited
        for service in started:
            service.answering(30)  # running: ready or not, it answers (ready() sees an exit)
        time.sleep(1)
        for service in started:
            assert service.ready() is not None  # and still does a moment later
        if moment == "recovery":
            body = started[0].wait(503, 5).json()  # the recovery cannot be made durable yet
            assert "not_durable" in body["starting"] or "replicas" in body["starting"], body
        for server in replicas:
            server.resume()
        for service in started:
            service.wait(200, 60)
    issuer_log = (tmp_path / "frozen" / "issuer.log").read_text()
    assert "Application startup failed" not in issuer_log
    assert "Traceback" not in issuer_log
