"""The revocast settings every benchmark process gets, and the issuer as a child process.

The issuer is needed even where nothing logs in: it publishes the signing key, sets the
epochs, and writes the heartbeat on every stream's primary every 250 ms, without which a
verifier reading a replica can never prove it is fresh.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

from bench.propagation_processes import Child, Children, wait_http_ok
from revocast.redis_server import free_port


def revocast_env(redis_url: str, tmp: Path) -> dict[str, str]:
    """This process's environment without any revocast setting of the caller's shell, plus
    the benchmark's: a fresh key prefix and key directory, cheap argon2, no login throttle."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("REVOCAST_") and name != "REDIS_URL"
    }
    return inherited | {
        "REDIS_URL": redis_url,
        "REVOCAST_KEY_PREFIX": f"bench{uuid.uuid4().hex[:12]}",
        "REVOCAST_KEY_DIR": str(tmp / "keys"),
        "REVOCAST_ARGON2_TIME_COST": "1",
        "REVOCAST_ARGON2_MEMORY_KIB": "1024",
        "REVOCAST_ARGON2_PARALLELISM": "1",
        "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT": "0",
    }


async def start_issuer(children: Children, env: dict[str, str]) -> tuple[Child, str]:
    """``revocast issuer`` on a free port, once /healthz answers; (child, base URL)."""
    port = free_port()
    child = children.spawn(
        "issuer",
        [sys.executable, "-m", "revocast", "issuer", "--port", str(port), "--log-level", "warning"],
        env,
        pipes=False,
    )
    url = f"http://127.0.0.1:{port}"
    await wait_http_ok(f"{url}/healthz", child)
    return child, url
