"""The revocast command: run the services, manage users, keys and clients, prove a block.

Every error is one line on standard error ("error: CODE: what to do"), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from revocast import __version__, enforcement
from revocast.cli.serving import serve
from revocast.errors import (
    NotApplied,
    RedisUnreachable,
    RevocastError,
    SettingsError,
    StoreUnavailable,
)
from revocast.issuer import create_app, operator
from revocast.local_stack import settings_here
from revocast.proof import EventRef
from revocast.redis_url import parse_redis_url
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast.verifier import create_sidecar

DESCRIPTION = (
    "revocast: short-lived JWTs checked locally, revoked everywhere within milliseconds. "
    "Commands that talk to Redis read REDIS_URL (or find a running `revocast stack` in this "
    "folder or a parent) and the REVOCAST_* settings (docs/configuration.md)."
)
# Commands another package provides (revocast-tools: chaos, stack), by entry point.
TOOL_COMMANDS = {
    "chaos": "run fault scenarios against private processes and check the invariants "
    "(revocast chaos --help)",
    "stack": "run Redis (embedded if REDIS_URL is unset), the issuer and one verifier sidecar "
    "for trying revocast out (revocast stack --help)",
}


def _settings() -> Settings:
    return settings_here(Path.cwd())


def preflight(settings: Settings, *, must_reach: bool) -> None:
    """Check Redis and the deployment's partition count before starting a service: a
    one-line error, not a traceback from inside the server. A service starts while Redis
    is down (``must_reach=False``: a warning), says not ready, and retries; a partition
    count that does not match is an error either way."""

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
            raise naming_the_server(exc, settings) from None
        print(f"warning: {naming_the_server(exc, settings).detail}; serving 503 (not ready) "
              "until Redis answers", file=sys.stderr)  # fmt: skip


def naming_the_server(exc: StoreUnavailable, settings: Settings) -> StoreUnavailable:
    """The operator's version of an unreachable Redis: which URL (passwords hidden), what to
    do. Other failures (a failover under way, data that kept changing) say so themselves."""
    if not isinstance(exc, RedisUnreachable):
        return exc
    url = parse_redis_url(settings.redis.redis_url or "").redacted()
    return StoreUnavailable(f"{exc.detail.partition(':')[0]} at {url}: check REDIS_URL, and "
                            "that the server runs")  # fmt: skip


def _metrics(args: argparse.Namespace) -> int | None:
    """The metrics port, or None to serve them on the public port; 'off' gives 0 (none)."""
    if args.metrics_port is None:
        return None
    if args.metrics_port != "off" and getattr(args, "workers", 1) > 1:
        raise SettingsError(
            "--metrics-port needs --workers 1 (each worker process has its own metrics): "
            "scrape the workers' /metrics on the public port, or use --metrics-port off"
        )
    return 0 if args.metrics_port == "off" else int(args.metrics_port)


def _serve_issuer(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(args.log_level.upper())  # revocast's own logs too
    metrics_port = _metrics(args)
    settings = _settings()
    preflight(settings, must_reach=False)
    app = create_app(settings, public_metrics=metrics_port is None)
    serve(app, host=args.host, port=args.port, log_level=args.log_level,
          max_header_bytes=settings.http.max_header_bytes,
          metrics=(app, metrics_port) if metrics_port else None,
          metrics_host=args.metrics_host)  # fmt: skip
    return 0


def _serve_verifier(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(args.log_level.upper())  # revocast's own logs too
    metrics_port = _metrics(args)
    settings = _settings()
    preflight(settings, must_reach=False)
    if args.workers > 1:
        # Several workers share the port, each with its own verifier built from the
        # environment, through uvicorn's supervisor.
        factory = "sidecar_from_env" if metrics_port is None else "sidecar_without_metrics"
        # One follower and table for the host's workers.
        if settings.verifier.shared_cache == "auto":
            os.environ["REVOCAST_SHARED_CACHE"] = "1"
        serve(f"revocast.verifier.sidecar:{factory}", host=args.host, port=args.port,
              log_level=args.log_level, max_header_bytes=settings.http.max_header_bytes,
              factory=True, workers=args.workers)  # fmt: skip
        return 0
    sidecar = create_sidecar(settings, public_metrics=metrics_port is None)
    serve(sidecar, host=args.host, port=args.port, log_level=args.log_level,
          max_header_bytes=settings.http.max_header_bytes,
          metrics=(sidecar.app, metrics_port) if metrics_port else None,
          metrics_host=args.metrics_host)  # fmt: skip
    return 0


Work = Callable[[Store, Settings], Awaitable[object]]


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
            return await work(Store(backend), settings)
        finally:
            await backend.aclose()

    try:
        result = asyncio.run(run())  # other errors reach main(), which prints them as one line
    except StoreUnavailable as exc:
        raise naming_the_server(exc, settings) from None
    if isinstance(result, Verdict):
        print(result.text)
        return result.status
    print(result if isinstance(result, str) else json.dumps(result, indent=2))
    return 0


def _password(args: argparse.Namespace) -> str:
    if not args.password_stdin:
        raise SettingsError(
            "pass the password on standard input with --password-stdin, e.g. "
            "`printf '%s\\n' \"$PASSWORD\" | revocast user add NAME --password-stdin`"
        )
    return sys.stdin.readline().rstrip("\n")


def _store_command(args: argparse.Namespace) -> int:
    """Every command that works on Redis: the same scripts, events and audit entries as the
    issuer's routes (revocast.issuer.operator)."""
    password = _password(args) if args.command == "user" and args.user_command in (
        "add", "passwd") else ""  # fmt: skip

    async def work(store: Store, settings: Settings) -> object:
        match (
            args.command,
            getattr(args, "user_command", None)
            or getattr(args, "keys_command", None)
            or getattr(args, "upstream_command", None),
        ):
            case "user", "add":
                return await operator.create_user(store, settings, args.name, password, args.role)
            case "user", "list":
                return await operator.list_users(store)
            case "user", "show":
                return await operator.show_user(store, args.user)
            case "user", "passwd":
                return await operator.set_password(store, settings, args.user, password)
            case "user", "remove":
                return await operator.remove_user(store, args.user, args.reason)
            case "user", "unlock":
                return await operator.unlock_user(store, args.user, args.reason)
            case ("block" | "unblock") as action, _:
                uid = await operator.user_id(store, args.user)
                done = await operator.set_blocked(store, uid, args.reason,
                                                  blocked=action == "block")  # fmt: skip
                return done if args.wait is None else await _proved(store, done, args.wait)
            case "verifiers", _:
                rows = await enforcement.lags(store)
                return rows if args.json else enforcement.describe_lags(rows)
            case "sessions", _:
                return await operator.sessions(store, await operator.user_id(store, args.user))
            case "client", _:
                return await _client_command(args, store)
            case "keys", "rotate":
                return await operator.rotate_key(store, settings, args.wait_s)
            case "keys", "revoke":
                return await operator.revoke_key(store, settings, args.kid, args.reason)
            case "keys", "list":
                return await operator.list_keys(store)
            case "upstream", "links":
                return await operator.upstream_links(store, args.user)
            case "upstream", "unlink":
                return await operator.upstream_unlink(store, args.user, args.link_id,
                                                      args.reason)  # fmt: skip
            case command:
                raise AssertionError(f"no handler for {command}")

    return _against_store(work)


