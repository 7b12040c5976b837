"""Invariant 3, no revocation lost: once every verifier is ready again, ask each about every
token that was revoked (acknowledged, or lost with Redis's data); each must answer 401.

A few live tokens are asked too, to catch verifiers that recovered by refusing
everything. A 503 is retried after the verifier is ready again; a pair that never
gets a real answer is "unverified", which fails the check as well: no proof.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from revocast_tools.chaos.cluster import Cluster
from revocast_tools.chaos.ledger import Ledger, TokenRecord
from revocast_tools.chaos.probing import VerifierClients

ATTEMPTS = 4
BUDGET_S = 120.0  # a verifier that never answers must not hold the run for ever
LIVE_SAMPLE = 40


@dataclass(slots=True)
class Recheck:
    revoked_checked: int = 0  # (verifier, token) pairs
    live_checked: int = 0
    lost: int = 0  # a revoked token accepted after recovery
    unverified: int = 0
    examples: list[str] = field(default_factory=list)


async def recheck(cluster: Cluster, clients: VerifierClients, ledger: Ledger) -> Recheck:
    result = Recheck()
    revoked = [
        t for t in ledger.tokens if ledger.revoked_at(t) is not None and not ledger.uncertain(t)
    ]
    now_wall = time.time()
    live = [
        t
        for t in ledger.tokens
        if ledger.maybe_revoked_from(t) is None
        and not ledger.uncertain(t)
        and t.exp_s - now_wall > 5
    ][-LIVE_SAMPLE:]

    deadline = time.monotonic() + BUDGET_S

    async def ask(verifier: int, token: TokenRecord) -> int:
        for _ in range(ATTEMPTS):
            if time.monotonic() > deadline:
                return 0  # out of time: unverified
            probe = await clients.probe(verifier, token, final=True)
            if probe.status in (200, 401):
                return probe.status
            await _wait_ready(cluster, verifier)
        return 0

    async def check(verifier: int) -> None:
        statuses = await asyncio.gather(*(ask(verifier, t) for t in revoked))
        for token, status in zip(revoked, statuses, strict=True):
            result.revoked_checked += 1
            if status == 200:
                result.lost += 1
                if len(result.examples) < 5:
                    result.examples.append(f"verifier{verifier} accepts token#{token.index}")
            elif status == 0:
                result.unverified += 1
        # Live answers are judged with every other probe (invariant 2).
        await asyncio.gather(*(ask(verifier, t) for t in live))
        result.live_checked += len(live)

    # Each verifier's probe pool bounds the requests in flight to it.
    await asyncio.gather(*(check(v) for v in range(len(clients))))
    return result


async def _wait_ready(cluster: Cluster, verifier: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await cluster.ready(cluster.verifiers[verifier]):
            return
        await asyncio.sleep(0.05)
