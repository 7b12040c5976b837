"""Fill the generated tables of BENCHMARKS.md from ``bench/results/*.json``.

Reproduce from the repository root::

    .venv/bin/python -m bench.report           # rewrite the generated parts
    .venv/bin/python -m bench.report --check   # exit 1 if BENCHMARKS.md is out of date

BENCHMARKS.md is written by hand; only what stands between two marker comments is
generated, from the JSON alone, so every host gives the same document::

    <!-- table:NAME -->
    ...
    <!-- /table:NAME -->

NAME is ``run:FILE`` (when FILE's benchmark ran, and the command that reproduces it),
``settings:FILE`` (the settings it ran with), or one of ``TABLES``. Figures belong in those
tables, so that a new run never leaves a stale number in the prose around them.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._capacity import Fit, phase_check
from bench.all import BENCHMARKS, PYTHON
from bench.verify_cost import DECODE, FIRST, WARM

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCUMENT = ROOT / "BENCHMARKS.md"
MARKER = re.compile(r"(<!-- table:(?P<name>[\w.:-]+) -->\n).*?(<!-- /table:(?P=name) -->)", re.S)

Report = dict[str, Any]
Results = dict[str, Report]  # by file name, without .json
Stats = dict[str, float]
# A column: its header, and its cell for one row, as a function of the row or as a template
# for ``str.format_map(row)`` (``"{replica[cpu_s]:.1f}"``).
Column = tuple[str, str | Callable[[Report], object]]


def table(header: Sequence[str], rows: Sequence[Sequence[object]], right_from: int = 1) -> str:
    """A Markdown table; columns from ``right_from`` on are right-aligned (figures)."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = [list(header), align, *[[str(cell) for cell in row] for row in rows]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def columns(rows: Sequence[Report], spec: Sequence[Column], right_from: int = 1) -> str:
    cells = [[c.format_map(r) if isinstance(c, str) else c(r) for _, c in spec] for r in rows]
    return table([header for header, _ in spec], cells, right_from)


def trio(stats: Stats | None, digits: int = 3) -> str:
    """p50 / p99 / max, or - where nothing was measured."""
    if not stats:
        return "-"
    return " / ".join(f"{stats[k]:.{digits}f}" for k in ("p50", "p99", "max"))


def stats(path: str, digits: int = 3) -> Callable[[Report], str]:
    """The p50 / p99 / max of ``row[a][b]`` for the path ``a.b``, or - if not measured."""

    def cell(row: Report) -> str:
        value: Any = row
        for key in path.split("."):
            value = value.get(key) if value else None
        return trio(value, digits)

    return cell


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


# --- run lines, settings, the machine ---------------------------------------------------------


def run_line(report: Report, name: str) -> str:
    return (
        f"Run {report['run_at']}, results in `bench/results/{name}.json`. "
        f"Reproduce with `{report['command']}`."
    )


def settings(report: Report) -> str:
    """What a ``run_and_record`` benchmark was run with (its CLI arguments, defaults included)."""

    def shown(value: object) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    rows = [(k, shown(v)) for k, v in report["settings"].items()]
    return table(["setting", "value"], rows, right_from=2)


def load(env: Report) -> str:
    quiet = env["quiet_wait"]
    waited = f"{quiet['waited_s']:.0f} s" if quiet["enabled"] else "off"
    return (
        f"{env['loadavg_before'][0]} → {env['loadavg_after'][0]} "
        f"(waited {waited}{'' if quiet['quiet'] else ', not quiet'})"
    )


def commit(git: Report) -> str:
    uncommitted = git.get("package_files_uncommitted")
    return (git["commit"] or "-")[:10] + (f" (+{uncommitted} uncommitted)" if uncommitted else "")


def machine(results: Results) -> str:
    rows = [{"name": name, **report["environment"], "run_at": report["run_at"]}
            for name, report in results.items()]  # fmt: skip
    return columns(
        rows,
        [
            ("results", "`{name}.json`"),
            ("run at", "{run_at}"),
            ("Python", "{python}"),
            ("platform", "{platform}"),
            ("CPU model", lambda e: e.get("cpu_model", "-")),
            ("CPUs", "{cpus} ({cpus_usable} usable)"),
            ("Redis", "{redis_server}"),
            ("load 1 min", load),
            ("commit", lambda e: commit(e["git"])),
        ],
        right_from=9,
    )


# --- targets ----------------------------------------------------------------------------------


