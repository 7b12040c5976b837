"""Whether a revocation has taken effect: event ids, verifier receipts, and the report.

Every revoking call answers the id of the stream entry that carries its event, qualified
by its stream (``p3.1764112345678-0``). Every running verifier keeps a *receipt* in Redis,
renewed a few times a second: per stream, the last entry it has applied, and when it
applied the latest few. An event has taken effect on a verifier once that verifier's
position on the event's stream has reached the event. A verifier whose receipt lapsed
(stopped, killed, cut off) is no longer live and is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

EVENT_ID_HEADER = "Revocast-Event-Id"  # on every answer to a revoking call
# ASCII digits only: ``\d`` would also take other scripts' digits, which int() reads.
_ENTRY_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")
_EVENT_ID = re.compile(r"(global|p[0-9]{1,5})\.([0-9]{1,19})-([0-9]{1,19})")


@dataclass(frozen=True, slots=True, order=True)
class EventRef:
    """A stream entry, ordered within its stream by (ms, seq) as Redis orders them."""

    stream: str  # "global" or "p<index>"
    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> EventRef:
        """ValueError unless ``text`` is ``<stream>.<ms>-<seq>``."""
        match = _EVENT_ID.fullmatch(text)
        if match is None:
            raise ValueError(
                f"not an event id (<stream>.<ms>-<seq>, e.g. p0.1764112345678-0): {text!r}"
            )
        return cls(match[1], int(match[2]), int(match[3]))

    @classmethod
    def of(cls, stream: str, entry_id: str) -> EventRef:
        ms, _, seq = entry_id.partition("-")
        return cls(stream, int(ms), int(seq or 0))

    @property
    def entry_id(self) -> str:
        return f"{self.ms}-{self.seq}"

    def __str__(self) -> str:
        return f"{self.stream}.{self.entry_id}"


def entry_key(entry_id: str) -> tuple[int, int]:
    """Stream entry ids compare as (ms, seq) pairs, as Redis orders them."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Receipt(msgspec.Struct, frozen=True):
    """What a verifier writes about itself. Times are Redis time, in milliseconds."""

    instance_id: str
    name: str
    host: str
    version: str
    started_ms: int
    reported_ms: int
    positions: dict[str, str]  # stream -> id of the last entry applied ("0-0": none yet)
    recent: dict[str, list[tuple[str, int]]]  # stream -> [(entry id, applied at)], oldest first
    # The verifier's staleness bound: lapsed without withdrawing, it may accept tokens this
    # long after its last report, then it refuses every one (fails closed).
    max_staleness_ms: int = 5000
    workers: int = 1  # verifier processes it answers for: a host's, with a shared follower

    def __post_init__(self) -> None:
        ids = [*self.positions.values(), *(i for r in self.recent.values() for i, _ in r)]
        if not all(_ENTRY_ID.fullmatch(i) for i in ids):
            raise ValueError("a receipt's positions are stream entry ids")

    def applied(self, event: EventRef) -> tuple[bool, int | None]:
        """(whether the event has taken effect here, when, if still among the recent)."""
        position = self.positions.get(event.stream)
        if position is None or entry_key(position) < (event.ms, event.seq):
            return False, None
        for entry_id, at_ms in self.recent.get(event.stream, ()):
            if entry_id == event.entry_id:
                return True, at_ms
        return True, None  # applied long ago, or by a snapshot taken after it


def encode(receipt: Receipt) -> bytes:
    return msgspec.json.encode(receipt)


def decode(raw: str | bytes) -> Receipt:
    """ValueError for anything that is not a receipt (msgspec's errors are ValueErrors)."""
    return msgspec.json.decode(raw, type=Receipt)


def report(event: EventRef, receipts: list[Receipt]) -> dict[str, Any]:
    """For each live verifier, whether and when ``event`` took effect there."""
    rows = []
    for receipt in sorted(receipts, key=lambda r: (r.name, r.instance_id)):
        applied, at_ms = receipt.applied(event)
        rows.append({
            "instance_id": receipt.instance_id,
            "name": receipt.name,
            "host": receipt.host,
            "version": receipt.version,
            "applied": applied,
            "applied_at_ms": at_ms,
            "delay_ms": None if at_ms is None else max(0, at_ms - event.ms),
            "position": receipt.positions.get(event.stream),
            "reported_ms": receipt.reported_ms,
        })  # fmt: skip
    pending = sum(1 for row in rows if not row["applied"])
    return {
        "event_id": str(event),
        "written_ms": event.ms,
        "verifiers": rows,
        "live": len(rows),
        "applied": len(rows) - pending,
        "pending": pending,
        "all_applied": pending == 0,
    }
