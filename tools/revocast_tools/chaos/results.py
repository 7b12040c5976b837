"""What a scenario reports: its checks (PASS/FAIL), counts, faults and recovery times."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Check:
    """A pass/fail condition: ``value`` at most ``limit`` (at least, with ``at_least``)."""

    name: str
    value: float
    limit: float
    note: str = ""
    at_least: bool = False

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit


@dataclass(slots=True)
class FaultRecord:
    """One fault: injected, healed, and when every service was ready again."""

    label: str
    injected_at: float
    healed_at: float | None = None
    recovered_at: float | None = None

    @property
    def recovery_s(self) -> float | None:
        if self.healed_at is None or self.recovered_at is None:
            return None
        return max(0.0, self.recovered_at - self.healed_at)


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """Propagation for one (verifiers, rate) run: probed, and from the verifiers' histogram."""

    verifiers: int
    rate: float
    revocations: int
    samples: int  # (revocation, verifier) pairs probed until 401
    unobserved: int  # pairs that never answered 401 within the timeout
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    metric_count: int | None = None  # revocast_propagation_seconds observations in the run
    metric_p50_ms: float | None = None  # bucket upper bounds
    metric_p99_ms: float | None = None
    metric_max_ms: float | None = None  # revocast_propagation_max_seconds: since verifier start


@dataclass(slots=True)
class ScenarioResult:
    name: str
    summary: str
    verifiers: int
    duration_s: float = 0.0
    checks: list[Check] = field(default_factory=list)
    counts: dict[str, float] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)
    latency: list[LatencyRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    error: str | None = None
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and all(check.passed for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["passed"] = self.passed
        body["checks"] = [asdict(c) | {"passed": c.passed} for c in self.checks]
        body["faults"] = [
            {"label": f.label, "recovery_s": f.recovery_s, "healed": f.healed_at is not None}
            for f in self.faults
        ]
        if self.passed:
            body.pop("logs")
        return body