def targets(results: Results) -> str:
    rows: list[tuple[str, str, str, str, str]] = []

    def add(target: str, measured: str, ok: bool, name: str, field: str) -> None:
        source = f"`bench/results/{name}.json`: {field}"
        command = f"`{results[name]['command']}`"
        rows.append((target, measured, "met" if ok else "**missed**", source, command))

    cases = results["verify_cost"]["results"]
    warm, first = cases[WARM], cases[FIRST]
    decode = cases[DECODE]
    add("warm verify ≤ 3 µs", f"{warm['median_us']:.2f} µs median ({warm['best_us']:.2f} best)",
        warm["median_us"] <= 3, "verify_cost", "warm verify, median_us")  # fmt: skip
    ratio = first["median_us"] / decode["median_us"]
    add("first-sight verify ≤ 1.3 x `jwt.decode`",
        f"{ratio:.2f}x median ({first['median_us']:.1f} / {decode['median_us']:.1f} µs; "
        f"{first['best_us'] / decode['best_us']:.2f}x best)",
        ratio <= 1.3, "verify_cost", "first sight ÷ jwt.decode, median_us")  # fmt: skip

    servers = results["sidecar_throughput"]["results"]
    valid = all(r["all_200"] for r in servers.values())
    sidecar = servers["sidecar"]["requests_per_s"]
    for other, bound, label in (
        ("noop", 0.8, "sidecar `/verify` ≥ 80 % of a bare no-op endpoint (Starlette route)"),
        ("noop_raw", 0.8, "… the same, against a bare ASGI callable (no framework)"),
        ("memo_exists", 2.0, "sidecar ≥ 2 x a sidecar doing memoized verify + one Redis EXISTS"),
        ("seed", 5.0, "sidecar ≥ 5 x the seed pattern (jwt.decode + Redis lookup)"),
    ):
        rps = servers[other]["requests_per_s"]
        shown = f"{sidecar / rps:.0%}" if bound < 1 else f"{sidecar / rps:.2f}x"
        add(label, f"{shown} ({sidecar:,.0f} vs {rps:,.0f} req/s)"
            + ("" if valid else "; **some answers were not 200**"),
            sidecar / rps >= bound and valid, "sidecar_throughput",
            f"requests_per_s, `sidecar` ÷ `{other}`")  # fmt: skip

    runs = results["propagation"]["runs"]
    sixteen = [r for r in runs if r["action"] == "logout" and r["verifiers"] == 16]
    for run in sixteen:
        request, every = run["from_request_ms"], run["slowest_per_round_from_request_ms"]
        add("propagation p99 ≤ 5 ms, 16 verifiers (logout, from request: upper bound)",
            f"{request['p99']:.2f} ms p99 ({request['p50']:.2f} p50, {request['max']:.2f} max)",
            request["p99"] <= 5, "propagation", "logout, 16: from_request_ms")  # fmt: skip
        add("… until all 16 verifiers reject (from request)",
            f"{every['p99']:.2f} ms p99 ({every['p50']:.2f} p50)", every["p99"] <= 5,
            "propagation", "logout, 16: slowest_per_round_from_request_ms")  # fmt: skip
        reply = run["latency_ms"]
        add("… from the logout's reply (lower bound)",
            f"{reply['p99']:.2f} ms p99 ({reply['p50']:.2f} p50)", reply["p99"] <= 5,
            "propagation", "logout, 16: latency_ms")  # fmt: skip
    if not sixteen:  # a partial run: say so rather than drop the target
        missing = "no 16-verifier logout run in `bench/results/propagation.json`"
        rows.append(("propagation p99 ≤ 5 ms, 16 verifiers", "-", "not measured", missing, "-"))

    for run in results["memory_snapshot"]["runs"]:
        n, m = run["revoked_sessions"], run["memory"]
        traced, rss = m["tracemalloc_bytes_per_entry"], m["rss_bytes_per_entry"]
        add(f"≤ 200 bytes per revoked entry, {n:,} entries, cache (tracemalloc)",
            f"{traced:.0f} bytes", traced <= 200, "memory_snapshot",
            f"{n}: tracemalloc_bytes_per_entry")  # fmt: skip
        add(f"… {n:,} entries, process RSS growth after bootstrap", f"{rss:.0f} bytes",
            rss <= 200, "memory_snapshot", f"{n}: rss_bytes_per_entry")  # fmt: skip
        if n == 1_000_000:
            total = run["snapshot_merge_s"]
            add("snapshot of 1,000,000 revoked sessions ≤ 3 s (snapshot + merge)",
                f"{total['median']:.2f} s median ({total['best']:.2f} best; "
                f"Verifier.start() {run['verifier_start_s']:.2f} s)",
                total["median"] <= 3, "memory_snapshot", "1000000: snapshot_merge_s")  # fmt: skip
    for run in results.get("status_list", {}).get("runs", []):
        if run["tokens"] == 1_000_000 and run["invalid_share"] in (0.004, 0.1, 0.5):
            kb, share = run["token_bytes"] / 1000, run["invalid_share"]
            add(f"Status List Token ≤ 150 KB for 1,000,000 tokens, {share:.1%} INVALID "
                "(issue 22)", f"{kb:,.1f} KB", kb <= 150, "status_list",
                f"1000000, {share}: token_bytes")  # fmt: skip
    return table(["target (issue 6)", "measured", "verdict", "from", "command"], rows, 5)


# --- the per-request check, throughput --------------------------------------------------------


def verify_cost_rows(results: Results) -> list[Report]:
    cases = results["verify_cost"]["results"]
    decode, warm = cases[DECODE], cases[WARM]
    return [
        {**r, "name": name, "repeats": len(r["repeats_us"]),
         "client": r["client"] if r["redis_call"] else "none (no Redis call)",
         **{f"{k}_decode": r[k] / decode[k] for k in ("best_us", "median_us")},
         **{f"{k}_warm": r[k] / warm[k] for k in ("best_us", "median_us")}}
        for name, r in cases.items()
    ]  # fmt: skip


def sidecar_rows(results: Results) -> list[Report]:
    servers = results["sidecar_throughput"]["results"]
    sidecar = servers["sidecar"]["requests_per_s"]
    return [
        {**r, "name": name, "ok": yes(r["all_200"]), "vs_sidecar": sidecar / r["requests_per_s"],
         "median": next(x for x in r["rounds"] if x["round"] == r["median_round"]),
         "every": " / ".join(f"{x['requests_per_s']:,.0f}" for x in r["rounds"]),
         "statuses": ", ".join(sorted({code for x in r["rounds"] for code in x["statuses"]}))}
        for name, r in servers.items()
    ]  # fmt: skip


GATEWAY_PATHS = {
    "nginx_direct": "nginx straight to the upstream (no check)",
    "nginx_auth": "nginx auth_request to the sidecar (deploy/nginx.conf as shipped)",
    "nginx_auth_no_keepalive": "the same, without keep-alive to the sidecar",
    "nginx_auth_2_workers": "the same as shipped, sidecar `--workers 2`",
    "nginx_2_workers_auth": "the same as shipped, nginx `worker_processes 2`",
    "sidecar": "the sidecar alone (`/verify`)",
    "sidecar_2_workers": "the sidecar alone, `--workers 2`",
}


def gateway_rows(results: Results) -> list[Report]:
    paths = results["gateway_throughput"]["results"]
    return [
        {**(r := paths[name]), "label": label, "ok": yes(r["all_200"]),
         "busy": ", ".join(f"{k} {v:.2f}" for k, v in r["cpus_busy"].items() if v >= 0.05)}
        for name, label in GATEWAY_PATHS.items()
    ]  # fmt: skip


