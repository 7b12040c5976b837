"""Login and refresh throughput of the issuer, with the argon2id cost reported apart.

Reproduce from the repository root::

    .venv/bin/python -m bench.issuer_throughput

A private redis-server (appendonly off, temp dir) and the issuer as its own process
(``python -m revocast issuer --log-level warning``: uvicorn on uvloop), login throttling on
as in production, with the client-address limit out of reach (every client here shares
127.0.0.1: ``REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT=1000000000``).
The issuer runs twice: with the default argon2id parameters (t=3, 64 MiB, 4 lanes) and with
cheap ones (``REVOCAST_ARGON2_TIME_COST=1 REVOCAST_ARGON2_MEMORY_KIB=1024
REVOCAST_ARGON2_PARALLELISM=1``); the users' stored hashes are made with the same parameters
(argon2 verifies with the parameters inside the stored hash).

- login: ``POST /v1/login``, a fixed number of requests by C concurrent clients (each logs
  its own user in, over and over);
- refresh: ``POST /v1/refresh``, each of the C clients rotating its own session's refresh
  token (no argon2 on this path), on the default-parameter issuer;
- argon2 alone: ``PasswordHasher.verify`` in this process with each parameter set (wall and
  CPU time per call), the part of a login that the parameters set.

The client is a minimal keep-alive HTTP/1.1 client on uvloop (``bench._http``), one
connection per concurrent client; every answer must be 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, Type

from bench._env import add_quiet_arguments, cpu_seconds, run_and_record
from bench._http import HttpConnection
from bench._processes import Children, check_alive, wait_http_ok
from bench._redis_info import redis_version
from bench._stats import summary
from revocast.issuer.passwords import Passwords
from revocast.issuer.users import add_user
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast_tools.redis_server import RedisServer, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "issuer_throughput.json"
PASSWORD = "correct horse battery"
DEFAULTS = Settings()
ARGON2 = {
    "default": {
        "REVOCAST_ARGON2_TIME_COST": str(DEFAULTS.passwords.argon2_time_cost),
        "REVOCAST_ARGON2_MEMORY_KIB": str(DEFAULTS.passwords.argon2_memory_kib),
        "REVOCAST_ARGON2_PARALLELISM": str(DEFAULTS.passwords.argon2_parallelism),
    },
    "cheap": {
        "REVOCAST_ARGON2_TIME_COST": "1",
        "REVOCAST_ARGON2_MEMORY_KIB": "1024",
        "REVOCAST_ARGON2_PARALLELISM": "1",
    },
}
# Every limit counts as in production; only the address's is out of reach (one address).
THROTTLE = {"REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT": "1000000000"}

NOTES = [
    "The issuer is its own process: python -m revocast issuer --host 127.0.0.1 --port PORT "
    "--log-level warning (uvicorn.run: uvloop, httptools, one process). It also runs its "
    "own Verifier (a reader per stream: the global one and each partition's). redis-server "
    "is a separate process; the client is this script on uvloop. 2 CPUs shared by all "
    "three; nothing is pinned.",
    "Login throttling on, the client-address limit out of reach "
    "(REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT=1000000000: every client shares 127.0.0.1); "
    "each client logs its own user in with the right password, so no other limit is met.",
    "A login: the address's attempt count (throttle script), the attempt script (counts the "
    "attempt per username and per username and address, finds the user and its hash: one "
    "step), argon2id verify in a worker thread (asyncio.to_thread; default executor, "
    "min(32, CPUs + 4) threads), signing-kid read, login script (session, refresh-token "
    "hash, the attempt forgiven), Ed25519 signing: four Redis calls. A refresh: signing-kid "
    "read, refresh-token lookup, refresh script (rotation, AES-GCM sealed successor), "
    "Ed25519 signing; no argon2.",
    "Users are created in Redis with hashes made with the same argon2 parameters as the "
    "issuer run (argon2 verifies with the parameters stored in the hash).",
    "Per phase: a fixed number of timed requests by C concurrent keep-alive connections "
    "(each its own user or session), after an untimed warm-up of 2 x C requests; "
    "requests_per_s = timed requests / wall time of the phase; latency per request at the "
    "client (nearest-rank percentiles). All answers must be 200.",
    "argon2_alone: PasswordHasher.verify in the benchmark process, one call at a time, before "
    "the issuer runs: wall ms and CPU ms per call (best and median).",
    "CPU: issuer_cpu_s, redis_cpu_s from /proc/<pid>/stat over the timed phase; client_cpu_s "
    "is this process (time.process_time).",
]


def argon2_alone(params: dict[str, str], calls: int) -> dict[str, Any]:
    hasher = PasswordHasher(
        time_cost=int(params["REVOCAST_ARGON2_TIME_COST"]),
        memory_cost=int(params["REVOCAST_ARGON2_MEMORY_KIB"]),
        parallelism=int(params["REVOCAST_ARGON2_PARALLELISM"]),
        type=Type.ID,
    )
    stored = hasher.hash(PASSWORD)
    hasher.verify(stored, PASSWORD)
    wall, cpu = [], []
    for _ in range(calls):
        w, c = time.perf_counter(), time.process_time()
        hasher.verify(stored, PASSWORD)
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {
        "calls": calls,
        "wall_ms": {"best": round(min(wall), 3), "median": round(statistics.median(wall), 3)},
        "cpu_ms": {"best": round(min(cpu), 3), "median": round(statistics.median(cpu), 3)},
    }


Step = Callable[[HttpConnection, int], Awaitable[tuple[int, str]]]


async def load(
    conns: Sequence[HttpConnection], step: Step, total: int, warmup: int
) -> dict[str, Any]:
    """Run ``total`` steps spread over the connections (each connection one at a time)."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    failures: list[str] = []
    remaining = warmup + total

    async def worker(index: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            timed = remaining < total
            started = time.perf_counter()
            status, detail = await step(conns[index], index)
            if timed:
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status != 200:
                failures.append(f"{status} {detail[:200]}")

    started = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.gather(*(worker(i) for i in range(len(conns))))
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "wall_s": round(wall, 3),
        "client_cpu_s": round(time.process_time() - cpu0, 2),
        "latencies": latencies,
        "statuses": statuses,
        "failures": failures[:5],
    }


