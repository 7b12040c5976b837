"""The results as a compact text table per scenario, and as JSON."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revocast_tools.chaos.results import LatencyRow, ScenarioResult

COUNT_LINES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("answers", ("probes", "accepted", "rejected", "stale_answers", "no_answer")),
    ("revoked", ("revocations_acked", "revocations_unacked", "revocations_refused",
                 "revocations_skipped", "accepted_in_window", "max_accept_after_ack_s")),
    ("stale", ("stale_time_max_s", "stale_time_total_s", "recovery_max_s")),
    ("load", ("requests", "logins", "login_failures", "final_checks")),
    ("memory", ("rss_max_mib", "rss_growth_mib")),
)  # fmt: skip


def text(result: ScenarioResult) -> str:
    verdict = "PASS" if result.passed else "FAIL"
    lines = [
        f"== {result.name}  {verdict}  ({result.duration_s:.1f} s, "
        f"{result.verifiers} verifiers) - {result.summary}"
    ]
    if result.error:
        lines.append(f"  ERROR {result.error.strip()}")
    for check in result.checks:
        sign = ">=" if check.at_least else "<="
        mark = "PASS" if check.passed else "FAIL"
        note = f"  ({check.note})" if check.note and (not check.passed or check.value) else ""
        lines.append(f"  {mark}  {check.name:<28} {check.value:>8g} {sign} {check.limit:g}{note}")
    shown: set[str] = set()
    for label, names in COUNT_LINES:
        parts = [f"{n} {result.counts[n]:g}" for n in names if n in result.counts]
        shown.update(names)
        if parts:
            lines.append(f"  {label:<8}" + ", ".join(parts))
    extra = [f"{k} {v:g}" for k, v in result.counts.items() if k not in shown]
    if extra:
        lines.append("  other   " + ", ".join(extra))
    for fault in result.faults:
        recovery = "not recovered" if fault.recovery_s is None else f"{fault.recovery_s:.3f} s"
        lines.append(f"  fault   {fault.label}: recovery {recovery}")
    if result.latency:
        lines += latency_table(result.latency)
    lines += [f"  note    {note}" for note in result.notes]
    lines += [f"  example {example}" for example in result.examples]
    if not result.passed:
        for name, tail in result.logs.items():
            if tail.strip():
                lines.append(f"  --- {name} log tail\n" + _indent(tail, "    "))
    return "\n".join(lines)


def latency_table(rows: Sequence[LatencyRow]) -> list[str]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        "  probed: revoke call returned -> first 401 | /metrics revocast_propagation_seconds: "
        "written -> applied (bucket bounds; max since start)",
        "  verifiers  rate/s  revoked  samples  unseen   p50 ms   p99 ms   max ms"
        "  | metric n  p50<=   p99<=    max ms",
    ]
    for r in rows:
        metric = (
            "  | /metrics missing"
            if r.metric_count is None
            else f"  | {r.metric_count:>8}  {ms(r.metric_p50_ms):>5}  {ms(r.metric_p99_ms):>6}"
            f"  {ms(r.metric_max_ms):>8}"
        )
        lines.append(
            f"  {r.verifiers:>9}  {r.rate:>6g}  {r.revocations:>7}  {r.samples:>7}  "
            f"{r.unobserved:>6}  {ms(r.p50_ms):>7}  {ms(r.p99_ms):>7}  {ms(r.max_ms):>7}{metric}"
        )
    return lines


def summary(results: Sequence[ScenarioResult]) -> str:
    failed = [r.name for r in results if not r.passed]
    total = sum(r.duration_s for r in results)
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all invariants held"
    return f"{len(results)} scenarios in {total:.1f} s: {verdict}"


def write_json(path: Path, results: Sequence[ScenarioResult], params: dict[str, Any]) -> None:
    document = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "params": params,
        "passed": all(r.passed for r in results),
        "scenarios": [r.to_json() for r in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _indent(block: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in block.splitlines())