def issuer_rows(results: Results) -> list[Report]:
    phases = results["issuer_throughput"]["phases"]
    refresh = next(p["requests_per_s"] for p in phases if p["endpoint"] == "POST /v1/refresh")
    return [
        {**p, "ok": yes(p["all_200"]), "vs_refresh": p["requests_per_s"] / refresh,
         "variables": " ".join(f"{k}={v}" for k, v in p["issuer_env"].items())}
        for p in phases
    ]  # fmt: skip


def argon2_rows(results: Results) -> list[Report]:
    report = results["issuer_throughput"]
    cpus = report["environment"]["cpus_usable"]
    return [
        {**a, "name": name, "logins": cpus * 1000 / a["cpu_ms"]["median"],
         "settings": ", ".join(f"{k.removeprefix('REVOCAST_ARGON2_')}={v}"
                               for k, v in a["params"].items())}
        for name, a in report["argon2_alone"].items()
    ]  # fmt: skip


def login_saturation_rows(results: Results) -> list[Report]:
    report = results["login_saturation"]
    baseline = {"config": "no logins (baseline)", "queue": "-", "rate": "-", "answers": "-",
                "login": "-", "meanwhile": report["baseline"]}  # fmt: skip
    rows = [
        {**r, "queue": f"{r['password_queue']:,}", "rate": f"{r['logins_per_s']:.2f}",
         "answers": " / ".join(str(r["answers"][k]) for k in ("200", "503", "timeout")),
         "login": "{p50:,.0f} / {p99:,.0f}".format(**r["login_ms"])}
        for r in report["runs"]
    ]  # fmt: skip
    return [baseline, *rows]


def login_round_trips_rows(results: Results) -> list[Report]:
    rows = []
    for scene in results["login_round_trips"]["scenarios"]:
        ratios = scene["ratios"]
        for path in ("old", "new"):
            run = scene["runs"][path]
            rows.append({**run, "delay": scene["delay_ms_one_way"], "clients": scene["clients"],
                         "path": path, "ratio": "-" if path == "old" else
                         "{logins_per_s new / old:.2f} / {login p50 old / new:.2f} / "
                         "{login p99 old / new:.2f}".format_map(ratios)})  # fmt: skip
    return rows


# --- memory, propagation ----------------------------------------------------------------------


def memory_rows(results: Results) -> list[Report]:
    return [
        {**r, **r["split_of_median_repeat_s"], **(m := r["memory"]),
         "reply_mb": r["reply_bytes"] / 1e6, "prune_ms": r["prune_s"] * 1000,
         "pages_cell": (f"{r['pages']} ({r['longest_page_lua_s']['median'] * 1000:.1f})"
                        if "pages" in r else "1 (one script)"),
         "dict_per_entry": m["dict_getsizeof_bytes"] / r["entries_in_snapshot"],
         **{k: m[k] / 2**20 for k in ("tracemalloc_retained_bytes", "vm_hwm_bytes",
                                      "tracemalloc_peak_bytes")}}
        for r in results["memory_snapshot"]["runs"]
    ]  # fmt: skip


def propagation_rows(results: Results) -> list[Report]:
    """Every run, logout first, then by verifier count."""
    cpus = results["propagation"]["environment"]["cpus_usable"]
    rows = [
        {**r, "cpu": (cpu := sum(r["cpu_ms_per_round"].values())), "wall": cpu / cpus}
        for r in results["propagation"]["runs"]
    ]
    return sorted(rows, key=lambda r: (r["action"] != "logout", r["verifiers"]))


def pubsub_rows(results: Results) -> list[Report]:
    runs = sorted(results["pubsub"]["runs"], key=lambda r: (r["subscribers"], r["transport"]))
    base = {r["subscribers"]: r for r in runs if r["transport"] == "pubsub"}
    names = {"pubsub": "Pub/Sub (PUBLISH)", "stream": "Streams (XADD → XREAD BLOCK)"}
    return [
        {**r, "name": names[r["transport"]],
         "vs": r["from_request_ms"]["p99"] / base[r["subscribers"]]["from_request_ms"]["p99"]}
        for r in runs
    ]  # fmt: skip


def topology_rows(results: Results) -> list[Report]:
    return [
        {"samples": "-", **r, "processes": r["verifiers"]} if "error" not in r
        else {**r, "processes": "**failed**: " + r["error"].splitlines()[0], "samples": "-"}
        for r in results["topologies"]["runs"]
    ]  # fmt: skip


# --- replicas ---------------------------------------------------------------------------------


def replica_cost_rows(results: Results) -> list[Report]:
    report = results["replica_cost"]
    paced = {r["verifiers"]: r["paced"] for r in report["runs"]}
    return [
        {**d, "applied": paced[d["verifiers"]].get("all_applied_from_request_ms")}
        for d in report["derived"]
    ]


def fanout_rows(results: Results) -> list[Report]:
    report = results["replica_fanout"]
    v, fit = report["cold_start"]["verifiers"], Fit.from_report(results["replica_cost"])
    phases = [("idle", report["idle"])] + [(f"{p['rate_per_s']:g}/s", p) for p in report["rates"]]
    return [
        {"not_durable": "-", "missing_events": "-", **p, "name": name,
         "model": phase_check(fit, p, v)["ratio"],
         "out_mb_s": (r := p["replica"])["net_out_bytes"] / r["seconds"] / 1e6,
         "per_event": f"{r['net_out_bytes'] / (p['events'] * v):.0f}" if p["events"] else "-",
         "used_mib": r["memory"]["used_memory"] / 2**20,
         "buffers_mib": r["memory"]["mem_clients_normal"] / 2**20,
         "failed": sum(p["failed_calls"].values()),
         "busy": p["process_cpu_s"]["followers"] / r["seconds"],
         "ready": "{} / {:.2f}".format(p["status"].get("min_ready", "-"),
                                       p["status"].get("max_staleness_s", 0))}
        for name, p in phases
    ]  # fmt: skip


