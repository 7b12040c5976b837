"""Revocation propagation with the issuer and every verifier in its own OS process.

Reproduce from the repository root::

    .venv/bin/python -m bench.propagation --action logout block --verifiers 1 2 4 16 --rounds 200

A private redis-server (appendonly off, temp dir) and the issuer (``revocast issuer``, uvicorn
on uvloop) run as separate processes; the users are created with ``revocast user add``. Two
actions revoke a token (``--action``, default logout):

- logout: a user's fresh session is ended by ``POST /v1/logout`` with its own access token; the
  verifiers must reject that token with ``session_revoked`` (the event names the ``sid``).
- block: a moderator (``revocast user add mod --role moderator``, logged in once, again
  before its token is half-way to expiry) calls ``POST /v1/admin/users/{uid}/block`` on a
  target user who holds a fresh session; the verifiers must reject the target's token with
  ``user_revoked`` (the event names only the ``uid``). Before each round's login the target
  is unblocked (``POST /v1/admin/users/{uid}/unblock``, not timed).

For each verifier count N and action, N fresh ``bench._verifier_worker`` processes, each a real
``Verifier`` on uvloop with its own Redis connection. Each reports, from the verifier's
``on_applied`` hook, ``time.monotonic()`` right after the batch that makes the watched token
rejected was applied (and confirms it, and the code, with ``verify()``). ``time.monotonic()``
is CLOCK_MONOTONIC, one clock for every process on a Linux host. Nobody polls or spins: the
workers sleep in ``XREAD BLOCK`` and the client waits on their pipes.

Per round: log in (not timed), wait until every verifier accepts the token, make the timed
call, collect one sample per verifier. Percentiles are nearest-rank over rounds x verifiers.
Each latency is given from the timed call's reply and from just before its request: with more
processes than CPUs the verifiers' wake-up delays the call's own reply, which flatters
from-reply figures as N grows (see the JSON notes).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from bench._env import add_quiet_arguments, cpu_seconds, run_and_record
from bench._issuer import PASSWORD, add_user, revocast_env, start_issuer
from bench._processes import (
    ROUND_TIMEOUT_S,
    Children,
    Worker,
    check_alive,
    clock_check,
    start_workers,
    stop_workers,
)
from bench._redis_info import redis_version
from bench._stats import ms, summary
from revocast_tools.redis_server import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "propagation.json"
USERNAME = "bench"  # logs in and out (action logout)
TARGET = "bench-target"  # blocked by the moderator (action block)
MODERATOR = "mod"
ACTIONS = ("logout", "block")

NOTES = [
    "Every component is its own OS process on one host: redis-server, the issuer (uvicorn, "
    "uvloop, httptools; it also runs its own Verifier, one more set of stream readers), the "
    "client (this script, uvloop), and N verifier processes. Nothing is pinned to a CPU.",
    "Each run is one (action, verifiers). The timed call: action logout, POST "
    "/v1/logout with the session's own access token (expected rejection code "
    "session_revoked); action block, POST /v1/admin/users/{uid}/block with a moderator's "
    "access token and {'reason': 'bench'} (expected user_revoked: every token of the user "
    "issued up to the block dies). For block the target user is unblocked and logs in again "
    "before each round, outside the timing; the moderator is another user, so its own token "
    "stays valid (every unblock and block call is authorized with it).",
    "Clock start for latency_ms: time.monotonic() in the client right after the timed "
    "call returned (response read). The revocation is XADDed inside the call's Lua script, "
    "so a verifier can apply it before the issuer's HTTP reply reaches the client; such "
    "samples are negative and real (applied_before_reply counts them).",
    "latency_ms ends at time.monotonic() in the verifier process right after its "
    "stream follower applied the batch holding the revocation to the cache; from then on "
    "verify() rejects the token. bench._verifier_worker passes the Verifier an on_applied "
    "hook that, after each batch, runs verify()'s revocation look-ups (revoked key, "
    "session, user not-before, roles changed; O(1) dictionary look-ups on the claims "
    "decoded when the token was accepted), "
    "so it waits for 'the token is now rejected' whatever the event; the confirming "
    "verify() (it must raise the action's expected code) and the pipe write run via "
    "call_soon, at the follower's next await. checked_ms is the end of that confirming call. "
    "Workers never poll or spin: they sleep in XREAD BLOCK, so the measurement adds no CPU "
    "load of its own. (Tried and dropped: deferring the report by 50 ms, and a full verify() "
    "inside the hook; neither moved the figures beyond run-to-run noise.)",
    "Clocks: CLOCK_MONOTONIC is system-wide on Linux. clock_check pings each worker 20 times "
    "and requires the worker's time.monotonic() to fall between the client's send and "
    "receive; a worker applying the revocation before the client sent the timed call also "
    "aborts the run.",
    "from_request_ms measures from just before the timed request was sent, so "
    "it adds the call's own HTTP round trip (revoke_http_ms). The XADD happens between "
    "sending and the reply, so from-reply and from-request bracket the propagation from the "
    "XADD. With more processes than CPUs the verifiers wake up while the issuer still has to "
    "write its reply: revoke_http_ms grows with N, the clock start moves later and the "
    "from-reply figures look better as N grows. from_request_ms has no such bias.",
    "cpu_ms_per_round: CPU time used during the timed rounds by all verifier "
    "processes together, the issuer, redis-server (from /proc/<pid>/stat) and the client "
    "(time.process_time), divided by the rounds: the work one revocation round costs the "
    "host, to set against the CPUs available.",
    "slowest_per_round_ms: per round, the last verifier to apply; it is the time until every "
    "verifier rejects the token.",
]


# --- what a round revokes -------------------------------------------------------------------


@dataclass
class Login:
    token: str
    uid: str
    expires_in: float  # seconds the access token lives
    at: float  # client's time.monotonic() just before the login request


async def login(issuer: httpx.AsyncClient, username: str = USERNAME) -> Login:
    at = time.monotonic()
    reply = await issuer.post("/v1/login", json={"username": username, "password": PASSWORD})
    if reply.status_code != 200:
        raise RuntimeError(f"login of {username} answered {reply.status_code}: {reply.text}")
    body = reply.json()
    return Login(str(body["access_token"]), str(body["user_id"]), float(body["expires_in"]), at)


async def timed_post(
    issuer: httpx.AsyncClient, url: str, status: int, headers: dict[str, str], **kwargs: Any
) -> tuple[float, float]:
    """POST; the client's time.monotonic() just before sending and just after the reply."""
    sent = time.monotonic()
    reply = await issuer.post(url, headers=headers, **kwargs)
    returned = time.monotonic()
    if reply.status_code != status:
        raise RuntimeError(f"{url} answered {reply.status_code}: {reply.text}")
    return sent, returned


