"""Logins past what the issuer can hash: logins/s at saturation, what the clients wait, and
the verify and readiness latency meanwhile, with the password queue bounded (the default)
and unbounded (as before issue 20, point 9), in one run.

Reproduce from the repository root::

    .venv/bin/python -m bench.login_saturation

A private redis-server, one verifier sidecar and, in turn, two issuers, each its own process
(``python -m revocast issuer``) with the default argon2id parameters (t=3, 64 MiB, 4 lanes)
and login throttling off: ``bounded`` runs the defaults (``REVOCAST_PASSWORD_WORKERS`` one per
CPU, ``REVOCAST_PASSWORD_QUEUE=32``), ``unbounded`` sets the queue to 100000, which never
fills here: every login waits for its hash, as before the bound.

Per issuer, C clients (default 200) log in over and over for D seconds (default 20), each
with a 30 s timeout, as the issue's clients did; a client answered 503 waits what
its Retry-After says. Meanwhile a prober sends ``GET /verify`` to the sidecar and ``GET /readyz`` to
the issuer, one every 20 ms each. Before both, the prober runs alone for a baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

RESULTS = Path(__file__).resolve().parent / "results" / "login_saturation.json"
PASSWORD = "correct horse battery"
CLIENT_TIMEOUT_S = 30.0
PROBE_EVERY_S = 0.02
QUEUES = {"bounded": None, "unbounded": "100000"}  # None: the default (32)
THROTTLE_OFF = {
    "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT": "0",
    "REVOCAST_LOGIN_MAX_FAILURES_PER_USER_ADDRESS": "0",
    "REVOCAST_LOGIN_MAX_FAILURES_PER_USER": "0",
}

NOTES = [
    "Issuer, sidecar and redis-server are separate processes; the clients and the prober run "
    "in this process on uvloop. All share the host's CPUs; nothing is pinned.",
    "Default argon2id (t=3, 64 MiB, 4 lanes): the users' hashes are made with it, and each "
    "login costs one check. Login throttling off: every attempt reaches the hash.",
    "Each client: one keep-alive connection, login after login; on 503 it waits what "
    "Retry-After says and tries again; a login not answered within 30 s counts as a timeout "
    "(the connection is then replaced).",
    "logins_per_s: logins answered 200 per second of the phase; latency of those 200s at the "
    "client. The prober: GET /verify (a live token, to the sidecar) and GET /readyz (the "
    "issuer), each every 20 ms on its own connection; p50/p99 of each.",
    "The unbounded issuer differs only by REVOCAST_PASSWORD_QUEUE=100000: the queue then "
    "never fills, and every login waits for its hash, as every login did before the bound.",
]


async def _prober(
    url_port: int, path: str, stop: asyncio.Event, headers: dict[str, str]
) -> list[float]:
    conn = HttpConnection("127.0.0.1", url_port)
    latencies: list[float] = []
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(conn.request("GET", path, headers=headers), 10)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                await conn.close()
                status = 0
            if status in (200, 503):
                latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PROBE_EVERY_S)
    finally:
        await conn.close()
    return latencies


async def probe(
    sidecar: int, issuer: int, bearer: dict[str, str], seconds: float
) -> dict[str, Any]:
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_prober(sidecar, "/verify", stop, bearer)),
        asyncio.create_task(_prober(issuer, "/readyz", stop, {})),
    ]
    await asyncio.sleep(seconds)
    stop.set()
    verify, ready = await asyncio.gather(*tasks)
    return {"verify_ms": summary(verify), "readyz_ms": summary(ready)}


async def flood(port: int, names: Sequence[str], seconds: float) -> dict[str, Any]:
    """Every client logs in over and over until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    counts = {"200": 0, "503": 0, "timeout": 0, "other": 0}

    async def client(name: str) -> None:
        conn = HttpConnection("127.0.0.1", port)
        body = {"username": name, "password": PASSWORD}
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    status, _ = await asyncio.wait_for(
                        conn.post_json("/v1/login", body), CLIENT_TIMEOUT_S
                    )
                except TimeoutError:
                    counts["timeout"] += 1
                    await conn.close()
                    continue
                except (asyncio.IncompleteReadError, ConnectionError):
                    # The issuer closed a kept-alive connection that waited out Retry-After
                    # (uvicorn's keep-alive is 5 s): a new one, and the login again.
                    await conn.close()
                    continue
                if status == 200:
                    counts["200"] += 1
                    latencies.append((time.perf_counter() - started) * 1000)
                elif status == 503:
                    counts["503"] += 1
                    await asyncio.sleep(float(conn.last_headers.get("retry-after", "1")))
                else:
                    counts["other"] += 1
        finally:
            await conn.close()

    started = time.monotonic()
    await asyncio.gather(*(client(name) for name in names))
    wall = time.monotonic() - started
    return {
        "wall_s": round(wall, 1),
        "answers": counts,
        "logins_per_s": round(counts["200"] / seconds, 2),
        "login_ms": summary(latencies),
    }


