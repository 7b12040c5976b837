"""One follower per host with real processes: `revocast verifier --workers 3`.

The follower process is killed with SIGKILL (no clean stop, its lock freed by the kernel):
another worker takes over, and no worker accepts the revoked token past the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from revocast.settings import Settings
from revocast.verifier.host import host_dir
from revocast_tools.redis_server import free_port
from tests.conftest import Issuer
from tests.support.servers import eventually

pytestmark = pytest.mark.slow

BOUND_S = 1.0  # REVOCAST_MAX_STALENESS_S of the workers
WORKERS = 3


def sidecar_env(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "REDIS_URL": settings.redis.redis_url or "",
        "REVOCAST_KEY_PREFIX": settings.redis.key_prefix,
        "REVOCAST_PARTITIONS": str(settings.redis.partitions),
        "REVOCAST_MAX_STALENESS_S": str(BOUND_S),
    }


def redis_port(settings: Settings) -> int:
    return int((settings.redis.redis_url or "").rsplit(":", 1)[1].split("/")[0])


def redis_connections(root: int, port: int) -> int:
    """TCP connections to Redis held by ``root`` and its children."""
    parent = psutil.Process(root)
    count = 0
    for process in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            count += sum(
                1
                for conn in process.net_connections(kind="tcp")
                if conn.raddr and conn.raddr.port == port and conn.status == "ESTABLISHED"
            )
    return count


def lock_holder(lock: Path) -> int | None:
    """The pid holding the flock on ``lock``, from /proc/locks."""
    inode = os.stat(lock).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "FLOCK" in parts and parts[5].endswith(f":{inode}"):
            return int(parts[4])
    return None


async def test_the_follower_killed_another_takes_over_and_nothing_revoked_passes(
    issuer: Issuer,
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/verify"
    server = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited)
        [sys.executable, "-m", "revocast", "verifier", "--port", str(port), "--workers",
         str(WORKERS), "--log-level", "warning"], env=sidecar_env(issuer.settings),
    )  # fmt: skip
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker
    folder = host_dir(issuer.settings)
    try:
        async with httpx.AsyncClient(limits=fresh, timeout=5) as http:

            async def accepted() -> bool:
                try:
                    return (await http.get(url, headers=bearer)).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(accepted, timeout_s=30, every_s=0.05)
            members = folder / "members"
            await eventually(lambda: len(list(members.iterdir())) == WORKERS, timeout_s=30)
            # One follower for the host: its connections, not one set per worker.
            connections = redis_connections(server.pid, redis_port(issuer.settings))
            print(f"\nredis connections of {WORKERS} workers: {connections}")
            assert connections <= 3
            leader = lock_holder(folder / "leader.lock")
            assert leader is not None
            os.kill(leader, signal.SIGKILL)
            await issuer.post_bearer("/v1/logout", tokens["access_token"])
            revoked_at = time.monotonic()
            seen: list[tuple[float, int]] = []
            while time.monotonic() - revoked_at < 4 * BOUND_S:
                try:
                    status = (await http.get(url, headers=bearer)).status_code
                except httpx.TransportError:
                    continue  # the killed worker's connection
                seen.append((time.monotonic() - revoked_at, status))
                await asyncio.sleep(0.01)
            late_accepts = [at for at, status in seen if status == 200 and at > BOUND_S]
            assert late_accepts == [], "accepted the revoked token past the bound"
            refused_at = [at for at, status in seen if status == 401]
            assert refused_at, seen
            assert [status for _, status in seen[-20:]] == [401] * 20
            new_leader = lock_holder(folder / "leader.lock")
            assert new_leader not in (None, leader)
            print(f"first refusal {refused_at[0]:.3f} s after the revocation; answers: "
                  f"{sorted({s for _, s in seen})}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(15)
        shutil.rmtree(folder, ignore_errors=True)
