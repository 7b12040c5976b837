"""Markdown helpers shared by the BENCHMARKS.md sections (``bench.report`` and the
sections kept in their own modules)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Report = dict[str, Any]
Stats = dict[str, float]


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
