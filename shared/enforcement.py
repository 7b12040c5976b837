"""Reading the verifiers' receipts: has a revocation taken effect, who lags, who is behind.

Used by the issuer (``GET /v1/admin/revocations/{event_id}``, ``?wait=`` on the revoking
admin calls, the ``revocast_verifiers_behind`` gauge) and by the operator CLI (``--wait``,
``revocast verifiers``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from revocast.errors import NotFound
from revocast.proof import EventRef, Receipt, entry_key, report
from revocast.store import Store

MAX_WAIT_S = 30.0
POLL_S = 0.02
LAG_SCAN = 1000  # entries counted per stream before a lag is shown as "1000+"


async def check_exists(store: Store, event: EventRef) -> None:
    """NotFound unless ``event`` names a stream of this deployment and an entry it has had."""
    names = {s.name for s in store.keys.streams()}
    if event.stream not in names:
        raise NotFound(
            f"this deployment has no stream {event.stream} (it has {', '.join(sorted(names))}): "
            "use an event id a revoking call answered"
        )
    last = await store.streams.last_entry(event.stream)
    if last is None or entry_key(last) < (event.ms, event.seq):
        raise NotFound(
            f"stream {event.stream} has had no entry {event.entry_id}: use an event id a "
            "revoking call answered"
        )


async def status(store: Store, event: EventRef) -> dict[str, Any]:
    """Which live verifiers have applied ``event``, when, and which have not yet."""
    answer = report(event, await store.presence.receipts())
    return answer | {"proven": answer["all_applied"] and answer["live"] > 0, "lapsed": []}


async def wait_applied(store: Store, event: EventRef, timeout_s: float) -> dict[str, Any]:
    """``status`` once the revocation is *proven*, or when ``timeout_s`` ends.

    Proven: every live verifier has applied ``event``, there is at least one, and every
    verifier seen pending that has since vanished (killed, paused, cut off: its receipt
    lapsed) is past its staleness bound, after which it refuses every token.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    pending: dict[str, Receipt] = {}  # last receipt of each verifier seen not applied
    while True:
        receipts = await store.presence.receipts()
        answer = report(event, receipts)
        live = {r.instance_id for r in receipts}
        for receipt in receipts:
            if receipt.applied(event)[0]:
                pending.pop(receipt.instance_id, None)
            else:
                pending[receipt.instance_id] = receipt
        now_ms = time.time() * 1000
        lapsed = [r for i, r in pending.items() if i not in live]
        unsafe = [r for r in lapsed if now_ms < r.reported_ms + r.max_staleness_ms]
        proven = answer["all_applied"] and answer["live"] > 0 and not unsafe
        if proven or time.monotonic() >= deadline:
            return answer | {
                "proven": proven,
                "lapsed": [_lapsed(r, now_ms) for r in lapsed],
                "waited_ms": round((time.monotonic() - started) * 1000),
            }
        await asyncio.sleep(POLL_S)


def _lapsed(receipt: Receipt, now_ms: float) -> dict[str, Any]:
    """A verifier that stopped reporting before it applied the event."""
    closed_at = receipt.reported_ms + receipt.max_staleness_ms
    return {"instance_id": receipt.instance_id, "name": receipt.name,
            "last_report_ms": receipt.reported_ms, "fails_closed_at_ms": closed_at,
            "failed_closed": now_ms >= closed_at}  # fmt: skip


async def lags(store: Store) -> list[dict[str, Any]]:
    """Every live verifier, with how many entries and how many ms it is behind, per stream."""
    receipts = await store.presence.receipts()
    streams = [s.name for s in store.keys.streams()]
    ends = dict(
        zip(streams, await asyncio.gather(*map(store.streams.last_entry, streams)), strict=True)
    )
    now_ms = int(time.time() * 1000)
    rows = []
    for receipt in sorted(receipts, key=lambda r: (r.name, r.instance_id)):
        behind_entries, behind_ms = 0, 0
        for stream in streams:
            end, position = ends[stream], receipt.positions.get(stream, "0-0")
            if end is None or entry_key(position) >= entry_key(end):
                continue
            missed = await store.streams.entries_after(stream, position, LAG_SCAN)
            behind_entries += len(missed)
            if missed:
                behind_ms = max(behind_ms, now_ms - entry_key(missed[0])[0])
        rows.append({
            "instance_id": receipt.instance_id,
            "name": receipt.name,
            "host": receipt.host,
            "version": receipt.version,
            "started_ms": receipt.started_ms,
            "reported_ms": receipt.reported_ms,
            "behind_entries": behind_entries,
            "behind_ms": behind_ms,
            "streams_known": len(receipt.positions),
        })  # fmt: skip
    return rows


async def count_behind(store: Store, older_than_ms: int = 1000) -> tuple[int, int]:
    """(live verifiers, those that have not applied an entry written over ``older_than_ms``
    ago): one receipt read and one XREVRANGE per stream."""
    receipts = await store.presence.receipts()
    if not receipts:
        return 0, 0
    streams = [s.name for s in store.keys.streams()]
    cutoff = int(time.time() * 1000) - older_than_ms
    due = await asyncio.gather(*(store.streams.last_entry(s, before_ms=cutoff) for s in streams))
    behind = 0
    for receipt in receipts:
        for stream, entry in zip(streams, due, strict=True):
            position = receipt.positions.get(stream)
            if entry is not None and (position is None or entry_key(position) < entry_key(entry)):
                behind += 1
                break
    return len(receipts), behind


def describe(answer: dict[str, Any]) -> str:
    """The proof as lines a moderator reads: each live verifier, applied or not, its delay."""
    lines = []
    for row in answer["verifiers"]:
        if not row["applied"]:
            lines.append(f"  PENDING  {row['name']}  ({row['instance_id']}, at {row['position']})")
        else:
            delay = "applied before it was asked" if row["delay_ms"] is None else (
                f"{row['delay_ms']} ms after it was written")  # fmt: skip
            lines.append(f"  applied  {row['name']}  ({row['instance_id']}): {delay}")
    for gone in answer.get("lapsed", []):
        state = "has failed closed" if gone["failed_closed"] else "may still accept tokens"
        lines.append(f"  lapsed   {gone['name']}  ({gone['instance_id']}): stopped reporting "
                     f"before applying it; {state}")  # fmt: skip
    lines.append(
        f"{answer['applied']} of {answer['live']} live verifiers applied {answer['event_id']}"
        + (f" (waited {answer['waited_ms']} ms)" if "waited_ms" in answer else "")
    )
    if not answer["live"]:
        lines.append("no live verifier reports receipts: nothing can prove or disprove it")
    return "\n".join(lines)


def describe_lags(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no live verifiers (none reports receipts)"
    lines = [f"{'name':40} {'instance':20} {'behind':>8} {'lag ms':>8}  version"]
    for row in rows:
        name, behind, lag = row["name"][:40], row["behind_entries"], row["behind_ms"]
        lines.append(f"{name:40} {row['instance_id']:20} {behind:>8} {lag:>8}  {row['version']}")
    return "\n".join(lines)
