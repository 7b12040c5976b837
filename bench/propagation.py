"""Revocation propagation: from a logout's HTTP reply to each verifier rejecting the token.

Reproduce from the repository root::

    .venv/bin/python -m bench.propagation --verifiers 4
    .venv/bin/python -m bench.propagation --verifiers 1 4 --rounds 300

Everything runs in one process and one asyncio event loop (mode "in-process"): a private
redis-server (appendonly off, in a temp dir), the issuer app on uvicorn, the httpx client and
N Verifier instances. Per round: log in (not timed), wait until every verifier accepts the
access token, ``POST /v1/logout``, then poll ``verify()`` on every verifier with
``await asyncio.sleep(0)`` between polls until each raises TokenRejected.

The clock starts when the logout call *returns* to the client. The revocation event is
XADDed inside the logout's Lua script, so Redis can deliver it to the verifiers' blocked
XREADs before the issuer has even written its HTTP reply; such rounds are rejected at the
first poll and show ~0 ms plus the poll's own cost (the rejecting verify() call, and with N
verifiers the calls polled before it). That is a real outcome, reported as is, with how many
samples were rejected at the first poll and how many events were applied before the reply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from bench._env import add_quiet_arguments, git_state, loadavg, wait_for_quiet
from revocast.connection import redis_client
from revocast.errors import TokenRejected
from revocast.events import AnyEvent
from revocast.issuer import create_app
from revocast.issuer.passwords import Passwords
from revocast.issuer.users import add_user
from revocast.redis_server import RedisServer, free_port
from revocast.settings import Settings
from revocast.store import Backend, Writes
from revocast.verifier import Verifier

RESULTS = Path(__file__).resolve().parent / "results" / "propagation.json"
USERNAME = "bench-user"
PASSWORD = "correct horse battery"
ROUND_TIMEOUT_S = 5.0

NOTES = [
    "mode in-process: redis-server is a separate process; issuer (uvicorn), httpx client, the "
    "issuer's own Verifier and the N benchmark Verifiers share one Python process and one "
    "asyncio event loop (default loop, not uvloop).",
    "The poll loop (verify() then await asyncio.sleep(0)) shares that event loop with the "
    "followers: each poll yields once so follower tasks can run; with N verifiers one pass "
    "polls all of them in order before yielding.",
    "latency_ms starts when POST /v1/logout returns to the client (time.perf_counter) and "
    "ends when the verify() call that raised returns. The event can be applied before the "
    "HTTP reply arrives (Redis serves the blocked XREADs right after the script runs and "
    "flushes their replies with the script's own), so such samples are ~0 ms, and real.",
    "Resolution floor: latency_ms includes the rejecting verify() call itself, and the k-th "
    "verifier polled in a pass also waits for the k-1 verify() calls before it (see "
    "bench.verify_cost for the per-call cost). poll_start_ms ends at the start of the "
    "rejecting call instead: a lower bound, where latency_ms is an upper bound.",
    "rejected_at_first_poll counts samples already rejected by the first verify() after the "
    "logout returned; applied_before_response counts samples whose follower applied the "
    "event before the logout returned, and applied_minus_reply_ms says by how much (negative "
    "= before). Instrumented with each benchmark verifier's on_applied hook, which its "
    "stream followers call right after a batch of entries was applied to the cache.",
    "from_request_ms is the same rejection measured from just before the logout request was "
    "sent, so it includes the whole HTTP round trip; an upper bound on propagation. "
    "applied_from_request_ms is when the follower applied the event, from that same start: "
    "request in, caller check, Lua script with the XADD, XREAD reply, apply.",
    "In this mode the follower's work runs on the loop that also carries the HTTP reply, so "
    "more in-process verifiers also lengthen logout_http_ms, which moves the clock start "
    "later; the from-reply latency cannot show that cost.",
    "Percentiles are nearest-rank over all samples (rounds x verifiers); slowest_per_round_ms "
    "takes, per round, the last verifier to reject.",
]


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Yield the base URL while uvicorn serves ``app`` in this event loop (lifespan included)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited during start-up")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Probe:
    """A verifier plus the perf_counter time its followers last applied stream entries."""

    settings: Settings
    applied_at: float = math.nan
    verifier: Verifier = field(init=False)

    def __post_init__(self) -> None:
        self.verifier = Verifier(self.settings, on_applied=self.applied)

    def applied(self, events: list[AnyEvent]) -> None:
        """The verifier's on_applied hook: a batch of entries is now in its cache."""
        if events:
            self.applied_at = time.perf_counter()


