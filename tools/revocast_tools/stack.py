"""``revocast stack``: the whole system on one machine, for trying it out.

Starts a real Redis (the one in REDIS_URL, or a private embedded server with
AOF in ``.revocast/redis``), the issuer and one verifier sidecar, creates a
demo user, and prints what to try next. Ctrl-C (SIGINT), SIGTERM or SIGHUP stop
everything; if one of its processes exits, the stack stops the others and says which.

While it runs, ``.revocast/run/stack.json`` names its Redis, so that ``revocast``
commands run in this folder find it without REDIS_URL. The demo user's password
is kept in ``.revocast/run/demo-password`` (mode 0600) and shown on every start;
after ``revocast user passwd demo`` the stack says the password was changed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shlex
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from revocast.cli import port_argument, preflight
from revocast.cli.serving import listening_socket
from revocast.errors import RevocastError, SettingsError
from revocast.issuer.passwords import Passwords
from revocast.issuer.users import add_user
from revocast.local_stack import RUN_DIR, remove_state, write_state
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast_tools.children import Launcher, Stopped
from revocast_tools.redis_server import RedisServer

STATE_DIR = Path(".revocast")
DEMO_USER = "demo"
DEMO_PASSWORD_FILE = RUN_DIR / "demo-password"


def _wait_http(url: str, launcher: Launcher, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if (gone := launcher.exited()) is not None:
            raise RuntimeError(f"the {gone[0]} exited during start-up; see its log above")
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
    passwords = Passwords(settings.passwords)
    try:
        await backend.start()
        found = await Store(backend).users.find(DEMO_USER)
        if found is None:
            password = secrets.token_urlsafe(12)
            await add_user(Store(backend), passwords, DEMO_USER, password, ["user"])
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
    """Run until a stop signal (0) or until a process of the stack exits (1, saying which).
    The handlers are in place before the first child starts, and every child dies with the
    stack, even one killed with SIGKILL (children.py)."""
    with Launcher() as launcher:
        try:
            return _serve(launcher, host, issuer_port, verifier_port)
        except Stopped:
            return 0
        except (SettingsError, RevocastError) as exc:
            raise RuntimeError(exc.detail) from None
        finally:
            remove_state(Path.cwd())
            launcher.stop_all()  # the services first, Redis last: none of them logs a lost server


def _serve(launcher: Launcher, host: str, issuer_port: int, verifier_port: int) -> int:
    env = dict(os.environ)
    for port in (issuer_port, verifier_port):  # taken (by another stack?): say so first
        listening_socket(host, port).close()
    if not env.get("REDIS_URL"):
        server = RedisServer(STATE_DIR / "redis", appendonly=True, launcher=launcher)
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
        launcher.popen(name, command, env=env)
    _wait_http(f"http://{host}:{issuer_port}/readyz", launcher)
    _wait_http(f"http://{host}:{verifier_port}/readyz", launcher)
    demo = asyncio.run(_demo_password(settings))
    state = write_state(Path.cwd(), settings.redis.redis_url or "", settings.key_path())
    _print_next_steps(host, issuer_port, verifier_port, settings.redis.redis_url or "", demo)
    print(f"(the Redis URL is also in {state}: revocast commands here find it)", flush=True)
    while (gone := launcher.exited()) is None:
        time.sleep(0.2)  # a stop signal raises Stopped here
    name, process = gone
    print(f"error: the {name} (pid {process.pid}) exited with code {process.returncode}; "
          "stopping the stack", file=sys.stderr, flush=True)  # fmt: skip
    return 1


def cli_command() -> str:
    """How to run ``revocast`` from this folder: the script beside this Python, which is not
    on PATH unless its venv is activated (``.venv/bin/revocast`` from ./scripts/run)."""
    script = Path(sys.executable).parent / "revocast"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m revocast"
    with contextlib.suppress(ValueError):
        return shlex.quote(str(script.relative_to(Path.cwd())))
    return shlex.quote(str(script))


# The login's JSON body is made by Python, so that any password is quoted right; a refused
# login prints its answer (no traceback) and leaves TOKEN empty.
_JSON_BODY = (
    "python3 -c 'import json,sys; print(json.dumps("
    '{"username": sys.argv[1], "password": sys.argv[2]}))\' demo "$PASSWORD"'
)
_FROM_THE_ANSWER = (
    "python3 -c 'import json,sys; b=json.load(sys.stdin); "
    'print(b.get("access_token") or sys.exit(b))\''
)
# When the demo password was changed: ask for it rather than print a placeholder.
_ASK = "read -rsp 'demo password: ' PASSWORD; echo"


def _print_next_steps(
    host: str, issuer_port: int, verifier_port: int, redis_url: str, demo: str | None
) -> None:
    """What to try, as commands that work when pasted into a shell in this folder."""
    issuer = f"http://{host}:{issuer_port}"
    verifier = f"http://{host}:{verifier_port}"
    cli = cli_command()
    if demo is not None:
        who = f"Demo user: {DEMO_USER}, password: {demo}"
        ask = f"PASSWORD={shlex.quote(demo)}"
    else:
        who = f"Demo user: {DEMO_USER}; its password was changed (`{cli} user passwd {DEMO_USER}`)"
        ask = _ASK
    print(
        f"""
revocast is running: issuer {issuer}, verifier sidecar {verifier}. Ctrl-C stops it.
{who}

For other shells (revocast commands run in this folder find it by themselves):
  export REDIS_URL={redis_url}

Try it:
  {ask}
  BODY=$({_JSON_BODY})
  TOKEN=$(curl -s {issuer}/v1/login -H 'Content-Type: application/json' -d "$BODY" \\
      | {_FROM_THE_ANSWER})
  curl -i {verifier}/verify -H "Authorization: Bearer $TOKEN"        # 200, X-Auth-* headers
  curl -i -X POST {issuer}/v1/logout -H "Authorization: Bearer $TOKEN"  # 204
  curl -i {verifier}/verify -H "Authorization: Bearer $TOKEN"        # 401 session_revoked
  {cli} user list                                  # the users, by name
""",
        flush=True,
    )