def cold_rows(runs: Sequence[Report]) -> list[Report]:
    """Cold starts (``bench._cold``), by ``cold_start`` and by ``replica_fanout`` alike."""

    def failover(roles: dict[str, str]) -> str:
        if roles == {"primary": "master", "replica": "slave"}:  # the roles they started with
            return "no"
        return "**" + ", ".join(f"{node} now {role}" for node, role in roles.items()) + "**"

    def held(r: Report) -> str:
        """Connections on the replica, idle ones on the primary, and on the first sentinel."""
        by = r["connections_by_last_command"]
        primary, sentinel = by["primary"].get("get", 0), by["sentinel0"].get("sentinel|slaves", 0)
        return f"{r['replica']['clients']['connected_clients']} / {primary} / {sentinel}"

    return [
        {**r, "failover": failover(r["roles_after"]), "held": held(r),
         "cpu_ms": r["replica"]["cpu_s"] * 1000 / r["verifiers"],
         "out_mb": r["replica"]["net_out_bytes"] / 1e6,
         "out_kb": r["replica"]["net_out_bytes"] / 1e3 / r["verifiers"],
         "peak_mib": r["replica_peaks"]["used_memory"] / 2**20}
        for r in runs
    ]  # fmt: skip


def receipts_cost_rows(results: Results) -> list[Report]:
    return [
        {"rate_per_s": 0, **run[phase], "run": f"{label.replace('_', ' ')}, {phase}", "of": run}
        for label, run in results["receipts"]["overhead"].items()
        for phase in ("idle", "revoking")
    ]


def status_list_rows(results: Results) -> list[Report]:
    return [
        {**run, "raw_kib": run["raw_list_bytes"] / 1024, "token_kib": run["token_bytes"] / 1024,
         "zlib_kib": run["lst_bytes"] * 3 / 4 / 1024, "l9_kib": run["level9"]["bytes"] / 1024,
         "bits_kib": run["redis_memory_bytes"]["bits"] / 1024,
         "leases_mib": run["redis_memory_bytes"]["leases"] / 2**20}
        for run in results["status_list"]["runs"]
    ]  # fmt: skip


def host_share_rows(results: Results) -> list[Report]:
    return list(results["host_share"]["runs"])


def host_share_scale_rows(results: Results) -> list[Report]:
    return list(results["host_share"].get("memory_at_scale", []))


def host_share_targets(results: Results) -> str:
    """Issue 22's targets for one host's workers, each with its measured figure."""
    runs = {(r["mode"], r["workers"]): r for r in results["host_share"]["runs"]}
    rows: list[list[str]] = []

    def add(target: str, measured: str, ok: bool) -> None:
        rows.append([target, measured, yes(ok)])

    shared, alone = runs.get(("shared", 4)), runs.get(("independent", 4))
    single = runs.get(("independent", 1))
    if shared and alone:
        add("a host of 4 workers holds ≤ 3 Redis connections",
            f"{shared['redis_connections']} (independent: {alone['redis_connections']})",
            shared["redis_connections"] <= 3)  # fmt: skip
        per_entry = shared["bytes_per_entry_per_host"]
        every_w = [r["bytes_per_entry_per_host"] for (m, _), r in runs.items() if m == "shared"]
        revoked = results["host_share"]["settings"]["revoked"]
        add(f"memory per revoked entry per host ≤ 64 B, at {revoked:,} entries (all W)",
            f"{min(every_w):.0f} to {max(every_w):.0f} B; at 4 workers {per_entry:.0f} B: the "
            f"table {shared['table_bytes_per_entry']:.0f} B and the workers' heap "
            f"{shared['uss_kept_mib']:.1f} MiB, a fixed cost, over the entries "
            f"(independent: {alone['bytes_per_entry_per_host']:.0f} B)",
            max(every_w) <= 64)  # fmt: skip
        scale = [
            r for r in results["host_share"].get("memory_at_scale", []) if r["mode"] == "shared"
        ]
        if scale:
            figures = [r["bytes_per_entry_per_host"] for r in scale]
            add(f"the same at {scale[0]['revoked']:,} entries (all W)",
                f"{min(figures):.0f} to {max(figures):.0f} B, of which the table "
                f"{scale[0]['table_bytes_per_entry']:.0f} B", max(figures) <= 64)  # fmt: skip
        if "warm_vs_in_process" in shared:
            add(*_warm_paired(runs, shared, alone))
        else:  # results from before the paired measurement
            ratio = shared["warm_verify_ns"] / alone["warm_verify_ns"]
            add("warm verify ≤ 1.2 x in-process (4 workers)",
                f"{ratio:.2f} x ({shared['warm_verify_ns']:.0f} against "
                f"{alone['warm_verify_ns']:.0f} ns)", ratio <= 1.2)  # fmt: skip
    if shared and single and "single_process_ms" in shared.get("handoff", {}):
        shared_ms = shared["handoff"]["every_worker_ms"]
        single_ms = shared["handoff"]["single_process_ms"]
        apart = single["handoff"]["every_worker_ms"]
        every, one = shared_ms["p99"], single_ms["p99"]
        add("propagation p99 to every worker ≤ single process + 1 ms (4 workers; hand-off: "
            "the revocation in every worker's reach, nobody polling; the single process "
            "follows beside the host, the same revocations)",
            f"{every:.1f} ms against {one:.1f} ms (p50 {shared_ms['p50']:.1f} against "
            f"{single_ms['p50']:.1f}; excess per round p50 / p99 "
            f"{shared['handoff']['beyond_single_process_ms']['p50']:.1f} / "
            f"{shared['handoff']['beyond_single_process_ms']['p99']:.1f}; the 1-worker run "
            f"alone: {apart['p99']:.1f} ms)",
            every <= one + 1)  # fmt: skip
    if shared and "single_process_ms" in shared["propagation"]:
        probed = shared["propagation"]
        every, one = probed["every_worker_ms"]["p99"], probed["single_process_ms"]["p99"]
        alone_p99 = f"{single['propagation']['every_worker_ms']['p99']:.1f}" if single else "-"
        add("the same, seen by probes (every worker, and the single process beside, polling "
            "verify() each ms)",
            f"{every:.1f} ms against {one:.1f} ms (p50 {probed['every_worker_ms']['p50']:.1f} "
            f"against {probed['single_process_ms']['p50']:.1f}; of which the hand-off "
            f"{probed['handoff_every_worker_ms']['p99']:.1f} and the probe's own delay "
            f"{probed['probe_delay_ms']['p99']:.1f}; the 1-worker run alone: {alone_p99} ms)",
            every <= one + 1)  # fmt: skip
        if "single_process_applied_ms" in probed:
            reach = probed["handoff_every_worker_ms"]["p99"]
            applied = probed["single_process_applied_ms"]["p99"]
            add("the same under the probes' load, without the probes' own delay (in every "
                "worker's reach: the host's table written; the single process: its apply)",
                f"{reach:.1f} ms against {applied:.1f} ms (p50 "
                f"{probed['handoff_every_worker_ms']['p50']:.1f} against "
                f"{probed['single_process_applied_ms']['p50']:.1f})",
                reach <= applied + 1)  # fmt: skip
    elif shared and single:  # results from before the reference probed too
        every = shared["propagation"]["every_worker_ms"]["p99"]
        one = single["propagation"]["every_worker_ms"]["p99"]
        add("the same, seen by probes (every worker polling verify() each ms)",
            f"{every:.1f} ms against {one:.1f} ms", every <= one + 1)  # fmt: skip
    cpu = {w: r["cpu"]["workers_cpu_ms_per_event"] for (m, w), r in runs.items() if m == "shared"}
    if len(cpu) > 1:
        low, high = min(cpu), max(cpu)
        ratio = cpu[high] / cpu[low] if cpu[low] else float("inf")
        shown = ", ".join(f"{w}: {v:.3f}" for w, v in sorted(cpu.items()))
        add("CPU per event per host independent of the worker count",
            f"ms per event by workers {shown} ({ratio:.2f} x from {low} to {high})",
            ratio <= 1.5)  # fmt: skip
    return table(["target (issue 22)", "measured", "verdict"], rows, 3)


