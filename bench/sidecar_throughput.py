"""Throughput and latency of the sidecar's ``GET /verify`` under load, next to the
alternatives served the same way.

Reproduce from the repository root (needs ``wrk`` on PATH, e.g. ``apt-get install wrk``)::

    .venv/bin/python -m bench.sidecar_throughput

A private redis-server (appendonly off, temp dir) holds a published Ed25519 key and one
session; one access token is minted for it. Each server below is its own process, started
with the same command line shape::

    python -m uvicorn bench._asgi_apps:<app> --factory --host 127.0.0.1 --port PORT \
        --loop uvloop --http httptools --workers 1 --log-level warning --no-access-log

- ``noop``: a Starlette app whose /verify does nothing (same framework, no check);
- ``noop_raw``: a bare ASGI callable (uvicorn and httptools alone);
- ``sidecar``: revocast's sidecar (``create_sidecar``, what ``revocast verifier`` serves);
- ``memo_exists``: the same memoized ``Verifier.verify`` plus one Redis ``EXISTS`` of the
  session key per request (asyncio redis-py, hiredis);
- ``seed``: PyJWT ``jwt.decode`` plus one Redis ``EXISTS`` per request, no memo;
- and, for reference, ``revocast verifier`` as shipped (``uvicorn.run`` defaults: auto loop
  and parser, access log enabled but filtered out by ``--log-level warning``).

Load: ``wrk -t1 -c64 -d10s --latency -H 'Authorization: Bearer <token>'`` after a 2 s wrk
warm-up, servers interleaved over several rounds; a wrk Lua script counts every status code,
and a run counts only if every response was 200 (no 401/503 that would be fast for the
wrong reason) with no socket errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench._env import add_quiet_arguments, cpu_seconds, environment, loadavg, wait_for_quiet
from bench._processes import Child, Children, check_alive
from bench._rig import Minted, token_bench
from revocast.store.sessions import keys as session_keys
from revocast_tools.redis_server import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "sidecar_throughput.json"
START_TIMEOUT_S = 60.0
UVICORN = [
    "--loop", "uvloop", "--http", "httptools", "--workers", "1",
    "--log-level", "warning", "--no-access-log",
]  # fmt: skip

# name -> (label, how it is started: "uvicorn" factory in bench._asgi_apps, or "cli")
SERVERS: dict[str, tuple[str, str]] = {
    "noop": ("no-op endpoint (Starlette route, no check)", "uvicorn"),
    "noop_raw": ("no-op endpoint (bare ASGI callable)", "uvicorn"),
    "sidecar": ("revocast sidecar /verify (memoized verify)", "uvicorn"),
    "memo_exists": ("sidecar: memoized verify + Redis EXISTS", "uvicorn"),
    "seed": ("seed pattern: jwt.decode + Redis EXISTS", "uvicorn"),
    "sidecar_cli": ("revocast verifier as shipped (CLI defaults)", "cli"),
}

STATUS_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      io.write(string.format("STATUS %d %d\\n", code, n))
    end
  end
end
"""

NOTES = [
    "Every server is its own OS process: python -m uvicorn bench._asgi_apps:<app> --factory "
    "with --loop uvloop --http httptools --workers 1 --log-level warning --no-access-log "
    "(one worker: uvicorn serves in that one process). sidecar_cli is `python -m revocast "
    "verifier --log-level warning`, the command as shipped: uvicorn.run with its defaults "
    "(loop and http auto, which pick uvloop and httptools here; access log enabled, its "
    "INFO records dropped by the level).",
    "Client: wrk -t1 -c64 -d<duration>s --latency, Authorization header passed with -H, one "
    "keep-alive connection per wrk connection; a 2 s wrk warm-up run precedes every timed "
    "run and is discarded. wrk is closed-loop (no coordinated-omission correction): its "
    "latency percentiles are per response at the throughput reached.",
    "Validity: a wrk Lua response() hook counts status codes; a run is valid only if every "
    "response was 200 and wrk reports no socket errors. Before the runs each server is "
    "asked once with httpx and must answer 200 (and the checking ones the token's "
    "X-Auth-Subject).",
    "The token: one Ed25519 access token (revocast TokenMinter), the same for every request, "
    "so the sidecar's memo is warm after the first request (the hot path measured in "
    "bench.verify_cost as warm). The seed pattern verifies the signature on every request.",
    "memo_exists and seed: redis-py asyncio client (hiredis parser) with revocast's "
    "connection settings, EXISTS <prefix>:{<partition>}:session:<sid> (the session exists: "
    "200); the partition count is read from Redis at start-up.",
    "Rounds: the servers run in turn, interleaved, for each round; per server the round "
    "with the median requests/s is reported (all rounds in the JSON). Ratios use those "
    "medians.",
    "CPU: server_cpu_s and redis_cpu_s are user+system seconds the server process and "
    "redis-server used during the timed run (/proc/<pid>/stat); wrk_cpu_s is wrk's own. "
    "2 CPUs are shared by wrk, the server and redis-server; nothing is pinned.",
]


