"""examples/fastapi_app.py under `uvicorn --workers 4`: a logout is refused on every worker.

Also measures what each worker costs: its memory and its Redis connections (printed; see
docs/fastapi.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from revocast.settings import Settings
from revocast_tools.redis_server import free_port
from tests.conftest import Issuer
from tests.support.servers import eventually

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4


def worker_env(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "REDIS_URL": settings.redis.redis_url or "",
        "REVOCAST_KEY_PREFIX": settings.redis.key_prefix,
        "REVOCAST_PARTITIONS": str(settings.redis.partitions),
        "REVOCAST_ISSUER": settings.tokens.issuer,
        "REVOCAST_AUDIENCE": settings.tokens.audience,
        "PYTHONPATH": str(ROOT),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def test_a_logout_reaches_every_worker(issuer: Issuer, redis: Redis) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    port = free_port()
    before = len(await redis.client_list())
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--workers", str(WORKERS),
        "--port", str(port), "--log-level", "warning", env=worker_env(issuer.settings), cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker, each time
    try:
        async with httpx.AsyncClient(base_url=url, limits=fresh) as http:
            deadline = time.monotonic() + 30
            workers: set[int] = set()
            while len(workers) < WORKERS:
                assert time.monotonic() < deadline, f"only workers {workers} answered"
                assert server.returncode is None, "uvicorn exited"
                try:
                    reply = await http.get("/me", headers=bearer)
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # still starting
                    continue
                if reply.status_code == 200:
                    workers.add(reply.json()["worker"])
            connections = len(await redis.client_list()) - before
            memory = [rss_kib(pid) for pid in workers]
            print(f"\n{WORKERS} workers: {connections} Redis connections in all, "
                  f"RSS per worker {min(memory) // 1024}-{max(memory) // 1024} MiB")  # fmt: skip
            assert connections <= WORKERS * 4  # per worker: N + 1 streams, and one idle

            await issuer.post_bearer("/v1/logout", tokens["access_token"])

            async def refused_by_one() -> bool:
                return (await http.get("/me", headers=bearer)).status_code == 401

            await eventually(refused_by_one, timeout_s=5)
            statuses = [(await http.get("/me", headers=bearer)).status_code for _ in range(400)]
            assert statuses == [401] * 400
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 15)
