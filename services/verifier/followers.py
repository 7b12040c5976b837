"""Follows every stream of a deployment: the global one and each partition's.

A verifier is fresh only when it is fresh on every stream, and only when
every stream shows the same epoch: a partition whose epoch differs from the
global one lost its data, or is being recovered, and proves nothing meanwhile.
Pruning the cache runs here, once a second, for all streams together.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter

from revocast.errors import RevocastError, SettingsError
from revocast.outage import Outage
from revocast.store import Follow
from revocast.verifier.cache import RevocationCache
from revocast.verifier.follower import (
    PROPAGATION_BUCKETS_S,
    Clocks,
    FollowOptions,
    StreamFollower,
)
from revocast.verifier.lifecycle import Lifecycle

log = logging.getLogger("revocast.verifier")

PRUNE_EVERY_S = 1.0


class Followers:
    """Starts the backend (learning the partition count), then one StreamFollower per stream."""

    def __init__(
        self,
        follow: Follow,
        cache: RevocationCache,
        clocks: Clocks,
        options: FollowOptions,
    ) -> None:
        self.follow = follow
        self.cache = cache
        self.clocks = clocks
        self.options = options
        self.state = Lifecycle.CREATED
        # When the least fresh stream last proved it missed nothing (-inf: no proof). A plain
        # attribute, read on every verify(); the streams update it when their proof changes.
        self.fresh_at = -math.inf
        self.streams: list[StreamFollower] = []
        self.start_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._all_snapshotted = asyncio.Event()

    async def start(self, wait_s: float) -> None:
        """Start following; wait up to ``wait_s`` for every first snapshot, then go on regardless.

        SettingsError (a partition count that does not match the deployment's) is raised.
        """
        if self.state is not Lifecycle.CREATED:
            raise RuntimeError("Cannot start the follower, as it was already started.")
        self.state = Lifecycle.RUNNING
        self._task = asyncio.create_task(self._run(), name="revocast-followers")
        waiter = asyncio.ensure_future(self._all_snapshotted.wait())
        await asyncio.wait(
            {self._task, waiter}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if self._task.done() and not self._task.cancelled():
            self._task.result()  # the partition count did not match: let it surface
        else:
            self._task.add_done_callback(_observed)

    async def stop(self) -> None:
        """End every loop by closing the connections, not by cancelling a blocked read.

        Cancelling a task blocked in ``XREAD BLOCK`` can leave redis-py's
        connection pool waiting forever; a closed socket makes the read fail
        at once and each loop returns on its own.
        """
        self.state = Lifecycle.STOPPED
        self.fresh_at = -math.inf
        for follower in self.streams:
            follower.state = Lifecycle.STOPPED
        await self.follow.interrupt()
        await asyncio.gather(*(follower.stop() for follower in self.streams))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        delay = 0.05
        outage = Outage(log, "reading the deployment's layout")
        while self.state is Lifecycle.RUNNING:
            try:
                keys = await self.follow.start()
                outage.recovered()
                break
            except SettingsError as exc:
                # A partition count that does not match: this verifier can never be fresh.
                self.start_error = f"{type(exc).__name__}: {exc.detail}"
                log.error("cannot follow this deployment: %s", exc.detail)
                raise
            except RevocastError as exc:
                self.start_error = f"{type(exc).__name__}: {exc}"
                outage.failed(str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.max_backoff_s)
        else:
            return
        self.start_error = None
        options = self.options
        self.streams = [
            StreamFollower(
                self.follow,
                stream,
                self.cache,
                self.clocks,
                block_ms=options.block_ms,
                max_backoff_s=options.max_backoff_s,
                on_applied=options.on_applied,
                on_proof=self.recompute_freshness,
            )
            for stream in keys.streams()
        ]
        for follower in self.streams:
            follower.start()
        pruner = asyncio.create_task(self._prune(), name="revocast-prune")
        try:
            await asyncio.gather(*(f.snapshotted.wait() for f in self.streams))
            self._all_snapshotted.set()
            await pruner
        finally:
            pruner.cancel()

    async def _prune(self) -> None:
        while self.state is Lifecycle.RUNNING:
            await asyncio.sleep(PRUNE_EVERY_S)
            self.cache.prune(self.clocks.redis_now_ms())

    def recompute_freshness(self) -> None:
        """``fresh_at`` from the streams: the least fresh one, if all show the same epoch."""
        if not self.streams or self.state is not Lifecycle.RUNNING:
            self.fresh_at = -math.inf
        elif len({follower.epoch for follower in self.streams}) > 1:
            self.fresh_at = -math.inf  # a partition lost its data, or a recovery is under way
        else:
            self.fresh_at = min(follower.fresh_at for follower in self.streams)

    @property
    def snapshotted(self) -> bool:
        return bool(self.streams) and all(f.snapshots > 0 for f in self.streams)

    @property
    def clock_offset_s(self) -> float:
        return self.clocks.offset_s

    @property
    def snapshots(self) -> int:
        return sum(f.snapshots for f in self.streams)

    @property
    def events_applied(self) -> int:
        return sum(f.events_applied for f in self.streams)

    @property
    def events_by_type(self) -> Counter[str]:
        return sum((f.events_by_type for f in self.streams), Counter())

    @property
    def revocations_by_actor(self) -> Counter[str]:
        return sum((f.revocations_by_actor for f in self.streams), Counter())

    @property
    def read_errors(self) -> int:
        return sum(f.read_errors for f in self.streams)

    @property
    def lag_entries(self) -> int:
        return sum(f.lag_entries for f in self.streams)

    @property
    def replica_lag_ms(self) -> int:
        return max((f.replica_lag_ms for f in self.streams), default=0)

    @property
    def propagation_counts(self) -> list[int]:
        counts = [0] * len(PROPAGATION_BUCKETS_S)
        for follower in self.streams:
            counts = [a + b for a, b in zip(counts, follower.propagation_counts, strict=True)]
        return counts

    @property
    def propagation_sum_s(self) -> float:
        return sum(f.propagation_sum_s for f in self.streams)

    @property
    def propagation_max_s(self) -> float:
        return max((f.propagation_max_s for f in self.streams), default=0.0)

    @property
    def positions(self) -> dict[str, str]:
        """Each stream's last applied id."""
        return {f.stream.name: f.last_id for f in self.streams}

    @property
    def error(self) -> str | None:
        errors = [f"{f.stream.name}: {f.error}" for f in self.streams if f.error]
        if self.start_error:
            errors.insert(0, self.start_error)
        return "; ".join(errors) or None


def _observed(task: asyncio.Task[None]) -> None:
    """A failure after start() returned is in ``start_error`` and the log; mark it seen."""
    if not task.cancelled():
        task.exception()
