"""Failover on real topologies: SIGKILL a primary mid-burst, and a replica takes over.

Each cycle mints sessions, revokes them all at once through the Store and over
HTTP, and kills the primary (Sentinel's, or that of a cluster shard holding live
sessions) while hundreds of those calls are in flight. Sentinel (or the cluster)
promotes the replica; no revocast process is restarted. The dead node is then
started again and rejoins as a replica. An acknowledged revocation had been
confirmed by the replica (``WAIT``), so the harness's checks must find none lost.

The timeline of each cycle, in seconds from the death: every verifier stale, the
replica promoted, the first successful login and the first acknowledged
revocation (of a user whose partition was on the dead primary), every verifier
ready again; and how long the rejoin took after the promotion.
Those come from the harness's polling, so they are upper bounds on a busy host.
One is a check: the last probe sent after the death that a verifier accepted
(before refusing any) must have been sent within max staleness of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Protocol

from revocast.store import Backend, Store
from revocast_tools.chaos.harness import Run
from revocast_tools.chaos.judge import last_accepted_after
from revocast_tools.chaos.results import Check
from revocast_tools.redis_server import RedisServer

BURST = {False: (900, 200), True: (3000, 500)}  # Store, HTTP revocations: short, --full
# Store clients revoking at once, as several API nodes would. redis-py caps a client's pool
# at 100 connections and a durable revocation holds one through its WAIT: each stays below.
WRITERS = 3
STORE_CONCURRENCY = 90
HTTP_CONCURRENCY = 48  # of the harness's 64 connections to the issuer
# Burst revocations answered (most of them acknowledged) before the kill, which comes from
# the callback of that answer, so that every other call of the burst is still in flight.
KILL_AFTER = 60


class Group(Protocol):
    """What both topologies' launchers do for a failover."""

    def wait_failover(self, old: RedisServer, timeout_s: float = ...) -> RedisServer: ...

    def restart(self, server: RedisServer, timeout_s: float = ...) -> None: ...


async def sentinel_failover(run: Run) -> None:
    group = run.cluster.nodes.sentinel
    async with _writers(run) as writers:
        for _ in run.cycles():
            await run.gap()
            primary = await run.cluster.nodes.call(group.primary)
            label = f"SIGKILL the Sentinel primary (:{primary.port}) mid-burst, promote, rejoin"
            await _failover(run, writers, group, primary, run.accounts.usernames, label)
    _check_fail_closed(run)


async def cluster_failover(run: Run) -> None:
    """Cycle 0 (and every other) kills the shard of the global slot, the others the shard
    of the partition with the most live sessions (another shard, if one has any)."""
    nodes = run.cluster.nodes
    group = nodes.redis_cluster
    keys = run.cluster.backend.keys

    async def primary_of(key: str) -> RedisServer:
        return await nodes.call(group.primary_for_slot, group.slot_of(key))

    async with _writers(run) as writers:
        for cycle in run.cycles():
            await run.gap()
            primary = await primary_of(keys.global_.stream.events)
            what = "the global slot"
            if cycle % 2 == 1:
                live = Counter(keys.of(run.ledger.tokens[i].uid).index for i in run.workload.live)
                for index, _ in live.most_common():
                    candidate = await primary_of(keys.partition(index).stream.events)
                    if candidate is not primary:
                        primary, what = candidate, f"partition {index}"
                        break
            users = [
                name
                for name in run.accounts.usernames
                if await primary_of(keys.of(name).stream.events) is primary
            ]
            label = f"SIGKILL the primary of {what} (:{primary.port}) mid-burst, promote, rejoin"
            await _failover(run, writers, group, primary, users or run.accounts.usernames, label)
    _check_fail_closed(run)


def _check_fail_closed(run: Run) -> None:
    """Verifiers cut off from a dead primary must stop accepting within max staleness."""
    latest = run.result.counts.get("last_accepted_s", 0.0)
    note = "a verifier accepted a probe sent this long after the primary died"
    run.check(
        Check(
            "accepted_after_death_s", latest, run.cluster.settings.freshness.max_staleness_s, note
        )
    )


@contextlib.asynccontextmanager
async def _writers(run: Run) -> AsyncIterator[list[Store]]:
    """The harness's Store client and ``WRITERS - 1`` more, each with its own connections."""
    backends = [Backend(run.cluster.settings) for _ in range(WRITERS - 1)]
    try:
        for backend in backends:
            await backend.start()
        yield [run.cluster.store, *(Store(backend) for backend in backends)]
    finally:
        for backend in backends:
            await backend.aclose()


