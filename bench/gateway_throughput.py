"""Throughput through nginx's auth_request to the sidecar, beside nginx alone and the
sidecar alone, in one run; and where one sidecar process's ceiling behind nginx comes from.

Reproduce from the repository root (needs ``wrk`` and ``nginx`` on PATH)::

    .venv/bin/python -m bench.gateway_throughput

One private redis-server holds a published key and a session; one access token is minted.
nginx (one worker process unless said) serves, on separate ports:

- ``nginx_direct``: nginx straight to the upstream, no check;
- ``nginx_auth``: deploy/nginx.conf as shipped (auth_request to the sidecar, keep-alive
  connections to it), one sidecar process;
- ``nginx_auth_no_keepalive``: the same config without its three keep-alive lines (a new
  TCP connection to the sidecar per request: how a plain auth_request config runs);
- ``nginx_auth_2_workers``: as nginx_auth, the sidecar with ``--workers 2``;
- ``nginx_2_workers_auth``: as nginx_auth, in a second nginx with ``worker_processes 2``;

and, for reference, ``sidecar`` and ``sidecar_2_workers``: wrk straight to /verify. The
upstream (the application) is a second nginx server block answering 200 from memory, so
that what is measured is the gateway and the check. Servers run interleaved over rounds;
the median round is reported; a run counts only if every answer was 200.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench._env import add_quiet_arguments, cpu_seconds, run_and_record
from bench._processes import Children, check_alive
from bench._rig import token_bench
from bench.sidecar_throughput import STATUS_SCRIPT, median_run, parse_wrk, wrk
from revocast_tools.gateways import nginx_command, nginx_config
from revocast_tools.redis_server import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "gateway_throughput.json"
KEEPALIVE = re.compile(
    r"\n *(keepalive 32;|proxy_http_version 1\.1;|proxy_set_header Connection \"\";)"
)

NOTES = [
    "One host, 2 CPUs shared by wrk, nginx (worker_processes 1), the sidecar process(es), "
    "redis-server and nothing else; nothing pinned.",
    "Client: wrk -t1 -c64 -d<duration>s --latency with the token in Authorization, after a "
    "2 s warm-up run; a Lua hook counts status codes and a run is valid only if all were 200.",
    "The upstream is an nginx server block that answers 200 from memory (`return 200`), on "
    "its own port in the same nginx, so every gateway case pays one proxied hop to it.",
    "nginx_auth uses deploy/nginx.conf with only its FILL IN addresses set; "
    "nginx_auth_no_keepalive removes its `keepalive 32`, `proxy_http_version 1.1` and "
    '`Connection ""` lines, so nginx opens a new connection to the sidecar per request.',
    "The sidecar is `python -m revocast verifier` (uvicorn, uvloop, httptools), with "
    "REVOCAST_TRUSTED_PROXIES=127.0.0.1; --workers 2 runs two processes on one port.",
]


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants (nginx's workers, uvicorn's)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return cpu_seconds(pid) + sum(tree_cpu(int(child)) for child in children)


def upstream_block(port: int) -> str:
    return f"server {{\n  listen 127.0.0.1:{port};\n  location / {{ return 200 'ok'; }}\n}}\n"


def direct_block(listen: int, app: int) -> str:
    return (
        f"server {{\n  listen 127.0.0.1:{listen};\n"
        f"  location / {{ proxy_pass http://127.0.0.1:{app}; }}\n}}\n"
    )


def renamed(config: str, suffix: str) -> str:
    """deploy/nginx.conf with its upstream names made unique, to run it twice in one nginx."""
    return config.replace("revocast_app", f"revocast_app{suffix}").replace(
        "revocast_sidecar", f"revocast_sidecar{suffix}"
    )


async def wait_200(url: str, token: str) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(300):
            try:
                reply = await http.get(url, headers={"Authorization": f"Bearer {token}"})
                if reply.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered 200")


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    children = Children(tmp)
    async with token_bench(tmp) as bench:
        minted = bench.minted
        env = bench.env | {"REVOCAST_TRUSTED_PROXIES": "127.0.0.1"}
        try:
            sidecars, sidecars_run = {}, {}
            for workers in (1, 2):
                port = free_port()
                command = [sys.executable, "-m", "revocast", "verifier", "--port", str(port),
                           "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
                sidecars_run[workers] = children.spawn(
                    f"sidecar{workers}", command, env, pipes=False
                )
                sidecars[workers] = port
            app = free_port()
            ports = {name: free_port() for name in ("direct", "auth", "auth_nk", "auth_w2")}
            shipped = nginx_config(app, sidecars[1], ports["auth"])
            blocks = [
                upstream_block(app),
                direct_block(ports["direct"], app),
                shipped,
                renamed(KEEPALIVE.sub("", nginx_config(app, sidecars[1], ports["auth_nk"])), "_nk"),
                renamed(nginx_config(app, sidecars[2], ports["auth_w2"]), "_w2"),
            ]
            folder = tmp / "nginx"
            folder.mkdir()
            nginx = children.spawn("nginx", nginx_command(folder, blocks), env, pipes=False)
            # The same shipped config in an nginx with two worker processes (one per CPU here).
            wide, app_wide, ports["auth_n2"] = tmp / "nginx2", free_port(), free_port()
            wide.mkdir()
            wide_blocks = [
                upstream_block(app_wide),
                nginx_config(app_wide, sidecars[1], ports["auth_n2"]),
            ]
            nginx2 = children.spawn("nginx2", nginx_command(wide, wide_blocks, workers=2), env,
                                    pipes=False)  # fmt: skip
            targets = {
                "nginx_direct": f"http://127.0.0.1:{ports['direct']}/api",
                "nginx_auth": f"http://127.0.0.1:{ports['auth']}/api",
                "nginx_auth_no_keepalive": f"http://127.0.0.1:{ports['auth_nk']}/api",
                "nginx_auth_2_workers": f"http://127.0.0.1:{ports['auth_w2']}/api",
                "nginx_2_workers_auth": f"http://127.0.0.1:{ports['auth_n2']}/api",
                "sidecar": f"http://127.0.0.1:{sidecars[1]}/verify",
                "sidecar_2_workers": f"http://127.0.0.1:{sidecars[2]}/verify",
            }
            for url in targets.values():
                await wait_200(url, minted.token)
            processes = {"nginx": nginx, "nginx2": nginx2,
                         **{f"sidecar_{w}": sidecars_run[w] for w in (1, 2)}}  # fmt: skip
            script = tmp / "status.lua"
            script.write_text(STATUS_SCRIPT)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            for index in range(args.rounds):
                for name, url in targets.items():
                    wrk(url, minted.token, script, 2, args.connections, 1)  # warm-up
                    before = {n: tree_cpu(c.process.pid) for n, c in processes.items()}
                    _, output = wrk(url, minted.token, script, args.duration, args.connections, 1)
                    used = {n: tree_cpu(c.process.pid) - before[n] for n, c in processes.items()}
                    check_alive([nginx, nginx2])
                    result = parse_wrk(output) | {"round": index + 1}
                    # CPUs busy per process tree over the run: which one is the ceiling.
                    result["cpus_busy"] = {n: round(u / args.duration, 2) for n, u in used.items()}
                    runs[name].append(result)
                    print(f"  round {index + 1} {name:<24} {result['requests_per_s']:>9.0f} req/s "
                          f"p50 {result['latency_ms']['p50']:.2f} ms  {result['statuses']}  "
                          f"cpus {result['cpus_busy']}", flush=True)  # fmt: skip
        finally:
            children.stop()
    results = {}
    for name, chosen_runs in runs.items():
        chosen = median_run(chosen_runs)
        results[name] = {
            "requests_per_s": chosen["requests_per_s"],
            "latency_ms": chosen["latency_ms"],
            "cpus_busy": chosen["cpus_busy"],
            "all_200": all(r["all_200"] for r in chosen_runs),
            "rounds": chosen_runs,
        }
    rate = {name: r["requests_per_s"] for name, r in results.items()}
    ratios = {
        "nginx_auth_vs_nginx_direct": round(rate["nginx_auth"] / rate["nginx_direct"], 3),
        "nginx_auth_vs_sidecar": round(rate["nginx_auth"] / rate["sidecar"], 3),
        "nginx_auth_vs_no_keepalive": round(
            rate["nginx_auth"] / rate["nginx_auth_no_keepalive"], 3
        ),
        "nginx_2_workers_auth_vs_nginx_auth": round(
            rate["nginx_2_workers_auth"] / rate["nginx_auth"], 3
        ),
        "nginx_auth_2_workers_vs_nginx_auth": round(
            rate["nginx_auth_2_workers"] / rate["nginx_auth"], 3
        ),
        "sidecar_2_workers_vs_sidecar": round(rate["sidecar_2_workers"] / rate["sidecar"], 3),
    }
    for name, value in ratios.items():
        print(f"{name}: {value}")
    return {
        "results": results,
        "ratios": ratios,
        "redis_server": f"{Path(bench.redis_server.binary).name} {bench.rig.redis_version}",
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS)
    add_quiet_arguments(parser)
    run_and_record("gateway_throughput", parser.parse_args(argv), argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
