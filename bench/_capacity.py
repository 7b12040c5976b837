"""The replica cost model fitted by ``bench.replica_cost``, to check other runs against it.

replica CPU = base (no followers: idle rate x seconds + cost per event x events)
            + cycles x CPU per cycle + entries delivered x CPU per entry,
where a cycle is one follower status check (MGET and TIME) with its XREAD, and an entry
delivered is one event reaching one follower. The same shape holds for output bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fit:
    verifiers: int  # the replica_cost run the constants come from
    cpu_us_per_cycle: float
    cpu_us_per_entry: float
    bytes_per_cycle: float
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
            cpu_us_per_cycle=derived["cpu_us_per_cycle"],
            cpu_us_per_entry=derived["bursts"]["cpu_us_per_entry"],
            bytes_per_cycle=derived["bytes_per_idle_cycle"],
            bytes_per_entry=derived["bursts"]["bytes_per_entry"],
            base_cpu_per_s=per_s,
            base_cpu_per_event=max(0.0, per_event),
        )

    def cpu_s(self, seconds: float, events: int, cycles: float, entries: float) -> float:
        """Replica CPU seconds the model predicts for a phase."""
        return (
            self.base_cpu_per_s * seconds
            + self.base_cpu_per_event * events
            + (cycles * self.cpu_us_per_cycle + entries * self.cpu_us_per_entry) / 1e6
        )


def phase_check(fit: Fit, phase: dict[str, Any], verifiers: int) -> dict[str, float]:
    """A measured phase (replica INFO delta, events) against the model's prediction."""
    replica = phase["replica"]
    cycles = replica["commands"].get("mget", {}).get("calls", 0)
    events = phase.get("events", 0)
    predicted = fit.cpu_s(replica["seconds"], events, cycles, verifiers * events)
    return {
        "cycles": cycles,
        "entries": verifiers * events,
        "measured_cpu_s": replica["cpu_s"],
        "predicted_cpu_s": predicted,
        "ratio": replica["cpu_s"] / predicted if predicted else float("nan"),
    }
