"""Proof of enforcement: what receipts cost Redis, and how long ``--wait`` takes.

Reproduce from the repository root::

    .venv/bin/python -m bench.receipts --counts 1 4 16 --rounds 30 --swarm 4x250

1. **Wait.** An issuer process, N sidecar processes (``revocast verifier``), a moderator.
   Per round: a user logs in, the moderator blocks them with ``?wait=5`` (the same wait as
   ``revocast block --wait``), then unblocks. Timed from the request to the answer, with
   the proof in it: every live verifier (the N sidecars and the issuer's own) applied.
   Rounds alternate: "spaced" ones come 0.6 s after the last event (a verifier writes its
   receipt at once), "back_to_back" ones right after the previous round's block (a second
   event within the 250 ms interval waits for it: that bounds the write rate in a flow).
   Then a few ``revocast block --wait 5`` runs, process start included.
2. **Overhead.** P processes of K real ``Verifier`` objects each (``bench._swarm_worker``) on
   one private server, twice in the same run: receipts on (the default, 250 ms), and off
   (``REVOCAST_RECEIPT_INTERVAL_MS=0``). The server's own ``INFO`` (CPU, commandstats)
   over an idle window and over a window of revocations at ``--rate`` per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import _redis_info
from bench._env import ROOT, add_quiet_arguments, run_and_record
from bench._issuer import PASSWORD, add_user
from bench._processes import Child, Children, start_sidecars, wait_http_ok
from bench._revoker import revoke_at_rate
from bench._swarm import Swarm
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast_tools.redis_server import RedisServer, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "receipts.json"
RECEIPT_COMMANDS = ("set", "zadd", "zremrangebyscore")
NOTES = [
    "One host with 2 CPUs (a VM, shared) runs Redis, the issuer, the sidecars or the swarm "
    "processes and this client: the wait times include their competition for the CPUs.",
    "Wait: time.monotonic() before POST /v1/admin/users/{uid}/block?wait=5 to the answer. "
    "The answer holds the proof; a round counts only if proof.all_applied and every "
    "sidecar plus the issuer's own verifier are in it. delay_max_ms: per round, the largest "
    "delay from the event's stream time to a verifier applying it, as the receipts say.",
    "Overhead: the server's INFO before and after a window (used_cpu_sys + used_cpu_user, "
    "commandstats). Receipt commands are SET (PX), ZADD and ZREMRANGEBYSCORE to the global "
    "slot, per verifier per write. Per-verifier figures divide by the verifiers of the run.",
]


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5), 2), "p99": round(pct(values, 0.99), 2),
            "max": round(max(values), 2), "mean": round(statistics.fmean(values), 2)}  # fmt: skip


async def login(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    reply = await http.post("/v1/login", json={"username": name, "password": PASSWORD})
    reply.raise_for_status()
    body: dict[str, Any] = reply.json()
    return body


async def wait_rounds(
    children: Children, env: dict[str, str], count: int, rounds: int, cli_runs: int
) -> dict[str, Any]:
    port = free_port()
    issuer = children.spawn(
        f"issuer-{count}",
        [sys.executable, "-m", "revocast", "issuer", "--port", str(port), "--log-level", "warning"],
        env,
        pipes=False,
    )
    url = f"http://127.0.0.1:{port}"
    sidecars: list[Child] = []
    try:
        await wait_http_ok(f"{url}/healthz", issuer)
        await start_sidecars(children, env, count, sidecars)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            mod = await login(http, "mod")
            headers = {"Authorization": f"Bearer {mod['access_token']}"}
            target = (await login(http, "target"))["user_id"]
            await _until_live(http, headers, count + 1)
            took: dict[str, list[float]] = {"spaced": [], "back_to_back": []}
            waited: dict[str, list[float]] = {"spaced": [], "back_to_back": []}
            delays: list[float] = []
            for index in range(2 * rounds):
                kind = "spaced" if index % 2 == 0 else "back_to_back"
                await login(http, "target")
                if kind == "spaced":  # past the receipt interval: as a moderator's block comes
                    await asyncio.sleep(0.6)
                started = time.monotonic()
                reply = await http.post(f"/v1/admin/users/{target}/block?wait=5", headers=headers)
                took[kind].append((time.monotonic() - started) * 1000)
                proof = reply.json()["proof"]
                if not proof["all_applied"] or proof["live"] < count + 1:
                    raise RuntimeError(f"a round without full proof: {proof}")
                waited[kind].append(proof["waited_ms"])
                delays.append(max(r["delay_ms"] or 0 for r in proof["verifiers"]))
                await http.post(f"/v1/admin/users/{target}/unblock", headers=headers)
            cli = []
            for _ in range(cli_runs):
                await asyncio.sleep(0.6)
                cli.append(await asyncio.to_thread(_cli_block, env, target))
                await http.post(f"/v1/admin/users/{target}/unblock", headers=headers)
    finally:
        children.stop([*sidecars, issuer])
    return {
        "sidecars": count,
        "live_verifiers": count + 1,
        "rounds": rounds,
        "block_wait_ms": {kind: summary(values) for kind, values in took.items()},
        "proof_waited_ms": {kind: summary(values) for kind, values in waited.items()},
        "delay_max_ms": summary(delays),
        "cli_block_wait_ms": summary(cli) if cli else None,
    }


def _cli_block(env: dict[str, str], target: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "revocast", "block", target, "--reason", "bench", "--wait", "5"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"revocast block --wait failed: {done.stderr.strip()}")
    return (time.monotonic() - started) * 1000


async def _until_live(http: httpx.AsyncClient, headers: dict[str, str], count: int) -> None:
    """Until the issuer's gauge sees ``count`` live verifiers (receipts written)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = (await http.get("/metrics")).text
        live = next(
            line for line in text.splitlines() if line.startswith("revocast_verifiers_live ")
        )
        if float(live.split()[1]) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"never saw {count} live verifiers")