async def _failover(
    run: Run,
    writers: list[Store],
    group: Group,
    primary: RedisServer,
    users: list[str],
    label: str,
) -> None:
    workload = run.workload
    store_count, http_count = BURST[run.params.full]
    tokens = await workload.sessions(store_count + http_count, concurrency=32, path="store")
    store, http = tokens[:store_count], tokens[store_count:]
    await asyncio.gather(*(_warm(writer) for writer in writers))
    kill = _Kill(primary, workload.burst_answered + KILL_AFTER, run)
    burst = asyncio.gather(
        *(
            workload.burst(
                store[i :: len(writers)], STORE_CONCURRENCY, store=writer, on_answer=kill.on_answer
            )
            for i, writer in enumerate(writers)
        ),
        workload.burst(http, HTTP_CONCURRENCY, path="http", on_answer=kill.on_answer),
    )
    burst.add_done_callback(lambda _: kill.now())  # a burst too short to reach ``after``
    await kill.done.wait()
    verifiers = run.cluster.verifiers
    recovery_s = run.timing.recovery_timeout_s
    async with run.fault(label):
        killed = kill.now()
        in_flight = kill.in_flight
        stale = asyncio.create_task(run.cluster.wait_until(False, verifiers, recovery_s))
        login = asyncio.create_task(_first_login(run, users, killed + recovery_s))
        first_ack = asyncio.create_task(_first_ack(run, users, killed, killed + 3 * recovery_s))
        await run.cluster.nodes.call(group.wait_failover, primary)
        promoted = time.monotonic()
        stale_at = await stale
        ready_at = await run.cluster.wait_until(True, verifiers, recovery_s)
        login_at = await login
        await burst
        await run.cluster.nodes.call(group.restart, primary)
        rejoin_s = time.monotonic() - promoted

    def since_kill(moment: float | None) -> float:
        return -1.0 if moment is None else round(moment - killed, 3)

    timeline = {
        "verifiers_stale_s": since_kill(stale_at),
        "failover_s": since_kill(promoted),
        "first_login_s": since_kill(login_at),
        "first_revocation_acked_s": since_kill(await first_ack),
        "verifiers_ready_s": since_kill(ready_at),
        "rejoin_s": round(rejoin_s, 3),
    }
    latest = last_accepted_after(run.ledger, killed, range(len(verifiers)))
    timeline["last_accepted_s"] = round(latest, 3)
    for name, value in timeline.items():
        run.worst(name, value)
    fewest = run.result.counts.get("in_flight_at_kill", in_flight)
    run.count("in_flight_at_kill", min(fewest, in_flight))  # the weakest cycle
    run.count("burst_revocations", run.result.counts.get("burst_revocations", 0) + len(tokens))
    already = _stale_before(run, killed)
    run.note(
        f"{label}: {in_flight} revocations in flight at the kill"
        + (f", verifiers {already} already stale then" if already else "")
        + "; from the kill: "
        + ", ".join(f"{name} {value:g}" for name, value in timeline.items())
    )


def _stale_before(run: Run, moment: float) -> list[int]:
    """Verifiers whose last answer before ``moment`` was 503 (stale already)."""
    last: dict[int, int] = {}
    for probe in run.ledger.probes:
        if probe.received < moment and probe.status:
            last[probe.verifier] = probe.status
    return sorted(v for v, status in last.items() if status == 503)


async def _warm(store: Store) -> None:
    """Open the connections the burst will use, as on an API node that was already serving."""
    backend = store.backend
    key = backend.keys.global_.partitions
    await asyncio.gather(
        *(backend.exists(key) for _ in range(STORE_CONCURRENCY)), return_exceptions=True
    )


class _Kill:
    """SIGKILL ``primary`` once the burst has had ``after`` answers (or when asked)."""

    def __init__(self, primary: RedisServer, after: int, run: Run) -> None:
        self.primary = primary
        self.after = after
        self.run = run
        self.done = asyncio.Event()
        self.at = 0.0
        self.in_flight = 0  # revocations sent and not yet answered at the kill

    def on_answer(self) -> None:
        if not self.done.is_set() and self.run.workload.burst_answered >= self.after:
            self.now()

    def now(self) -> float:
        """Kill now if not yet done; the monotonic time of the kill."""
        if not self.done.is_set():
            self.in_flight = self.run.workload.burst_inflight + self.run.workload.inflight
            self.primary.kill()
            self.at = time.monotonic()
            self.done.set()
        return self.at


async def _first_ack(run: Run, users: list[str], killed: float, deadline: float) -> float | None:
    """When the first revocation sent after the death, of a session of one of ``users``,
    was acknowledged (a primary cannot confirm any before a replica is in sync with it);
    None if none was before ``deadline``."""
    uids = {run.accounts.uids[name] for name in users}
    while True:
        acked = [
            t.revoked_at
            for t in run.ledger.tokens
            if t.uid in uids and t.revoked_at is not None and (t.revoke_sent or 0.0) > killed
        ]
        if acked or time.monotonic() > deadline:
            return min(acked, default=None)
        await asyncio.sleep(0.05)


async def _first_login(run: Run, users: list[str], deadline: float) -> float | None:
    """When the first login of one of ``users`` succeeded (the reply arrived); None if none
    did before ``deadline``."""
    for name in itertools.cycle(users):
        if time.monotonic() > deadline:
            return None
        token = await run.accounts.login(name)
        if token is not None:
            run.workload.live.append(token.index)
            return token.minted_at
        await asyncio.sleep(0.02)
    return None
