"""One benchmark, two versions of revocast, in one run: before and after a change.

Reproduce from the repository root (``BEFORE`` is any commit; it gets its own worktree and
venv under ``.build/ab/``)::

    .venv/bin/python -m bench.ab --before 596836f --ab-rounds 3 \\
        --bench verify_cost --figure 'results/revocast Verifier.verify, warm/median_us'

Each round runs the benchmark once in each checkout, the order alternating (ABBA...), so a
drift of the machine weighs on both alike; the ratio is after / before of the medians over
the rounds. A refactor that claims "unchanged or better" shows it here.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._env import add_quiet_arguments, environment, loadavg, wait_for_quiet

ROOT = Path(__file__).resolve().parent.parent


def checkout(commit: str) -> Path:
    """A worktree of ``commit`` with its own venv (set up once, kept for the next run)."""
    path = ROOT / ".build" / "ab" / commit
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
    subprocess.run(["./scripts/setup"], cwd=path, check=True, capture_output=True)
    return path


def run_once(where: Path, bench: str, extra: list[str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([str(where / ".venv/bin/python"), "-m", f"bench.{bench}", "--no-wait",
                        "--out", out.name, *extra], cwd=where, check=True)  # fmt: skip
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
        return result


def figure(result: dict[str, Any], path: str) -> float:
    """A number in a result by its path, parts split by '/' (keys hold dots); a list index is
    a number in the path."""
    node: Any = result
    for part in path.split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return float(node)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--bench", required=True, help="a bench module: verify_cost, ...")
    parser.add_argument("--figure", action="append", required=True,
                        help="a figure's path in its JSON, split by / (repeatable)")  # fmt: skip
    parser.add_argument("--ab-rounds", type=int, default=3, help="runs of each version")
    parser.add_argument("--out", type=Path)
    add_quiet_arguments(parser)
    args, extra = parser.parse_known_args()  # the rest goes to the benchmark
    before = checkout(args.before)
    quiet = wait_for_quiet(not args.no_wait)  # once for the whole run; each bench: --no-wait
    load_before = loadavg()
    seen: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for i in range(args.ab_rounds):
        order = [("before", before), ("after", ROOT)]
        for name, where in order if i % 2 == 0 else reversed(order):
            result = run_once(where, args.bench, extra)
            for path in args.figure:
                seen[name].setdefault(path, []).append(figure(result, path))
    figures = {}
    for path in args.figure:
        b, a = (statistics.median(seen[n][path]) for n in ("before", "after"))
        figures[path] = {"before": b, "after": a, "after_over_before": round(a / b, 3),
                         "rounds": {n: seen[n][path] for n in seen}}  # fmt: skip
        print(f"{path}: before {b:.4g}, after {a:.4g}, ratio {a / b:.3f}")
    if args.out:
        report = {"command": shlex.join([".venv/bin/python", "-m", "bench.ab", *sys.argv[1:]]),
                  "benchmark": f"ab:{args.bench}", "before": args.before, "figures": figures,
                  "environment": environment(quiet, load_before)}  # fmt: skip
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
