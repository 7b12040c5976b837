"""The fault scripts. Each runs while the harness keeps logging in, revoking and probing.

Every script loops over ``run.cycles()`` (one in the short version, more with
``--full``); inside ``run.fault(...)`` it injects a fault, holds it and heals it,
and the harness then times the recovery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis

from revocast.settings import ENV_NAMES
from revocast.store import Backend
from revocast_tools.chaos.failover import cluster_failover, sentinel_failover
from revocast_tools.chaos.harness import Run, Spec
from revocast_tools.chaos.ledger import Loss, TokenRecord
from revocast_tools.chaos.metrics import parse_gauge
from revocast_tools.chaos.proxyhost import RemoteProxy
from revocast_tools.chaos.replica_lag import VERIFIER_ENV, replica_lag
from revocast_tools.chaos.results import Check

CLOCK_SKEW_ENV = "REVOCAST_CLOCK_SKEW_S"
CLOCK_SKEWS_S = ("90", "-90")  # beyond the 60 s token lifetime: an unhandled skew shows


async def redis_kill_aof(run: Run) -> None:
    for _ in run.cycles():
        await run.gap()
        async with run.fault("SIGKILL redis, restart from its AOF (appendfsync always)"):
            run.cluster.redis.kill()
            await run.hold()
            run.cluster.redis.start()


async def redis_kill_noaof(run: Run) -> None:
    """Redis comes back empty; an operator recreates the users; old tokens must all die.

    A witness token, live before the loss and never revoked, times how long a
    token from before the loss stays usable anywhere after the restart.
    """
    stuck = 0
    for _ in run.cycles():
        await run.gap()
        witness = run.workload.take_live()
        async with run.fault("SIGKILL redis, restart empty (no AOF)"):
            killed = time.monotonic()
            run.cluster.redis.kill()
            await run.hold()
            run.cluster.redis.wipe()
            run.cluster.redis.start()
            restored = time.monotonic()
            run.workload.data_lost(Loss(killed, restored))
            await run.accounts.create_users()
        if witness is not None:
            refused = await _until_rejected(run, witness, since=restored)
            worst = run.result.counts.get("old_token_refused_everywhere_s", 0.0)
            run.count("old_token_refused_everywhere_s", max(worst, round(refused or 99.0, 3)))
        stuck += not await _logins_resume(run, restored)
    run.check(Check("issuer_stuck_after_loss", stuck, 0, "no login succeeded after Redis lost "
                    "its data; the harness restarted the issuer as an operator would"))  # fmt: skip


async def _logins_resume(run: Run, restored: float) -> bool:
    """Time until the issuer logs users in again; if it never does, restart it as an operator."""
    deadline = time.monotonic() + run.timing.recovery_timeout_s / 2
    while time.monotonic() < deadline:
        token = await run.accounts.login()
        if token is not None:
            run.workload.live.append(token.index)
            worst = run.result.counts.get("logins_resumed_s", 0.0)
            run.count("logins_resumed_s", max(worst, round(time.monotonic() - restored, 3)))
            return True
        await asyncio.sleep(0.05)
    async with run.fault("operator restarts the issuer after the data loss"):
        await run.cluster.restart(run.cluster.issuer)
    return False


async def redis_pause(run: Run) -> None:
    for _ in run.cycles():
        await run.gap()
        async with run.fault(f"SIGSTOP redis for {run.timing.hold_s:.1f}s, then SIGCONT"):
            run.cluster.redis.pause()
            await run.hold()
            run.cluster.redis.resume()


async def _link_faults(
    run: Run,
    label: Callable[[list[int], int], str],
    inject: Callable[[RemoteProxy, int], object],
) -> None:
    """Each cycle: ``inject`` on the targeted verifiers' links, hold, restore them."""
    for cycle in run.cycles():
        targets = run.targets(cycle)
        await run.gap()
        async with run.fault(label(targets, cycle)):
            for i in targets:
                inject(run.cluster.links[i], cycle)
            await run.hold()
            for i in targets:
                run.cluster.links[i].restore()