async def _proved(store: Store, done: dict[str, Any], wait_s: float) -> Verdict:
    """Wait until every live verifier has applied the change; exit 0 only then."""
    if done["event_id"] is None:
        return Verdict(f"{json.dumps(done)}\nnothing was revoked: nothing to wait for", 0)
    answer = await enforcement.wait_applied(store, EventRef.parse(done["event_id"]), wait_s)
    text = f"{json.dumps(done)}\n{enforcement.describe(answer)}"
    if answer["proven"]:
        return Verdict(text, 0)
    print(text)
    if not answer["live"]:
        raise NotApplied("no live verifier reports receipts: nothing proves the revocation")
    raise NotApplied(f"{answer['pending']} of {answer['live']} live verifiers have not applied "
                     f"{answer['event_id']}, or one that stopped reporting may still accept "
                     f"tokens, after {wait_s:g} s")  # fmt: skip


async def _client_command(args: argparse.Namespace, store: Store) -> object:
    if args.client_command == "add":
        return await operator.add_client(store, args.name, args.confidential, args.role)
    if args.client_command == "roles":
        return await operator.set_client_roles(store, args.client, args.roles)
    if args.client_command == "remove":
        return await operator.remove_client(store, args.client)
    return await operator.list_clients(store)


def _tool(name: str, argv: Sequence[str]) -> int:
    """A command another package provides, found by its entry point."""
    found = [ep for ep in entry_points(group="revocast.commands") if ep.name == name]
    if not found:
        raise SettingsError(
            f"`revocast {name}` comes with the revocast-tools package, which is not installed "
            "here (the production image leaves it out): ./scripts/setup installs it, or "
            "`pip install ./tools` from the repository"
        )
    run: Callable[[Sequence[str]], int] = found[0].load()
    return run(argv)


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