def _warm_paired(
    runs: dict[tuple[str, int], Report], shared: Report, alone: Report
) -> tuple[str, str, bool]:
    """Warm verify against in-process, paired in each worker (bench._host_worker ``pair``):
    the median worker's ratio at 4 workers, every W's, and the control's."""
    ratio = shared["warm_vs_in_process"]
    every = {w: r["warm_vs_in_process"] for (m, w), r in runs.items() if m == "shared"}
    controls = [r["warm_vs_in_process"] for (m, _), r in runs.items() if m != "shared"]
    this, in_process = sorted(shared["warm_paired_ns_each"], key=lambda p: p[0] / p[1])[
        (len(shared["warm_paired_ns_each"]) - 1) // 2
    ]
    measured = (
        f"{ratio:.2f} x, the median worker's ({this:.0f} against {in_process:.0f} ns in the "
        f"same process, batch for batch); workers {min(shared['warm_vs_in_process_each']):.2f}"
        f" to {max(shared['warm_vs_in_process_each']):.2f} x; by W "
        + ", ".join(f"{w}: {v:.2f} x" for w, v in sorted(every.items()))
        + f"; the control (in-process against in-process) {min(controls):.2f} to "
        f"{max(controls):.2f} x"
    )
    return "warm verify ≤ 1.2 x in-process (4 workers, paired)", measured, ratio <= 1.2


def spec(rows: Callable[[Results], Sequence[Report]], *cells: Column) -> Callable[[Results], str]:
    """A table of ``cells`` over the rows ``rows`` picks from the results."""
    return lambda results: columns(rows(results), cells)


# --- the document -----------------------------------------------------------------------------

COLD_START: list[Column] = [
    ("verifiers", "{verifiers:,}"),
    ("revoked sessions", "{state_revocations:,}"),
    ("ready after p50 / p99 / max s", stats("ready_s", 2)),
    ("never ready", "{never_ready}"),
    ("replica CPU s", "{replica[cpu_s]:.2f}"),
    ("replica CPU ms / verifier", "{cpu_ms:.1f}"),
    ("primary CPU s", "{others[primary][cpu_s]:.2f}"),
    ("failover", "{failover}"),
    ("replica out MB (kB / verifier)", "{out_mb:.1f} ({out_kb:.0f})"),
    ("replica peak used MiB", "{peak_mib:.1f}"),
    ("connections accepted", "{replica_connections_accepted}"),
    ("connections after: replica / primary `GET` / first sentinel `SENTINEL SLAVES`", "{held}"),
    ("snapshots / read errors", "{status_after[snapshots]} / {status_after[read_errors]}"),
    ("follower processes CPU s", "{process_cpu_s[followers]:.1f}"),
    ("wall s", "{wall_s:.1f}"),
]  # fmt: skip

