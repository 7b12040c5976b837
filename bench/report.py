"""Write BENCHMARKS.md from the benchmark results in ``bench/results/*.json``.

Reproduce from the repository root::

    .venv/bin/python -m bench.report

Every figure in the document is read from those JSON files; only the prose is written here.
The machine section also reads ``nproc`` and ``/proc/cpuinfo`` when the report is generated,
and says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
OUT = ROOT / "BENCHMARKS.md"

Report = dict[str, Any]
Stats = dict[str, float]


# --- formatting ---------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    """A Markdown table; columns from ``right_from`` on are right-aligned (figures)."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def ms3(stats: Stats) -> str:
    """p50 / p99 / max in ms."""
    return f"{stats['p50']:.3f} / {stats['p99']:.3f} / {stats['max']:.3f}"


def code(text: str) -> str:
    return f"`{text}`"


def source(path: Path) -> str:
    return code(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path))


def run_line(report: Report, path: Path, default_command: str) -> str:
    run_at = report.get("run_at")
    when = str(run_at) if run_at else "not recorded in the JSON"
    command = report.get("command")
    shown = code(str(command)) if command else f"{code(default_command)} (command not recorded)"
    return f"Run {when}, results in {source(path)}. Reproduce with {shown}."


def notes_pointer(path: Path) -> str:
    return f"The full notes on method are in the JSON's `notes` ({source(path)})."


