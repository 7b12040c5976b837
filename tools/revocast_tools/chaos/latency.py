"""Propagation without faults: 1, 4 and 16 verifier processes at 10 and 1,000 revocations/s.

Revocations go through the Store (the issuer's HTTP path cannot do 1,000/s on two
cores). For a sample of them (all at 10/s, about 20 a second at 1,000/s) every
verifier is probed back to back from the moment the revoke call returned until
it answers 401: that time, to the end of the 401 reply, is an upper bound (it
includes one /verify round trip, and the probing competes for the CPUs). If the
verifiers expose ``revocast_propagation_seconds`` (event written -> applied) on
GET /metrics, its increase over each run is reported beside it.

Verifiers connect to Redis directly here: a proxy would add its own latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

from revocast_tools.chaos.accounts import Accounts
from revocast_tools.chaos.cluster import Cluster, ClusterOptions
from revocast_tools.chaos.harness import Params
from revocast_tools.chaos.judge import judge
from revocast_tools.chaos.ledger import Ledger, TokenRecord
from revocast_tools.chaos.memory import MemoryTrack
from revocast_tools.chaos.metrics import Histogram, parse_gauge, parse_histogram
from revocast_tools.chaos.probing import VerifierClients
from revocast_tools.chaos.results import Check, LatencyRow, ScenarioResult
from revocast_tools.chaos.revoke import Outcome, revoke_store

LATENCY_SUMMARY = "propagation, no fault: 1, 4 and 16 verifiers at 10 and 1,000 revocations/s"
METRIC = "revocast_propagation_seconds"
SAMPLES_PER_S = 20
SAMPLE_TIMEOUT_S = 5.0
MAX_INFLIGHT = 64


async def run_latency(params: Params) -> ScenarioResult:
    counts = (params.verifiers,) if params.verifiers else (1, 4, 16)
    rates = (params.rate,) if params.rate else (10.0, 1000.0)
    seconds = params.duration_s or (10.0 if params.full else 1.0)
    result = ScenarioResult("latency", LATENCY_SUMMARY, max(counts))
    started = time.monotonic()
    options = ClusterOptions(verifiers=0, proxied=False, fsync_always=False)
    limit_s = len(counts) * len(rates) * (seconds + 30) + 120  # a hung step must end
    try:
        async with Cluster(options) as cluster, asyncio.timeout(limit_s):
            await _measure_all(cluster, counts, rates, seconds, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.duration_s = round(time.monotonic() - started, 2)
    return result


async def _measure_all(
    cluster: Cluster,
    counts: Sequence[int],
    rates: Sequence[float],
    seconds: float,
    result: ScenarioResult,
) -> None:
    ledger = Ledger()
    accounts = Accounts(cluster, ledger)
    clients = VerifierClients(ledger)
    memory = MemoryTrack()
    try:
        await accounts.create_users()
        for count in sorted(counts):
            have = len(cluster.verifiers)
            await cluster.add_verifiers(count - have)
            clients.extend([v.url for v in cluster.verifiers[have:]])
            for rate in rates:
                tokens = await accounts.sessions(int(rate * seconds), concurrency=32, mint=True)
                row = await _measure(cluster, clients, ledger, tokens, rate)
                result.latency.append(row)
                for service in cluster.verifiers:
                    memory.sample(service.pid)
    finally:
        await clients.close()
        await accounts.close()
    verdicts = judge(ledger, cluster.settings.freshness.max_staleness_s)
    unobserved = sum(row.unobserved for row in result.latency)
    result.checks += [
        Check("accepted_after_revocation", verdicts.accepted_after_revocation, 0),
        Check("false_rejections", verdicts.false_rejections, 0),
        Check("unobserved_revocations", unobserved, 0, "sampled revocations a verifier never "
              f"refused within {SAMPLE_TIMEOUT_S:g} s"),
        Check("verifier_rss_max_mib", round(memory.max_mib, 1), 300.0),
    ]  # fmt: skip
    result.counts |= {
        "probes": verdicts.probes,
        "revocations_acked": ledger.revocations_acked,
        "rss_max_mib": round(memory.max_mib, 1),
    }
    if all(row.metric_count is None for row in result.latency):
        result.notes.append(f"verifiers expose no {METRIC} on /metrics: histogram part skipped")


async def _measure(
    cluster: Cluster,
    clients: VerifierClients,
    ledger: Ledger,
    tokens: list[TokenRecord],
    rate: float,
) -> LatencyRow:
    verifiers = len(cluster.verifiers)
    before = await _scrape(clients)
    every = max(1, round(rate / SAMPLES_PER_S))
    delays: list[float] = []
    unobserved = 0
    inflight: set[asyncio.Task[None]] = set()

    async def revoke(token: TokenRecord, sampled: bool) -> None:
        nonlocal unobserved
        outcome = await revoke_store(cluster.store, ledger, token)
        if not sampled or outcome is not Outcome.ACKED or token.revoked_at is None:
            return
        found = await asyncio.gather(
            *(_first_401(clients, v, token, token.revoked_at) for v in range(verifiers))
        )
        delays.extend(d for d in found if d is not None)
        unobserved += sum(1 for d in found if d is None)

    due = time.monotonic()
    for i, token in enumerate(tokens):
        while len(inflight) >= MAX_INFLIGHT:
            await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(revoke(token, i % every == 0))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
        due += 1 / rate
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
    if inflight:
        await asyncio.wait(inflight)
    await asyncio.sleep(0.2)  # the last events, after the last sampled one, reach every verifier
    after = await _scrape(clients)
    slowest = await _slowest(clients)
    histogram = after - before if after is not None and before is not None else None
    delays.sort()
    return LatencyRow(
        verifiers=verifiers,
        rate=rate,
        revocations=len(tokens),
        samples=len(delays) + unobserved,
        unobserved=unobserved,
        p50_ms=_ms(_nearest_rank(delays, 0.50)),
        p99_ms=_ms(_nearest_rank(delays, 0.99)),
        max_ms=_ms(delays[-1] if delays else None),
        metric_count=int(histogram.count) if histogram else None,
        metric_p50_ms=_ms(histogram.quantile(0.5)) if histogram else None,
        metric_p99_ms=_ms(histogram.quantile(0.99)) if histogram else None,
        metric_max_ms=_ms(slowest),
    )


async def _first_401(
    clients: VerifierClients, verifier: int, token: TokenRecord, since: float
) -> float | None:
    """Seconds from ``since`` to the end of the verifier's first 401 for ``token``."""
    while time.monotonic() - since < SAMPLE_TIMEOUT_S:
        probe = await clients.probe(verifier, token)
        if probe.status == 401:
            return probe.received - since
        if probe.status == 0:
            await asyncio.sleep(0.01)
    return None


async def _scrape(clients: VerifierClients) -> Histogram | None:
    """The propagation histogram summed over every verifier; None if any lacks it."""
    total = Histogram()
    for verifier in range(len(clients)):
        reply = await clients.get(verifier, "/metrics")
        if reply is None or reply.status_code != 200:
            return None
        histogram = parse_histogram(reply.text, METRIC)
        if histogram is None:
            return None
        total = total + histogram
    return total


async def _slowest(clients: VerifierClients) -> float | None:
    """The largest ``revocast_propagation_max_seconds`` of the verifiers (since each started)."""
    values = []
    for verifier in range(len(clients)):
        reply = await clients.get(verifier, "/metrics")
        if reply is not None and reply.status_code == 200:
            value = parse_gauge(reply.text, f"{METRIC.removesuffix('_seconds')}_max_seconds")
            if value is not None:
                values.append(value)
    return max(values, default=None)


def _nearest_rank(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