# --- wrk ----------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """The figures of one wrk --latency run (with the status-counting script)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+", output)
    if not (rps and total and latency):
        raise ValueError(f"unexpected wrk output:\n{output}")
    percentiles = {
        f"p{m.group(1)}": to_ms(m.group(2))
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)$", output, re.MULTILINE)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    statuses = {
        m.group(1): int(m.group(2)) for m in re.finditer(r"^STATUS (\d+) (\d+)$", output, re.M)
    }
    names = ("connect", "read", "write", "timeout")
    # wrk prints the line only when there was an error.
    errors = dict.fromkeys(names, 0)
    if socket:
        errors = dict(zip(names, map(int, socket.groups()), strict=True))
    requests = int(total.group(1))
    return {
        "requests_per_s": float(rps.group(1)),
        "requests": requests,
        "duration": total.group(2),
        "latency_ms": {
            "mean": to_ms(latency.group(1)),
            "stdev": to_ms(latency.group(2)),
            "max": to_ms(latency.group(3)),
            **percentiles,
        },
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors,
        "statuses": statuses,
        # statuses counts every response wrk read; `requests` too (same counter).
        "all_200": statuses == {"200": requests} and not any(errors.values()) and not non_2xx,
    }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(
    url: str, token: str, script: Path, duration_s: int, connections: int, threads: int
) -> tuple[list[str], str]:
    args = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency",
        "-s", str(script), "-H", f"Authorization: Bearer {token}", url,
    ]  # fmt: skip
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return args, done.stdout


# --- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    label: str
    child: Child
    url: str
    command: list[str]


def server_command(name: str, how: str, port: int) -> list[str]:
    if how == "cli":
        return [
            sys.executable, "-m", "revocast", "verifier",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", f"bench._asgi_apps:{name}", "--factory",
        "--host", "127.0.0.1", "--port", str(port), *UVICORN,
    ]  # fmt: skip


