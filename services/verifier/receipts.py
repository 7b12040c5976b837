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
from collections.abc import Callable

from revocast import __version__
from revocast.background import Background
from revocast.lifetimes import RECEIPT_MIN_TTL_MS
from revocast.outage import Outage
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
        workers: Callable[[], int] = lambda: 1,
    ) -> None:
        self.follow = follow
        self.followers = followers
        self.clocks = clocks
        self.instance_id = f"v_{secrets.token_hex(8)}"
        self.name = name
        self.host = socket.gethostname()
        self.interval_s = interval_s
        self.max_staleness_ms = int(max_staleness_s * 1000)
        self.workers = workers  # processes this receipt answers for (a host's, when shared)
        # Renewed four times per TTL: a live verifier never lapses by one late renewal.
        self.ttl_ms = max(RECEIPT_MIN_TTL_MS, int(interval_s * 8000))
        self.renew_s = self.ttl_ms / 4000
        self.started_ms = clocks.redis_now_ms()
        self.written = 0
        self.write_errors = 0
        self._wake = asyncio.Event()
        self._background = Background("revocast-receipts")

    def applied(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._background.start(self._run)

    async def stop(self) -> None:
        """Stop writing and take the receipt back, so that nobody waits for this verifier."""
        if not self._background.running:
            return
        await self._background.stop(grace_s=2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.follow.withdraw_receipt(self.instance_id), 1.0)

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
            workers=self.workers(),
        )

    async def _run(self) -> None:
        """Write at once, then on every wake-up: entries applied (at once, unless the last
        such write is under an interval old: a flow of entries costs one write per interval)
        or the renewal time reached (every quarter TTL, whatever else happened)."""
        last_for_entries = -math.inf
        first = True
        # The follower already says that Redis is not answering: this adds one line a change.
        outage = Outage(log, "writing this verifier's receipt")
        background = self._background
        while not background.stopping():
            if not first:
                await background.pause(self.renew_s, wake=self._wake)
            first = False
            if self._wake.is_set():
                await background.pause(last_for_entries + self.interval_s - time.monotonic())
                last_for_entries = time.monotonic()
            if background.stopping():
                return
            self._wake.clear()
            if not self.follow.backend.started:
                continue  # Redis not reached yet: nothing applied, nowhere to write
            try:
                await self.follow.hand_in_receipt(self.receipt(), self.ttl_ms)
                self.written += 1
                outage.recovered()
            except Exception as exc:  # any failure: retry on the next turn
                self.write_errors += 1
                outage.failed(f"{type(exc).__name__}: {exc}")
