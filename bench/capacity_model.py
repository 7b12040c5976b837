"""The capacity model of docs/scaling.md, computed from the measured constants.

Reproduce from the repository root (after ``bench.replica_cost`` and
``bench.memory_snapshot`` wrote their results)::

    .venv/bin/python -m bench.capacity_model --verifiers 10000 --rate 10000

Prints Markdown: for each partition count, what V verifiers and E revocations/s cost the
replicas, the primaries and the sentinels, and what a cold start of many verifiers costs.
Nothing is measured here: the constants come from ``bench/results/replica_cost.json``
(per read, per status check, per entry delivered) and ``memory_snapshot.json`` (snapshot cost
per revoked session); the assumptions are the arguments, printed with the result.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._capacity import Fit
from bench.report import table

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Constants:
    """Measured on this host; see the JSON each comes from."""

    fit: Fit
    idle_reads_per_stream_s: float  # one per block period (1 s), a little less
    idle_checks_per_stream_s: float  # one after each read that returned nothing
    reads_per_event: float  # a follower's reads per event when events come one by one
    write_us_per_revocation: float  # primary CPU per revocation (script + WAIT), in bursts
    snapshot_us_per_entry: float  # replica Lua time per revoked session in a snapshot
    snapshot_bytes_per_entry: float

    @classmethod
    def load(cls, results: Path) -> Constants:
        cost = json.loads((results / "replica_cost.json").read_text())
        memory = json.loads((results / "memory_snapshot.json").read_text())
        derived = max(cost["derived"], key=lambda d: d["verifiers"])
        base = next(run for run in cost["runs"] if run["verifiers"] == 0)
        big = max(memory["runs"], key=lambda r: r["revoked_sessions"])
        return cls(
            fit=Fit.from_report(cost),
            idle_reads_per_stream_s=derived["idle_reads_per_verifier_s"] / 2,  # N + 1 = 2
            idle_checks_per_stream_s=derived["idle_checks_per_verifier_s"] / 2,
            reads_per_event=derived["paced"]["reads_per_verifier_per_event"],
            write_us_per_revocation=primary_us_per_revocation(base),
            snapshot_us_per_entry=big["lua_s"]["median"] * 1e6 / big["revoked_sessions"],
            snapshot_bytes_per_entry=big["reply_bytes"] / big["revoked_sessions"],
        )


def primary_us_per_revocation(base: dict[str, Any]) -> float:
    """The primary's CPU per revocation in the bursts of the run without followers."""
    idle, bursts = base["idle"]["others"]["primary"], base["bursts"]
    rate = idle["cpu_s"] / idle["seconds"]
    primary = bursts["others"]["primary"]
    return float((primary["cpu_s"] - rate * primary["seconds"]) * 1e6 / bursts["events"])


@dataclass(frozen=True)
class Plan:
    partitions: int
    reads_per_verifier_s: float
    checks_per_verifier_s: float
    replica_us_per_verifier_s: float
    bytes_per_verifier_s: float
    verifiers_per_replica: float
    replicas: float
    write_cores: float
    snapshot_entries: float
    snapshot_replica_s: float
    snapshot_mb: float


def plan(c: Constants, args: argparse.Namespace, partitions: int) -> Plan:
    fit = c.fit
    per_stream = args.rate / partitions
    # A busy stream: a read per event until the follower reads back to back (every read_ms);
    # a status check after each event, at most every check_ms (the follower's quarter block).
    busy_reads = min(max(c.reads_per_event * per_stream, c.idle_reads_per_stream_s),
                     1000 / args.read_ms)  # fmt: skip
    busy_checks = min(max(per_stream, c.idle_checks_per_stream_s), 1000 / args.check_ms)
    reads = c.idle_reads_per_stream_s + partitions * busy_reads  # the global stream is idle
    checks = c.idle_checks_per_stream_s + partitions * busy_checks
    us = fit.followers_us(reads, checks, args.rate)
    per_replica = args.budget * 1e6 / us
    entries = args.rate * args.lifetime_s
    return Plan(
        partitions=partitions,
        reads_per_verifier_s=reads,
        checks_per_verifier_s=checks,
        replica_us_per_verifier_s=us,
        bytes_per_verifier_s=checks * fit.bytes_per_check + args.rate * fit.bytes_per_entry,
        verifiers_per_replica=per_replica,
        replicas=args.verifiers / per_replica,
        write_cores=args.rate * c.write_us_per_revocation / 1e6,
        snapshot_entries=entries,
        snapshot_replica_s=entries * c.snapshot_us_per_entry / 1e6,
        snapshot_mb=entries * c.snapshot_bytes_per_entry / 1e6,
    )


