"""Run every benchmark, then fill the tables of BENCHMARKS.md from the fresh results.

Reproduce from the repository root (``wrk`` must be on PATH for the sidecar benchmark,
e.g. ``apt-get install wrk``)::

    .venv/bin/python -m bench.all

Each benchmark runs as its own process with the command shown in BENCHMARKS.md, one after
the other. Before measuring, each waits (polling every 30 s, up to 10 minutes) until the
1-minute load average is below 1.0, so the previous benchmark's processes, or other work on
the host, have settled; the load before and after lands in its JSON. A failed benchmark
does not stop the others; the command exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence

from bench._env import ROOT

PYTHON = ".venv/bin/python"

# name -> arguments after `python -m bench.<name>`: the commands BENCHMARKS.md shows.
BENCHMARKS: dict[str, list[str]] = {
    "verify_cost": [],
    "memory_snapshot": ["--sizes", "100000", "1000000"],
    "propagation": [
        *("--action", "logout", "block", "--verifiers", "1", "2", "4", "16", "--rounds", "200")
    ],
    "pubsub": ["--subscribers", "1", "4", "16", "--rounds", "1000"],
    "sidecar_throughput": [],
    "gateway_throughput": [],
    "issuer_throughput": [],
    "login_saturation": [],
    "login_round_trips": [],
    "topologies": ["--verifiers", "4", "--rounds", "200"],
    "replica_cost": ["--verifiers", "100", "300"],
    "replica_fanout": [*("--processes", "4", "--per-process", "250", "--rates", "10", "30", "100")],
    "cold_start": ["--runs", "1000:1000", "200:10000", "1000:10000"],
    "receipts": ["--rounds", "20"],
    "status_list": [],
    "host_share": [
        *("--workers", "1", "4", "8", "--revoked", "100000", "--rounds", "300", "--events", "200"),
        *("--scale-revoked", "1000000"),
    ],
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), help="run these benchmarks only"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="pass --no-wait: do not wait for a quiet host"
    )
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    failed = []
    started = time.monotonic()
    for name in names:
        command = [PYTHON, "-m", f"bench.{name}", *BENCHMARKS[name]]
        if args.no_wait:
            command.append("--no-wait")
        print(f"\n=== {' '.join(command)}", flush=True)
        began = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, check=False)
        print(f"=== {name}: exit {done.returncode} after {time.monotonic() - began:.0f} s")
        if done.returncode != 0:
            failed.append(name)
    subprocess.run([PYTHON, "-m", "bench.report"], cwd=ROOT, check=True)
    print(f"\nall done in {time.monotonic() - started:.0f} s")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
