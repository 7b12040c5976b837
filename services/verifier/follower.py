"""Keeps a RevocationCache in step with one Redis Stream, and knows how fresh that is.

Start: a snapshot of the stream's state (a partition's in pages, ``Follow.snapshot_pages``),
with the id to read on from and the *link* of the stream's last entry. Every entry names
the link of the one before it (``prev``) and carries its own: the follower applies an
entry only if its ``prev`` is the link it holds. So an entry can never be skipped unseen:
not when the stream was trimmed past us, not on a promoted replica with another
history, not from a read that reached another server.

Then, in a loop: ``XREAD BLOCK`` from our id (applying what it returns), and a
status check (the stream's last link, the epoch, the primary's heartbeat, the
server's time: ``MGET`` and ``TIME``, no script). When the server's last link
is ours, or one we reached by reading on right after, we hold everything it
held when asked: that moment is ``fresh_at``. Reading a replica, ``fresh_at``
goes back by the age of the primary's heartbeat the replica had.

A new snapshot, merged into the cache and never replacing it, follows a broken
chain, a stream end we cannot reach from our position, or a changed epoch.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import math
import random
from collections import Counter, deque
from collections.abc import Callable

from redis.exceptions import RedisError

from revocast.errors import StoreUnavailable
from revocast.events import AnyEvent, KeyPublished, UnknownEvent, decode_entry
from revocast.keyspace import StreamKeys
from revocast.outage import Outage
from revocast.store import Follow, Snapshot, Status
from revocast.verifier.cache import RevocationCache
from revocast.verifier.lifecycle import Lifecycle

log = logging.getLogger("revocast.verifier")

BATCH = 1000  # entries per read
RECENT = 16  # entries whose application time the receipt carries (revocast.proof)
# Upper bounds (seconds) of the propagation histogram: event written -> applied here.
PROPAGATION_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                         2.5, 5.0, 10.0, math.inf)  # fmt: skip
EXPECTED_ERRORS = (StoreUnavailable, RedisError, OSError, UnknownEvent)

# The public hook for applied events (``Verifier(on_applied=...)``): called on the follower's
# task with each batch right after the cache has it, so keep it cheap. A snapshot is no batch.
Applied = Callable[[list[AnyEvent]], None]


@dataclasses.dataclass(frozen=True, slots=True)
class FollowOptions:
    """How every stream of a verifier is followed: built once, handed down as it is."""

    block_ms: int
    max_backoff_s: float
    on_applied: Applied | None = None


class StateLost(Exception):
    """Redis came back without the stream's epoch; no issuer has recovered yet."""


