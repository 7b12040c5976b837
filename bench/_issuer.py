"""The revocast settings every benchmark process gets, the issuer as a child process, users.

The issuer is needed even where nothing logs in: it publishes the signing key, sets the
epochs, and writes the heartbeat on every stream's primary every 250 ms, without which a
verifier reading a replica can never prove it is fresh.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench._env import ROOT
from bench._processes import Child, Children, wait_http_ok
from revocast_tools.redis_server import free_port

PASSWORD = "correct horse battery"  # every benchmark user's


def revocast_env(redis_url: str, tmp: Path) -> dict[str, str]:
    """This process's environment without any revocast setting of the caller's shell, plus
    the benchmark's: a fresh key prefix and key directory, cheap argon2, no login throttle and
    no revocation limit (rounds revoke as fast as they go, one user or moderator at a time)."""
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
        "REVOCAST_REVOCATIONS_PER_MINUTE": "0",
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


def add_user(env: dict[str, str], name: str, roles: Sequence[str] = ()) -> None:
    """``revocast user add``, as an operator would."""
    role_args = [arg for role in roles for arg in ("--role", role)]
    done = subprocess.run(
        [sys.executable, "-m", "revocast", "user", "add", name, *role_args, "--password-stdin"],
        env=env,
        cwd=ROOT,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"revocast user add {name} failed: {done.stderr.strip()}")
