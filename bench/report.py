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

from bench import _report_gateway, _report_receipts, _report_scaling
from bench._markdown import (
    ROOT,
    Report,
    Stats,
    code,
    ms3,
    notes_pointer,
    run_line,
    source,
    table,
)

RESULTS = Path(__file__).resolve().parent / "results"
OUT = ROOT / "BENCHMARKS.md"


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
        quiet = env.get("quiet_wait")
        if quiet:
            waited = f"{quiet['waited_s']:.0f} s" if quiet.get("enabled") else "off"
            load += f" (waited {waited}{'' if quiet.get('quiet') else ', not quiet'})"
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
            "load = 1-minute load average before → after the run, where recorded, and how long "
            "the benchmark waited for it to fall below 1.0 before measuring; commit = git HEAD, "
            "where recorded, with the number of uncommitted files under `shared/` and "
            "`services/`):",
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
        "- Mode *worker*: each verifier process is a real `Verifier` with an `on_applied` "
        "hook; the sample ends when the stream batch that makes the watched token "
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
    for run in runs:
        cpu = run.get("cpu_ms_per_round")
        if cpu and run["verifiers"] == most and run["mode"] == "worker":
            total = sum(cpu.values())
            lines.append(
                f"- CPU per round, {run['action']} with {most} verifier processes: "
                f"{cpu['verifiers']:.1f} ms in the verifiers together, {cpu['issuer']:.1f} ms "
                f"issuer, {cpu['redis']:.1f} ms redis-server, {cpu['client']:.1f} ms client: "
                f"{total:.1f} ms of CPU per round on {cpus} CPUs, at least "
                f"{total / cpus:.1f} ms of wall time per round (`cpu_ms_per_round`)."
            )
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


# --- alternatives -------------------------------------------------------------------------


def alternatives(path: Path, report: Report) -> str:
    results: dict[str, dict[str, Any]] = report["results"]
    rows = [
        [
            name,
            (r["client"] if r.get("redis_call", True) else "none (no Redis call)"),
            f"{r['best_us']:.2f}",
            f"{r['median_us']:.2f}",
            f"{r['vs_warm_verify_best']:.1f}",
            f"{r['vs_warm_verify_median']:.1f}",
        ]
        for name, r in results.items()
    ]
    header = [
        "check per request",
        "Redis client",
        "best µs",
        "median µs",
        "x warm verify (best)",
        "x warm verify (median)",
    ]
    env = report["environment"]
    parsers = env.get("redis_parsers", {})
    repeats = len(next(iter(results.values()))["repeats_us"])
    return "\n".join(
        [
            "## The same check, the alternatives",
            "",
            run_line(report, path, ".venv/bin/python -m bench.alternatives"),
            "",
            table(header, rows, right_from=2),
            "",
            f"Mean time per call over a repeat; best and median of {repeats} repeats, cases "
            "interleaved, one process on uvloop, one private redis-server over loopback TCP "
            f"(redis-py {env.get('redis_py', '?')}, parsers: sync "
            f"{code(parsers.get('sync', '?'))}, asyncio {code(parsers.get('asyncio', '?'))}). "
            "The ratio is each case's time over revocast's warm verify (the hot path of every "
            "request after a token's first).",
            "",
            "- *jwt-redis* (npm `jwt-redis`): `jwt.decode` plus `EXISTS` of the token's `jti` "
            "key (set when a token is destroyed). **The sync-client row is the main figure**; "
            "the asyncio-client row is what an async server (the sidecar's shape) would pay.",
            "- *express-session / connect-redis*: `GET sess:<sid>` plus parsing the stored JSON "
            "session; no signature at all.",
            "- *flask-jwt-extended*: `jwt.decode` plus `SISMEMBER` of the `jti` in a blocklist "
            "set (10,000 revoked jtis).",
            "- *Redis EXISTS round trip alone*: the floor under every Redis-backed pattern on "
            "this host; *jwt.decode* alone: the floor under every JWT pattern.",
            "- " + notes_pointer(path),
        ]
    )


# --- sidecar throughput -------------------------------------------------------------------