def port_argument(text: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise argparse.ArgumentTypeError(f"a port number from 1 to 65535, not {text}")


def _metrics_port(text: str) -> str:
    return text if text == "off" else str(port_argument(text))


def _workers(text: str) -> int:
    if text.isdigit() and 0 < int(text) <= 256:
        return int(text)
    raise argparse.ArgumentTypeError(f"a number of processes from 1 to 256, not {text}")


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    """A subcommand whose help and description are the same plain sentence."""
    return commands.add_parser(name, help=text, description=text[:1].upper() + text[1:] + ".")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="revocast", description=DESCRIPTION)
    root.add_argument("--version", action="version", version=f"revocast {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, port, handler, text in (
        ("issuer", 8000, _serve_issuer,
         "serve the issuer: login, refresh, logout, admin, OAuth, JWKS, /healthz, /readyz"),
        ("verifier", 8001, _serve_verifier,
         "serve the verifier sidecar: /verify for gateways, /healthz, /readyz"),
    ):  # fmt: skip
        serve_command = _command(commands, name, text)
        serve_command.add_argument("--host", default="127.0.0.1",
                                   help="address to listen on (default: 127.0.0.1)")  # fmt: skip
        serve_command.add_argument("--port", type=port_argument, default=port,
                                   help=f"port to listen on (default: {port})")  # fmt: skip
        serve_command.add_argument(
            "--log-level", default="info",
            choices=["critical", "error", "warning", "info", "debug"],
            help="log level (default: info)",
        )  # fmt: skip
        serve_command.add_argument(
            "--metrics-port", type=_metrics_port, metavar="PORT|off",
            help="serve /metrics on this port (on --metrics-host) instead of the public one, "
            "or not at all with off (default: on the public port)",
        )  # fmt: skip
        serve_command.add_argument(
            "--metrics-host", default="127.0.0.1",
            help="address for --metrics-port (default: 127.0.0.1)",
        )  # fmt: skip
        serve_command.set_defaults(handler=handler)
        if name == "verifier":
            serve_command.add_argument(
                "--workers", type=_workers, default=1,
                help="processes sharing the port, each its own verifier (default: 1)",
            )  # fmt: skip

    user = _command(commands, "user", "manage users: add, list, show, passwd, remove, unlock")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = _command(user_commands, "add", "create a user; the password is read from stdin")
    add.add_argument("name", help="the user name (which names are allowed: \"Usernames\" in "
                     "docs/design.md)")  # fmt: skip
    add.add_argument("--role", action="append", default=[], metavar="ROLE",
                     help="a role to give; repeat for several")  # fmt: skip
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")  # fmt: skip
    _command(user_commands, "list", "every user, with roles and whether blocked")
    show = _command(user_commands, "show", "one user, with its live sessions")
    passwd = _command(
        user_commands, "passwd", "set a user's password (read from stdin); every session ends"
    )
    passwd.add_argument(
        "--password-stdin", action="store_true",
        help="read the new password from the first line of standard input",
    )  # fmt: skip
    remove = _command(
        user_commands, "remove", "delete a user: every session and token ends, the name is free"
    )
    remove.add_argument("--reason", default="", help="kept in the audit trail")
    unlock = _command(
        user_commands, "unlock", "forgive a user's failed logins: no address waits or stays "
        "refused for that user any more",
    )  # fmt: skip
    unlock.add_argument("--reason", default="", help="kept in the audit trail")
    for command in (show, passwd, remove, unlock):
        command.add_argument("user", metavar="USER", help="a user name or user id")
    user.set_defaults(handler=_store_command)

    for name, text in (
        ("block", "block a user: every session and token ends, login is refused"),
        ("unblock", "let a blocked user log in again"),
    ):
        moderate = _command(commands, name, text)
        moderate.add_argument("user", metavar="USER", help="a user name or user id")
        moderate.add_argument("--reason", default="", help="kept in the audit trail")
        moderate.add_argument(
            "--wait",
            type=_wait_seconds,
            metavar="SECONDS",
            help="return once every live verifier has applied it (exit 0), or say which have "
            "not when SECONDS pass (exit 1)",
        )
        moderate.set_defaults(handler=_store_command)
    verifiers = _command(
        commands, "verifiers", "the live verifiers, and how far each is behind the streams"
    )
    verifiers.add_argument("--json", action="store_true", help="JSON instead of a table")
    verifiers.set_defaults(handler=_store_command)
    sessions = _command(commands, "sessions", "list a user's live sessions")
    sessions.add_argument("user", metavar="USER", help="a user name or user id")
    sessions.set_defaults(handler=_store_command)

    client = _command(commands, "client", "OAuth clients: add, roles, list, remove")
    client_commands = client.add_subparsers(dest="client_command", required=True,
                                            metavar="ACTION")  # fmt: skip
    add_client = _command(
        client_commands, "add", "register a client; a confidential one's secret is printed once"
    )
    add_client.add_argument("name", help="the client's name (also accepted as its id)")
    add_client.add_argument(
        "--confidential", action="store_true", help="a server that holds a secret"
    )
    add_client.add_argument(
        "--role", action="append", default=[], metavar="ROLE",
        help="a role the client holds (introspect: it may introspect any token, not only its "
        "own); repeat for more",
    )  # fmt: skip
    client_roles = _command(
        client_commands, "roles", "replace the roles a confidential client holds (none: no ROLE)"
    )
    client_roles.add_argument("client", help="a client name or client id")
    client_roles.add_argument("roles", nargs="*", metavar="ROLE", help="introspect, or none")
    _command(client_commands, "list", "the registered clients")
    remove_client = _command(client_commands, "remove", "remove a client by name or id")
    remove_client.add_argument("client", help="a client name or client id")
    client.set_defaults(handler=_store_command)

    keys = _command(commands, "keys", "signing keys: list, rotate, revoke")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    _command(keys_commands, "list", "the published keys, which one signs, which are revoked")
    rotate = _command(
        keys_commands,
        "rotate",
        "add a key (in REVOCAST_KEY_DIR, or sealed in Redis with REVOCAST_KEY_ENCRYPTION_KEY); "
        "it signs only once every live issuer announces that it holds it",
    )
    rotate.add_argument(
        "--wait", "--wait-s", dest="wait_s", type=_wait_seconds, metavar="SECONDS",
        default=operator.ROTATION_WAIT_S,
        help="how long to wait for every live issuer to hold the key "
        f"(default: {operator.ROTATION_WAIT_S:g})",
    )  # fmt: skip
    revoke = _command(
        keys_commands, "revoke", "withdraw a key: every token it signed is refused everywhere"
    )
    revoke.add_argument("kid", help="the key's id; one that starts with '-' goes after '--'")
    revoke.add_argument("--reason", default="", help="kept in the audit trail")
    keys.set_defaults(handler=_store_command)

    upstream = _command(
        commands, "upstream", "links of local users to the upstream IdP's users: links, unlink"
    )
    upstream_commands = upstream.add_subparsers(dest="upstream_command", required=True,
                                                metavar="ACTION")  # fmt: skip
    links = _command(
        upstream_commands, "links", "every link: the IdP's iss and sub, the local user, when"
    )
    links.add_argument("user", nargs="?", metavar="USER", help="only this user's links")
    unlink = _command(
        upstream_commands, "unlink",
        "remove a link (audited): the IdP's logouts of that user end nothing here any more, "
        "and its next login with an ID token and nonce may link it again",
    )  # fmt: skip
    unlink.add_argument("user", metavar="USER", help="a user name or user id")
    unlink.add_argument("link_id", metavar="LINK_ID", help="as `revocast upstream links` shows")
    unlink.add_argument("--reason", default="", help="kept in the audit trail")
    upstream.set_defaults(handler=_store_command)

    for name, text in TOOL_COMMANDS.items():
        tool = commands.add_parser(name, help=text, add_help=False)
        tool.add_argument("tool_args", nargs=argparse.REMAINDER)
    return root


def _run(words: list[str]) -> int:
    if words[:1] and words[0] in TOOL_COMMANDS:
        # Everything after the name is the tool's own (argparse's REMAINDER would not take a
        # leading "--help" or "-h").
        return _tool(words[0], words[1:])
    args = parser().parse_args(words)
    result: int = args.handler(args)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the rest
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except SettingsError as exc:  # a bad REDIS_URL, partition count or argument: exit 2
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except RevocastError as exc:
        print(f"error: {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for the operator; the traceback only when asked
        if os.environ.get("REVOCAST_DEBUG"):
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {exc} (REVOCAST_DEBUG=1 shows "
              "where)", file=sys.stderr)  # fmt: skip
        return 1
