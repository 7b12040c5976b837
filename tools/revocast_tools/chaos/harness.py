"""Run one fault scenario end to end: cluster up, traffic on, faults, recovery, the checks.

A scenario is a script of faults (``scenarios.py``); the harness owns everything
around it, so every scenario is judged by the same invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from revocast_tools.chaos.accounts import Accounts
from revocast_tools.chaos.assess import assess
from revocast_tools.chaos.cluster import Cluster, ClusterOptions
from revocast_tools.chaos.judge import judge
from revocast_tools.chaos.ledger import Ledger
from revocast_tools.chaos.nodes import Kind
from revocast_tools.chaos.recheck import recheck
from revocast_tools.chaos.results import Check, FaultRecord, ScenarioResult
from revocast_tools.chaos.workload import Traffic, Workload

log = logging.getLogger("revocast_tools.chaos")


@dataclass(frozen=True, slots=True)
class Params:
    """The command line's choices; None means the scenario's default."""

    full: bool = False
    verifiers: int | None = None
    duration_s: float | None = None
    rate: float | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    warmup_s: float
    hold_s: float  # how long a fault lasts
    gap_s: float  # steady traffic before each fault
    cycles: int
    tail_s: float
    recovery_timeout_s: float

    @classmethod
    def make(cls, duration_s: float, cycles: int, max_staleness_s: float) -> Timing:
        """Split the run: 15 % warm-up, 15 % tail, the rest in fault cycles.

        A fault is held at least 1.3 x max staleness, so that it makes verifiers stale.
        """
        per_cycle = 0.7 * duration_s / cycles
        hold = max(1.3 * max_staleness_s, 0.6 * per_cycle)
        return cls(
            warmup_s=0.15 * duration_s,
            hold_s=hold,
            gap_s=max(0.2, per_cycle - hold),
            cycles=cycles,
            tail_s=0.15 * duration_s,
            recovery_timeout_s=max(15.0, duration_s),
        )


@dataclass(frozen=True, slots=True)
class Spec:
    """A fault scenario: its script and what it needs from the cluster and the traffic."""

    name: str
    summary: str
    script: Callable[[Run], Awaitable[None]]
    cycles: tuple[int, int] = (1, 3)  # short, full
    all_first: bool = False  # link faults: cycle 0 hits every verifier, not verifier 0 alone
    appendonly: bool = True
    topology: Kind = "single"
    verifiers: int = 2  # unless --verifiers says otherwise
    env: Mapping[str, str] = field(default_factory=dict)  # for every service
    verifier_env: Sequence[Mapping[str, str]] = field(default_factory=tuple)
    # Start one more verifier once the faults are over, and check it too: what a node that
    # joins after a failover learns must include every acknowledged revocation.
    late_verifier: bool = False


class Run:
    """What a scenario script acts on, and the record of its faults."""

    def __init__(
        self,
        spec: Spec,
        cluster: Cluster,
        accounts: Accounts,
        workload: Workload,
        ledger: Ledger,
        timing: Timing,
        params: Params,
        result: ScenarioResult,
    ) -> None:
        self.spec = spec
        self.cluster = cluster
        self.accounts = accounts
        self.workload = workload
        self.ledger = ledger
        self.timing = timing
        self.params = params
        self.result = result

    def cycles(self) -> Iterator[int]:
        return iter(range(self.timing.cycles))

    def targets(self, cycle: int) -> list[int]:
        """Alternately verifier 0 alone and every verifier (every one first if ``all_first``)."""
        alone = (cycle % 2 == 0) != self.spec.all_first
        return [0] if alone else list(range(len(self.cluster.verifiers)))

    async def gap(self) -> None:
        await asyncio.sleep(self.timing.gap_s)

    async def hold(self) -> None:
        await asyncio.sleep(self.timing.hold_s)

    def note(self, text: str) -> None:
        self.result.notes.append(text)

    def check(self, check: Check) -> None:
        self.result.checks.append(check)

    def count(self, name: str, value: float) -> None:
        self.result.counts[name] = value

    def worst(self, name: str, value: float) -> None:
        """Count the largest ``value`` over the cycles; -1 (it never happened) sticks."""
        previous = self.result.counts.get(name)
        if previous == -1 or value == -1:
            self.count(name, -1)
        else:
            self.count(name, value if previous is None else max(previous, value))

    @contextlib.asynccontextmanager
    async def fault(self, label: str) -> AsyncIterator[FaultRecord]:
        """Injected on entry; the body heals it; on exit, wait until every service is ready."""
        record = FaultRecord(label, time.monotonic())
        self.result.faults.append(record)
        yield record
        record.healed_at = time.monotonic()
        record.recovered_at = await self.cluster.wait_all_ready(self.timing.recovery_timeout_s)


async def run_fault_scenario(spec: Spec, params: Params) -> ScenarioResult:
    verifiers = params.verifiers or spec.verifiers
    result = ScenarioResult(spec.name, spec.summary, verifiers)
    options = ClusterOptions(
        verifiers=verifiers,
        topology=spec.topology,
        appendonly=spec.appendonly,
        env=spec.env,
        verifier_env=spec.verifier_env,
    )
    duration = params.duration_s or (40.0 if params.full else 3.0)
    cycles = spec.cycles[1] if params.full else spec.cycles[0]
    timing = Timing.make(duration, cycles, options.max_staleness_s)
    rate = params.rate or (40.0 if params.full else 20.0)
    traffic = Traffic(rate=rate, pool=int(2 * rate) + 20)
    started = time.monotonic()
    # Generous, but a hung step must not hold the run (or CI) for ever.
    limit_s = 3 * duration + cycles * timing.recovery_timeout_s + 120
    try:
        async with Cluster(options) as cluster:
            try:
                async with asyncio.timeout(limit_s):
                    await _drive(spec, params, cluster, timing, traffic, result)
            except Exception as exc:
                _failed(result, exc)
            if not result.passed:
                result.logs = cluster.log_tails()
    except Exception as exc:  # the cluster did not start (or stop)
        _failed(result, exc)
    result.duration_s = round(time.monotonic() - started, 2)
    return result


def _failed(result: ScenarioResult, exc: Exception) -> None:
    log.error("scenario %s could not run to the end", result.name, exc_info=exc)
    trace = "".join(traceback.format_exception(exc, limit=-3))
    result.error = f"{type(exc).__name__}: {exc}\n{trace}"


async def _drive(
    spec: Spec,
    params: Params,
    cluster: Cluster,
    timing: Timing,
    traffic: Traffic,
    result: ScenarioResult,
) -> None:
    ledger = Ledger()
    accounts = Accounts(cluster, ledger)
    workload = Workload(cluster, accounts, ledger, traffic)
    try:
        await accounts.create_users()
        await workload.fill(traffic.pool)
        run = Run(spec, cluster, accounts, workload, ledger, timing, params, result)
        async with workload.running():
            await asyncio.sleep(timing.warmup_s)
            await spec.script(run)
            await asyncio.sleep(timing.tail_s)
        if await cluster.wait_all_ready(timing.recovery_timeout_s) is None:
            result.notes.append("not every service was ready before the final check")
        if spec.late_verifier:
            await cluster.add_verifiers(1)
            workload.verifiers.extend([cluster.verifiers[-1].url])
            result.notes.append(f"{cluster.verifiers[-1].name} started after the faults")
        final = await recheck(cluster, workload.verifiers, ledger)
        verdicts = judge(ledger, cluster.settings.freshness.max_staleness_s)
        assess(result, ledger, verdicts, final, workload)
    finally:
        await workload.verifiers.close()
        await accounts.close()