def sidecar_throughput(path: Path, report: Report) -> str:
    results: dict[str, dict[str, Any]] = report["results"]
    side = results.get("sidecar")
    rows = []
    for name, r in results.items():
        lat = r["latency_ms"]
        statuses = sorted({k for run in r["rounds"] for k in run["statuses"]})
        chosen = next(run for run in r["rounds"] if run["round"] == r["median_round"])
        ratio = "1.00" if name == "sidecar" else "-"
        if side and name != "sidecar":
            ratio = f"{side['requests_per_s'] / r['requests_per_s']:.2f}"
        rows.append(
            [
                f"{r['label']} (`{name}`)",
                f"{r['requests_per_s']:,.0f}",
                f"{lat['p50']:.2f}",
                f"{lat['p99']:.2f}",
                f"{lat['max']:.2f}",
                ("yes" if r["all_200"] else "**no**") + f" ({', '.join(statuses)})",
                f"{chosen['server_cpu_s']:.1f} / {chosen['redis_cpu_s']:.1f}",
                f"{chosen['server_cpu_us_per_request']:.1f}"
                if "server_cpu_us_per_request" in chosen
                else "-",
                ratio,
                code(r["command"]),
            ]
        )
    header = [
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "all 200",
        "CPU s server / redis",
        "server CPU µs/request",
        "sidecar ÷ this (req/s)",
        "command",
    ]
    load = report["load"]
    rps_all = {
        name: " / ".join(f"{run['requests_per_s']:,.0f}" for run in r["rounds"])
        for name, r in results.items()
    }
    return "\n".join(
        [
            "## Sidecar throughput",
            "",
            run_line(report, path, ".venv/bin/python -m bench.sidecar_throughput"),
            "",
            table(header, rows, right_from=1),
            "",
            f"Load: `wrk -t{load['threads']} -c{load['connections']} -d{load['duration_s']}s "
            "--latency -H 'Authorization: Bearer <token>'` after a 2 s warm-up, "
            f"{load['rounds']} rounds with the servers interleaved; each row is the server's "
            "median round by requests/s (every round: "
            + "; ".join(f"`{name}` {v}" for name, v in rps_all.items())
            + "). Latency percentiles are wrk's (closed loop, at the throughput reached). "
            "*All 200*: a wrk Lua hook counted every status code; a row counts only if every "
            "answer was 200 with no socket errors (a sidecar answering 401 or 503 would be fast "
            "for the wrong reason). *CPU*: seconds of CPU the server process and redis-server "
            f"used during the {load['duration_s']} s run; *server CPU µs/request* divides the "
            "server's by the requests served, a figure that does not depend on how much CPU "
            "wrk left to the server.",
            "",
            "- Every server is its own process with the same command line shape (uvicorn, "
            "uvloop, httptools, one worker, log level warning, access log off), the apps in "
            "`bench/_asgi_apps.py`; the same warm token on every request (the sidecar's memo "
            "hit, see *Verify cost*).",
            "- Request lines found in each server's log after the runs (access log off, so "
            "none expected): "
            + ", ".join(f"`{n}` {r.get('request_lines_logged', '?')}" for n, r in results.items())
            + ".",
            "- *memo_exists* is the sidecar's own memoized verify plus one `EXISTS` of the "
            "session key per request (asyncio redis-py, hiredis); *seed* is `jwt.decode` plus "
            "the same `EXISTS`, no memo.",
            "- *sidecar_cli* is `revocast verifier` as shipped: `uvicorn.run` defaults, so the "
            "access log is enabled (its records are dropped by the level, but uvicorn still "
            "formats their arguments per request).",
            "- wrk, the server and redis-server share the 2 CPUs; nothing is pinned. "
            + notes_pointer(path),
        ]
    )


# --- memory and snapshot ------------------------------------------------------------------