async def wait_ready(server: Server, minted: Minted) -> dict[str, str]:
    """Until /verify answers 200 to the token; returns that answer's X-Auth-* headers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer yet"
    headers = {"Authorization": f"Bearer {minted.token}"}
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            check_alive([server.child])
            try:
                reply = await http.get(f"{server.url}/verify", headers=headers)
                if reply.status_code == 200:
                    auth = {k: v for k, v in reply.headers.items() if k.startswith("x-auth-")}
                    if server.name.startswith("noop") or auth.get("x-auth-subject") == minted.uid:
                        return auth
                    last = f"200 without the token's subject: {auth}"
                else:
                    last = f"{reply.status_code} {reply.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready in {START_TIMEOUT_S}s (last: {last})")


def timed_run(
    server: Server,
    token: str,
    script: Path,
    duration_s: int,
    connections: int,
    threads: int,
    redis_pid: int | None,
) -> dict[str, Any]:
    wrk(f"{server.url}/verify", token, script, 2, connections, threads)  # warm-up
    load = loadavg()
    cpu0, redis0, wrk0 = (
        cpu_seconds(server.child.process.pid),
        cpu_seconds(redis_pid),
        children_cpu(),
    )
    args, output = wrk(f"{server.url}/verify", token, script, duration_s, connections, threads)
    cpu1, redis1, wrk1 = (
        cpu_seconds(server.child.process.pid),
        cpu_seconds(redis_pid),
        children_cpu(),
    )
    check_alive([server.child])
    result = parse_wrk(output)
    result |= {
        "server_cpu_us_per_request": round((cpu1 - cpu0) / max(1, result["requests"]) * 1e6, 1),
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "redis_cpu_s": round(redis1 - redis0, 2),
        "wrk_cpu_s": round(wrk1 - wrk0, 2),
        "loadavg_at_start": load,
        "wrk_args": [
            a if not a.startswith("Authorization") else "Authorization: Bearer <token>"
            for a in args
        ],
    }
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["requests_per_s"])
    return ordered[(len(ordered) - 1) // 2]


async def measure(
    server_names: Sequence[str],
    rounds: int,
    duration_s: int,
    connections: int,
    threads: int,
    tmp: Path,
) -> dict[str, Any]:
    children = Children(tmp)
    async with token_bench(tmp) as bench:
        redis_server, rig, minted = bench.redis_server, bench.rig, bench.minted
        try:
            from revocast.connection import redis_client

            client = redis_client(redis_server.url)
            try:
                session = session_keys.session(
                    rig.keys.of(minted.uid), minted.sid
                )  # the user's partition
                await client.hset(session, mapping={"uid": minted.uid, "created_ms": "0"})
            finally:
                await client.aclose()
            env = bench.env | {"BENCH_JWK": rig.jwk_json}
            script = tmp / "status.lua"
            script.write_text(STATUS_SCRIPT)

            servers: list[Server] = []
            for name in server_names:
                label, how = SERVERS[name]
                port = free_port()
                command = server_command(name, how, port)
                child = children.spawn(name, command, env, pipes=False)
                shown = ["python", *command[1:]]
                shown[shown.index(str(port))] = "PORT"
                servers.append(Server(name, label, child, f"http://127.0.0.1:{port}", shown))
            answers = {s.name: await wait_ready(s, minted) for s in servers}

            runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
            for index in range(rounds):
                for server in servers:
                    result = timed_run(
                        server, minted.token, script, duration_s, connections, threads,
                        redis_server.pid,
                    )  # fmt: skip
                    result["round"] = index + 1
                    runs[server.name].append(result)
                    print(
                        f"  round {index + 1} {server.name:<12} {result['requests_per_s']:>9.0f} "
                        f"req/s  p50 {result['latency_ms']['p50']:.2f} ms  p99 "
                        f"{result['latency_ms']['p99']:.2f} ms  statuses {result['statuses']}  "
                        f"server cpu {result['server_cpu_s']} s",
                        flush=True,
                    )
            # Nothing may be logged per request (access log off): count request lines in the logs.
            logged = {
                s.name: sum("/verify" in line for line in s.child.tail(10_000).splitlines())
                for s in servers
            }
        finally:
            children.stop()

    results: dict[str, Any] = {}
    for server in servers:
        chosen = median_run(runs[server.name])
        results[server.name] = {
            "label": server.label,
            "command": shlex.join(server.command),
            "first_answer_headers": answers[server.name],
            "request_lines_logged": logged[server.name],
            "requests_per_s": chosen["requests_per_s"],
            "latency_ms": chosen["latency_ms"],
            "median_round": chosen["round"],
            "all_200": all(r["all_200"] for r in runs[server.name]),
            "rounds": runs[server.name],
        }
    base = results.get("sidecar")
    ratios: dict[str, float] = {}
    if base:
        for name, result in results.items():
            if name != "sidecar":
                ratios[f"sidecar_vs_{name}"] = round(
                    base["requests_per_s"] / result["requests_per_s"], 3
                )
    return {
        "results": results,
        "ratios": ratios,
        "token_bytes": len(minted.token),
        "redis_server": f"{Path(redis_server.binary).name} {rig.redis_version}",
    }


def print_table(report: dict[str, Any]) -> None:
    header = f"{'server':<14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'all 200':>8}"
    print(header)
    print("-" * len(header))
    for name, r in report["results"].items():
        lat = r["latency_ms"]
        print(
            f"{name:<14} {r['requests_per_s']:>9.0f} {lat['p50']:>8.2f} {lat['p99']:>8.2f} "
            f"{r['all_200']!s:>8}"
        )
    for name, ratio in report["ratios"].items():
        print(f"{name}: {ratio:.2f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument(
        "--servers", nargs="+", choices=list(SERVERS), default=list(SERVERS), help="default: all"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")
    words = sys.argv[1:] if argv is None else list(argv)

    quiet = wait_for_quiet(not args.no_wait)
    load_before = loadavg()
    run_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="revocast-bench-") as tmp:
        measured = asyncio.run(
            measure(
                args.servers, args.rounds, args.duration, args.connections, args.threads, Path(tmp)
            )
        )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    report: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "-m", "bench.sidecar_throughput", *words]),
        "benchmark": "sidecar_throughput",
        "run_at": run_at,
        "measured": (
            f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
            f"{args.rounds} interleaved rounds, median round per server"
        ),
        "load": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
        },
        "uvicorn_options": UVICORN,
        "notes": NOTES,
        "token_bytes": measured["token_bytes"],
        "results": measured["results"],
        "ratios": measured["ratios"],
        "environment": environment(
            quiet,
            load_before,
            redis_server=measured["redis_server"],
            wrk=(wrk_version.stdout or wrk_version.stderr).splitlines()[0].strip(),
            uvicorn=version("uvicorn"),
            uvloop=version("uvloop"),
            httptools=version("httptools"),
            starlette=version("starlette"),
        ),
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    if not all(r["all_200"] for r in report["results"].values()):
        raise SystemExit("some runs had non-200 answers or socket errors: see the JSON")


if __name__ == "__main__":
    main()
