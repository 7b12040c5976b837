"""BENCHMARKS.md's section for bench.receipts: the cost of receipts, the time of ``--wait``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench._markdown import Report, notes_pointer, run_line, table


def _triple(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.1f} / {stats['p99']:.1f} / {stats['max']:.1f}"


def receipts(path: Path, report: Report) -> str:
    wait_rows = [
        [
            str(run["live_verifiers"]),
            _triple(run["block_wait_ms"]["spaced"]),
            _triple(run["block_wait_ms"]["back_to_back"]),
            _triple(run["delay_max_ms"]),
            _triple(run["cli_block_wait_ms"]) if run["cli_block_wait_ms"] else "-",
        ]
        for run in report["wait"]
    ]
    wait_header = ["live verifiers", "block ?wait=5, spaced", "back to back",
                   "slowest verifier's delay", "`revocast block --wait 5`"]  # fmt: skip
    cost_rows = []
    for label, run in report["overhead"].items():
        for phase in ("idle", "revoking"):
            figures: dict[str, Any] = run[phase]
            cost_rows.append([
                f"{label.replace('_', ' ')}, {phase}",
                f"{run['ready']} of {run['verifiers']}",
                f"{figures['server_cpu_percent']:.1f} %",
                f"{figures['server_cpu_us_per_verifier_s']:.1f}",
                f"{figures['receipt_commands_per_verifier_s']:.2f}",
                f"{figures['receipt_usec_per_verifier_s']:.2f}",
            ])  # fmt: skip
    cost_header = ["run", "ready", "server CPU", "CPU µs / verifier / s",
                   "receipt commands / verifier / s", "their µs / verifier / s"]  # fmt: skip
    rate = next(iter(report["overhead"].values()))["revoking"]["rate_per_s"]
    on, off = report["overhead"]["receipts_on"], report["overhead"]["receipts_off"]
    caveat = ""
    if off["revoking"]["server_cpu_percent"] > on["revoking"]["server_cpu_percent"]:
        caveat = (" While revoking, the two runs differ by more than receipts cost, and the "
                  "other way round: the fan-out of every event to 1,000 followers dominates "
                  "and varies from run to run on this shared host. Read the receipts' own "
                  "command time (last column), and the idle rows.")  # fmt: skip
    return "\n".join(
        [
            "## Proof of enforcement: receipts and `--wait`",
            "",
            run_line(report, path, ".venv/bin/python -m bench.receipts"),
            "",
            "Time from a moderator's block to the answer that proves every live verifier "
            "(N sidecar processes and the issuer's own) applied it, ms p50 / p99 / max. "
            "*Spaced*: 0.6 s after the previous event, so each verifier writes its receipt at "
            "once. *Back to back*: right after the previous block, so a verifier holds the "
            "write until its 250 ms interval ends (that bounds the write rate in a flow). "
            "The CLI column includes starting Python.",
            "",
            table(wait_header, wait_rows, right_from=1),
            "",
            f"What receipts cost the server, with 1,000 real verifiers on one private Redis, "
            f"receipts on and off in the same run; *revoking*: {rate:g} revocations/s. Receipt "
            "commands are SET, ZADD and ZREMRANGEBYSCORE (commandstats)." + caveat,
            "",
            table(cost_header, cost_rows, right_from=1),
            "",
            "- " + notes_pointer(path),
        ]
    )