def memory_snapshot(path: Path, report: Report) -> str:
    time_rows = []
    memory_rows = []
    for r in report["runs"]:
        split = r["split_of_median_repeat_s"]
        total = r["snapshot_merge_s"]
        time_rows.append(
            [
                f"{r['revoked_sessions']:,}",
                f"{total['best']:.3f} / {total['median']:.3f}",
                f"{split['total_s']:.3f}",
                f"{split['redis_lua_s']:.3f} ({r['lua_zrangebyscore_s']['median']:.3f})",
                f"{split['transfer_and_parse_s']:.3f}",
                f"{split['build_snapshot_s']:.3f}",
                f"{split['merge_s']:.3f}",
                f"{r['redis_share']:.0%} / {r['python_share']:.0%}",
                f"{r['verifier_start_s']:.3f}",
                f"{r['reply_bytes'] / 1e6:.1f}",
            ]
        )
        m = r["memory"]
        memory_rows.append(
            [
                f"{r['revoked_sessions']:,}",
                f"{m['tracemalloc_bytes_per_entry']:.0f}",
                f"{m['tracemalloc_retained_bytes'] / 2**20:.1f}",
                f"{m['dict_getsizeof_bytes'] / r['entries_in_snapshot']:.0f}",
                f"{m['rss_bytes_per_entry']:.0f}",
                f"{m['vm_hwm_bytes'] / 2**20:.0f}",
                f"{m['tracemalloc_peak_bytes'] / 2**20:.0f}",
                f"{r['prune_s'] * 1000:.1f}",
            ]
        )
    time_header = [
        "revoked sessions",
        "snapshot + merge s, best / median",
        "median repeat s",
        "= Redis: Lua script s (its ZRANGEBYSCORE, median)",
        "+ transfer + RESP parse s",
        "+ build Snapshot s",
        "+ merge s",
        "Redis / Python share (median)",
        "Verifier.start() s",
        "reply MB",
    ]
    memory_header = [
        "revoked sessions",
        "bytes/entry, cache (tracemalloc)",
        "cache MiB",
        "of which dict bytes/entry",
        "bytes/entry, RSS growth",
        "peak RSS MiB",
        "peak traced MiB (bootstrap)",
        "one prune() pass ms",
    ]
    return "\n".join(
        [
            "## Verifier bootstrap (snapshot) and memory per revoked session",
            "",
            run_line(report, path, ".venv/bin/python -m bench.memory_snapshot"),
            "",
            "Redis holds N revoked sessions in one partition (`<prefix>:{p0}:revoked:sessions`, "
            "forget-after an hour ahead, 27-character ids as the issuer makes them). A "
            "verifier's start is, per stream, `Follow.snapshot()` (one Lua script) plus "
            "`RevocationCache.merge()` into the cache; the partition's is measured, into an "
            "empty cache, in a fresh process, repeated, and the repeat with the median total "
            "split into its parts:",
            "",
            table(time_header, time_rows),
            "",
            "- *Redis*: the script's execution on the server (`SLOWLOG`, threshold 0 on the "
            "private server): reading the zset (the ZRANGEBYSCORE in parentheses) and "
            "converting 2N values into Lua and back into the reply. *Transfer + RESP parse*: "
            "the raw script call minus its Lua time (loopback, hiredis building the Python "
            "list; median over separate raw-call repeats). *Build Snapshot*: the rest of "
            "`Follow.snapshot()` (dicts, `int(float(score))`). *Merge*: "
            "`RevocationCache.merge`. The share column: per repeat, the Lua time over snapshot "
            "+ merge (median), the rest being the client side. *Verifier.start()*: end to end "
            "(connect, partition count, script load, the global stream's and the partition's "
            "snapshots and merges, first polls), once.",
            "",
            table(memory_header, memory_rows),
            "",
            "- *Cache (tracemalloc)*: what the cache retains after the `Snapshot` is dropped "
            "and a collection ran: the dict plus each session id (`str`) and forget-after "
            "(`int`) it references; tracing started before the snapshot, in its own fresh "
            "process.",
            "- *RSS growth*: the process's resident memory after the first snapshot + merge, "
            "cache kept and `Snapshot` dropped, minus before; it includes what the allocator "
            "kept of the freed bootstrap garbage (the 2N-item reply list and the `Snapshot` "
            "dicts), so it is the footprint a fresh verifier actually shows. *Peak RSS*: the "
            "process's high-water mark (after several bootstraps).",
            "- *One prune() pass*: `RevocationCache.prune` over the whole cache with nothing to "
            "prune; the follower runs it once a second on the event loop, so it is also a "
            "once-a-second pause for `verify()` in the same process.",
            "- " + notes_pointer(path),
        ]
    )


# --- issuer throughput --------------------------------------------------------------------


