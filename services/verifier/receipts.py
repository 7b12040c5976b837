"""This verifier's receipt in Redis: where it stands on every stream, for the proof a
revoker asks for (``revocast.proof``).

The receipt is written as soon as entries are applied (then at most once per interval
while they keep coming, so a flow costs one write per interval) and renewed every quarter
of its TTL, idle or not: a verifier that stops, hangs
or loses Redis drops out of the live ones by itself. It is the only thing a verifier
writes, two commands to the global slot's primary; a failure to write is logged and
retried, and never touches verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time

from revocast import __version__
from revocast.proof import Receipt
from revocast.store import Follow
from revocast.verifier.follower import Clocks
from revocast.verifier.followers import Followers

log = logging.getLogger("revocast.verifier")


def default_name(role: str) -> str:
    """``sidecar web-3:4121``: what runs it, where, which process (REVOCAST_VERIFIER_NAME
    replaces it)."""
    return f"{role} {socket.gethostname()}:{os.getpid()}"


class Receipts:
    """Writes the receipt; ``applied()`` is the follower's hook that says entries were applied."""

    def __init__(
        self,
        follow: Follow,
        followers: Followers,
        clocks: Clocks,
        *,
        name: str,
        interval_s: float,
        max_staleness_s: float,
    ) -> None:
        self.follow = follow
        self.followers = followers
        self.clocks = clocks
        self.instance_id = f"v_{secrets.token_hex(8)}"
        self.name = name
        self.host = socket.gethostname()
        self.interval_s = interval_s
        self.max_staleness_ms = int(max_staleness_s * 1000)
        # Renewed four times per TTL: a live verifier never lapses by one late renewal.
        self.ttl_ms = max(2000, int(interval_s * 8000))
        self.renew_s = self.ttl_ms / 4000
        self.started_ms = clocks.redis_now_ms()
        self.written = 0
        self.write_errors = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def applied(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="revocast-receipts")

    async def stop(self) -> None:
        """Stop writing and take the receipt back, so that nobody waits for this verifier.

        The loop is asked to end, not cancelled first: a cancellation that arrives inside a
        Redis call can be swallowed there (redis-py, Python 3.11), and the loop would go on.
        """
        if self._task is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait({self._task}, timeout=2.0)
        if not done:  # stuck in a Redis call: fall back to cancelling
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)
        self._task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.follow.withdraw_receipt(self.instance_id), 1.0)

    async def _pause(self, timeout_s: float, *, until_applied: bool = False) -> None:
        """``timeout_s``, ended early by ``stop()`` (and by ``applied()`` if asked)."""
        if timeout_s <= 0:
            return
        waiters = {asyncio.ensure_future(self._stopping.wait())}
        if until_applied:
            waiters.add(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def receipt(self) -> Receipt:
        streams = self.followers.streams
        return Receipt(
            instance_id=self.instance_id,
            name=self.name,
            host=self.host,
            version=__version__,
            started_ms=self.started_ms,
            reported_ms=self.clocks.redis_now_ms(),
            positions={s.stream.name: s.last_id for s in streams if s.snapshots},
            recent={s.stream.name: list(s.recent) for s in streams if s.recent},
            max_staleness_ms=self.max_staleness_ms,
        )

    async def _run(self) -> None:
        """Write at once, then on every wake-up: entries applied (at once, unless the last
        such write is under an interval old: a flow of entries costs one write per interval)
        or the renewal time reached (every quarter TTL, whatever else happened)."""
        last_for_entries = -math.inf
        first = True
        failing = False
        while not self._stopping.is_set():
            if not first:
                await self._pause(self.renew_s, until_applied=True)
            first = False
            if self._wake.is_set():
                await self._pause(last_for_entries + self.interval_s - time.monotonic())
                last_for_entries = time.monotonic()
            if self._stopping.is_set():
                return
            self._wake.clear()
            if not self.follow.backend.started:
                continue  # Redis not reached yet: nothing applied, nowhere to write
            try:
                await self.follow.hand_in_receipt(self.receipt(), self.ttl_ms)
                self.written += 1
                failing = False
            except Exception as exc:  # any failure: retry on the next turn
                self.write_errors += 1
                # Once per outage: the follower already says that Redis is not answering.
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "receipt not written (retrying): %s: %s", type(exc).__name__, exc)
                failing = True
