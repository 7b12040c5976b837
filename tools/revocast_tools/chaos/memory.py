"""Resident memory of the verifier processes, from /proc (invariant 4: bounded memory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def rss_kib(pid: int) -> int | None:
    """VmRSS of a live process in KiB; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


@dataclass(slots=True)
class MemoryTrack:
    """Samples per process (a restarted verifier is a new pid, tracked apart)."""

    samples: dict[int, list[int]] = field(default_factory=dict)  # pid -> KiB over time

    def sample(self, pid: int | None) -> None:
        if pid is None:
            return
        kib = rss_kib(pid)
        if kib is not None:
            self.samples.setdefault(pid, []).append(kib)

    @property
    def max_mib(self) -> float:
        return max((max(s) for s in self.samples.values()), default=0) / 1024

    @property
    def growth_mib(self) -> float:
        """Largest rise from a process's first sample to its last (start-up excluded by caller)."""
        return max((s[-1] - s[0] for s in self.samples.values()), default=0) / 1024