TABLES: dict[str, Callable[[Results], str]] = {
    "machine": machine,
    "targets": targets,
    "verify_cost": spec(
        verify_cost_rows,
        ("check per request", "{name}"),
        ("Redis client", "{client}"),
        ("best µs", "{best_us:.2f}"),
        ("median µs", "{median_us:.2f}"),
        ("÷ jwt.decode, best / median", "{best_us_decode:.2f} / {median_us_decode:.2f}"),
        ("÷ warm verify, best / median", "{best_us_warm:.1f} / {median_us_warm:.1f}"),
        ("calls per repeat", "{calls_per_repeat}"),
        ("repeats", "{repeats}"),
    ),
    "verify_cost.setup": spec(
        lambda r: [r["verify_cost"] | r["verify_cost"]["environment"]],
        ("access token", "{token_bytes} bytes, Ed25519"),
        ("event loop", "{event_loop}"),
        ("redis-py (hiredis)", "{redis_py} ({hiredis})"),
        (
            "RESP parser, sync / asyncio client",
            "`{redis_parsers[sync]}` / `{redis_parsers[asyncio]}`",
        ),
        ("PyJWT", "{pyjwt}"),
    ),
    "sidecar_throughput": spec(
        sidecar_rows,
        ("server", "{label} (`{name}`)"),
        ("req/s (median round)", "{requests_per_s:,.0f}"),
        ("every round, req/s", "{every}"),
        ("p50 / p99 / max ms", stats("latency_ms", 2)),
        ("all 200", "{ok} ({statuses})"),
        ("CPU s server / redis", "{median[server_cpu_s]:.1f} / {median[redis_cpu_s]:.1f}"),
        ("server CPU µs/request", "{median[server_cpu_us_per_request]:.1f}"),
        ("sidecar ÷ this (req/s)", "{vs_sidecar:.2f}"),
        ("request lines logged", "{request_lines_logged}"),
        ("command", "`{command}`"),
    ),
    "sidecar_throughput.load": spec(
        lambda r: [r["sidecar_throughput"]["load"]],
        ("load", "`wrk -t{threads} -c{connections} -d{duration_s}s --latency`"),
        ("rounds, servers interleaved", "{rounds}"),
    ),
    "gateway_throughput": spec(
        gateway_rows,
        ("path", "{label}"),
        ("req/s", "{requests_per_s:,.0f}"),
        ("p50 / p99 ms", "{latency_ms[p50]:.2f} / {latency_ms[p99]:.2f}"),
        ("all 200", "{ok}"),
        ("CPUs busy", "{busy}"),
    ),
    "gateway_throughput.ratios": spec(
        lambda r: [{"name": k, "value": v} for k, v in r["gateway_throughput"]["ratios"].items()],
        ("req/s ratio, median rounds", "{name}"),
        ("", "{value:.2f}"),
    ),
    "issuer_throughput": spec(
        issuer_rows,
        ("phase", "{phase}"),
        ("concurrency", "{concurrency}"),
        ("requests", "{requests}"),
        ("req/s", "{requests_per_s:,.1f}"),
        ("latency p50 / p99 / max ms", stats("latency_ms")),
        ("all 200", "{ok}"),
        (
            "CPU s issuer / redis / client",
            "{issuer_cpu_s:.1f} / {redis_cpu_s:.1f} / {client_cpu_s:.1f}",
        ),
        ("req/s ÷ refresh's", "{vs_refresh:.3f}"),
        ("issuer command", "`{variables} {issuer_command}`"),
    ),
    "login_saturation": spec(
        login_saturation_rows,
        ("password queue", "{config}"),
        ("places", "{queue}"),
        ("logins/s", "{rate}"),
        ("200 / 503 / timed out", "{answers}"),
        ("login p50 / p99 ms", "{login}"),
        (
            "verify p50 / p99 ms",
            "{meanwhile[verify_ms][p50]:.2f} / {meanwhile[verify_ms][p99]:.2f}",
        ),
        (
            "readyz p50 / p99 ms",
            "{meanwhile[readyz_ms][p50]:.2f} / {meanwhile[readyz_ms][p99]:.2f}",
        ),
    ),
    "login_round_trips": spec(
        login_round_trips_rows,
        ("delay to Redis, one way ms", "{delay:g}"),
        ("clients", "{clients}"),
        ("path", "{path}"),
        ("round trips", "{round_trips}"),
        ("logins/s", "{logins_per_s:,.1f}"),
        ("login p50 / p99 ms", "{login_ms[p50]:.2f} / {login_ms[p99]:.2f}"),
        ("new vs old: logins/s ratio / p50 / p99 speed-up", "{ratio}"),
    ),
    "issuer_throughput.argon2": spec(
        argon2_rows,
        ("parameters", "{name}"),
        ("settings", "{settings}"),
        ("wall ms best / median", "{wall_ms[best]:.2f} / {wall_ms[median]:.2f}"),
        ("CPU ms best / median", "{cpu_ms[best]:.2f} / {cpu_ms[median]:.2f}"),
        ("logins/s if argon2 alone had every CPU", "{logins:.1f}"),
    ),
    "memory_snapshot.time": spec(
        memory_rows,
        ("revoked sessions", "{revoked_sessions:,}"),
        (
            "snapshot + merge s, best / median",
            "{snapshot_merge_s[best]:.3f} / {snapshot_merge_s[median]:.3f}",
        ),
        ("median repeat s", "{total_s:.3f}"),
        (
            "= Redis: Lua scripts s (their ZRANGEBYSCORE, median)",
            "{redis_lua_s:.3f} ({lua_zrangebyscore_s[median]:.3f})",
        ),
        ("pages (longest one's Lua ms, median)", "{pages_cell}"),
        ("+ transfer + RESP parse s", "{transfer_and_parse_s:.3f}"),
        ("+ build Snapshot s", "{build_snapshot_s:.3f}"),
        ("+ merge s", "{merge_s:.3f}"),
        ("Redis / Python share (median)", "{redis_share:.0%} / {python_share:.0%}"),
        ("Verifier.start() s", "{verifier_start_s:.3f}"),
        ("reply MB", "{reply_mb:.1f}"),
    ),
    "memory_snapshot.memory": spec(
        memory_rows,
        ("revoked sessions", "{revoked_sessions:,}"),
        ("bytes/entry, cache (tracemalloc)", "{tracemalloc_bytes_per_entry:.0f}"),
        ("cache MiB", "{tracemalloc_retained_bytes:.1f}"),
        ("of which dict bytes/entry", "{dict_per_entry:.0f}"),
        ("bytes/entry, RSS growth", "{rss_bytes_per_entry:.0f}"),
        ("peak RSS MiB", "{vm_hwm_bytes:.0f}"),
        ("peak traced MiB (bootstrap)", "{tracemalloc_peak_bytes:.0f}"),
        ("one prune() pass ms", "{prune_ms:.1f}"),
    ),
    "propagation.reply": spec(
        propagation_rows,
        ("action", "{action}"),
        ("verifiers", "{verifiers}"),
        ("samples", "{samples}"),
        ("p50 / p99 / max ms", stats("latency_ms")),
        ("all verifiers, p50 / p99 / max", stats("slowest_per_round_ms")),
        ("before reply", "{applied_before_reply}/{samples}"),
    ),
    "propagation.request": spec(
        propagation_rows,
        ("action", "{action}"),
        ("verifiers", "{verifiers}"),
        ("samples", "{samples}"),
        ("p50 / p99 / max ms", stats("from_request_ms")),
        ("all verifiers, p50 / p99 / max", stats("slowest_per_round_from_request_ms")),
        ("call HTTP", stats("revoke_http_ms")),
    ),
    "propagation.cpu": spec(
        propagation_rows,
        ("action", "{action}"),
        ("verifiers", "{verifiers}"),
        ("CPU ms per round: verifier processes", "{cpu_ms_per_round[verifiers]:.1f}"),
        ("issuer", "{cpu_ms_per_round[issuer]:.1f}"),
        ("redis-server", "{cpu_ms_per_round[redis]:.1f}"),
        ("client", "{cpu_ms_per_round[client]:.1f}"),
        ("all", "{cpu:.1f}"),
        ("least wall ms per round, on every CPU", "{wall:.1f}"),
    ),
    "pubsub": spec(
        pubsub_rows,
        ("subscribers", "{subscribers}"),
        ("transport", "{name}"),
        ("samples", "{samples}"),
        ("from request, p50 / p99 / max ms", stats("from_request_ms")),
        ("all subscribers, from request", stats("slowest_per_round_from_request_ms")),
        ("from reply, p50 / p99 / max ms", stats("from_reply_ms")),
        ("publish RTT p50 ms", "{publish_rtt_ms[p50]:.3f}"),
        ("received before reply", "{received_before_reply}/{samples}"),
        ("p99 from request ÷ Pub/Sub's", "{vs:.2f}"),
    ),
    "topologies": spec(
        topology_rows,
        ("topology", "{topology}"),
        ("verifiers read", "{reads}"),
        ("partitions", "{partitions}"),
        ("WAIT for", "{min_replicas}"),
        ("verifier processes", "{processes}"),
        ("samples", "{samples}"),
        (
            "all verifiers applied, from request: p50 / p99 / max ms",
            stats("slowest_per_round_from_request_ms"),
        ),
        ("each verifier, from request", stats("from_request_ms")),
        ("each verifier, from reply", stats("latency_ms")),
        ("ack: logout HTTP", stats("revoke_http_ms")),
        ("ack: script + WAIT alone", stats("revoke_call_ms")),
    ),
    "replica_cost": spec(
        replica_cost_rows,
        ("followers", "{verifiers}"),
        ("idle µs / follower / s", "{idle_us_per_verifier_s:.0f}"),
        (
            "idle reads / checks per follower per s",
            "{idle_reads_per_verifier_s:.2f} / {idle_checks_per_verifier_s:.2f}",
        ),
        ("idle bytes / follower / s", "{idle_bytes_per_verifier_s:.0f}"),
        ("µs / read / check", "{cpu_us_per_read:.0f} / {cpu_us_per_check:.0f}"),
        ("paced: µs / follower / event", "{paced[us_per_verifier_per_event]:.1f}"),
        (
            "reads / checks per follower per event",
            "{paced[reads_per_verifier_per_event]:.2f}"
            " / {paced[checks_per_verifier_per_event]:.2f}",
        ),
        ("bytes / follower / event", "{paced[bytes_per_verifier_per_event]:.0f}"),
        ("bursts: µs / follower / event", "{bursts[us_per_verifier_per_event]:.1f}"),
        ("µs / entry delivered", "{bursts[cpu_us_per_entry]:.1f}"),
        ("bytes / entry delivered", "{bursts[bytes_per_entry]:.0f}"),
        ("paced: measured ÷ model", "{paced[measured_over_predicted]:.2f}"),
        ("paced: all applied, from request p50 / p99 / max ms", stats("applied", 2)),
    ),
    "replica_cost.phases": spec(
        lambda r: r["replica_cost"]["runs"],
        ("followers", "{verifiers}"),
        ("replica CPU %, idle", "{idle[replica][cpu_percent]}"),
        ("paced", "{paced[replica][cpu_percent]}"),
        ("bursts", "{bursts[replica][cpu_percent]}"),
        ("revocations, paced", "{paced[events]}"),
        ("bursts", "{bursts[events]}"),
    ),
    "replica_fanout.cold_start": spec(
        lambda r: cold_rows(
            [
                r["replica_fanout"]["cold_start"]
                | {"state_revocations": r["replica_fanout"]["state_revocations"]}
            ]
        ),
        *COLD_START,
    ),
    "replica_fanout": spec(
        fanout_rows,
        ("phase", "{name}"),
        ("revocations", "{events}"),
        ("replica CPU %", "{replica[cpu_percent]:.1f}"),
        ("replica CPU ÷ model", "{model:.2f}"),
        ("replica out MB/s", "{out_mb_s:.2f}"),
        ("bytes / event / follower", "{per_event}"),
        ("replica used MiB", "{used_mib:.1f}"),
        ("of which client buffers MiB", "{buffers_mib:.1f}"),
        ("replica connections", "{replica[clients][connected_clients]}"),
        (
            "all followers applied, from request p50 / p99 / max ms",
            stats("all_applied_from_request_ms", 2),
        ),
        ("ack (script + WAIT) p50 / p99 / max ms", stats("ack_ms", 2)),
        ("not durable / failed calls", "{not_durable} / {failed}"),
        ("never applied", "{missing_events}"),
        ("min ready / worst staleness s", "{ready}"),
        ("follower processes, CPUs busy", "{busy:.2f}"),
    ),
    "replica_fanout.model": spec(
        lambda r: [vars(Fit.from_report(r["replica_cost"]))],
        ("replica CPU per read", "{cpu_us_per_read:.0f} µs"),
        ("per status check", "{cpu_us_per_check:.0f} µs"),
        ("per entry delivered to one follower", "{cpu_us_per_entry:.1f} µs"),
        ("fitted on the `replica_cost.json` run with", "{verifiers} followers"),
    ),
    "cold_start": spec(lambda r: cold_rows(r["cold_start"]["runs"]), *COLD_START),
    "receipts.wait": spec(
        lambda r: r["receipts"]["wait"],
        ("live verifiers", "{live_verifiers}"),
        ("block ?wait=5, spaced", stats("block_wait_ms.spaced", 1)),
        ("back to back", stats("block_wait_ms.back_to_back", 1)),
        ("slowest verifier's delay", stats("delay_max_ms", 1)),
        ("`revocast block --wait 5`", stats("cli_block_wait_ms", 1)),
    ),
    "host_share.targets": host_share_targets,
    "host_share": spec(
        host_share_rows,
        ("workers", "{workers}"),
        ("mode", "{mode}"),
        ("Redis connections", "{redis_connections}"),
        ("kept heap MiB", "{uss_kept_mib:.1f}"),
        ("table MiB", "{table_mib:.2f}"),
        ("B / revoked entry / host", "{bytes_per_entry_per_host:.0f}"),
        ("warm verify ns", "{warm_verify_ns:.0f}"),
        ("warm verify / in-process, paired", "{warm_vs_in_process:.2f}"),
        ("hand-off to every worker ms", stats("handoff.every_worker_ms", 1)),
        ("single process beside ms", stats("handoff.single_process_ms", 1)),
        ("XADD to applied ms", stats("handoff.xadd_to_applied_ms", 1)),
        ("probed: to each worker ms", stats("propagation.each_worker_ms", 1)),
        ("probed: to every worker ms", stats("propagation.every_worker_ms", 1)),
        ("probed: of which hand-off ms", stats("propagation.handoff_every_worker_ms", 1)),
        ("probed: probe's delay ms", stats("propagation.probe_delay_ms", 1)),
        ("probed: single process beside ms", stats("propagation.single_process_ms", 1)),
        ("workers' CPU ms / event", "{cpu[workers_cpu_ms_per_event]:.3f}"),
        ("Redis CPU ms / event", "{cpu[redis_cpu_ms_per_event]:.3f}"),
    ),
    "host_share.scale": spec(
        host_share_scale_rows,
        ("workers", "{workers}"),
        ("mode", "{mode}"),
        ("revoked entries", "{revoked:,}"),
        ("kept heap MiB", "{uss_kept_mib:.1f}"),
        ("table MiB", "{table_mib:.2f}"),
        ("B / revoked entry / host", "{bytes_per_entry_per_host:.0f}"),
        ("of which the table", "{table_bytes_per_entry:.0f}"),
    ),
    "receipts.cost": spec(
        receipts_cost_rows,
        ("run", "{run}"),
        ("ready", "{of[ready]} of {of[verifiers]}"),
        ("revocations / s", "{rate_per_s:g}"),
        ("server CPU", "{server_cpu_percent:.1f} %"),
        ("CPU µs / verifier / s", "{server_cpu_us_per_verifier_s:.1f}"),
        ("receipt commands / verifier / s", "{receipt_commands_per_verifier_s:.2f}"),
        ("their µs / verifier / s", "{receipt_usec_per_verifier_s:.2f}"),
    ),
    "status_list": spec(
        status_list_rows,
        ("tokens (indexes drawn)", "{tokens:,}"),
        ("INVALID", "{invalid_share:.1%}"),
        ("raw list KiB (padded)", "{raw_kib:,.0f}"),
        ("Status List Token KiB", "{token_kib:,.1f}"),
        ("ZLIB KiB (at level 9: KiB, ms)", "{zlib_kib:,.1f} ({l9_kib:,.1f}, {level9[ms]:.0f})"),
        ("made in ms (median)", "{ms[total]:.1f}"),
        ("of which Redis read / pad + ZLIB + sign", "{ms[read]:.1f} / {ms[pad_compress_sign]:.1f}"),
        ("Redis: bitmap KiB / leases MiB", "{bits_kib:,.0f} / {leases_mib:,.1f}"),
    ),
}