def issuer_throughput(path: Path, report: Report) -> str:
    argon2 = report["argon2_alone"]
    cpus = report["environment"].get("cpus_usable") or report["environment"].get("cpus") or 1
    argon2_rows = [
        [
            name,
            ", ".join(f"{k.removeprefix('REVOCAST_ARGON2_')}={v}" for k, v in a["params"].items()),
            f"{a['wall_ms']['best']:.2f} / {a['wall_ms']['median']:.2f}",
            f"{a['cpu_ms']['best']:.2f} / {a['cpu_ms']['median']:.2f}",
            f"{cpus * 1000 / a['cpu_ms']['median']:.1f}",
        ]
        for name, a in argon2.items()
    ]
    refresh_rps = next(
        (ph["requests_per_s"] for ph in report["phases"] if ph["endpoint"] == "POST /v1/refresh"),
        None,
    )
    rows = []
    for ph in report["phases"]:
        env = ph["issuer_env"]
        shown = " ".join(f"{k}={v}" for k, v in env.items())
        rows.append(
            [
                ph["phase"],
                str(ph["concurrency"]),
                str(ph["requests"]),
                f"{ph['requests_per_s']:,.1f}",
                ms3(ph["latency_ms"]),
                "yes" if ph["all_200"] else "**no**",
                f"{ph['issuer_cpu_s']:.1f} / {ph['redis_cpu_s']:.1f} / {ph['client_cpu_s']:.1f}",
                f"{ph['requests_per_s'] / refresh_rps:.3f}" if refresh_rps else "-",
                code(f"{shown} {ph['issuer_command']}"),
            ]
        )
    header = [
        "phase",
        "concurrency",
        "requests",
        "req/s",
        "latency p50 / p99 / max ms",
        "all 200",
        "CPU s issuer / redis / client",
        "req/s ÷ refresh's",
        "issuer command",
    ]
    return "\n".join(
        [
            "## Issuer: login and refresh throughput",
            "",
            run_line(report, path, ".venv/bin/python -m bench.issuer_throughput"),
            "",
            table(header, rows),
            "",
            "argon2id alone (`PasswordHasher.verify` in the benchmark process, one call at a "
            "time), the part of a login the parameters set:",
            "",
            table(
                [
                    "parameters",
                    "settings",
                    "wall ms best / median",
                    "CPU ms best / median",
                    "logins/s if argon2 alone bound all CPUs",
                ],
                argon2_rows,
                right_from=2,
            ),
            "",
            "- The issuer is its own process (`revocast issuer`, uvicorn on uvloop), login "
            "throttling off; each of the concurrent clients logs its own user in (or rotates "
            "its own session's refresh token) over one keep-alive connection, a fixed number "
            "of requests after a warm-up. Every answer must be 200.",
            "- Login: three throttle-script calls (two before the password check, one after), "
            "user lookup, argon2id verify in a worker thread, the login script, Ed25519 "
            "signing. Refresh: refresh-token lookup, the refresh script (rotation, sealed "
            "successor), Ed25519 signing; no argon2.",
            "- The last argon2 column is CPUs x 1000 / CPU ms per verify: the login rate the "
            "hashing alone would allow if it had every CPU.",
            "- " + notes_pointer(path),
        ]
    )


# --- pub/sub next to streams --------------------------------------------------------------


def pubsub(path: Path, report: Report) -> str:
    runs = sorted(report["runs"], key=lambda r: (r["subscribers"], r["transport"]))
    pubsub_p99 = {
        r["subscribers"]: r["from_request_ms"]["p99"] for r in runs if r["transport"] == "pubsub"
    }
    rows = [
        [
            str(r["subscribers"]),
            "Pub/Sub (PUBLISH)" if r["transport"] == "pubsub" else "Streams (XADD → XREAD BLOCK)",
            str(r["samples"]),
            ms3(r["from_request_ms"]),
            ms3(r["slowest_per_round_from_request_ms"]),
            ms3(r["from_reply_ms"]),
            f"{r['publish_rtt_ms']['p50']:.3f}",
            f"{r['received_before_reply']}/{r['samples']}",
            f"{r['from_request_ms']['p99'] / pubsub_p99[r['subscribers']]:.2f}"
            if r["subscribers"] in pubsub_p99
            else "-",
        ]
        for r in runs
    ]
    header = [
        "subscribers",
        "transport",
        "samples",
        "from request, p50 / p99 / max ms",
        "all subscribers, from request",
        "from reply, p50 / p99 / max ms",
        "publish RTT p50 ms",
        "received before reply",
        "p99 from request ÷ Pub/Sub's",
    ]
    return "\n".join(
        [
            "## Transport reference: Pub/Sub next to Streams",
            "",
            run_line(report, path, ".venv/bin/python -m bench.pubsub"),
            "",
            table(header, rows, right_from=2),
            "",
            "N subscriber processes (uvloop, redis-py asyncio with hiredis), each holding a "
            "`SUBSCRIBE` and an `XREAD BLOCK` loop from its last id; the publisher alternates "
            "`PUBLISH` and `XADD` of the same revocation-sized message round by round and waits "
            "for every subscriber before the next, so both transports are measured in the same "
            "run by the same processes. Transport only: the receive time is when redis-py "
            "handed the message over, before any decoding (revocast's end-to-end figure, with "
            "decode and apply, is *Propagation, separate processes*). *From request* starts "
            "just before the publish call (upper bound); *from reply* just after its reply, "
            "negative when a subscriber got the message first. Pub/Sub is here as a reference "
            "only: it drops messages for a disconnected subscriber, which cannot prove it "
            "missed nothing (see docs/design.md). " + notes_pointer(path),
        ]
    )


