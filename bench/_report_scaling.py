"""The BENCHMARKS.md sections for the topology and replica benchmarks (scaling).

Kept apart from ``bench.report`` so that it stays readable; ``bench.report`` lists these
renderers in its sections. docs/scaling.md interprets the same figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench._capacity import Fit, phase_check
from bench._markdown import Report, Stats, ms3, notes_pointer, run_line, table

SCALING_DOC = "[docs/scaling.md](docs/scaling.md)"


def ms2(stats: Stats | None) -> str:
    if not stats:
        return "-"
    return f"{stats['p50']:.2f} / {stats['p99']:.2f} / {stats['max']:.2f}"


def mib(value: float) -> str:
    return f"{value / 2**20:.1f}"


# --- topologies ---------------------------------------------------------------------------


def topologies(path: Path, report: Report) -> str:
    rows = []
    errors = []
    for run in report["runs"]:
        key = [
            run["topology"],
            run["reads"],
            str(run["partitions"]),
            str(run["min_replicas"]),
        ]
        if "error" in run:
            rows.append([*key, "**failed**", "-", "-", "-", "-", "-"])
            errors.append(f"{run['topology']} / {run['reads']}: {run['error'].splitlines()[0]}")
            continue
        rows.append(
            [
                *key,
                str(run["samples"]),
                ms3(run["slowest_per_round_from_request_ms"]),
                ms3(run["from_request_ms"]),
                ms3(run["latency_ms"]),
                ms3(run["revoke_http_ms"]),
                ms3(run["revoke_call_ms"]),
            ]
        )
    header = [
        "topology",
        "verifiers read",
        "partitions",
        "WAIT for",
        "samples",
        "all verifiers applied, from request: p50 / p99 / max ms",
        "each verifier, from request",
        "each verifier, from reply",
        "ack: logout HTTP",
        "ack: script + WAIT alone",
    ]
    runs = [r for r in report["runs"] if "error" not in r]
    verifiers = runs[0]["verifiers"] if runs else "?"
    lines = [
        "## Propagation on each topology",
        "",
        run_line(report, path, ".venv/bin/python -m bench.topologies"),
        "",
        table(header, rows, right_from=2),
        "",
        f"One run: a single server, Sentinel (primary, one replica, three sentinels) and a "
        f"3 x 1 Cluster, one after the other on loopback; on each the issuer and "
        f"{verifiers} verifier processes (a real `Verifier` each) are separate processes. "
        "Rounds as in *Propagation, separate processes* (mode worker, logout): the sample "
        "ends when a verifier's follower applied the revocation. *Verifiers read*: the "
        "primary, or a replica (`REVOCAST_READ_FROM_REPLICAS=1`; freshness from the "
        "heartbeat). *WAIT for*: replicas a revocation waits for before it is acknowledged "
        "(`REVOCAST_MIN_REPLICAS`, default). *Ack: logout HTTP* is the user's wait for "
        "`POST /v1/logout` (it includes the `WAIT`); *script + WAIT alone* times "
        "`Writes.revoke_session` from the client, no HTTP.",
        "",
        "- *All verifiers applied*: per round, the last of the verifiers; the time until "
        "every verifier rejects the token. *From reply* is negative when the verifiers "
        "applied it before the logout's reply arrived.",
    ]
    lines += [f"- Failed: {e}" for e in errors]
    lines.append("- " + notes_pointer(path))
    return "\n".join(lines)


# --- replica cost -------------------------------------------------------------------------


def replica_cost(path: Path, report: Report) -> str:
    settings = report["settings"]
    runs = {run["verifiers"]: run for run in report["runs"]}
    rows = []
    for d in report["derived"]:
        run = runs[d["verifiers"]]
        paced, bursts = d["paced"], d["bursts"]
        rows.append(
            [
                str(d["verifiers"]),
                f"{d['idle_us_per_verifier_s']:.0f}",
                f"{d['idle_reads_per_verifier_s']:.2f} / {d['idle_checks_per_verifier_s']:.2f}",
                f"{d['idle_bytes_per_verifier_s']:.0f}",
                f"{d['cpu_us_per_read']:.0f} / {d['cpu_us_per_check']:.0f}",
                f"{paced['us_per_verifier_per_event']:.1f}",
                f"{paced['reads_per_verifier_per_event']:.2f} / "
                f"{paced['checks_per_verifier_per_event']:.2f}",
                f"{paced['bytes_per_verifier_per_event']:.0f}",
                f"{bursts['us_per_verifier_per_event']:.1f}",
                f"{bursts['cpu_us_per_entry']:.1f}",
                f"{bursts['bytes_per_entry']:.0f}",
                f"{paced['measured_over_predicted']:.2f}",
                ms2(run["paced"].get("all_applied_from_request_ms")),
            ]
        )
    header = [
        "followers",
        "idle µs / follower / s",
        "idle reads / checks per follower per s",
        "idle bytes / follower / s",
        "µs / read / check",
        f"paced ({settings['rate']:g}/s): µs / follower / event",
        "reads / checks per follower per event",
        "bytes / follower / event",
        f"bursts of {settings['burst']}: µs / follower / event",
        "µs / entry delivered",
        "bytes / entry delivered",
        "paced: measured ÷ model",
        "paced: all applied, from request p50 / p99 / max ms",
    ]
    base = runs[0]
    return "\n".join(
        [
            "## Replica CPU per verifier",
            "",
            run_line(report, path, ".venv/bin/python -m bench.replica_cost"),
            "",
            table(header, rows),
            "",
            "One Sentinel group (primary, one replica, three sentinels); the issuer writes "
            "heartbeats; N real verifiers follow the replica "
            "(`REVOCAST_READ_FROM_REPLICAS=1`), held by a few `bench._swarm_worker` "
            "processes (each verifier its own connections and followers). Phases of "
            f"{settings['seconds']:g} s: idle; revocations at {settings['rate']:g}/s "
            f"(*paced*: each reaches each follower alone); {settings['bursts']} bursts of "
            f"{settings['burst']} concurrent revocations (*bursts*). Every figure is the "
            "replica's own accounting (`INFO`: `used_cpu_sys + used_cpu_user`, "
            "`commandstats`, `total_net_output_bytes`), minus the same phase with no "
            f"followers (idle: {base['idle']['replica']['cpu_percent']}% CPU), and per event "
            "minus the followers' idle cost over the phase.",
            "",
            "- A follower *reads* (`XREAD BLOCK` from its id) and *checks* its status (`MGET` "
            "of the stream's chain, epoch and heartbeat, and `TIME`: one round trip). Idle, "
            "each follower reads once per block period (1 s) per stream, N + 1 streams, and "
            "checks after each read; while entries flow it checks at most every 250 ms.",
            "- *µs / read / check* come from the idle phase (split by `commandstats` time, "
            "the rest shared per round trip); *µs / entry delivered* from the bursts (CPU "
            "beyond the reads and checks, per event per follower). *Measured ÷ model*: the "
            "paced phase against reads x µs/read + checks x µs/check + entries x µs/entry.",
            "- " + notes_pointer(path),
        ]
    )


# --- fan-out to 1,000 followers ------------------------------------------------------------


def load_fit(path: Path) -> Fit | None:
    other = path.parent / "replica_cost.json"
    if not other.exists():
        return None
    return Fit.from_report(json.loads(other.read_text()))


def fanout_row(name: str, phase: dict[str, Any], verifiers: int, fit: Fit | None) -> list[str]:
    replica = phase["replica"]
    events = phase.get("events", 0)
    seconds = replica["seconds"]
    per = f"{replica['net_out_bytes'] / (events * verifiers):.0f}" if events else "-"
    status = phase.get("status", {})
    cpu = phase["process_cpu_s"]
    check = phase_check(fit, phase, verifiers) if fit else None
    return [
        name,
        str(events),
        f"{replica['cpu_percent']:.1f}",
        f"{check['ratio']:.2f}" if check else "-",
        f"{replica['net_out_bytes'] / seconds / 1e6:.2f}",
        per,
        mib(replica["memory"]["used_memory"]),
        mib(replica["memory"]["mem_clients_normal"]),
        str(replica["clients"]["connected_clients"]),
        ms2(phase.get("all_applied_from_request_ms")),
        ms2(phase.get("ack_ms")),
        f"{phase.get('not_durable', '-')} / {sum(phase.get('failed_calls', {}).values())}",
        str(phase.get("missing_events", "-")),
        f"{status.get('min_ready', '-')} / {status.get('max_staleness_s', 0):.2f}",
        f"{cpu['followers'] / seconds:.2f}",
    ]


def replica_fanout(path: Path, report: Report) -> str:
    cold = report["cold_start"]
    verifiers = cold["verifiers"]
    fit = load_fit(path)
    rows = [fanout_row("idle", report["idle"], verifiers, fit)]
    rows += [fanout_row(f"{p['rate_per_s']:g}/s", p, verifiers, fit) for p in report["rates"]]
    header = [
        "phase",
        "revocations",
        "replica CPU %",
        "replica CPU ÷ model",
        "replica out MB/s",
        "bytes / event / follower",
        "replica used MiB",
        "of which client buffers MiB",
        "replica connections",
        "all followers applied, from request p50 / p99 / max ms",
        "ack (script + WAIT) p50 / p99 / max ms",
        "not durable / failed calls",
        "never applied",
        "min ready / worst staleness s",
        "follower processes, CPUs busy",
    ]
    settings = report["settings"]
    ready = cold["ready_s"]
    conns = cold["connections_by_last_command"]
    model = (
        f"*Replica CPU ÷ model*: measured over predicted by the fit of *Replica CPU per "
        f"verifier* ({fit.cpu_us_per_read:.0f} µs per read, {fit.cpu_us_per_check:.0f} µs "
        f"per check, {fit.cpu_us_per_entry:.1f} µs per entry delivered, from its "
        f"{fit.verifiers}-follower run), with this phase's own counts of reads and checks "
        "(XREAD and MGET calls on the replica)."
        if fit
        else "*Replica CPU ÷ model*: no `replica_cost.json` to check against."
    )
    return "\n".join(
        [
            f"## {verifiers:,} followers on one replica",
            "",
            run_line(report, path, ".venv/bin/python -m bench.replica_fanout"),
            "",
            f"{verifiers:,} real verifiers ({settings['processes']} `bench._swarm_worker` "
            f"processes x {settings['per_process']}) follow one replica of a Sentinel group; "
            f"{report['state_revocations']:,} revocations were written before they started. "
            f"Cold start (all at once): ready after {ms2(ready)} s (p50 / p99 / max), "
            f"{cold['never_ready']} never ready; the replica used "
            f"{cold['replica']['cpu_s']:.1f} s of CPU and sent "
            f"{cold['replica']['net_out_bytes'] / 1e6:.1f} MB; afterwards the replica held "
            f"{cold['replica']['clients']['connected_clients']} connections, the primary "
            f"{conns['primary'].get('get', 0)} idle ones (last command `GET`: the partition "
            f"count read by `Backend.start`), the first sentinel "
            f"{conns['sentinel0'].get('sentinel|slaves', 0)} (`SENTINEL SLAVES`).",
            "",
            table(header, rows),
            "",
            f"Phases of {settings['seconds']:g} s (idle {settings['idle_seconds']:g} s): "
            "revocations at the rate shown, open loop, `Writes.revoke_session` (the logout "
            "script, then `WAIT` 1 replica) from the benchmark process. *All followers "
            "applied*: from just before the call to the moment the last of all followers "
            "applied it. *Not durable*: calls whose `WAIT` timed out (written; the issuer "
            "would answer 503); *failed*: calls that raised `StoreUnavailable` (left out of "
            "the latency; the JSON names the cause). *Min ready / worst staleness*: polled "
            "every 2 s during the phase. "
            "*Follower processes, CPUs busy*: their CPU seconds per second; this host has 2 "
            "CPUs for everything.",
            "",
            "- " + model,
            "- What the figures mean for a deployment, and what gave way first: "
            + SCALING_DOC
            + ". "
            + notes_pointer(path),
        ]
    )


# --- cold start ---------------------------------------------------------------------------


def failover(run: Report) -> str:
    roles = run.get("roles_after")
    if not roles:
        return "-"
    if roles == {"primary": "master", "replica": "slave"}:
        return "no"
    return "**" + ", ".join(f"{node} now {role}" for node, role in roles.items()) + "**"


def cold_start(path: Path, report: Report) -> str:
    rows = []
    for run in report["runs"]:
        v = run["verifiers"]
        replica = run["replica"]
        status = run["status_after"]
        rows.append(
            [
                f"{v:,}",
                f"{run['state_revocations']:,}",
                ms2(run["ready_s"]),
                str(run["never_ready"]),
                f"{replica['cpu_s']:.2f}",
                f"{replica['cpu_s'] * 1000 / v:.1f}",
                f"{run['others']['primary']['cpu_s']:.2f}",
                failover(run),
                f"{replica['net_out_bytes'] / v / 1e3:.0f}",
                mib(run["replica_peaks"]["used_memory"]),
                str(run["replica_connections_accepted"]),
                f"{status['snapshots']} / {status['read_errors']}",
                f"{run['process_cpu_s']['followers']:.1f}",
                f"{run['wall_s']:.1f}",
            ]
        )
    header = [
        "verifiers",
        "revoked sessions",
        "ready after p50 / p99 / max s",
        "never ready",
        "replica CPU s",
        "replica CPU ms / verifier",
        "primary CPU s",
        "failover",
        "replica out kB / verifier",
        "replica peak used MiB",
        "connections accepted",
        "snapshots / read errors",
        "follower processes CPU s",
        "wall s",
    ]
    deadline = report["settings"]["deadline"]
    return "\n".join(
        [
            "## Cold start: many verifiers at once on one replica",
            "",
            run_line(report, path, ".venv/bin/python -m bench.cold_start"),
            "",
            table(header, rows),
            "",
            "A fresh Sentinel group per row; the revocations are written first, then every "
            "follower process starts its verifiers at once "
            "(`REVOCAST_READ_FROM_REPLICAS=1`: each verifier's snapshots and streams on the "
            f"replica). *Never ready*: not ready within {deadline:g} s. *Connections "
            "accepted* above 2 per verifier are reconnects after failed or timed-out reads; "
            "*snapshots* above 2 per verifier are retried snapshots. *Ready after*: over the "
            "verifiers that became ready. *Primary CPU*: a verifier's read connection goes "
            "to the primary when no replica the sentinels name accepts it (redis-py's "
            "Sentinel client falls back to the master). *Failover*: the nodes' roles "
            "afterwards (by their role at the start), if they changed. The replica's figures "
            "are its own `INFO`; the follower processes share this host's 2 CPUs with it. "
            + notes_pointer(path),
            "",
            "What the figures mean for a deployment: " + SCALING_DOC + ".",
        ]
    )