async def link_cut(run: Run) -> None:
    await _link_faults(
        run,
        lambda targets, _: f"cut the Redis link of verifiers {targets}",
        lambda link, _: link.cut(),
    )


async def link_delay(run: Run) -> None:
    """A slow link (each chunk 1.5 x max staleness late), then a mildly slow one (0.2 s)."""
    staleness = run.cluster.settings.freshness.max_staleness_s

    def delay(cycle: int) -> float:
        return 1.5 * staleness if cycle % 2 == 0 else 0.2

    await _link_faults(
        run,
        lambda targets, c: f"delay the Redis link of verifiers {targets} by {delay(c):.2f}s",
        lambda link, c: link.delay(delay(c)),
    )


async def link_blackhole(run: Run) -> None:
    await _link_faults(
        run,
        lambda targets, _: f"black-hole the Redis link of verifiers {targets}",
        lambda link, _: link.blackhole(),
    )


async def stream_trim(run: Run) -> None:
    """Verifier 0 is cut off while revocations happen and the stream is emptied."""
    backend = run.cluster.backend
    for _ in run.cycles():
        await run.gap()
        before = await _snapshots(run, 0)
        async with run.fault("cut verifier 0, revoke, XTRIM MAXLEN 0 every stream, restore"):
            run.cluster.links[0].cut()
            await run.hold()
            trimmed = 0
            for stream in backend.keys.streams():
                trimmed += await _empty(backend, stream.events)
            run.cluster.links[0].restore()
        after = await _snapshots(run, 0)
        run.note(f"XTRIM removed {trimmed} entries; verifier 0 snapshots {before} -> {after}")


async def _empty(backend: Backend, stream: str) -> int:
    async def trim(client: Redis) -> int:
        return int(await client.xtrim(stream, maxlen=0, approximate=False))

    return await backend.on_primary(stream, trim)


async def _snapshots(run: Run, verifier: int) -> int | None:
    reply = await run.workload.verifiers.get(verifier, "/readyz")
    try:
        snapshots = reply.json().get("snapshots") if reply is not None else None
    except (ValueError, AttributeError):
        return None
    return snapshots if isinstance(snapshots, int) else None


async def verifier_kill(run: Run) -> None:
    for _ in run.cycles():
        await run.gap()
        async with run.fault("SIGKILL verifier 0, revoke while it is down, restart it"):
            run.cluster.verifiers[0].kill()
            await run.hold()
            run.cluster.verifiers[0].spawn()


async def issuer_kill(run: Run) -> None:
    for _ in run.cycles():
        await run.gap()
        await _until_revoking(run)
        async with run.fault("SIGKILL the issuer mid-revocation, restart it"):
            run.cluster.issuer.kill()
            await run.hold()
            run.cluster.issuer.spawn()


