"""The ``revocast`` command: run the services, manage users, start a local stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from revocast import __version__, enforcement
from revocast.errors import NotApplied, RevocastError, SettingsError, StoreUnavailable
from revocast.proof import EventRef
from revocast.settings import Settings
from revocast.store import Backend, Reads, Writes


def _settings() -> Settings:
    settings = Settings.from_env()
    if settings.redis_url is None:
        raise SystemExit("REDIS_URL is not set (or run `revocast stack` for a local Redis)")
    return settings


def _preflight(settings: Settings, *, must_reach: bool) -> None:
    """Check the deployment's partition count before serving: a one-line error, not a
    traceback from inside the server. A verifier may start while Redis is down."""

    async def check() -> None:
        backend = Backend(settings)
        try:
            await backend.start()
        finally:
            await backend.aclose()

    try:
        asyncio.run(check())
    except StoreUnavailable as exc:
        if must_reach:
            raise SystemExit(f"error: {exc.code}: {exc.detail}") from None


def _serve_issuer(args: argparse.Namespace) -> int:
    import uvicorn

    from revocast.issuer import create_app

    settings = _settings()
    _preflight(settings, must_reach=True)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # a line per request costs ~15% of throughput; metrics count them
    )
    return 0


def _serve_verifier(args: argparse.Namespace) -> int:
    import uvicorn

    from revocast.verifier import create_sidecar

    settings = _settings()
    _preflight(settings, must_reach=False)
    # Several workers share the port (SO_REUSEPORT-like, through uvicorn's supervisor); each
    # builds its own sidecar, with its own verifier, from the environment.
    app = create_sidecar(settings) if args.workers == 1 else "revocast.verifier:sidecar_from_env"
    uvicorn.run(
        app,
        factory=args.workers > 1,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # a line per request costs ~15% of throughput; metrics count them
        # The peer must stay the gateway itself, the one REVOCAST_TRUSTED_PROXIES judges:
        # uvicorn would otherwise replace it with the X-Forwarded-For of a local proxy.
        proxy_headers=False,
    )
    return 0


Work = Callable[[Writes, Reads, Settings], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A command's text answer and its exit status (the JSON answers exit 0)."""

    text: str
    status: int