# --- machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def nproc() -> str:
    try:
        return subprocess.run(
            ["nproc"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine(reports: Sequence[tuple[Path, Report]], generated: str) -> str:
    rows = []
    for path, report in reports:
        env = report.get("environment", {})
        cpus = str(env.get("cpus", "?"))
        if "cpus_usable" in env:
            cpus += f" ({env['cpus_usable']} usable)"
        load = "-"
        if "loadavg_before" in env:
            load = f"{env['loadavg_before'][0]} → {env['loadavg_after'][0]}"
        git = env.get("git", {})
        commit = (git.get("commit") or "-")[:10]
        if git.get("package_files_uncommitted"):
            commit += f" (+{git['package_files_uncommitted']} uncommitted)"
        rows.append(
            [
                code(path.name),
                str(report.get("run_at", "-")),
                str(env.get("python", "?")),
                str(env.get("platform", "?")),
                cpus,
                str(env.get("redis_server", "?")),
                load,
                commit,
            ]
        )
    header = ["results", "run at", "Python", "platform", "CPUs", "Redis", "load 1 min", "commit"]
    return "\n".join(
        [
            "## Machine",
            "",
            "As recorded by each benchmark in its JSON `environment` (CPUs = `os.cpu_count()`; "
            "load = 1-minute load average before → after the run, where recorded; commit = "
            "git HEAD, where recorded):",
            "",
            table(header, rows, right_from=len(header)),
            "",
            f"Read when this document was generated ({generated}), not by the benchmarks: "
            f"`nproc` {nproc()}, CPU model {code(cpu_model())} (`/proc/cpuinfo`). "
            "All processes share the host; nothing is pinned to a CPU.",
        ]
    )


# --- verify_cost --------------------------------------------------------------------------


def verify_cost(path: Path, report: Report) -> str:
    results: dict[str, dict[str, Any]] = report["results"]
    base = results["jwt.decode"]
    rows = [
        [
            name,
            f"{r['best_us']:.1f}",
            f"{r['median_us']:.1f}",
            f"{r['best_us'] / base['best_us']:.2f}",
            f"{r['median_us'] / base['median_us']:.2f}",
        ]
        for name, r in results.items()
    ]
    header = ["call", "best µs", "median µs", "vs jwt.decode (best)", "vs jwt.decode (median)"]
    repeats = len(base["repeats_us"])
    return "\n".join(
        [
            "## Verify cost",
            "",
            run_line(report, path, ".venv/bin/python -m bench.verify_cost"),
            "",
            table(header, rows),
            "",
            f"Mean time per call over a `timeit` repeat; best and median of {repeats} repeats, "
            f"one {report['token_bytes']}-byte access token for every case. "
            "`Verifier.verify` runs against a started Verifier (key from Redis, revocation "
            "cache in memory; no I/O in the call). *First sight* parses the token and checks "
            "signature and claims (a verifier with the memo off), as on a token's first "
            "request; *warm* is every later request: the memo lookup, the expiry check and the "
            "revocation look-ups, which run on every call. `jwt.decode` is plain PyJWT with "
            "the same key, algorithm, audience and "
            "issuer, no revocation check: the ratio is the cost of revocast's check against it. "
            "`Ed25519 signature only` is the floor for any local JWT check. " + notes_pointer(path),
        ]
    )


# --- propagation, one process -------------------------------------------------------------


def propagation_in_process(path: Path, report: Report) -> str:
    rows = [
        [
            str(r["verifiers"]),
            str(r["samples"]),
            ms3(r["latency_ms"]),
            ms3(r["slowest_per_round_ms"]),
            ms3(r["from_request_ms"]),
            f"{r['applied_from_request_ms']['p50']:.3f}",
            f"{r['logout_http_ms']['p50']:.3f}",
            f"{r['applied_before_response']}/{r['samples']}",
        ]
        for r in report["runs"]
    ]
    header = [
        "verifiers",
        "samples",
        "from reply, p50 / p99 / max ms",
        "all verifiers, from reply",
        "from request, p50 / p99 / max ms",
        "applied from request p50",
        "logout HTTP p50",
        "applied before reply",
    ]
    return "\n".join(
        [
            "## Propagation, one process (logout)",
            "",
            run_line(report, path, ".venv/bin/python -m bench.propagation --verifiers 1 4"),
            "",
            table(header, rows),
            "",
            "Issuer (uvicorn), client and N Verifiers share one Python process and one asyncio "
            "event loop; redis-server is a separate process. Per round a user logs in (not "
            "timed), then `POST /v1/logout`; the client polls `verify()` on every verifier "
            "(yielding between polls) until it raises `session_revoked`.",
            "",
            "- *From reply*: from `POST /v1/logout` returning to the client to the end of the "
            "rejecting `verify()` call. The event is XADDed inside the logout's Lua script, "
            "so it is usually applied before the HTTP reply arrives (last column): these "
            "samples measure the poll's own cost, not the propagation.",
            "- *From request*: from just before the logout request was sent; includes the "
            "whole HTTP round trip, so it is the upper bound. *Applied from request* is when "
            "the follower applied the event, from the same start.",
            "- *All verifiers*: per round, the last verifier to reject.",
            "- " + notes_pointer(path),
        ]
    )


# --- propagation, separate processes ------------------------------------------------------


def call_http(run: Report) -> Stats:
    # Results written before --action existed call it logout_http_ms.
    stats: Stats = run.get("revoke_http_ms") or run["logout_http_ms"]
    return stats


def propagation_processes(path: Path, report: Report) -> str:
    runs: list[Report] = report["runs"]
    for run in runs:
        run.setdefault("action", "logout")
    actions = ["logout", "block"]
    runs = sorted(
        runs,
        key=lambda r: (
            actions.index(r["action"]) if r["action"] in actions else len(actions),
            r["mode"] != "worker",
            r["verifiers"],
        ),
    )
    env = report["environment"]
    cpus = env.get("cpus_usable") or env["cpus"]
    most = max(run["verifiers"] for run in runs)
    modes = sorted({run["mode"] for run in runs}, key=("worker", "sidecar").index)

    reply_rows = []
    request_rows = []
    for run in runs:
        key = [run["action"], run["mode"], str(run["verifiers"]), str(run["samples"])]
        before = run.get("applied_before_reply")
        reply_rows.append(
            [
                *key,
                ms3(run["latency_ms"]),
                ms3(run["slowest_per_round_ms"]),
                "-" if before is None else f"{before}/{run['samples']}",
            ]
        )
        request_rows.append(
            [
                *key,
                ms3(run["from_request_ms"]),
                ms3(run["slowest_per_round_from_request_ms"]),
                ms3(call_http(run)),
            ]
        )
    key_header = ["action", "mode", "verifiers", "samples"]
    reply_table = table(
        [*key_header, "p50 / p99 / max ms", "all verifiers, p50 / p99 / max", "before reply"],
        reply_rows,
        right_from=2,
    )
    request_table = table(
        [*key_header, "p50 / p99 / max ms", "all verifiers, p50 / p99 / max", "call HTTP"],
        request_rows,
        right_from=2,
    )

    lines = [
        "## Propagation, separate processes",
        "",
        run_line(report, path, ".venv/bin/python -m bench.propagation_processes"),
        "",
        "redis-server, the issuer (`revocast issuer`: uvicorn on uvloop), the client and each "
        "verifier are separate OS processes on this host. Actions: *logout* times "
        "`POST /v1/logout` with the session's own token (verifiers must answer "
        "`session_revoked`); *block* times a moderator's "
        "`POST /v1/admin/users/{uid}/block` against a user holding a fresh session (verifiers "
        "must answer `user_revoked`; the target is unblocked and logs in again before each "
        "round, untimed; the moderator's own token stays valid throughout).",
        "",
    ]
    headline = [
        r for r in runs if r["action"] == "block" and r["mode"] == "worker" and r["verifiers"] == 2
    ]
    for r in headline:
        lines += [
            f"Block with 2 verifier processes, until both reject the target's token "
            f"(p50 / p99 / max over {r['rounds']} rounds): "
            f"{ms3(r['slowest_per_round_ms'])} ms from the block call's reply, "
            f"{ms3(r['slowest_per_round_from_request_ms'])} ms from its request.",
            "",
        ]
    lines += [
        "From the timed call's reply (client's clock read right after the reply):",
        "",
        reply_table,
        "",
        "From just before the timed request was sent; *call HTTP* is the timed call's own "
        "round trip:",
        "",
        request_table,
        "",
        "- Mode *worker*: each verifier process is a real `Verifier` whose follower is "
        "wrapped; the sample ends when the stream batch that makes the watched token "
        "rejected has been applied (`verify()` rejects it from then on; confirmed with "
        "`verify()` and the expected code). `time.monotonic()` is one clock for all "
        "processes on Linux (checked by a ping exchange before each run). No polling: the "
        "verifiers sleep in `XREAD BLOCK`.",
    ]
    if "sidecar" in modes:
        lines.append(
            "- Mode *sidecar*: `revocast verifier` processes polled over `GET /verify` until "
            "the first 401; includes one `/verify` round trip and the polling load, so an "
            "upper bound."
        )
    lines += [
        "- *From reply* can be negative: the event is XADDed inside the call's Lua script, "
        "so a verifier can apply it before the issuer's HTTP reply reaches the client "
        "(*before reply* counts those samples). Such samples are real, not clock error.",
        "- *From request* adds the timed call's whole HTTP round trip: it is the upper bound "
        "on propagation from the XADD. The two figures bracket it.",
        "- *All verifiers*: per round, the last verifier to reject; the time until every "
        "verifier rejects the token.",
    ]
    if most > cpus:
        lines.append(
            f"- {most} verifier processes on {cpus} CPUs (plus Redis, the issuer and the "
            "client) is a contention test, not a deployment shape: the wake-ups compete with "
            "the issuer writing its reply, which also delays the reply and flatters the "
            "from-reply figures as N grows; the from-request figures have no such bias."
        )
    lines.append(
        "- The host may be shared with other work: see the load average in the machine table. "
        + notes_pointer(path)
    )
    return "\n".join(lines)


# --- the document -------------------------------------------------------------------------

Renderer = Callable[[Path, Report], str]
SECTIONS: list[tuple[str, str | None, Renderer]] = [
    ("verify_cost", None, verify_cost),
    ("propagation", "in-process", propagation_in_process),
    ("propagation", "processes", propagation_processes),
]


def render(reports: Sequence[tuple[Path, Report]], generated: str) -> str:
    parts = [
        "# Benchmarks",
        "",
        "Generated by `.venv/bin/python -m bench.report` from `bench/results/*.json`: every "
        "figure below is read from those files. Re-run a benchmark with its command, then "
        "regenerate this file. Latency percentiles are nearest-rank.",
        "",
        machine(reports, generated),
    ]
    done: set[Path] = set()
    for benchmark, mode, renderer in SECTIONS:
        for path, report in reports:
            if report.get("benchmark") == benchmark and report.get("mode") == mode:
                parts += ["", renderer(path, report)]
                done.add(path)
    for path, _ in reports:
        if path not in done:
            parts += ["", f"({source(path)} is not a benchmark this report knows how to show.)"]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of JSON results")
    parser.add_argument("--out", type=Path, default=OUT, help="Markdown output path")
    args = parser.parse_args(argv)
    paths = sorted(args.results.resolve().glob("*.json"))
    if not paths:
        parser.error(f"no results in {args.results}")
    reports = [(path, json.loads(path.read_text())) for path in paths]
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    args.out.write_text(render(reports, generated))
    print(f"wrote {args.out} from {len(reports)} result files")


if __name__ == "__main__":
    main()