# --- targets ------------------------------------------------------------------------------


def find(
    reports: Sequence[tuple[Path, Report]], benchmark: str, mode: str | None = None
) -> tuple[Path, Report] | None:
    for path, report in reports:
        if report.get("benchmark") == benchmark and report.get("mode") == mode:
            return path, report
    return None


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(reports: Sequence[tuple[Path, Report]]) -> str:
    rows: list[list[str]] = []

    def add(
        target: str, measured: str, ok: bool | None, found: tuple[Path, Report], field: str
    ) -> None:
        path, report = found
        command = report.get("command") or "-"
        rows.append(
            [
                target,
                measured,
                "not measured" if ok is None else verdict(ok),
                f"{source(path)}: {field}",
                code(str(command)),
            ]
        )

    def missing(target: str, benchmark: str) -> None:
        rows.append([target, "-", "not measured", f"no `{benchmark}` results", "-"])

    cost = find(reports, "verify_cost")
    if cost:
        results = cost[1]["results"]
        warm = results["Verifier.verify warm"]
        add(
            "warm verify ≤ 3 µs",
            f"{warm['median_us']:.2f} µs median ({warm['best_us']:.2f} best)",
            warm["median_us"] <= 3,
            cost,
            "`Verifier.verify warm` median_us",
        )
        first = results["Verifier.verify first sight"]
        base = results["jwt.decode"]
        ratio = first["median_us"] / base["median_us"]
        add(
            "first-sight verify ≤ 1.3 x `jwt.decode`",
            f"{ratio:.2f}x median ({first['median_us']:.1f} / {base['median_us']:.1f} µs; "
            f"{first['best_us'] / base['best_us']:.2f}x best)",
            ratio <= 1.3,
            cost,
            "first sight ÷ jwt.decode, median_us",
        )
    else:
        missing("warm verify ≤ 3 µs; first sight ≤ 1.3 x jwt.decode", "verify_cost")

    side = find(reports, "sidecar_throughput")
    if side:
        results = side[1]["results"]
        valid = all(r["all_200"] for r in results.values())
        sc = results.get("sidecar")
        for name, bound, label in (
            ("noop", 0.8, "sidecar `/verify` ≥ 80 % of a bare no-op endpoint (Starlette route)"),
            ("noop_raw", 0.8, "… the same, against a bare ASGI callable (no framework)"),
            (
                "memo_exists",
                2.0,
                "sidecar ≥ 2 x a sidecar doing memoized verify + one Redis EXISTS",
            ),
            ("seed", 5.0, "sidecar ≥ 5 x the seed pattern (jwt.decode + Redis lookup)"),
        ):
            other = results.get(name)
            if not (sc and other):
                continue
            ratio = sc["requests_per_s"] / other["requests_per_s"]
            shown = f"{ratio:.0%}" if bound < 1 else f"{ratio:.2f}x"
            add(
                label,
                f"{shown} ({sc['requests_per_s']:,.0f} vs {other['requests_per_s']:,.0f} req/s)"
                + ("" if valid else "; **some answers were not 200**"),
                ratio >= bound and valid,
                side,
                f"requests_per_s, `sidecar` ÷ `{name}`",
            )
    else:
        missing("sidecar throughput ratios", "sidecar_throughput")

    prop = find(reports, "propagation", "processes")
    run16 = None
    if prop:
        for run in prop[1]["runs"]:
            if (
                run.get("action", "logout") == "logout"
                and run["mode"] == "worker"
                and run["verifiers"] == 16
            ):
                run16 = run
    if prop and run16:
        req = run16["from_request_ms"]
        add(
            "propagation p99 ≤ 5 ms, 16 verifiers (logout, from request: upper bound)",
            f"{req['p99']:.2f} ms p99 ({req['p50']:.2f} p50, {req['max']:.2f} max)",
            req["p99"] <= 5,
            prop,
            "logout, worker, 16: from_request_ms",
        )
        every = run16["slowest_per_round_from_request_ms"]
        add(
            "… until all 16 verifiers reject (from request)",
            f"{every['p99']:.2f} ms p99 ({every['p50']:.2f} p50)",
            every["p99"] <= 5,
            prop,
            "logout, worker, 16: slowest_per_round_from_request_ms",
        )
        reply = run16["latency_ms"]
        add(
            "… from the logout's reply (lower bound)",
            f"{reply['p99']:.2f} ms p99 ({reply['p50']:.2f} p50)",
            reply["p99"] <= 5,
            prop,
            "logout, worker, 16: latency_ms",
        )
    else:
        missing("propagation p99 ≤ 5 ms with 16 verifiers", "propagation_processes")

    mem = find(reports, "memory_snapshot")
    if mem:
        for run in mem[1]["runs"]:
            n = run["revoked_sessions"]
            m = run["memory"]
            add(
                f"≤ 200 bytes per revoked entry, {n:,} entries, cache (tracemalloc)",
                f"{m['tracemalloc_bytes_per_entry']:.0f} bytes",
                m["tracemalloc_bytes_per_entry"] <= 200,
                mem,
                f"{n}: tracemalloc_bytes_per_entry",
            )
            add(
                f"… {n:,} entries, process RSS growth after bootstrap",
                f"{m['rss_bytes_per_entry']:.0f} bytes",
                m["rss_bytes_per_entry"] <= 200,
                mem,
                f"{n}: rss_bytes_per_entry",
            )
        big = [run for run in mem[1]["runs"] if run["revoked_sessions"] == 1_000_000]
        for run in big:
            total = run["snapshot_merge_s"]
            add(
                "snapshot of 1,000,000 revoked sessions ≤ 3 s (snapshot + merge)",
                f"{total['median']:.2f} s median ({total['best']:.2f} best; "
                f"Verifier.start() {run['verifier_start_s']:.2f} s)",
                total["median"] <= 3,
                mem,
                "1000000: snapshot_merge_s",
            )
        if not big:
            missing(
                "snapshot of 1,000,000 revoked sessions ≤ 3 s", "memory_snapshot --sizes 1000000"
            )
    else:
        missing("memory per entry; snapshot of 1,000,000", "memory_snapshot")

    header = ["target (issue 6)", "measured", "verdict", "from", "command"]
    return "\n".join(
        [
            "## Targets",
            "",
            "Each verdict is computed from the JSON named in its row when this document is "
            "generated. Medians are judged where a benchmark repeats (best shown beside); the "
            "rows marked … are the same target read another way, shown so that no reading is "
            "hidden.",
            "",
            table(header, rows, right_from=len(header)),
        ]
    )


