"""BENCHMARKS.md's section for bench.gateway_throughput."""

from __future__ import annotations

from pathlib import Path

from bench._markdown import Report, notes_pointer, run_line, table

LABELS = {
    "nginx_direct": "nginx straight to the upstream (no check)",
    "nginx_auth": "nginx auth_request to the sidecar (deploy/nginx.conf as shipped)",
    "nginx_auth_no_keepalive": "the same, without keep-alive to the sidecar",
    "nginx_auth_2_workers": "the same as shipped, sidecar `--workers 2`",
    "nginx_2_workers_auth": "the same as shipped, nginx `worker_processes 2`",
    "sidecar": "the sidecar alone (`/verify`)",
    "sidecar_2_workers": "the sidecar alone, `--workers 2`",
}


def gateway_throughput(path: Path, report: Report) -> str:
    results = report["results"]
    rows = []
    for name, label in LABELS.items():
        if name not in results:
            continue
        result = results[name]
        busy = ", ".join(f"{k} {v:.2f}" for k, v in result["cpus_busy"].items() if v >= 0.05)
        rows.append(
            [
                label,
                f"{result['requests_per_s']:,.0f}",
                f"{result['latency_ms']['p50']:.2f} / {result['latency_ms']['p99']:.2f}",
                "yes" if result["all_200"] else "**no**",
                busy,
            ]
        )
    header = ["path", "req/s", "p50 / p99 ms", "all 200", "CPUs busy"]
    ratios = ", ".join(f"{k} {v:.2f}" for k, v in report["ratios"].items())
    return "\n".join(
        [
            "## Gateway throughput: nginx with the sidecar",
            "",
            run_line(report, path, ".venv/bin/python -m bench.gateway_throughput"),
            "",
            table(header, rows, right_from=1),
            "",
            f"Ratios (median rounds): {ratios}. *CPUs busy*: CPU seconds per second of each "
            "process tree during the run (wrk uses most of the rest of this host's 2 CPUs).",
            "",
            "- " + notes_pointer(path),
        ]
    )
