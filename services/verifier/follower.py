"""Keeps a RevocationCache in step with the Redis Stream, and knows how fresh it is.

Start: one atomic snapshot of the state plus the stream id it matches. Then,
in a loop: an atomic poll (entries after our id, the stream's entries-added
counter, length, first id and the epoch), and when caught up an ``XREAD BLOCK``
from our id. A reply that
arrives proves nothing was missed up to the moment the request was sent; that
moment is ``fresh_at``. A trimmed position or a changed epoch (Redis lost its
data) triggers a new snapshot, merged into the cache, never replacing it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import enum
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import cast

from redis.exceptions import RedisError

from revocast.errors import StoreUnavailable
from revocast.events import UnknownEvent, decode_entry
from revocast.store import Poll, Store, parse_id
from revocast.verifier.cache import RevocationCache

log = logging.getLogger("revocast.verifier")

BATCH = 1000  # entries per read
PRUNE_EVERY_S = 1.0
# Upper bounds (seconds) of the propagation histogram: event written -> applied here.
PROPAGATION_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                         2.5, 5.0, 10.0, math.inf)  # fmt: skip


class StateLost(Exception):
    """Redis came back without the deployment's epoch; no issuer has recovered yet."""


class FollowerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


class StreamFollower:
    """Runs the read loop as a task; ``fresh_at`` is on the ``monotonic`` clock."""

    def __init__(
        self,
        store: Store,
        cache: RevocationCache,
        *,
        block_ms: int,
        max_backoff_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache = cache
        self.block_ms = block_ms
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._monotonic = monotonic
        self.state = FollowerState.CREATED
        self.fresh_at = -math.inf
        self.last_id = "0-0"
        self.entries_seen = 0  # the stream's entries-added count as of last_id
        self.epoch: str | None = None
        self.snapshots = 0
        self.events_applied = 0
        self.events_by_type: Counter[str] = Counter()
        self.read_errors = 0
        self.lag_entries = 0  # stream entries written but not yet applied, at the last poll
        self.last_delay_ms = 0.0
        self.propagation_counts = [0] * len(PROPAGATION_BUCKETS_S)
        self.propagation_sum_s = 0.0
        self.propagation_max_s = 0.0
        # Redis time minus local time. Token times and forget-after times are Redis
        # time, so the verifier judges them by Redis's clock, whatever its host's says.
        self.clock_offset_s = 0.0
        self.error: str | None = None
        self._needs_snapshot = True
        self._last_prune = 0.0
        self._task: asyncio.Task[None] | None = None
        self._first_snapshot = asyncio.Event()

    async def start(self, wait_s: float) -> None:
        """Start the loop; wait up to ``wait_s`` for the first snapshot, then go on regardless."""
        if self.state is not FollowerState.CREATED:
            raise RuntimeError("Cannot start the follower, as it was already started.")
        self.state = FollowerState.RUNNING
        self._task = asyncio.create_task(self._run(), name="revocast-follower")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_snapshot.wait(), wait_s)

    async def stop(self) -> None:
        """End the loop by closing its connections, not by cancelling a blocked read.

        Cancelling a task blocked in ``XREAD BLOCK`` can leave redis-py's
        connection pool waiting forever; a closed socket makes the read fail
        at once and the loop returns on its own.
        """
        self.state = FollowerState.STOPPED
        self.fresh_at = -math.inf
        if self._task is None:
            return
        await self.store.redis.connection_pool.disconnect()
        done, _ = await asyncio.wait({self._task}, timeout=2.0)
        if not done:  # a read stuck somewhere else: fall back to cancelling
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        delay = 0.05
        while self.state is FollowerState.RUNNING:
            try:
                if self._needs_snapshot:
                    await self._snapshot()
                await self._follow_once()
                self.error = None
                delay = 0.05
            except Exception as exc:
                if self._stopping():
                    return
                self.error = f"{type(exc).__name__}: {exc}"
                self.read_errors += 1
                expected = (StoreUnavailable, RedisError, OSError, UnknownEvent, StateLost)
                log.log(
                    logging.WARNING if isinstance(exc, expected) else logging.ERROR,
                    "revocation stream read failed, retrying in %.2fs: %s",
                    delay,
                    self.error,
                )
                # Full jitter keeps many verifiers from reconnecting in lockstep.
                await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
                delay = min(delay * 2, self.max_backoff_s)
            self._maybe_prune()

    async def _snapshot(self) -> None:
        sent, sent_wall = self._monotonic(), self._clock()
        snapshot = await self.store.snapshot()
        self._measure_offset(snapshot.now_ms, sent, sent_wall)
        if snapshot.epoch is None and self.epoch is not None:
            # Redis lost the state this verifier had followed. Until an issuer recovers
            # (a new epoch, the old keys revoked, in one step), a token may be one nobody
            # can account for any more: stay stale rather than trust the old keys.
            raise StateLost("redis has no epoch: waiting for an issuer to recover")
        self.cache.merge(snapshot)
        self.last_id = snapshot.last_id
        self.entries_seen = snapshot.entries_added
        self.epoch = snapshot.epoch
        self.snapshots += 1
        self._needs_snapshot = False
        self._mark_fresh(sent)
        self._first_snapshot.set()
        log.info(
            "snapshot at %s: %d revoked sessions, %d users, %d keys trusted",
            snapshot.last_id,
            len(snapshot.sessions),
            len(snapshot.users),
            len(self.cache.keys),
        )

    async def _follow_once(self) -> None:
        sent, sent_wall = self._monotonic(), self._clock()
        poll = await self.store.poll(self.last_id, BATCH)
        self._measure_offset(poll.now_ms, sent, sent_wall)
        if poll.epoch != self.epoch:
            log.warning(
                "redis epoch changed (%s -> %s): taking a new snapshot", self.epoch, poll.epoch
            )
            self._needs_snapshot = True
            return
        if self._went_backwards(poll):
            log.warning("stream is behind %s (failover or restore?): new snapshot", self.last_id)
            self._needs_snapshot = True
            return
        if self._trimmed_past_us(poll):
            log.warning("stream trimmed past %s: taking a new snapshot", self.last_id)
            self._needs_snapshot = True
            return
        self._apply(poll.entries)
        self.lag_entries = max(0, poll.entries_added - self.entries_seen)
        if len(poll.entries) == BATCH:
            return  # more to read: not fresh until caught up
        self._mark_fresh(sent)
        sent = self._monotonic()
        reply = cast(
            list[tuple[str, list[tuple[str, dict[str, str]]]]],
            await self.store.redis.xread(
                {self.store.keys.events: self.last_id}, count=BATCH, block=self.block_ms
            ),
        )
        read = 0
        for _stream, entries in reply or []:
            self._apply(entries)
            read += len(entries)
        if read < BATCH:
            self._mark_fresh(sent)

    def _measure_offset(self, redis_now_ms: int, sent: float, sent_wall: float) -> None:
        round_trip = self._monotonic() - sent
        if round_trip < 0.1:  # a slow reply says little about when Redis read its clock
            self.clock_offset_s = redis_now_ms / 1000 - (sent_wall + round_trip / 2)

    def now_ms(self) -> int:
        """Redis's time by the local clock and the measured offset."""
        return int((self._clock() + self.clock_offset_s) * 1000)

    def _went_backwards(self, poll: Poll) -> bool:
        """The stream lost entries we read: a failover to a lagging replica, or a restore."""
        if not poll.stream_exists:
            return self.last_id != "0-0"
        return (
            parse_id(poll.last_id) < parse_id(self.last_id)
            or poll.entries_added < self.entries_seen
        )

    def _trimmed_past_us(self, poll: Poll) -> bool:
        """True when entries after ``last_id`` were trimmed before we read them.

        Trimming removes a prefix, so if the first entry is at or before our id
        nothing after it is gone. Otherwise every present entry is after us, and
        more were added than we saw plus those present: the rest were trimmed.
        """
        if not poll.stream_exists:
            return False
        past_us = poll.length == 0 or parse_id(poll.first_id) > parse_id(self.last_id)
        return past_us and poll.entries_added - self.entries_seen > poll.length

    def _stopping(self) -> bool:
        return self.state is not FollowerState.RUNNING

    def _mark_fresh(self, sent: float) -> None:
        if not self._stopping():
            self.fresh_at = sent

    def _apply(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        now_ms = self.now_ms()
        for entry_id, fields in entries:
            event = decode_entry(fields)
            self.cache.apply(event)
            self.last_id = entry_id
            self.entries_seen += 1
            self.events_applied += 1
            self.events_by_type[type(event).__name__] += 1
            self._observe_delay(max(0.0, (now_ms - event.ts_ms) / 1000))

    def _observe_delay(self, seconds: float) -> None:
        self.last_delay_ms = seconds * 1000
        self.propagation_counts[bisect.bisect_left(PROPAGATION_BUCKETS_S, seconds)] += 1
        self.propagation_sum_s += seconds
        self.propagation_max_s = max(self.propagation_max_s, seconds)

    def _maybe_prune(self) -> None:
        now = self._monotonic()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.cache.prune(self.now_ms())