# --- the document -------------------------------------------------------------------------

Renderer = Callable[[Path, Report], str]
SECTIONS: list[tuple[str, str | None, Renderer]] = [
    ("verify_cost", None, verify_cost),
    ("alternatives", None, alternatives),
    ("sidecar_throughput", None, sidecar_throughput),
    ("gateway_throughput", None, _report_gateway.gateway_throughput),
    ("memory_snapshot", None, memory_snapshot),
    ("propagation", "in-process", propagation_in_process),
    ("propagation", "processes", propagation_processes),
    ("pubsub", None, pubsub),
    ("issuer_throughput", None, issuer_throughput),
    ("topologies", None, _report_scaling.topologies),
    ("replica_cost", None, _report_scaling.replica_cost),
    ("replica_fanout", None, _report_scaling.replica_fanout),
    ("cold_start", None, _report_scaling.cold_start),
    ("receipts", None, _report_receipts.receipts),
]


def render(reports: Sequence[tuple[Path, Report]], generated: str) -> str:
    parts = [
        "# Benchmarks",
        "",
        "Run every benchmark and regenerate this file with one command, from the repository root:",
        "",
        "```sh",
        ".venv/bin/python -m bench.all   # ~35 min, more while it waits for a quiet host",
        "```",
        "",
        "(It needs `wrk` on PATH for the sidecar benchmark: `apt-get install wrk`; "
        "`.venv/bin/python -m bench.all --only NAME ...` runs some.) Before measuring, each "
        "benchmark waits until the 1-minute load average is below 1.0 (polling every 30 s, "
        "at most 10 minutes) and records the load before and after. This file is generated "
        "by `.venv/bin/python -m bench.report` from `bench/results/*.json`: every figure "
        "below is read from those files, and each section names the command that "
        "reproduces it. "
        "Latency percentiles are nearest-rank unless a section says otherwise.",
        "",
        machine(reports, generated),
        "",
        targets(reports),
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