@dataclass
class Sample:
    latency_ms: float  # from the logout reply to the end of the verify() that rejected
    poll_start_ms: float  # from the logout reply to the start of that verify() call
    from_request_ms: float  # from just before the logout request to rejection
    applied_minus_reply_ms: float  # when the follower applied the event, relative to the reply
    applied_from_request_ms: float  # when the follower applied the event, from the request
    first_poll: bool


@dataclass
class Round:
    logout_http_ms: float
    samples: list[Sample] = field(default_factory=list)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "min": round(min(values), 4),
        "mean": round(sum(values) / len(values), 4),
    }


def rejection(verifier: Verifier, token: str) -> str | None:
    """The TokenRejected code verify() raises, or None when it accepts the token."""
    try:
        verifier.verify(token)
    except TokenRejected as exc:
        return exc.code
    return None


async def login(http: httpx.AsyncClient) -> str:
    reply = await http.post("/v1/login", json={"username": USERNAME, "password": PASSWORD})
    reply.raise_for_status()
    token: str = reply.json()["access_token"]
    return token


async def wait_accepted(probes: Sequence[Probe], token: str) -> None:
    deadline = time.perf_counter() + ROUND_TIMEOUT_S
    pending = list(probes)
    while pending:
        pending = [p for p in pending if rejection(p.verifier, token) is not None]
        if pending:
            if time.perf_counter() > deadline:
                raise RuntimeError("a verifier did not accept a fresh token in time")
            await asyncio.sleep(0)


async def one_round(http: httpx.AsyncClient, probes: Sequence[Probe]) -> Round:
    token = await login(http)
    await wait_accepted(probes, token)
    for probe in probes:
        probe.applied_at = math.nan
    headers = {"Authorization": f"Bearer {token}"}

    sent = time.perf_counter()
    reply = await http.post("/v1/logout", headers=headers)
    returned = time.perf_counter()
    if reply.status_code != 204:
        raise RuntimeError(f"logout answered {reply.status_code}: {reply.text}")

    rejected_at: dict[int, float] = {}
    poll_started: dict[int, float] = {}
    first_poll: set[int] = set()
    polls = 0
    while len(rejected_at) < len(probes):
        for index, probe in enumerate(probes):
            if index in rejected_at:
                continue
            started = time.perf_counter()
            code = rejection(probe.verifier, token)
            if code is not None:
                rejected_at[index] = time.perf_counter()
                poll_started[index] = started
                if code != "session_revoked":
                    raise RuntimeError(f"token rejected for another reason: {code}")
                if polls == 0:
                    first_poll.add(index)
        polls += 1
        if len(rejected_at) < len(probes):
            if time.perf_counter() - returned > ROUND_TIMEOUT_S:
                raise RuntimeError(f"revocation not seen by every verifier in {ROUND_TIMEOUT_S}s")
            await asyncio.sleep(0)

    result = Round(logout_http_ms=(returned - sent) * 1000)
    for index, probe in enumerate(probes):
        if math.isnan(probe.applied_at):
            raise RuntimeError("a verifier rejected the token without applying a stream entry")
        result.samples.append(
            Sample(
                latency_ms=(rejected_at[index] - returned) * 1000,
                poll_start_ms=(poll_started[index] - returned) * 1000,
                from_request_ms=(rejected_at[index] - sent) * 1000,
                applied_minus_reply_ms=(probe.applied_at - returned) * 1000,
                applied_from_request_ms=(probe.applied_at - sent) * 1000,
                first_poll=index in first_poll,
            )
        )
    return result


async def run_count(
    settings: Settings, http: httpx.AsyncClient, count: int, rounds: int, warmup: int
) -> dict[str, Any]:
    probes = [Probe(settings) for _ in range(count)]
    for probe in probes:
        await probe.verifier.start()
        if not probe.verifier.ready:
            raise RuntimeError("a verifier did not take its first snapshot")
    try:
        for _ in range(warmup):
            await one_round(http, probes)
        results = [await one_round(http, probes) for _ in range(rounds)]
    finally:
        for probe in probes:
            await probe.verifier.stop()

    samples = [s for r in results for s in r.samples]
    slowest = [max(s.latency_ms for s in r.samples) for r in results]
    return {
        "verifiers": count,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "samples": len(samples),
        "latency_ms": summary([s.latency_ms for s in samples]),
        "slowest_per_round_ms": summary(slowest),
        "poll_start_ms": summary([s.poll_start_ms for s in samples]),
        "from_request_ms": summary([s.from_request_ms for s in samples]),
        "applied_minus_reply_ms": summary([s.applied_minus_reply_ms for s in samples]),
        "applied_from_request_ms": summary([s.applied_from_request_ms for s in samples]),
        "logout_http_ms": summary([r.logout_http_ms for r in results]),
        "rejected_at_first_poll": sum(s.first_poll for s in samples),
        "rounds_all_rejected_at_first_poll": sum(
            all(s.first_poll for s in r.samples) for r in results
        ),
        "applied_before_response": sum(s.applied_minus_reply_ms < 0 for s in samples),
    }