async def with_issuer(
    children: Children, env: dict[str, str], config: str, args: argparse.Namespace,
    sidecar: int, bearer: dict[str, str], pids: dict[str, int | None],
) -> dict[str, Any]:  # fmt: skip
    queue = QUEUES[config]
    issuer_env = env | ({"REVOCAST_PASSWORD_QUEUE": queue} if queue else {})
    port = free_port()
    command = [sys.executable, "-m", "revocast", "issuer", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    child = children.spawn(f"issuer-{config}", command, issuer_env, pipes=False)
    await wait_http_ok(f"http://127.0.0.1:{port}/readyz", child)
    names = [f"user-{i}" for i in range(args.clients)]
    watched = pids | {"issuer": child.process.pid}
    before = {k: cpu_seconds(pid) for k, pid in watched.items()}
    flooding = asyncio.create_task(flood(port, names, args.seconds))
    await asyncio.sleep(1.0)  # the queue fills
    meanwhile = await probe(sidecar, port, bearer, args.seconds - 2.0)
    result = await flooding
    after = {k: cpu_seconds(pid) for k, pid in watched.items()}
    check_alive([child])
    children.stop([child])
    print(
        f"  {config:<10} {result['logins_per_s']:>6.2f} logins/s  answers {result['answers']}  "
        f"login p99 {result['login_ms']['p99']:.0f} ms  verify p99 "
        f"{meanwhile['verify_ms']['p99']:.2f} ms  "
        f"readyz p99 {meanwhile['readyz_ms']['p99']:.2f} ms",
        flush=True,
    )
    shown = ["python", *command[1:]]
    shown[shown.index(str(port))] = "PORT"
    return {
        "config": config,
        "password_queue": int(queue) if queue else Settings().passwords.password_queue,
        **result,
        "meanwhile": meanwhile,
        "cpu_s": {k: round(after[k] - before[k], 1) for k in after},
        "issuer_command": shlex.join(shown),
    }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    children = Children(tmp)
    server.start()
    try:
        env = (
            os.environ
            | THROTTLE_OFF
            | {
                "REDIS_URL": server.url,
                "REVOCAST_KEY_PREFIX": f"bench{uuid.uuid4().hex[:12]}",
                "REVOCAST_KEY_DIR": str(tmp / "keys"),
            }
        )
        settings = Settings.from_env(env)
        backend = Backend(settings)
        await backend.start()
        try:
            store, passwords = Store(backend), Passwords(settings.passwords)
            for i in range(args.clients):
                await add_user(store, passwords, f"user-{i}", PASSWORD, [])
        finally:
            await backend.aclose()
        sidecar_port = free_port()
        sidecar = children.spawn("sidecar", [sys.executable, "-m", "revocast", "verifier",
                                             "--port", str(sidecar_port), "--log-level",
                                             "warning"], env, pipes=False)  # fmt: skip
        # A live token for the prober, from an issuer that then stops.
        token_port = free_port()
        minting = children.spawn("issuer-token", [sys.executable, "-m", "revocast", "issuer",
                                                  "--port", str(token_port), "--log-level",
                                                  "warning"], env, pipes=False)  # fmt: skip
        await wait_http_ok(f"http://127.0.0.1:{token_port}/readyz", minting)
        status, body = await HttpConnection("127.0.0.1", token_port).post_json(
            "/v1/login", {"username": "user-0", "password": PASSWORD}
        )
        if status != 200:
            raise RuntimeError(f"login answered {status}: {body}")
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        await wait_http_ok(f"http://127.0.0.1:{sidecar_port}/readyz", sidecar)
        baseline = await probe(sidecar_port, token_port, bearer, 5.0)
        children.stop([minting])
        pids = {"sidecar": sidecar.process.pid, "redis": server.pid}
        runs = [await with_issuer(children, env, config, args, sidecar_port, bearer, pids)
                for config in QUEUES]  # fmt: skip
        server_version = await redis_version(server.url)
    finally:
        children.stop()
        server.stop()
    bounded, unbounded = runs
    return {
        "baseline": baseline,
        "runs": runs,
        "ratios": {
            "logins_per_s bounded / unbounded": round(
                bounded["logins_per_s"] / max(unbounded["logins_per_s"], 1e-9), 2
            ),
            "login p99 unbounded / bounded": round(
                unbounded["login_ms"]["p99"] / max(bounded["login_ms"]["p99"], 1e-9), 1
            ),
            "verify p99 bounded / baseline": round(
                bounded["meanwhile"]["verify_ms"]["p99"] / baseline["verify_ms"]["p99"], 2
            ),
        },
        "redis_server": f"{Path(server.binary).name} {server_version}",
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients (200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="flood per issuer (20)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds < 5:
        parser.error("at least 1 client and 5 seconds")
    run_and_record("login_saturation", args, argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