class Clocks:
    """Local clocks, and Redis time minus local time as last measured on any stream.

    Token times and forget-after times are Redis time, so the verifier judges
    them by Redis's clock, whatever its host's says.
    """

    def __init__(self, wall: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.offset_s = 0.0
        self._round_trip = math.inf  # of the measurement offset_s comes from

    def measure(self, redis_now_ms: int, sent: float, sent_wall: float) -> None:
        """Keep a fast reply's offset; a slow one only until a faster one comes.

        A slow reply says little about when Redis read its clock (its error is up
        to half the round trip), but on a loaded host the first replies may all be
        slow, and an offset off by a second beats none when the clock is a minute off.
        """
        round_trip = self.monotonic() - sent
        if round_trip < 0.1 or round_trip < self._round_trip:
            self.offset_s = redis_now_ms / 1000 - (sent_wall + round_trip / 2)
            self._round_trip = round_trip

    def redis_now_ms(self) -> int:
        return int((self.wall() + self.offset_s) * 1000)


class StreamFollower:
    """The read loop of one stream, run as a task; ``fresh_at`` is on the monotonic clock."""

    def __init__(
        self,
        follow: Follow,
        stream: StreamKeys,
        cache: RevocationCache,
        clocks: Clocks,
        *,
        block_ms: int,
        max_backoff_s: float = 2.0,
        on_applied: Applied | None = None,
        on_proof: Callable[[], None] | None = None,
    ) -> None:
        self.follow = follow
        self.stream = stream
        self.cache = cache
        self.clocks = clocks
        self.block_ms = block_ms
        self.max_backoff_s = max_backoff_s
        self.on_applied = on_applied
        self.on_proof = on_proof  # called after fresh_at or epoch changed
        self.state = Lifecycle.CREATED
        self.fresh_at = -math.inf
        self.last_id = "0-0"
        self.link: str | None = None  # the link of the entry at last_id
        self.epoch: str | None = None
        self.snapshots = 0
        self.events_applied = 0
        self.events_by_type: Counter[str] = Counter()
        # revocations applied, by whom (the event's actor_kind; '' before it was written)
        self.revocations_by_actor: Counter[str] = Counter()
        self.read_errors = 0
        self.lag_entries = 0  # entries the server had and we had not, at the last status check
        self.replica_lag_ms = 0  # how far the server read is behind its primary's heartbeat
        self.propagation_counts = [0] * len(PROPAGATION_BUCKETS_S)
        self.propagation_sum_s = 0.0
        self.propagation_max_s = 0.0
        self.recent: deque[tuple[str, int]] = deque(maxlen=RECENT)  # (entry id, applied at ms)
        self.error: str | None = None
        self._needs_snapshot = True
        self._checked = -math.inf  # when the last status check was sent
        self._task: asyncio.Task[None] | None = None
        # Retried every 50 ms to 2 s: the log hears of a change, and a reminder now and then.
        self._outage = Outage(log, f"reading stream {stream.name}")
        self.snapshotted = asyncio.Event()

    def start(self) -> None:
        if self.state is not Lifecycle.CREATED:
            raise RuntimeError("Cannot start the follower, as it was already started.")
        self.state = Lifecycle.RUNNING
        self._task = asyncio.create_task(self._run(), name=f"revocast-follow-{self.stream.name}")

    async def stop(self) -> None:
        """Wait for the loop to end (the caller has closed the connections), else cancel it."""
        self.state = Lifecycle.STOPPED
        self.fresh_at = -math.inf
        self._proof_changed()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=2.0)
        if not done:  # a read stuck somewhere else: fall back to cancelling
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        delay = 0.05
        while self.state is Lifecycle.RUNNING:
            try:
                if self._needs_snapshot:
                    await self._snapshot()
                await self._follow_once()
                self.error = None
                self._outage.recovered()
                delay = 0.05
            except Exception as exc:
                if self.stopping:
                    return
                self.error = f"{type(exc).__name__}: {exc}"
                self.read_errors += 1
                expected = isinstance(exc, (*EXPECTED_ERRORS, StateLost))
                self._outage.failed(self.error, logging.WARNING if expected else logging.ERROR)
                # Full jitter keeps many verifiers from reconnecting in lockstep.
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
                delay = min(delay * 2, self.max_backoff_s)

    @property
    def stopping(self) -> bool:
        return self.state is not Lifecycle.RUNNING

    async def _snapshot(self) -> None:
        sent, sent_wall = self.clocks.monotonic(), self.clocks.wall()
        first: Snapshot | None = None
        sessions = users = 0
        async with contextlib.aclosing(self.follow.snapshot_pages(self.stream)) as pages:
            async for page in pages:
                if first is None:
                    first = page
                    self.clocks.measure(page.now_ms, sent, sent_wall)
                    if page.epoch is None and self.epoch is not None:
                        # Redis lost the state this verifier had followed. Until an issuer
                        # recovers (a new epoch, the old keys revoked, in one step), a token
                        # may be one nobody can account for any more: stay stale rather
                        # than trust the old keys.
                        raise StateLost("redis has no epoch: waiting for an issuer to recover")
                self.cache.merge(page)  # merging only adds: a page merged early is no harm
                sessions += len(page.sessions)
                users += len(page.users)
        assert first is not None  # the pages end with a page
        self.last_id = first.last_id
        self.link = first.link
        self.epoch = first.epoch
        self.snapshots += 1
        self._needs_snapshot = False
        self._mark_fresh(sent, first)
        self._proof_changed()  # the epoch may have changed even where freshness did not
        self.snapshotted.set()
        log.info(
            "stream %s: snapshot at %s: %d revoked sessions, %d users, %d keys trusted",
            self.stream.name,
            first.last_id,
            sessions,
            users,
            len(self.cache.keys),
        )

    async def _follow_once(self) -> None:
        entries = await self.follow.read(self.stream, self.last_id, BATCH, self.block_ms)
        if self._apply(entries) is None or len(entries) == BATCH:
            return  # a broken chain (snapshot next), or more to read before any proof
        # While entries flow, the chain alone keeps them honest: check the status (the only
        # proof of freshness) at most every quarter block, not once per event.
        if not entries or self.clocks.monotonic() - self._checked >= self.block_ms / 4000:
            await self._check()

    async def _check(self) -> None:
        """Compare where the server's stream ends with where we are; mark fresh if we hold it."""
        sent, sent_wall = self.clocks.monotonic(), self.clocks.wall()
        self._checked = sent
        status = await self.follow.status(self.stream)
        self.clocks.measure(status.now_ms, sent, sent_wall)
        if status.epoch != self.epoch:
            log.log(
                logging.INFO if self.epoch is None else logging.WARNING,
                "stream %s: epoch %s -> %s: taking a new snapshot",
                self.stream.name,
                self.epoch,
                status.epoch,
            )
            self._needs_snapshot = True
            return
        self.lag_entries = 0
        if status.link != self.link:
            # Entries written since our read (read them now, at once), or a history we cannot
            # read on into from our position (a snapshot then).
            more = await self.follow.read(self.stream, self.last_id, BATCH, None)
            self.lag_entries = len(more)
            passed = self._apply(more)
            if passed is None:
                return
            if status.link not in passed:
                if len(more) < BATCH:
                    log.warning(
                        "stream %s: it ends at %s, which %s does not lead to: new snapshot",
                        self.stream.name,
                        status.link,
                        self.last_id,
                    )
                    self._needs_snapshot = True
                return
        self._mark_fresh(sent, status)

    def _mark_fresh(self, sent: float, reply: Status | Snapshot) -> None:
        if self.state is Lifecycle.STOPPED:
            return
        if not self.follow.on_replicas:
            self.fresh_at = sent
        elif reply.heartbeat_ms is None:
            return  # no heartbeat (no issuer yet): nothing proves the replica is current
        else:
            self.replica_lag_ms = max(0, reply.now_ms - reply.heartbeat_ms)
            self.fresh_at = sent - self.replica_lag_ms / 1000
        self._proof_changed()

    def _proof_changed(self) -> None:
        if self.on_proof is not None:
            self.on_proof()

    def _apply(self, entries: list[tuple[str, dict[str, str]]]) -> list[str | None] | None:
        """Apply entries that continue our chain; the links passed, or None at a break (and
        a snapshot next)."""
        passed: list[str | None] = []
        if not entries:
            return passed
        now_ms = self.clocks.redis_now_ms()
        events = []
        for entry_id, fields in entries:
            if fields.get("prev", "") != (self.link or ""):
                log.warning(
                    "stream %s: entry %s does not follow %s (another history, or a gap): "
                    "new snapshot",
                    self.stream.name,
                    entry_id,
                    self.last_id,
                )
                self._needs_snapshot = True
                break
            event = decode_entry(fields)
            self.cache.apply(event)
            events.append(event)
            self.last_id = entry_id
            self.link = fields.get("link")
            self.recent.append((entry_id, now_ms))
            passed.append(self.link)
            self.events_applied += 1
            self.events_by_type[type(event).__name__] += 1
            if not isinstance(event, KeyPublished):
                self.revocations_by_actor[event.actor_kind] += 1
            self._observe_delay(max(0.0, (now_ms - event.ts_ms) / 1000))
        if events and self.on_applied is not None:
            self.on_applied(events)
        return None if self._needs_snapshot else passed

    def _observe_delay(self, seconds: float) -> None:
        self.propagation_counts[bisect.bisect_left(PROPAGATION_BUCKETS_S, seconds)] += 1
        self.propagation_sum_s += seconds
        self.propagation_max_s = max(self.propagation_max_s, seconds)
