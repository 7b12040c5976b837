"""Copying revocations into each SSF stream's queue: every one reaches the receiver, or the
receiver learns which it lost.

Issuers copy the entries written since the last copy from the revocation streams into each
SSF stream's queue (every 200 ms, and before a poll). A queue holds up to
``REVOCAST_SSF_MAX_QUEUE`` unacknowledged events; past that, copying pauses with the cursors
where they are, and resumes from there once the receiver acknowledges (one log line each way,
and the stream status says so meanwhile).

The revocation streams are trimmed (after about an access-token lifetime, or when Redis lost
its data), so a long pause can lose entries before they are copied. Each cursor is an entry
id and that entry's *link* (the chain verifiers check, see ``prelude.lua``): the next entry
copied must name it as its ``prev``. When it does not, or the stream's end is past entries we
never saw, entries were lost here. Never silently: the receiver gets a ``stream-updated`` SET
(SSF 1.0 §8.1.5) in their place, in order, the stream status carries the reason, the issuer
counts it (``revocast_ssf_losses``) and logs one line.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from revocast.events import UnknownEvent, decode_entry
from revocast.issuer.context import IssuerContext
from revocast.issuer.security_events import STREAM_UPDATED, describe
from revocast.proof import EventRef, entry_key

log = logging.getLogger("revocast.issuer")

SPOOL_BATCH = 500  # entries read per revocation stream and copy


async def start_cursors(ctx: IssuerContext) -> dict[str, str]:
    """Cursors at the end of every revocation stream: a new SSF stream gets what comes next."""
    cursors = {}
    for stream in ctx.store.keys.streams():
        entry_id, link = await ctx.store.streams.stream_end(stream.name)
        cursors[stream.name] = _cursor(entry_id, link)
    return cursors


async def spool(ctx: IssuerContext, config: dict[str, Any], stream_id: str) -> None:
    """Copy the revocations written since the last copy into the stream's queue, as events
    (signed only when delivered). Two issuers at once cannot both copy: the cursors are
    watched."""
    found = await ctx.store.signals.ssf_stream(stream_id)
    if found is None:
        return
    _, cursors, queued = found
    status = await ctx.store.signals.ssf_status(stream_id)
    cap = ctx.settings.ssf.ssf_max_queue
    if queued >= cap:
        if await ctx.store.signals.pause_ssf(stream_id, int(time.time() * 1000)):
            log.warning("ssf stream %s: %d events not acknowledged (at most %d): copying paused "
                        "until the receiver acknowledges", stream_id, queued, cap)  # fmt: skip
        return
    if "paused_ms" in status and await ctx.store.signals.resume_ssf(stream_id):
        log.info("ssf stream %s: copying resumed where it paused", stream_id)
    wanted = set(config["events_delivered"])
    moved, entries, gaps = dict(cursors), [], []
    for name, cursor in sorted(cursors.items()):
        after, link = _parse(cursor)
        found_entries, end_link = await ctx.store.streams.entries_and_link(name, after, SPOOL_BATCH)
        for entry_id, fields in found_entries:
            if link is not None and fields.get("prev", "") != link:
                gaps.append(_gap(stream_id, name, after, entry_id, cap))
                entries.append(gaps[-1][1])
            after, link = entry_id, fields.get("link", "")
            described = await _describe(ctx, fields)
            if described is not None and described[0] in wanted:
                event_type, body, subject = described
                jti = str(EventRef.of(name, entry_id))
                entries.append(json.dumps({"jti": jti, "type": event_type, "body": body,
                                           "subject": subject}))  # fmt: skip
        if len(found_entries) < SPOOL_BATCH and link != end_link:
            # At the stream's end, yet not at its last link: what followed us was trimmed.
            if link is not None:
                gaps.append(_gap(stream_id, name, after, None, cap))
                entries.append(gaps[-1][1])
            link = end_link  # a cursor from before links were kept adopts the end's
        moved[name] = _cursor(after, link)
    if moved == cursors:
        return
    loss = (len(gaps), gaps[-1][0]) if gaps else None
    if await ctx.store.signals.spool_ssf(stream_id, cursors, moved, entries, loss) and gaps:
        ctx.counts.ssf_losses += len(gaps)
        for reason, _ in gaps:
            log.warning("ssf stream %s: %s", stream_id, reason)


def _gap(stream_id: str, name: str, after: str, before: str | None, cap: int) -> tuple[str, str]:
    """(the reason, the stream-updated SET, as queued) for entries of revocation stream
    ``name`` lost between ``after`` and ``before`` (None: its end)."""
    until = f"before {_iso(before)}" if before is not None else "until now"
    reason = (
        f"events were lost: revocation stream {name} no longer held those written after "
        f"{_iso(after)} {until} when they were to be copied (the stream's queue was full, "
        f"{cap} unacknowledged events, or no issuer ran, for longer than revocations are "
        "kept): check the sessions and users of that time again"
    )
    updated = {"jti": f"gap.{name}.{after}", "type": STREAM_UPDATED,
               "body": {"status": "enabled", "reason": reason},
               "subject": {"format": "opaque", "id": stream_id}}  # fmt: skip
    return reason, json.dumps(updated)


def status_reason(status: dict[str, str], queued_cap: int) -> str | None:
    """The ``reason`` of the stream status (SSF 1.0 §8.1.2.1): a pause, else the last loss."""
    if "paused_ms" in status:
        return (
            f"copying new events into this stream is paused: {queued_cap} events are not "
            "acknowledged; acknowledge them and copying resumes where it paused (events the "
            "revocation streams trim meanwhile are lost, and told)"
        )
    return status.get("reason")


def _cursor(entry_id: str, link: str | None) -> str:
    return entry_id if link is None else f"{entry_id} {link}"


def _parse(cursor: str) -> tuple[str, str | None]:
    """(entry id, link: None for a cursor written before links were kept)."""
    entry_id, space, link = cursor.partition(" ")
    return entry_id, (link if space else None)


def _iso(entry_id: str) -> str:
    ms = entry_key(entry_id)[0]
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


async def _describe(
    ctx: IssuerContext, fields: dict[str, str]
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    try:
        return await describe(ctx, decode_entry(fields))
    except UnknownEvent:
        return None