async def redis_version(url: str) -> str:
    client = redis_client(url)
    try:
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


async def run(counts: Sequence[int], rounds: int, warmup: int) -> dict[str, Any]:
    run_at = datetime.now(UTC).isoformat(timespec="seconds")
    git = git_state()
    with tempfile.TemporaryDirectory(prefix="revocast-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False)
        server.start()
        try:
            settings = Settings(
                redis_url=server.url,
                key_prefix=f"bench{uuid.uuid4().hex[:12]}",
                key_dir=str(Path(tmp) / "keys"),
                argon2_time_cost=1,
                argon2_memory_kib=1024,
                argon2_parallelism=1,
                login_max_attempts_per_client=0,  # hundreds of logins from one address
            )
            backend = Backend(settings)
            try:
                await backend.start()
                await add_user(Writes(backend), Passwords(settings), USERNAME, PASSWORD, [])
            finally:
                await backend.aclose()
            async with (
                serve(create_app(settings)) as url,
                httpx.AsyncClient(base_url=url) as http,
            ):
                runs = [await run_count(settings, http, n, rounds, warmup) for n in counts]
            version = await redis_version(server.url)
        finally:
            server.stop()
    return {
        "benchmark": "propagation",
        "mode": "in-process",
        "run_at": run_at,
        "measured": "POST /v1/logout returned to the client -> verify() raises session_revoked",
        "notes": NOTES,
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "redis_server": f"{Path(server.binary).name} {version}",
            "event_loop": "asyncio (default)",
            "git": git,
        },
        "runs": runs,
    }


def print_table(report: dict[str, Any]) -> None:
    header = (
        f"{'verifiers':>9} {'samples':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'1st poll':>8} {'applied<reply':>13} {'slowest/round p50/p99/max ms':>30} "
        f"{'poll-start p50':>14} {'applied-reply p50':>17} {'logout HTTP p50':>15}"
    )
    print(header)
    print("-" * len(header))
    for run in report["runs"]:
        lat, slow, http = run["latency_ms"], run["slowest_per_round_ms"], run["logout_http_ms"]
        slowest = f"{slow['p50']:.3f}/{slow['p99']:.3f}/{slow['max']:.3f}"
        print(
            f"{run['verifiers']:>9} {run['samples']:>7} {lat['p50']:>8.3f} {lat['p99']:>8.3f} "
            f"{lat['max']:>8.3f} {run['rejected_at_first_poll']:>8} "
            f"{run['applied_before_response']:>13} {slowest:>30} "
            f"{run['poll_start_ms']['p50']:>14.3f} {run['applied_minus_reply_ms']['p50']:>17.3f} "
            f"{http['p50']:>15.3f}"
        )
    print()
    print("Clock starts when POST /v1/logout returns. Mode in-process: verifiers, issuer and")
    print("client share one event loop; the poll loop yields (asyncio.sleep(0)) between polls.")
    print("'1st poll' = samples already rejected at the first verify() after the reply;")
    print("'applied<reply' = samples whose follower applied the event before the reply returned;")
    print("'applied-reply' = when it was applied, in ms relative to the reply (negative = before);")
    print("'poll-start' = reply to the start of the rejecting verify() call (a lower bound).")
    print("All times in ms; latency includes the rejecting verify() call (the floor).")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--verifiers", type=int, nargs="+", default=[1], help="verifier counts to run (default 1)"
    )
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per count")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds per count first")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or any(n < 1 for n in args.verifiers):
        parser.error("--rounds and --verifiers must be at least 1, --warmup at least 0")

    words = sys.argv[1:] if argv is None else list(argv)
    quiet = wait_for_quiet(not args.no_wait)
    load_before = loadavg()
    report = asyncio.run(run(args.verifiers, args.rounds, args.warmup))
    report["environment"] |= {
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "quiet_wait": quiet,
    }
    command = [".venv/bin/python", "-m", "bench.propagation", *words]
    report = {"command": shlex.join(command)} | report
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
