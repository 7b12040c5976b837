"""Read one histogram from a Prometheus text exposition (a verifier's ``GET /metrics``).

Only what the latency run needs: cumulative buckets summed over label sets, the
difference between two scrapes, and a quantile as the upper bound of its bucket.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LE = re.compile(r'le="([^"]+)"')


@dataclass(slots=True)
class Histogram:
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative count
    count: float = 0.0
    total: float = 0.0

    def __add__(self, other: Histogram) -> Histogram:
        keys = self.buckets.keys() | other.buckets.keys()
        return Histogram(
            {k: self.buckets.get(k, 0) + other.buckets.get(k, 0) for k in keys},
            self.count + other.count,
            self.total + other.total,
        )

    def __sub__(self, other: Histogram) -> Histogram:
        return Histogram(
            {k: v - other.buckets.get(k, 0) for k, v in self.buckets.items()},
            self.count - other.count,
            self.total - other.total,
        )

    def quantile(self, q: float) -> float | None:
        """Upper bound (seconds) of the bucket holding the q-quantile; None when empty."""
        if self.count <= 0:
            return None
        for bound in sorted(self.buckets):
            if self.buckets[bound] >= q * self.count:
                return bound
        return math.inf


def parse_histogram(exposition: str, name: str) -> Histogram | None:
    """The histogram ``name`` (all label sets summed), or None if the text has none."""
    found = False
    histogram = Histogram()
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        metric, labels, raw = match.groups()
        try:
            value = float(raw)
        except ValueError:
            continue
        if metric == f"{name}_bucket":
            le = _LE.search(labels or "")
            if le is None:
                continue
            bound = float(le.group(1).replace("+Inf", "inf"))
            histogram.buckets[bound] = histogram.buckets.get(bound, 0.0) + value
            found = True
        elif metric == f"{name}_count":
            histogram.count += value
            found = True
        elif metric == f"{name}_sum":
            histogram.total += value
    return histogram if found else None


def parse_gauge(exposition: str, name: str) -> float | None:
    """The value of an unlabelled gauge, or None if absent."""
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if match is not None and match.group(1) == name and not match.group(2):
            try:
                return float(match.group(3))
            except ValueError:
                return None
    return None