async def timed_phase(
    name: str,
    conns: Sequence[HttpConnection],
    step: Step,
    total: int,
    pids: dict[str, int | None],
) -> dict[str, Any]:
    warm = await load(conns, step, 0, 2 * len(conns))
    if warm["failures"]:
        raise RuntimeError(f"{name}: warm-up requests failed: {warm['failures']}")
    before = {k: cpu_seconds(pid) for k, pid in pids.items()}
    result = await load(conns, step, total, 0)
    after = {k: cpu_seconds(pid) for k, pid in pids.items()}
    latencies = result.pop("latencies")
    rps = result["requests"] / result["wall_s"]
    out = {
        "phase": name,
        "concurrency": len(conns),
        "requests_per_s": round(rps, 1),
        "latency_ms": summary(latencies),
        **result,
        "all_200": result["statuses"] == {"200": result["requests"]},
    }
    for key in pids:
        out[f"{key}_cpu_s"] = round(after[key] - before[key], 2)
    print(
        f"  {name:<22} {rps:>8.1f} req/s  p50 {out['latency_ms']['p50']:.2f} ms  "
        f"p99 {out['latency_ms']['p99']:.2f} ms  statuses {result['statuses']}",
        flush=True,
    )
    return out


async def with_issuer(
    children: Children,
    env: dict[str, str],
    config: str,
    concurrency: int,
    logins: int,
    refreshes: int,
    redis_pid: int | None,
) -> list[dict[str, Any]]:
    settings = Settings.from_env(env)
    # Users with hashes of this run's parameters (one per concurrent client).
    backend = Backend(settings)
    names = [f"bench-{config}-{i}" for i in range(concurrency)]
    try:
        await backend.start()
        store = Store(backend)
        passwords = Passwords(settings.passwords)
        for name in names:
            await add_user(store, passwords, name, PASSWORD, [])
    finally:
        await backend.aclose()

    port = free_port()
    command = [
        sys.executable, "-m", "revocast", "issuer",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    child = children.spawn(f"issuer-{config}", command, env, pipes=False)
    await wait_http_ok(f"http://127.0.0.1:{port}/.well-known/jwks.json", child)
    pids = {"issuer": child.process.pid, "redis": redis_pid}
    conns = [HttpConnection("127.0.0.1", port) for _ in range(concurrency)]
    phases = []
    try:

        async def login(conn: HttpConnection, index: int) -> tuple[int, str]:
            status, body = await conn.post_json(
                "/v1/login", {"username": names[index], "password": PASSWORD}
            )
            return status, json.dumps(body)

        phase = await timed_phase(f"login, {config} argon2", conns, login, logins, pids)
        phases.append(phase | {"argon2": config, "endpoint": "POST /v1/login"})
        check_alive([child])

        if refreshes:
            tokens: list[str] = []
            for index, conn in enumerate(conns):
                status, body = await conn.post_json(
                    "/v1/login", {"username": names[index], "password": PASSWORD}
                )
                if status != 200:
                    raise RuntimeError(f"login answered {status}: {body}")
                tokens.append(str(body["refresh_token"]))

            async def refresh(conn: HttpConnection, index: int) -> tuple[int, str]:
                status, body = await conn.post_json("/v1/refresh", {"refresh_token": tokens[index]})
                if status == 200:
                    tokens[index] = str(body["refresh_token"])
                return status, json.dumps(body)

            phase = await timed_phase("refresh", conns, refresh, refreshes, pids)
            phases.append(phase | {"argon2": "none", "endpoint": "POST /v1/refresh"})
            check_alive([child])
    finally:
        for conn in conns:
            await conn.close()
        children.stop([child])
    shown = ["python", *command[1:]]
    shown[shown.index(str(port))] = "PORT"
    for phase in phases:
        phase["issuer_command"] = shlex.join(shown)
        phase["issuer_env"] = {k: v for k, v in env.items() if k in ARGON2[config] | THROTTLE}
    return phases


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    argon2 = {
        "default": argon2_alone(ARGON2["default"], 10) | {"params": ARGON2["default"]},
        "cheap": argon2_alone(ARGON2["cheap"], 200) | {"params": ARGON2["cheap"]},
    }
    logins = {"default": args.logins_default, "cheap": args.logins_cheap}
    server = RedisServer(tmp / "redis", appendonly=False)
    children = Children(tmp)
    server.start()
    try:
        base = (
            os.environ
            | THROTTLE
            | {
                "REDIS_URL": server.url,
                "REVOCAST_KEY_PREFIX": f"bench{uuid.uuid4().hex[:12]}",
                "REVOCAST_KEY_DIR": str(tmp / "keys"),
            }
        )
        phases: list[dict[str, Any]] = []
        for config, count in logins.items():
            env = base | ARGON2[config]
            refreshes = args.refreshes if config == "default" else 0
            phases += await with_issuer(
                children, env, config, args.concurrency, count, refreshes, server.pid
            )
        server_version = await redis_version(server.url)
    finally:
        children.stop()
        server.stop()
    for phase in phases:
        if phase["argon2"] in argon2:
            # What is left of a login's server time once its argon2 verify is taken out.
            phase["argon2_cpu_ms_per_call"] = argon2[phase["argon2"]]["cpu_ms"]["median"]
    return {
        "argon2_alone": argon2,
        "phases": phases,
        "redis_server": f"{Path(server.binary).name} {server_version}",
        "environment": {
            "uvicorn": version("uvicorn"),
            "uvloop": version("uvloop"),
            "argon2_cffi": version("argon2-cffi"),
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument(
        "--logins-default", type=int, default=160, help="timed logins, default argon2 (160)"
    )
    parser.add_argument(
        "--logins-cheap", type=int, default=2000, help="timed logins, cheap argon2 (2000)"
    )
    parser.add_argument("--refreshes", type=int, default=3000, help="timed refreshes (3000)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.concurrency, args.logins_default, args.logins_cheap, args.refreshes) < 1:
        parser.error("counts must be at least 1")
    report = run_and_record("issuer_throughput", args, argv, measure, notes=NOTES)
    if not all(phase["all_200"] for phase in report["phases"]):
        raise SystemExit("some requests were not answered 200: see the JSON")


if __name__ == "__main__":
    main()
