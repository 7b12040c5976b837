"""``revocast chaos``: run fault scenarios against real processes and check the invariants."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from revocast_tools.chaos.harness import Params, run_fault_scenario
from revocast_tools.chaos.latency import LATENCY_SUMMARY, run_latency
from revocast_tools.chaos.report import summary, text, write_json
from revocast_tools.chaos.results import ScenarioResult
from revocast_tools.chaos.scenarios import SPECS

Runner = Callable[[Params], Awaitable[ScenarioResult]]


def scenarios() -> dict[str, tuple[str, Runner]]:
    """Every scenario by name: its one-line summary and how to run it."""
    table: dict[str, tuple[str, Runner]] = {
        spec.name: (spec.summary, functools.partial(run_fault_scenario, spec)) for spec in SPECS
    }
    table["latency"] = (LATENCY_SUMMARY, run_latency)
    return table


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="revocast chaos",
        description="Run fault scenarios against real processes and check the invariants.",
        epilog="Each scenario starts its own Redis (one server, a Sentinel group or a Redis "
        "Cluster), issuer and verifier processes on loopback and removes them afterwards. "
        "Exit status 1 if any invariant failed.",
    )
    root.add_argument("scenario", nargs="+", metavar="SCENARIO",
                      help="a scenario name, 'all', or 'list'")  # fmt: skip
    root.add_argument("--verifiers", type=int, metavar="N",
                      help="verifier processes (default 2, replica-lag 3; latency: 1, 4 and "
                      "16)")  # fmt: skip
    root.add_argument("--duration", type=float, metavar="S",
                      help="seconds of traffic per scenario (default 3, --full 40; latency: "
                      "per measurement, 1 and 10)")  # fmt: skip
    root.add_argument("--rate", type=float, metavar="R",
                      help="revocations per second (default 20, --full 40; latency: 10 and "
                      "1000)")  # fmt: skip
    root.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    root.add_argument("--full", action="store_true", help="the long versions")
    return root


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    table = scenarios()
    if args.scenario == ["list"]:
        for name, (about, _) in table.items():
            print(f"{name:<18} {about}")
        return 0
    names = list(table) if args.scenario == ["all"] else args.scenario
    unknown = [n for n in names if n not in table]
    if unknown:
        print(f"unknown scenario(s) {unknown}; try 'list'", file=sys.stderr)
        return 2
    if args.verifiers is not None and args.verifiers < 1:
        print("--verifiers must be at least 1", file=sys.stderr)
        return 2
    params = Params(
        full=args.full, verifiers=args.verifiers, duration_s=args.duration, rate=args.rate
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    results = asyncio.run(_run_all([table[n][1] for n in names], params))
    print(summary(results))
    if args.json:
        write_json(args.json, results, asdict(params))
    return 0 if all(r.passed for r in results) else 1


async def _run_all(runners: Sequence[Runner], params: Params) -> list[ScenarioResult]:
    results = []
    for runner in runners:
        result = await runner(params)
        print(text(result), flush=True)
        results.append(result)
    return results