def generate(name: str, results: Results) -> str:
    kind, _, file = name.partition(":")
    if kind == "run" and file in results:
        return run_line(results[file], file)
    if kind == "settings" and file in results:
        return settings(results[file])
    if name in TABLES:
        return TABLES[name](results)
    raise SystemExit(f"BENCHMARKS.md names a table this report does not know: {name}")


def render(document: str, results: Results) -> str:
    """The document with every marked table regenerated, and the rest as written."""
    shown = {m["name"].partition(":")[2] for m in MARKER.finditer(document)}
    if missing := sorted(set(results) - shown):
        raise SystemExit(f"BENCHMARKS.md has no run line for {', '.join(missing)}")
    return MARKER.sub(lambda m: m[1] + generate(m["name"], results) + "\n" + m[3], document)


def unlike_all(results: Results) -> list[str]:
    """Results whose command is not the one ``bench.all`` runs (which the document promises)."""
    return [
        f"{name}.json was made by `{report['command']}`, not by bench.all's `{expected}`"
        for name, report in results.items()
        if (expected := shlex.join([PYTHON, "-m", f"bench.{name}", *BENCHMARKS.get(name, ["?"])]))
        != report["command"].removesuffix(" --no-wait").replace(" --no-wait ", " ")
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of JSON results")
    parser.add_argument("--document", type=Path, default=DOCUMENT, help="the Markdown to fill")
    args = parser.parse_args(argv)
    results = {p.stem: json.loads(p.read_text()) for p in sorted(args.results.glob("*.json"))}
    document = args.document.read_text()
    updated = render(document, results)
    for problem in (problems := unlike_all(results)):
        print(problem, file=sys.stderr)
    if args.check:
        if updated != document:
            sys.exit(f"{args.document} is out of date: run .venv/bin/python -m bench.report")
        if problems:
            sys.exit(1)
        print(f"{args.document} is up to date with {len(results)} result files")
    elif updated != document:
        args.document.write_text(updated)
        print(f"updated {args.document} from {len(results)} result files")


if __name__ == "__main__":
    main()
