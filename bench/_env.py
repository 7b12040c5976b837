"""What every benchmark records about the code and the machine it measured, and the wait for
a quiet machine before a measurement."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent

# Before a measurement: wait until the 1-minute load average is below this (another job on
# the host, or the previous benchmark's own processes, would skew the figures).
QUIET_LOAD = 1.0
QUIET_POLL_S = 30.0
QUIET_TIMEOUT_S = 600.0


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the package sources differ from it (uncommitted)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "shared", "services"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None}
    return {"commit": head, "package_files_uncommitted": len(changed)}


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (0 when unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> list[float]:
    """1, 5 and 15-minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def wait_for_quiet(
    enabled: bool = True,
    threshold: float = QUIET_LOAD,
    poll_s: float = QUIET_POLL_S,
    timeout_s: float = QUIET_TIMEOUT_S,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Wait (polling) until the 1-minute load average is below ``threshold``, at most
    ``timeout_s``; then measure anyway. Returns what happened, for the JSON environment."""
    started = time.monotonic()
    seen = [loadavg()[0]]
    if enabled:
        while seen[-1] >= threshold and time.monotonic() - started < timeout_s:
            say(f"  load {seen[-1]:.2f} >= {threshold}: waiting {poll_s:.0f} s for a quiet host")
            time.sleep(poll_s)
            seen.append(loadavg()[0])
    return {
        "enabled": enabled,
        "threshold_1min": threshold,
        "waited_s": round(time.monotonic() - started, 1),
        "quiet": seen[-1] < threshold,
        "polls": seen,
    }


def add_quiet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help=f"do not wait for a 1-minute load average below {QUIET_LOAD} before measuring",
    )


def cpu_model() -> str:
    """The CPU measured on: results from different hosts may stand side by side."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def environment(quiet: dict[str, Any], load_before: list[float], **extra: Any) -> dict[str, Any]:
    """The JSON ``environment`` block every new benchmark writes (call it after the run)."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "quiet_wait": quiet,
        "git": git_state(),
        **extra,
    }


Measure = Callable[[argparse.Namespace, Path], Coroutine[Any, Any, dict[str, Any]]]


def run_and_record(
    name: str,
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    measure: Measure,
    *,
    notes: list[str],
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wait for a quiet host, run ``measure`` in a scratch folder, and write the report to
    ``args.out``: command, settings, notes and environment beside the figures, so a result
    says how to reproduce it. ``measure`` returns ``redis_server`` among its figures, and may
    return more for the environment (library versions) as ``environment``."""
    words = sys.argv[1:] if argv is None else list(argv)
    quiet = wait_for_quiet(not args.no_wait)
    load_before = loadavg()
    run_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="revocast-bench-") as tmp:
        measured = uvloop.run(measure(args, Path(tmp)))
    if settings is None:
        settings = {k: v for k, v in vars(args).items() if k not in ("out", "no_wait")}
    report = {
        "command": shlex.join([".venv/bin/python", "-m", f"bench.{name}", *words]),
        "benchmark": name,
        "run_at": run_at,
        "settings": settings,
        "notes": notes,
        "environment": environment(
            quiet,
            load_before,
            redis_server=measured.pop("redis_server"),
            **measured.pop("environment", {}),
        ),
        **measured,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report