def _against_store(work: Work) -> int:
    """Run one command against Redis; print its result (JSON unless text), or the error."""
    settings = _settings()

    async def run() -> object:
        backend = Backend(settings)
        try:
            await backend.start()
            return await work(Writes(backend), Reads(backend), settings)
        finally:
            await backend.aclose()

    try:
        result = asyncio.run(run())
    except SettingsError:
        raise  # main() prints it as one line, exit status 2
    except RevocastError as exc:
        print(f"error: {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    if isinstance(result, Verdict):
        print(result.text)
        return result.status
    print(result if isinstance(result, str) else json.dumps(result, indent=2))
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from revocast.issuer.passwords import Passwords
    from revocast.issuer.users import add_user

    if not args.password_stdin:
        raise SystemExit("pass the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\n")
    return _against_store(
        lambda writes, _, settings: add_user(
            writes, Passwords(settings), args.name, password, args.role
        )
    )


def _operator(args: argparse.Namespace) -> int:
    """Operator commands: the same scripts, events and audit entries as the issuer's routes."""
    from revocast import operator

    async def work(writes: Writes, reads: Reads, settings: Settings) -> object:
        match args.command, getattr(args, "keys_command", None):
            case ("block" | "unblock") as action, _:
                done = await operator.set_blocked(
                    writes, args.user_id, args.reason, blocked=action == "block"
                )
                return done if args.wait is None else await _proved(reads, done, args.wait)
            case "verifiers", _:
                rows = await enforcement.lags(reads)
                return rows if args.json else enforcement.describe_lags(rows)
            case "sessions", _:
                return await operator.sessions(reads, args.user_id)
            case "client", _:
                return await _client_command(args, writes, reads)
            case "keys", "rotate":
                return await operator.rotate_key(writes, reads, settings, args.wait_s)
            case "keys", "revoke":
                return await operator.revoke_key(writes, reads, settings, args.kid, args.reason)
            case _:
                return await operator.list_keys(reads)

    return _against_store(work)


async def _proved(reads: Reads, done: dict[str, Any], wait_s: float) -> Verdict:
    """Wait until every live verifier has applied the change; exit 0 only then."""
    if done["event_id"] is None:
        return Verdict(f"{json.dumps(done)}\nnothing was revoked: nothing to wait for", 0)
    answer = await enforcement.wait_applied(reads, EventRef.parse(done["event_id"]), wait_s)
    text = f"{json.dumps(done)}\n{enforcement.describe(answer)}"
    if answer["proven"]:
        return Verdict(text, 0)
    print(text)
    if not answer["live"]:
        raise NotApplied("no live verifier reports receipts: nothing proves the revocation")
    raise NotApplied(f"{answer['pending']} of {answer['live']} live verifiers have not applied "
                     f"{answer['event_id']}, or one that stopped reporting may still accept "
                     f"tokens, after {wait_s:g} s")  # fmt: skip


async def _client_command(args: argparse.Namespace, writes: Writes, reads: Reads) -> object:
    from revocast import operator

    if args.client_command == "add":
        return await operator.add_client(writes, reads, args.name, args.confidential)
    if args.client_command == "remove":
        return await operator.remove_client(writes, reads, args.client)
    return await operator.list_clients(reads)


def _chaos(args: argparse.Namespace) -> int:
    from revocast.chaos import main as chaos

    return chaos(args.chaos_args)


def _stack(args: argparse.Namespace) -> int:
    from revocast.stack import run_stack

    return run_stack(host=args.host, issuer_port=args.issuer_port, verifier_port=args.verifier_port)


def _wait_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= enforcement.MAX_WAIT_S:
        raise argparse.ArgumentTypeError(
            f"seconds above 0 and at most {enforcement.MAX_WAIT_S:g}, not {text}"
        )
    return seconds


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="revocast", description=__doc__)
    root.add_argument("--version", action="version", version=f"revocast {__version__}")
    commands = root.add_subparsers(dest="command", required=True)

    for name, port, handler, text in (
        ("issuer", 8000, _serve_issuer, "serve the issuer (login, refresh, logout, JWKS)"),
        ("verifier", 8001, _serve_verifier, "serve the verifier sidecar (/verify, /readyz)"),
    ):
        serve = commands.add_parser(name, help=text)
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=port)
        serve.add_argument("--log-level", default="info")
        serve.set_defaults(handler=handler)
        if name == "verifier":
            serve.add_argument(
                "--workers", type=int, default=1, help="processes on the port, each a verifier"
            )

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="create a user (password read from stdin)")
    add.add_argument("name")
    add.add_argument("--role", action="append", default=[], help="repeat for several roles")
    add.add_argument("--password-stdin", action="store_true")
    add.set_defaults(handler=_user_add)

    for name, text in (
        ("block", "block a user: every session ends, login is refused"),
        ("unblock", "let a blocked user log in again"),
    ):
        moderate = commands.add_parser(name, help=text)
        moderate.add_argument("user_id")
        moderate.add_argument("--reason", default="")
        moderate.add_argument(
            "--wait",
            type=_wait_seconds,
            metavar="SECONDS",
            help="return once every live verifier has applied it (exit 0), or say which have "
            "not when SECONDS pass (exit 1)",
        )
        moderate.set_defaults(handler=_operator)
    verifiers = commands.add_parser(
        "verifiers", help="the live verifiers, and how far each is behind the streams"
    )
    verifiers.add_argument("--json", action="store_true", help="JSON instead of a table")
    verifiers.set_defaults(handler=_operator)
    sessions = commands.add_parser("sessions", help="list a user's live sessions")
    sessions.add_argument("user_id")
    sessions.set_defaults(handler=_operator)

    client = commands.add_parser("client", help="OAuth clients: add, list, remove")
    client_commands = client.add_subparsers(dest="client_command", required=True)
    add_client = client_commands.add_parser(
        "add", help="register a client; a confidential one's secret is printed once"
    )
    add_client.add_argument("name")
    add_client.add_argument(
        "--confidential", action="store_true", help="a server that holds a secret"
    )
    client_commands.add_parser("list", help="the registered clients")
    remove_client = client_commands.add_parser("remove", help="remove a client by name or id")
    remove_client.add_argument("client")
    client.set_defaults(handler=_operator)

    keys = commands.add_parser("keys", help="signing keys: list, rotate, revoke")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_commands.add_parser("list", help="published keys").set_defaults(handler=_operator)
    rotate = keys_commands.add_parser(
        "rotate",
        help="add a key (in REVOCAST_KEY_DIR, or sealed in Redis with "
        "REVOCAST_KEY_ENCRYPTION_KEY); once every live issuer holds it, sign with it",
    )
    rotate.add_argument("--wait-s", type=float, default=10.0,
                        help="how long to wait for every live issuer to hold the key")  # fmt: skip
    rotate.set_defaults(handler=_operator)
    revoke = keys_commands.add_parser(
        "revoke", help="withdraw a key: every token it signed is refused everywhere"
    )
    revoke.add_argument("kid", help="a kid that starts with '-' goes after '--'")
    revoke.add_argument("--reason", default="")
    revoke.set_defaults(handler=_operator)

    chaos = commands.add_parser(
        "chaos",
        help="run fault scenarios on private processes and check the invariants "
        "(`revocast chaos list`)",
        add_help=False,
    )
    chaos.add_argument("chaos_args", nargs=argparse.REMAINDER)
    chaos.set_defaults(handler=_chaos)

    stack = commands.add_parser(
        "stack",
        help="run Redis (embedded if REDIS_URL is unset), the issuer and one verifier sidecar",
    )
    stack.add_argument("--host", default="127.0.0.1")
    stack.add_argument("--issuer-port", type=int, default=8000)
    stack.add_argument("--verifier-port", type=int, default=8001)
    stack.set_defaults(handler=_stack)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the rest
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["chaos"]:
        # Everything after "chaos" is the harness's own (argparse's REMAINDER would not take
        # a leading "--help" or "-h").
        from revocast.chaos import main as chaos

        return chaos(words[1:])
    args = parser().parse_args(words)
    try:
        result: int = args.handler(args)
    except SettingsError as exc:  # a bad REDIS_URL or partition count: one line, no traceback
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    return result
