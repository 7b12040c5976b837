"""``revocast stack``: the whole system on one machine, for trying it out.

Starts a real Redis (the one in REDIS_URL, or a private embedded server with
AOF in ``.revocast/redis``), the issuer and one verifier sidecar, creates a
demo user, and prints what to try next. Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from revocast.errors import Conflict
from revocast.redis_server import RedisServer
from revocast.settings import Settings
from revocast.store import Backend, Writes

STATE_DIR = Path(".revocast")


def _wait_http(url: str, children: list[subprocess.Popen[bytes]], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if any(child.poll() is not None for child in children):
            raise RuntimeError("a service exited during start-up; see its log above")
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 (loopback only)
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout_s}s")
        time.sleep(0.1)


async def _ensure_demo_user(settings: Settings) -> tuple[str, str] | None:
    from revocast.issuer.passwords import Passwords
    from revocast.issuer.users import add_user

    password = secrets.token_urlsafe(12)
    backend = Backend(settings)
    try:
        await backend.start()
        await add_user(Writes(backend), Passwords(settings), "demo", password, ["user"])
    except Conflict:
        return None
    finally:
        await backend.aclose()
    return "demo", password


def run_stack(host: str, issuer_port: int, verifier_port: int) -> int:
    env = dict(os.environ)
    server: RedisServer | None = None
    if not env.get("REDIS_URL"):
        server = RedisServer(STATE_DIR / "redis", appendonly=True)
        server.start()
        env["REDIS_URL"] = server.url
        print(f"embedded Redis ({server.binary}) on {server.url}, data in {server.data_dir}")
    settings = Settings.from_env(env)
    children: list[subprocess.Popen[bytes]] = []
    try:
        for name, port in (("issuer", issuer_port), ("verifier", verifier_port)):
            children.append(
                subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                    [
                        sys.executable,
                        "-m",
                        "revocast",
                        name,
                        "--host",
                        host,
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                    ],
                    env=env,
                )
            )
        _wait_http(f"http://{host}:{issuer_port}/healthz", children)
        _wait_http(f"http://{host}:{verifier_port}/readyz", children)
        demo = asyncio.run(_ensure_demo_user(settings))
        _print_next_steps(host, issuer_port, verifier_port, demo)
        # Blocked only now, so the children keep the default handlers.
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        signal.sigwait(stop_signals)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(10)
        if server is not None:
            server.stop()
    return 0


def _print_next_steps(
    host: str, issuer_port: int, verifier_port: int, demo: tuple[str, str] | None
) -> None:
    issuer = f"http://{host}:{issuer_port}"
    verifier = f"http://{host}:{verifier_port}"
    credentials = (
        f'{{"username":"{demo[0]}","password":"{demo[1]}"}}'
        if demo
        else '{"username":"demo","password":"<the password printed on first start>"}'
    )
    print(
        f"""
revocast is running: issuer {issuer}, verifier sidecar {verifier}. Ctrl-C stops it.

Try it:
  TOKEN=$(curl -s {issuer}/v1/login -H 'Content-Type: application/json' \\
      -d '{credentials}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -i {verifier}/verify -H "Authorization: Bearer $TOKEN"        # 200, X-Auth-* headers
  curl -i -X POST {issuer}/v1/logout -H "Authorization: Bearer $TOKEN"  # 204
  curl -i {verifier}/verify -H "Authorization: Bearer $TOKEN"        # 401 session_revoked
""",
        flush=True,
    )
