"""The replica cost model fitted by ``bench.replica_cost``, to check other runs against it.

replica CPU = base (no followers: idle rate x seconds + cost per event x events)
            + reads x CPU per read + checks x CPU per check + entries x CPU per entry,
where a read is one follower ``XREAD`` (it blocks up to a block period), a check one
status check (``MGET`` of the stream's chain, epoch and heartbeat, with ``TIME``, in one
round trip), and an entry delivered is one event reaching one follower. Output bytes: a
check's reply, plus the entries (a read that times out returns a few bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fit:
    verifiers: int  # the replica_cost run the constants come from
    cpu_us_per_read: float
    cpu_us_per_check: float
    cpu_us_per_entry: float
    bytes_per_check: float
    bytes_per_entry: float
    base_cpu_per_s: float  # the replica with no followers, idle (heartbeats, cron)
    base_cpu_per_event: float  # ... and per revocation replicated to it

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Fit:
        """From the replica_cost run with the most followers."""
        derived = max(report["derived"], key=lambda d: d["verifiers"])
        base = next(run for run in report["runs"] if run["verifiers"] == 0)
        idle = base["idle"]["replica"]
        per_s = idle["cpu_s"] / idle["seconds"]
        paced = base["paced"]
        per_event = (paced["replica"]["cpu_s"] - per_s * paced["replica"]["seconds"]) / max(
            1, paced["events"]
        )
        return cls(
            verifiers=derived["verifiers"],
            cpu_us_per_read=derived["cpu_us_per_read"],
            cpu_us_per_check=derived["cpu_us_per_check"],
            cpu_us_per_entry=derived["bursts"]["cpu_us_per_entry"],
            bytes_per_check=derived["bytes_per_check"],
            bytes_per_entry=derived["bursts"]["bytes_per_entry"],
            base_cpu_per_s=per_s,
            base_cpu_per_event=max(0.0, per_event),
        )

    def followers_us(self, reads: float, checks: float, entries: float) -> float:
        """Replica CPU (µs) the model gives the followers' reads, checks and entries."""
        return (
            reads * self.cpu_us_per_read
            + checks * self.cpu_us_per_check
            + entries * self.cpu_us_per_entry
        )

    def cpu_s(
        self, seconds: float, events: int, reads: float, checks: float, entries: float
    ) -> float:
        """Replica CPU seconds the model predicts for a phase."""
        return (
            self.base_cpu_per_s * seconds
            + self.base_cpu_per_event * events
            + self.followers_us(reads, checks, entries) / 1e6
        )


def calls(phase: dict[str, Any], command: str) -> int:
    """How often the replica ran ``command`` in a phase (``INFO commandstats`` delta)."""
    return int(phase["replica"]["commands"].get(command, {}).get("calls", 0))


def phase_check(fit: Fit, phase: dict[str, Any], verifiers: int) -> dict[str, float]:
    """A measured phase (replica INFO delta, events) against the model's prediction."""
    replica = phase["replica"]
    reads, checks = calls(phase, "xread"), calls(phase, "mget")
    events = phase.get("events", 0)
    predicted = fit.cpu_s(replica["seconds"], events, reads, checks, verifiers * events)
    return {
        "reads": reads,
        "checks": checks,
        "entries": verifiers * events,
        "measured_cpu_s": replica["cpu_s"],
        "predicted_cpu_s": predicted,
        "ratio": replica["cpu_s"] / predicted if predicted else float("nan"),
    }
