"""Logins/s and login latency with the login's Redis steps awaited one after another (as
before issue 21, point 5) and with three round trips, in one run.

Reproduce from the repository root::

    .venv/bin/python -m bench.login_round_trips

One issuer runs in this process (its app started with its lifespan, no HTTP: the grant
itself is timed) against a private redis-server, reached directly and through a TCP proxy
that delays every chunk each way (``--delays-ms``, one way), as a network between hosts
would. C clients (``--clients``), each its own user and address, log in over and over (one
client shows the path's latency; more, the password queue in front of it); the
``new`` path is the issuer's ``password_grant``, the ``old`` one ``bench/_old_login.py``.
Short phases alternate (new, old, new, old... 12 of 1 s each by default) so that a change
of load on the host hits both alike.

argon2id runs with the test suite's cheap parameters (t=1, 1 MiB, 1 lane), so that the
Redis path shows: with the production ones (about 60 ms of CPU a login) argon2 dominates and
both paths give the same logins/s (``bench.issuer_throughput``, ``bench.login_saturation``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench import _old_login
from bench._env import add_quiet_arguments, run_and_record
from bench._redis_info import redis_version
from bench._stats import summary
from revocast.issuer import create_app
from revocast.issuer.client_auth import BUILT_IN
from revocast.issuer.context import IssuerContext
from revocast.issuer.grants import password_grant
from revocast.issuer.users import add_user
from revocast.settings import Settings
from revocast_tools.proxy import TcpProxy
from revocast_tools.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "login_round_trips.json"
PASSWORD = "correct horse battery"
ROUND_TRIPS = {"old": 4, "new": 3}  # without a session limit (5 and 3 with one)

Login = Callable[[IssuerContext, str, str], Awaitable[object]]

NOTES = [
    "The issuer runs in the benchmark's process (its app started with its lifespan: upkeep, "
    "heartbeat and its verifier run too); the grant is timed without HTTP. redis-server is "
    "its own process; nothing is pinned, and the host's CPUs are shared.",
    "argon2id with the test suite's parameters (t=1, 1 MiB, 1 lane): with the production "
    "ones argon2 dominates a login and both paths give the same logins/s.",
    "Every throttle on with limits no client reaches (each client its own user and address), "
    "so each login runs every throttle script; no session limit.",
    "old: the address's count, the username's count and lookup, argon2, GET of the active "
    "key, the login script: 4 round trips one after another. new: the address's count with "
    "the active key read beside it, the username's count and lookup, argon2, the login "
    "script: 3.",
    "A delay (one way, per chunk, in this process's TCP proxy) stands for the network between "
    "the issuer and Redis; 0: loopback, no proxy.",
]


async def _new(ctx: IssuerContext, name: str, address: str) -> object:
    return await password_grant(ctx, username=name, password=PASSWORD, client=BUILT_IN,
                                scope=None, address=address, user_agent="bench")  # fmt: skip


async def _old(ctx: IssuerContext, name: str, address: str) -> object:
    return await _old_login.password_grant(ctx, username=name, password=PASSWORD,
                                           address=address, user_agent="bench")  # fmt: skip


PATHS: dict[str, Login] = {"new": _new, "old": _old}


async def phase(ctx: IssuerContext, login: Login, clients: int, seconds: float) -> list[float]:
    """Every client logs in over and over for ``seconds``; each login's latency (ms)."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []

    async def client(i: int) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await login(ctx, f"user-{i}", f"10.0.{i // 250}.{i % 250 + 1}")
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies


async def scenario(
    server: RedisServer, tmp: Path, delay_ms: float, clients: int, args: argparse.Namespace
) -> dict[str, Any]:
    proxy = TcpProxy(server.port) if delay_ms else None
    if proxy is not None:
        await proxy.start()
        proxy.delay(delay_ms / 1000)
    settings = Settings.from_values(
        redis_url=proxy.url if proxy is not None else server.url,
        key_prefix=f"bench{uuid.uuid4().hex[:12]}",
        key_dir=str(tmp / f"keys-{delay_ms:g}-{clients}"),  # each scenario its own deployment
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        login_max_attempts_per_client=1_000_000,
        login_max_failures_per_user_address=1_000_000,
        login_max_failures_per_user=1_000_000,
    )
    app = create_app(settings)
    timed: dict[str, list[float]] = {name: [] for name in PATHS}
    try:
        async with app.router.lifespan_context(app):
            ctx = IssuerContext.of_app(app)
            for i in range(clients):
                await add_user(ctx.store, ctx.passwords, f"user-{i}", PASSWORD, [])
            for login in PATHS.values():  # warm: connections, scripts, user ids
                await phase(ctx, login, clients, 1.0)
            for _ in range(args.rounds):
                for name, login in PATHS.items():
                    timed[name] += await phase(ctx, login, clients, args.seconds)
    finally:
        if proxy is not None:
            await proxy.stop()
    seconds = args.rounds * args.seconds
    runs = {
        name: {"round_trips": ROUND_TRIPS[name], "logins": len(values),
               "logins_per_s": round(len(values) / seconds, 1), "login_ms": summary(values)}
        for name, values in timed.items()
    }  # fmt: skip
    new, old = runs["new"], runs["old"]
    print(
        f"  delay {delay_ms:g} ms, {clients:>2} clients: new {new['logins_per_s']:.0f} logins/s "
        f"p50 {new['login_ms']['p50']:.2f} p99 {new['login_ms']['p99']:.2f} ms; old "
        f"{old['logins_per_s']:.0f} logins/s p50 {old['login_ms']['p50']:.2f} p99 "
        f"{old['login_ms']['p99']:.2f} ms",
        flush=True,
    )
    return {
        "delay_ms_one_way": delay_ms,
        "clients": clients,
        "runs": runs,
        "ratios": {
            "logins_per_s new / old": round(new["logins_per_s"] / old["logins_per_s"], 2),
            "login p50 old / new": round(old["login_ms"]["p50"] / new["login_ms"]["p50"], 2),
            "login p99 old / new": round(old["login_ms"]["p99"] / new["login_ms"]["p99"], 2),
        },
    }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    server.start()
    try:
        scenarios = [
            await scenario(server, tmp, delay, clients, args)
            for delay in args.delays_ms
            for clients in args.clients
        ]
        version = await redis_version(server.url)
    finally:
        server.stop()
    return {"scenarios": scenarios, "redis_server": f"{Path(server.binary).name} {version}"}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16],
                        help="concurrent clients, a scenario each (1 16)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=1.0, help="per phase (1)")
    parser.add_argument("--rounds", type=int, default=12, help="phases per path (12)")
    parser.add_argument("--delays-ms", type=float, nargs="+", default=[0.0, 1.0],
                        help="one-way delays to Redis, ms (0: direct) (0 1)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.clients) < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("at least 1 client, 1 round and a positive phase")
    run_and_record("login_round_trips", args, argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