async def overhead(
    children: Children, env: dict[str, str], port: int, swarm_shape: tuple[int, int],
    seconds: float, rate: float,
) -> dict[str, Any]:  # fmt: skip
    processes, per_process = swarm_shape
    swarm = await Swarm.launch(children, env, processes, per_process)
    settings = Settings.from_env(env)
    backend = Backend(settings)
    await backend.start()
    try:
        cold = await swarm.cold_start()
        ready = [r for r in cold["ready_s"] if r is not None]
        await asyncio.sleep(5)
        before = _redis_info.sample(port)
        await asyncio.sleep(seconds)
        idle = _redis_info.delta(before, _redis_info.sample(port))
        before = _redis_info.sample(port)
        await revoke_at_rate(Store(backend), rate, round(rate * seconds))
        busy = _redis_info.delta(before, _redis_info.sample(port))
    finally:
        await backend.aclose()
        await swarm.stop()
    verifiers = processes * per_process
    return {
        "verifiers": verifiers,
        "ready": len(ready),
        "idle": _per_verifier(idle, verifiers),
        "revoking": _per_verifier(busy, verifiers) | {"rate_per_s": rate},
    }


def _per_verifier(window: dict[str, Any], verifiers: int) -> dict[str, Any]:
    seconds = window["seconds"]
    receipt_calls = sum(window["commands"].get(c, {}).get("calls", 0) for c in RECEIPT_COMMANDS)
    receipt_usec = sum(window["commands"].get(c, {}).get("usec", 0) for c in RECEIPT_COMMANDS)
    return {
        "seconds": seconds,
        "server_cpu_percent": window["cpu_percent"],
        "server_cpu_us_per_verifier_s": round(window["cpu_s"] * 1e6 / seconds / verifiers, 2),
        "receipt_commands_per_verifier_s": round(receipt_calls / seconds / verifiers, 3),
        "receipt_usec_per_verifier_s": round(receipt_usec / seconds / verifiers, 3),
        "commands": window["commands"],
    }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    server.start()
    children = Children(tmp)
    children.redis_pid = server.pid
    base = {
        "REDIS_URL": server.url,
        "REVOCAST_KEY_DIR": str(tmp / "keys"),
        "REVOCAST_ARGON2_TIME_COST": "1",
        "REVOCAST_ARGON2_MEMORY_KIB": "1024",
        "REVOCAST_ARGON2_PARALLELISM": "1",
        "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT": "0",
        "REVOCAST_REVOCATIONS_PER_MINUTE": "0",  # one moderator blocks every round
    }
    result: dict[str, Any] = {"redis_server": await _redis_info.redis_version(server.url)}
    try:
        result["wait"] = []
        for count in args.counts:
            env = os.environ | base | {"REVOCAST_KEY_PREFIX": f"wait{count}"}
            for name, roles in (("mod", ["moderator"]), ("target", [])):
                add_user(env, name, roles)
            run = await wait_rounds(children, env, count, args.rounds, args.cli_runs)
            print(f"  wait x{count}: {run['block_wait_ms']}", flush=True)
            result["wait"].append(run)
        shape = tuple(int(n) for n in args.swarm.split("x"))
        result["overhead"] = {}
        for label, interval in (("receipts_on", "250"), ("receipts_off", "0")):
            env = os.environ | base | {"REVOCAST_KEY_PREFIX": f"cost{interval}",
                                       "REVOCAST_RECEIPT_INTERVAL_MS": interval}  # fmt: skip
            run = await overhead(children, env, server.port, (shape[0], shape[1]),
                                 args.seconds, args.rate)  # fmt: skip
            print(f"  {label}: idle {run['idle']['server_cpu_percent']}% cpu", flush=True)
            result["overhead"][label] = run
    finally:
        children.stop()
        server.stop()
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--swarm", default="4x250", help="PROCESSESxVERIFIERS for the overhead")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    run_and_record("receipts", args, argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
