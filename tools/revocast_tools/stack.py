"""``revocast stack``: the whole system on one machine, for trying it out.

Starts a real Redis (the one in REDIS_URL, or a private embedded server with
AOF in ``.revocast/redis``), the issuer and one verifier sidecar, creates a
demo user, and prints what to try next. Ctrl-C stops everything.

While it runs, ``.revocast/run/stack.json`` names its Redis, so that ``revocast``
commands run in this folder find it without REDIS_URL. The demo user's password
is kept in ``.revocast/run/demo-password`` (mode 0600) and shown on every start;
after ``revocast user passwd demo`` the stack says the password was changed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from revocast.cli import port_argument, preflight
from revocast.errors import RevocastError, SettingsError
from revocast.issuer.passwords import Passwords
from revocast.issuer.users import add_user
from revocast.local_stack import RUN_DIR, remove_state, write_state
from revocast.serving import listening_socket
from revocast.settings import Settings
from revocast.store import Backend, Reads, Writes
from revocast_tools.redis_server import RedisServer

STATE_DIR = Path(".revocast")
DEMO_USER = "demo"
DEMO_PASSWORD_FILE = RUN_DIR / "demo-password"


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


async def _demo_password(settings: Settings) -> str | None:
    """The demo user's password: made with the user on the first start, read back from
    its file later; None if it no longer logs the demo user in (changed with passwd)."""
    backend = Backend(settings)
    passwords = Passwords(settings)
    try:
        await backend.start()
        found = await Reads(backend).find_user(DEMO_USER)
        if found is None:
            password = secrets.token_urlsafe(12)
            await add_user(Writes(backend), passwords, DEMO_USER, password, ["user"])
            DEMO_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(DEMO_PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            return password
        try:
            saved = DEMO_PASSWORD_FILE.read_text().strip()
        except OSError:
            return None
        return saved if await passwords.verify(found[1], saved) else None
    finally:
        await backend.aclose()


def main(argv: Sequence[str]) -> int:
    """``revocast stack [--host H] [--issuer-port P] [--verifier-port P]``."""
    parser = argparse.ArgumentParser(
        prog="revocast stack",
        description="Run Redis (embedded if REDIS_URL is unset), the issuer and one verifier "
        "sidecar on this machine, with a demo user, for trying revocast out. Ctrl-C stops it.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address the services listen on (default: 127.0.0.1)")  # fmt: skip
    parser.add_argument("--issuer-port", type=port_argument, default=8000,
                        help="the issuer's port (default: 8000)")  # fmt: skip
    parser.add_argument("--verifier-port", type=port_argument, default=8001,
                        help="the verifier sidecar's port (default: 8001)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        return run_stack(args.host, args.issuer_port, args.verifier_port)
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run_stack(host: str, issuer_port: int, verifier_port: int) -> int:
    env = dict(os.environ)
    server: RedisServer | None = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        for port in (issuer_port, verifier_port):  # taken (by another stack?): say so first
            listening_socket(host, port).close()
        if not env.get("REDIS_URL"):
            # Its own session, as the services': Ctrl-C reaches the stack alone, which stops
            # the services first and Redis last, so that none of them logs a lost server.
            server = RedisServer(STATE_DIR / "redis", appendonly=True, preexec_fn=os.setsid)
            server.start()
            env["REDIS_URL"] = server.url
            print(f"embedded Redis ({server.binary}) on {server.url}, data in {server.data_dir}")
        # Keys live and die with this folder's Redis data, as the stack's own deployment.
        if not env.get("REVOCAST_KEY_DIR"):
            env["REVOCAST_KEY_DIR"] = str((STATE_DIR / "keys").absolute())
        settings = Settings.from_env(env)
        preflight(settings, must_reach=True)  # one line now, not a failed start-up later
        for name, port in (("issuer", issuer_port), ("verifier", verifier_port)):
            command = [sys.executable, "-m", "revocast", name, "--host", host,
                       "--port", str(port), "--log-level", "warning"]  # fmt: skip
            children.append(subprocess.Popen(command, env=env, start_new_session=True))  # noqa: S603
        _wait_http(f"http://{host}:{issuer_port}/readyz", children)
        _wait_http(f"http://{host}:{verifier_port}/readyz", children)
        demo = asyncio.run(_demo_password(settings))
        state = write_state(Path.cwd(), settings.redis_url or "", settings.key_path())
        _print_next_steps(host, issuer_port, verifier_port, settings.redis_url or "", demo)
        print(f"(the Redis URL is also in {state}: revocast commands here find it)", flush=True)
        # Blocked only now, so the children keep the default handlers.
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        signal.sigwait(stop_signals)
    except KeyboardInterrupt:
        pass
    except (SettingsError, RevocastError) as exc:
        raise RuntimeError(exc.detail) from None
    finally:
        remove_state(Path.cwd())
        for child in children:
            child.terminate()
        for child in children:
            child.wait(10)
        if server is not None:
            server.stop()
    return 0


def _print_next_steps(
    host: str, issuer_port: int, verifier_port: int, redis_url: str, demo: str | None
) -> None:
    issuer = f"http://{host}:{issuer_port}"
    verifier = f"http://{host}:{verifier_port}"
    password = demo or "<changed: reset it with `revocast user passwd demo --password-stdin`>"
    credentials = f'{{"username":"{DEMO_USER}","password":"{password}"}}'
    print(
        f"""
revocast is running: issuer {issuer}, verifier sidecar {verifier}. Ctrl-C stops it.
Demo user: {DEMO_USER}, password: {password}

For other shells (revocast commands run in this folder find it by themselves):
  export REDIS_URL={redis_url}

Try it:
  TOKEN=$(curl -s {issuer}/v1/login -H 'Content-Type: application/json' \\
      -d '{credentials}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -i {verifier}/verify -H "Authorization: Bearer $TOKEN"        # 200, X-Auth-* headers
  curl -i -X POST {issuer}/v1/logout -H "Authorization: Bearer $TOKEN"  # 204
  curl -i {verifier}/verify -H "Authorization: Bearer $TOKEN"        # 401 session_revoked
  revocast user list                                                  # the users, by name
""",
        flush=True,
    )