def render(c: Constants, args: argparse.Namespace) -> str:
    plans = [plan(c, args, n) for n in args.partitions]
    rows = [
        [
            str(p.partitions),
            f"{p.reads_per_verifier_s:,.1f} / {p.checks_per_verifier_s:,.1f}",
            f"{p.replica_us_per_verifier_s / 1000:,.2f}",
            f"{p.verifiers_per_replica:,.1f}",
            f"{math.ceil(p.replicas):,}",
            f"{p.bytes_per_verifier_s / 1e6:,.3f}",
            f"{p.bytes_per_verifier_s * args.verifiers / 1e9:,.2f}",
            f"{p.bytes_per_verifier_s * p.verifiers_per_replica / 1e6:,.1f}",
            f"{(p.partitions + 1) * p.verifiers_per_replica:,.0f}",
            f"{args.verifiers * (p.partitions + 1):,}",
            f"{p.write_cores:,.2f}",
        ]
        for p in plans
    ]
    header = [
        "partitions N",
        "reads / checks per verifier per s",
        "replica CPU ms / verifier / s",
        "verifiers per replica",
        "replicas",
        "MB/s per verifier",
        "GB/s all replicas",
        "MB/s per replica",
        "connections per replica",
        "blocking connections in all",
        "primary CPU cores for the writes",
    ]
    first = plans[0]
    fit = c.fit
    starts = args.cold_starts
    return "\n".join(
        [
            f"### {args.verifiers:,} verifiers, {args.rate:,g} revocations/s",
            "",
            table(header, rows),
            "",
            f"Cold start of {starts:,} verifiers at once: the snapshot holds "
            f"{first.snapshot_entries:,.0f} revoked sessions (rate x {args.lifetime_s:g} s "
            f"revocation lifetime), {first.snapshot_mb:,.0f} MB and "
            f"{first.snapshot_replica_s:,.2f} s of replica CPU per verifier: "
            f"{first.snapshot_replica_s * starts:,.0f} replica CPU seconds and "
            f"{first.snapshot_mb * starts / 1000:,.1f} GB in all. One replica can serve "
            f"{args.socket_timeout_s / max(first.snapshot_replica_s, 1e-9):,.1f} of these "
            f"snapshots back to back before a verifier's read times out "
            f"({args.socket_timeout_s:g} s).",
            "",
            "Constants (measured): "
            f"{fit.cpu_us_per_read:.0f} µs of replica CPU per follower read, "
            f"{fit.cpu_us_per_check:.0f} µs per status check, "
            f"{fit.cpu_us_per_entry:.1f} µs per entry delivered to one follower, "
            f"{fit.bytes_per_check:.0f} / {fit.bytes_per_entry:.0f} bytes per check / entry "
            f"(`replica_cost.json`, its {fit.verifiers}-follower run); "
            f"{c.idle_reads_per_stream_s:.2f} idle reads and "
            f"{c.idle_checks_per_stream_s:.2f} checks per stream per s, "
            f"{c.reads_per_event:.2f} reads per event when events come one at a time; "
            f"{c.write_us_per_revocation:.0f} µs of primary CPU per revocation; "
            f"{c.snapshot_us_per_entry:.2f} µs and {c.snapshot_bytes_per_entry:.0f} bytes per "
            "revoked session in a snapshot (`memory_snapshot.json`). Assumptions: "
            f"a busy stream's follower reads at most every {args.read_ms:g} ms and checks "
            f"at most every {args.check_ms:g} ms; a replica "
            f"may use {args.budget:.0%} of one core; revocations spread evenly over the "
            "partitions; the global stream is idle.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--verifiers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10_000.0, help="revocations per s")
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 6])
    parser.add_argument(
        "--read-ms", type=float, default=1.0, help="fastest follower read (a round trip + client)"
    )
    parser.add_argument(
        "--check-ms", type=float, default=250.0, help="fastest status check while entries flow"
    )
    parser.add_argument("--budget", type=float, default=0.7, help="usable share of a core")
    parser.add_argument("--lifetime-s", type=float, default=305.0, help="revocation lifetime")
    parser.add_argument("--socket-timeout-s", type=float, default=6.0)
    parser.add_argument("--cold-starts", type=int, default=1000)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    print(render(Constants.load(args.results), args))


if __name__ == "__main__":
    main()
