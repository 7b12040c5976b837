"""The traffic during a scenario: logins, revocations at a rate, probes, readiness, memory.

Every loop survives every fault: failures are counted, never raised, so a
scenario script can kill anything at any moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from revocast.store import Store
from revocast_tools.chaos.accounts import Accounts
from revocast_tools.chaos.cluster import Cluster
from revocast_tools.chaos.ledger import Ledger, Loss, TokenRecord
from revocast_tools.chaos.memory import MemoryTrack
from revocast_tools.chaos.probing import VerifierClients
from revocast_tools.chaos.revoke import Outcome, revoke_http, revoke_store

log = logging.getLogger("revocast_tools.chaos")

RevokePath = Literal["http", "store"]
MAX_INFLIGHT = 64  # revocations waiting for an answer (a paused Redis holds them all)
EXPIRY_MARGIN_S = 5.0  # tokens this close to expiry are no longer used as live ones
SETTLE_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Traffic:
    rate: float  # revocations per second
    path: RevokePath = "http"
    probe_rate: float = 120.0  # probes per second per verifier
    pool: int = 40  # live sessions kept ready


class Workload:
    """Start with ``fill``, then ``async with running()`` around the scenario's faults."""

    def __init__(
        self, cluster: Cluster, accounts: Accounts, ledger: Ledger, traffic: Traffic
    ) -> None:
        self.cluster = cluster
        self.accounts = accounts
        self.ledger = ledger
        self.traffic = traffic
        self.verifiers = VerifierClients(ledger, [v.url for v in cluster.verifiers])
        self.live: list[int] = []
        self.revoked: list[int] = []
        self.recent: deque[int] = deque(maxlen=256)
        self.unacked: list[int] = []
        self.stale_s = [0.0] * len(cluster.verifiers)
        self.memory = MemoryTrack()
        self._ready_pids: set[int] = set()  # sampled only once ready: start-up is not growth
        self.skipped = 0  # revocations not sent because too many were in flight
        self.burst_inflight = 0  # burst revocations sent and not yet answered
        self.burst_answered = 0
        self._rng = random.Random(4)  # noqa: S311 (choice of tokens, not secrets)
        self._stop = asyncio.Event()
        self._stop_revoking = asyncio.Event()
        self._inflight: set[asyncio.Task[Outcome]] = set()

    async def sessions(
        self, count: int, concurrency: int = 8, path: RevokePath | None = None
    ) -> list[TokenRecord]:
        """Up to ``count`` new sessions (fewer if logins fail), not yet in the live pool."""
        mint = (path or self.traffic.path) == "store"
        return await self.accounts.sessions(count, concurrency=concurrency, mint=mint)

    async def fill(self, count: int, concurrency: int = 8) -> int:
        """Add up to ``count`` sessions to the live pool; returns how many."""
        made = await self.sessions(count, concurrency)
        self.live.extend(t.index for t in made)
        return len(made)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        loops: list[Coroutine[Any, Any, None]] = [
            self._feeder(),
            self._revoker(),
            self._monitor(),
            self._sampler(),
        ]
        loops += [self._prober(v) for v in range(len(self.verifiers)) for _ in range(2)]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            yield
        finally:
            self._stop_revoking.set()
            await self.settle()
            self._stop.set()
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def settle(self) -> None:
        """Wait for every revocation in flight to be answered (or to time out)."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=SETTLE_TIMEOUT_S)

    @property
    def inflight(self) -> int:
        """Revocations sent and not yet answered."""
        return len(self._inflight)

    def data_lost(self, loss: Loss) -> None:
        """Redis came back empty: every live token minted before is now revoked."""
        self.ledger.losses.append(loss)
        kept = []
        for index in self.live:
            token = self.ledger.tokens[index]
            if self.ledger.uncertain(token):
                continue
            if token.minted_at < loss.restored_at:
                self.revoked.append(index)
                self.recent.append(index)
            else:
                kept.append(index)
        self.live = kept

    async def revoke(
        self, token: TokenRecord, path: RevokePath | None = None, store: Store | None = None
    ) -> Outcome:
        """Revoke over HTTP or through the Store (the harness's own, unless ``store``)."""
        if (path or self.traffic.path) == "http":
            outcome = await revoke_http(self.accounts.issuer, self.ledger, token)
        else:
            outcome = await revoke_store(store or self.cluster.store, self.ledger, token)
        if outcome is Outcome.ACKED:
            self.revoked.append(token.index)
            self.recent.append(token.index)
        elif outcome is Outcome.UNKNOWN:
            self.unacked.append(token.index)
        elif self.ledger.revoked_at(token) is None:
            self.live.append(token.index)  # nothing was written: still a live token
        return outcome

    async def burst(
        self,
        tokens: list[TokenRecord],
        concurrency: int = 64,
        path: RevokePath = "store",
        store: Store | None = None,
        on_answer: Callable[[], None] | None = None,
    ) -> float:
        """Revoke ``tokens`` (through the Store unless told) as fast as possible; returns the
        seconds taken. ``burst_inflight`` counts the calls waiting for an answer meanwhile;
        ``on_answer`` is called after each answer, before any other task runs."""
        gate = asyncio.Semaphore(concurrency)

        async def one(token: TokenRecord) -> None:
            async with gate:
                self.burst_inflight += 1
                try:
                    await self.revoke(token, path, store)
                finally:
                    self.burst_inflight -= 1
                    self.burst_answered += 1
                    if on_answer is not None:
                        on_answer()

        started = time.monotonic()
        await asyncio.gather(*(one(t) for t in tokens))
        return time.monotonic() - started

    def take_live(self) -> TokenRecord | None:
        """Remove and return a random live token that is not close to expiry."""
        while self.live:
            slot = self._rng.randrange(len(self.live))
            self.live[slot], self.live[-1] = self.live[-1], self.live[slot]
            token = self.ledger.tokens[self.live.pop()]
            if token.exp_s - time.time() > EXPIRY_MARGIN_S:
                return token
        return None

    def _pick_probe(self) -> TokenRecord | None:
        """Mostly live and recently revoked tokens: the ones whose answers can go wrong."""
        r = self._rng.random()
        pool: list[int] | deque[int]
        if r < 0.35 and self.recent:
            pool = self.recent
        elif r < 0.5 and self.revoked:
            pool = self.revoked
        elif r < 0.55 and self.unacked:
            pool = self.unacked
        else:
            pool = self.live
        if not pool:
            return None
        return self.ledger.tokens[pool[self._rng.randrange(len(pool))]]

    async def _feeder(self) -> None:
        while not self._stop.is_set():
            deficit = self.traffic.pool - len(self.live)
            if deficit <= 0:
                await asyncio.sleep(0.05)
                continue
            made = await self.fill(min(deficit, 4), concurrency=4)
            if made == 0:
                await asyncio.sleep(0.1)

    async def _revoker(self) -> None:
        if self.traffic.rate <= 0:
            return
        interval = 1 / self.traffic.rate
        due = time.monotonic()
        while not self._stop_revoking.is_set():
            due += interval
            token = self.take_live() if len(self._inflight) < MAX_INFLIGHT else None
            if token is None:
                self.skipped += 1
            else:
                task = asyncio.create_task(self.revoke(token))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            now = time.monotonic()
            if now - due > 1.0:  # after a stall, go on at the rate instead of catching up
                due = now
            await asyncio.sleep(max(0.0, due - now))

    async def _prober(self, verifier: int) -> None:
        interval = 2 / self.traffic.probe_rate
        while not self._stop.is_set():
            started = time.monotonic()
            token = self._pick_probe()
            if token is not None:
                await self.verifiers.probe(verifier, token)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _monitor(self) -> None:
        """Poll /readyz: the time each verifier spent not ready (stale, or down)."""
        last = time.monotonic()
        while not self._stop.is_set():
            services = list(self.cluster.verifiers)
            answers = await asyncio.gather(*(self.cluster.ready(v) for v in services))
            now = time.monotonic()
            for i, (service, ready) in enumerate(zip(services, answers, strict=True)):
                if not ready:
                    self.stale_s[i] += now - last
                elif service.pid is not None:
                    self._ready_pids.add(service.pid)
            last = now
            self.ledger.readiness_requests += len(answers)
            await asyncio.sleep(0.05)

    async def _sampler(self) -> None:
        while not self._stop.is_set():
            for service in self.cluster.verifiers:
                if service.pid in self._ready_pids:
                    self.memory.sample(service.pid)
            await asyncio.sleep(0.25)