async def _until_revoking(run: Run, timeout_s: float = 1.0) -> None:
    """Return while a logout is in flight (or after ``timeout_s``), so a kill can hit one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run.workload.inflight:
            return
        await asyncio.sleep(0.0005)


async def burst(run: Run) -> None:
    """Revoke 2,000 sessions (10,000 with --full) as fast as the Store path allows."""
    count = 10_000 if run.params.full else 2_000
    for _ in run.cycles():
        tokens = await run.workload.sessions(count, concurrency=32, path="store")
        await run.gap()
        async with run.fault(f"burst of {len(tokens)} revocations through the Store"):
            took = await run.workload.burst(tokens)
        run.count("burst_revocations", len(tokens))
        run.count("burst_s", round(took, 3))
        run.count("burst_per_s", round(len(tokens) / took) if took else 0)
        drained = await _until_rejected(run, tokens[-1])
        run.count("burst_last_rejected_everywhere_s", round(drained, 3) if drained else -1)


async def _until_rejected(
    run: Run, token: TokenRecord, since: float | None = None, timeout_s: float = 10.0
) -> float | None:
    """Seconds from ``since`` (default now) until every verifier refuses ``token``."""
    start = time.monotonic() if since is None else since

    async def one(verifier: int) -> bool:
        while time.monotonic() - start < timeout_s:
            if (await run.workload.verifiers.probe(verifier, token)).status == 401:
                return True
            await asyncio.sleep(0.005)
        return False

    done = await asyncio.gather(*(one(v) for v in range(len(run.cluster.verifiers))))
    return time.monotonic() - start if all(done) else None


async def clock_skew(run: Run) -> None:
    """Verifiers told their clock is off; link cuts make them reconnect and re-measure."""
    honoured = CLOCK_SKEW_ENV in ENV_NAMES.values()
    run.note(f"{CLOCK_SKEW_ENV} = {', '.join(CLOCK_SKEWS_S)} s (cycled over the verifiers); "
             f"this build's settings {'read' if honoured else 'do not read'} it")  # fmt: skip
    for cycle in run.cycles():
        targets = run.targets(cycle)
        await run.gap()
        async with run.fault(f"cut the Redis link of verifiers {targets} (clocks skewed)"):
            for i in targets:
                run.cluster.links[i].cut()
            await run.hold()
            for i in targets:
                run.cluster.links[i].restore()
    verifiers = range(len(run.cluster.verifiers))
    offsets = [await _gauge(run, v, "revocast_clock_offset_seconds") for v in verifiers]
    run.note(
        "measured Redis-minus-local clock offsets (from /metrics): "
        + ", ".join("?" if o is None else f"{o:+.3f} s" for o in offsets)
    )


async def _gauge(run: Run, verifier: int, name: str) -> float | None:
    reply = await run.workload.verifiers.get(verifier, "/metrics")
    return None if reply is None or reply.status_code != 200 else parse_gauge(reply.text, name)


SPECS: tuple[Spec, ...] = (
    Spec("redis-kill-aof", "SIGKILL Redis and restart it from its append-only file",
         redis_kill_aof),
    Spec("redis-kill-noaof", "SIGKILL Redis without persistence: it restarts empty",
         redis_kill_noaof, appendonly=False),
    Spec("redis-pause", "SIGSTOP Redis for a while, then SIGCONT", redis_pause),
    Spec("link-cut", "cut verifiers' Redis links (one, then all)", link_cut, cycles=(2, 4)),
    Spec("link-delay", "delay verifiers' Redis links (slow, then mildly slow)", link_delay,
         cycles=(2, 4)),
    Spec("link-blackhole", "black-hole every verifier's Redis link (then one, in turns)",
         link_blackhole, cycles=(1, 4), all_first=True),
    Spec("stream-trim", "cut a verifier, revoke, empty the stream, reconnect", stream_trim),
    Spec("verifier-kill", "SIGKILL a verifier, revoke while it is down, restart it",
         verifier_kill),
    Spec("issuer-kill", "SIGKILL the issuer during revocations, restart it", issuer_kill),
    Spec("burst", "2,000 revocations at once (10,000 with --full) through the Store", burst,
         cycles=(1, 1)),
    Spec("clock-skew", f"verifiers with {CLOCK_SKEW_ENV} of +-90 s, links cut", clock_skew,
         verifier_env=tuple({CLOCK_SKEW_ENV: s} for s in CLOCK_SKEWS_S), all_first=True),
    Spec("sentinel-failover", "SIGKILL the Sentinel primary mid-burst; the replica takes over",
         sentinel_failover, topology="sentinel", late_verifier=True),
    Spec("cluster-failover", "SIGKILL a Redis Cluster shard's primary mid-burst (3 x 2 nodes)",
         cluster_failover, topology="cluster", late_verifier=True),
    Spec("replica-lag", "verifiers reading a Sentinel replica that stops receiving",
         replica_lag, topology="sentinel", verifiers=3, env={"REVOCAST_MIN_REPLICAS": "0"},
         verifier_env=VERIFIER_ENV, late_verifier=True),
)  # fmt: skip