class Action(ABC):
    """What a round revokes: ``session`` logs a user in (not timed) and gives its access
    token; ``revoke`` makes the timed call after which verifiers must reject that token with
    ``code``. One instance lives for the whole run (the block target's state carries over)."""

    name: str
    code: str
    call: str

    def __init__(self, issuer: httpx.AsyncClient) -> None:
        self.issuer = issuer

    @abstractmethod
    async def session(self) -> str: ...

    @abstractmethod
    async def revoke(self, token: str) -> tuple[float, float]: ...


class Logout(Action):
    name = "logout"
    code = "session_revoked"
    call = "POST /v1/logout"

    async def session(self) -> str:
        return (await login(self.issuer)).token

    async def revoke(self, token: str) -> tuple[float, float]:
        headers = {"Authorization": f"Bearer {token}"}
        return await timed_post(self.issuer, "/v1/logout", 204, headers)


class Block(Action):
    """A moderator blocks the target user; the target is unblocked before each new login."""

    name = "block"
    code = "user_revoked"
    call = "POST /v1/admin/users/{uid}/block"
    # A login in the same Redis millisecond as the last block would get a token the block
    # already covers (iat <= not_before): the next login starts at least this long after it.
    GAP_S = 0.002

    def __init__(self, issuer: httpx.AsyncClient) -> None:
        super().__init__(issuer)
        self.moderator: Login | None = None
        self.moderator_logins = 0
        self.uid: str | None = None
        self.blocked_at = -1.0

    def headers(self) -> dict[str, str]:
        assert self.moderator is not None
        return {"Authorization": f"Bearer {self.moderator.token}"}

    async def session(self) -> str:
        mod = self.moderator
        if mod is None or time.monotonic() - mod.at > mod.expires_in / 2:
            # Log the moderator in again long before its access token expires.
            self.moderator = await login(self.issuer, MODERATOR)
            self.moderator_logins += 1
        if self.uid is not None:
            url = f"/v1/admin/users/{self.uid}/unblock"
            await timed_post(self.issuer, url, 200, self.headers(), json={"reason": "bench"})
        if (wait := self.blocked_at + self.GAP_S - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        target = await login(self.issuer, TARGET)
        self.uid = target.uid
        return target.token

    async def revoke(self, token: str) -> tuple[float, float]:
        url = f"/v1/admin/users/{self.uid}/block"
        sent, returned = await timed_post(
            self.issuer, url, 200, self.headers(), json={"reason": "bench"}
        )
        self.blocked_at = returned
        return sent, returned


def make_action(name: str, issuer: httpx.AsyncClient) -> Action:
    return {"logout": Logout, "block": Block}[name](issuer)


# --- the rounds -----------------------------------------------------------------------------


def cpu_by_role(children: Children, workers: Sequence[Worker]) -> dict[str, float]:
    """CPU seconds used so far by all verifier workers together, the issuer, redis-server and
    this client process (read from /proc; the client with time.process_time)."""
    issuer = next((c for c in children.running if c.name == "issuer"), None)
    return {
        "verifiers": sum(cpu_seconds(w.child.process.pid) for w in workers),
        "issuer": cpu_seconds(issuer.process.pid if issuer else None),
        "redis": cpu_seconds(children.redis_pid),
        "client": time.process_time(),
    }


@dataclass
class WorkerRound:
    revoke_http_ms: float
    applied_ms: list[float]
    checked_ms: list[float]
    applied_from_request_ms: list[float]


async def worker_round(action: Action, workers: Sequence[Worker]) -> WorkerRound:
    token = await action.session()
    for worker in workers:
        worker.send(f"watch {token}")
    for worker in workers:
        words = await worker.receive(ROUND_TIMEOUT_S)
        if words != ["accepting"]:
            raise RuntimeError(f"{worker.child.name} said {words!r}, not accepting")

    sent, returned = await action.revoke(token)

    result = WorkerRound(ms(returned - sent), [], [], [])
    for worker in workers:
        words = await worker.receive(ROUND_TIMEOUT_S)
        if len(words) != 4 or words[0] != "revoked":
            raise RuntimeError(f"{worker.child.name} said {words!r}, not revoked")
        if words[3] != action.code:
            raise RuntimeError(
                f"{worker.child.name} rejected the token with {words[3]}, not {action.code}"
            )
        applied, checked = float(words[1]), float(words[2])
        if applied < sent:
            raise RuntimeError(f"{worker.child.name} applied the revocation before the call")
        result.applied_ms.append(ms(applied - returned))
        result.checked_ms.append(ms(checked - returned))
        result.applied_from_request_ms.append(ms(applied - sent))
    return result


async def run_workers(
    children: Children,
    env: dict[str, str],
    action: Action,
    count: int,
    rounds: int,
    warmup: int,
) -> dict[str, Any]:
    """``count`` fresh verifier processes, ``warmup`` then ``rounds`` rounds of ``action``."""
    workers: list[Worker] = []
    try:
        await start_workers(children, env, count, workers)
        clocks = await clock_check(workers)
        for _ in range(warmup):
            await worker_round(action, workers)
        cpu_before = cpu_by_role(children, workers)
        results = [await worker_round(action, workers) for _ in range(rounds)]
        cpu_after = cpu_by_role(children, workers)
    finally:
        await stop_workers(children, workers)

    applied = [v for r in results for v in r.applied_ms]
    return {
        "action": action.name,
        "timed_call": action.call,
        "expected_code": action.code,
        "mode": "worker",
        "verifiers": count,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "samples": len(applied),
        "latency_ms": summary(applied),
        "slowest_per_round_ms": summary([max(r.applied_ms) for r in results]),
        "checked_ms": summary([v for r in results for v in r.checked_ms]),
        "from_request_ms": summary([v for r in results for v in r.applied_from_request_ms]),
        "slowest_per_round_from_request_ms": summary(
            [max(r.applied_from_request_ms) for r in results]
        ),
        "revoke_http_ms": summary([r.revoke_http_ms for r in results]),
        "applied_before_reply": sum(v < 0 for v in applied),
        "rounds_all_applied_before_reply": sum(max(r.applied_ms) < 0 for r in results),
        "clock_check": clocks,
        "cpu_ms_per_round": {
            role: round((cpu_after[role] - cpu_before[role]) * 1000 / rounds, 3)
            for role in cpu_before
        },
    }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = RedisServer(tmp / "redis", appendonly=False)
    children = Children(tmp)
    server.start()
    children.redis_pid = server.pid
    runs: list[dict[str, Any]] = []
    try:
        env = revocast_env(server.url, tmp)
        issuer_child, url = await start_issuer(children, env)
        add_user(env, USERNAME)
        if "block" in args.action:
            add_user(env, TARGET)
            add_user(env, MODERATOR, ["moderator"])
        async with httpx.AsyncClient(base_url=url, timeout=ROUND_TIMEOUT_S) as issuer:
            actions = [make_action(name, issuer) for name in dict.fromkeys(args.action)]
            for count in args.verifiers:
                for action in actions:
                    started = time.monotonic()
                    logins = action.moderator_logins if isinstance(action, Block) else 0
                    run = await run_workers(children, env, action, count, args.rounds, args.warmup)
                    run["wall_s"] = round(time.monotonic() - started, 1)
                    if isinstance(action, Block):
                        run["moderator_logins"] = action.moderator_logins - logins
                    lat, req = run["latency_ms"], run["from_request_ms"]
                    print(
                        f"  {action.name} x{count}: p50 {lat['p50']:.3f} ms from reply, "
                        f"{req['p50']:.3f} ms from request ({run['wall_s']} s)",
                        flush=True,
                    )
                    runs.append(run)
                    check_alive([issuer_child])
        redis = await redis_version(server.url)
    finally:
        children.stop()
        server.stop()
    return {
        "runs": runs,
        "redis_server": f"{Path(server.binary).name} {redis}",
        "environment": {
            "event_loop": f"uvloop {version('uvloop')} in every Python process",
            "uvicorn": version("uvicorn"),
            "httpx": version("httpx"),
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--verifiers", type=int, nargs="+", default=[1], help="verifier counts to run (default 1)"
    )
    parser.add_argument("--rounds", type=int, default=200, help="timed rounds per count")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument(
        "--action",
        choices=ACTIONS,
        nargs="+",
        default=["logout"],
        help="what revokes the token: logout (default), block (a moderator blocks the user)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    add_quiet_arguments(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or any(n < 1 for n in args.verifiers):
        parser.error("--rounds and --verifiers must be at least 1, --warmup at least 0")
    run_and_record("propagation", args, argv, measure, notes=NOTES)


if __name__ == "__main__":
    main()
