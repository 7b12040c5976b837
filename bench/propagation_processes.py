"""Revocation propagation with the issuer and every verifier in its own OS process.

Reproduce from the repository root::

    .venv/bin/python -m bench.propagation_processes --verifiers 1 4 16 --rounds 200
    .venv/bin/python -m bench.propagation_processes --mode worker --action logout block \
        --verifiers 1 2 4 16 --rounds 200

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

For each verifier count N and action, the modes run in turn, each with N fresh verifier
processes:

- mode "worker" (the propagation figure): N ``bench._verifier_worker`` processes, each a real
  ``Verifier`` on uvloop with its own Redis connection. Each reports, from the verifier's
  ``on_applied`` hook, ``time.monotonic()`` right after the batch that makes the watched token
  rejected was applied (and confirms it, and the code, with ``verify()``). ``time.monotonic()`` is
  CLOCK_MONOTONIC, one clock for every process on a Linux host. Latency = that moment minus
  the client's ``time.monotonic()`` right after the timed call (logout or block) returned.
  Nobody polls or spins: the workers sleep in ``XREAD BLOCK`` and the client waits on their
  pipes.
- mode "sidecar" (an upper bound): N ``revocast verifier`` sidecars, polled over HTTP
  ``GET /verify`` with one keep-alive httpx client each, all at once with ``asyncio.gather``,
  until each answers 401. Latency = the end of the first 401 reply minus the timed call's
  return; it includes one /verify round trip, whose floor is measured on an accepted token.

Per round (both modes): log in (not timed), wait until every verifier accepts the token, make
the timed call, collect one sample per verifier. Percentiles are nearest-rank over rounds x
verifiers. Each latency is also given from just before the timed request was sent: with more
processes than CPUs the verifiers' wake-up delays the call's own reply, which flatters
from-reply figures as N grows (see the JSON notes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import httpx
import uvloop

from bench._env import add_quiet_arguments, cpu_seconds, git_state, wait_for_quiet
from bench.propagation import summary
from revocast.connection import redis_client
from revocast.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "propagation_processes.json"
USERNAME = "bench"  # logs in and out (action logout)
TARGET = "bench-target"  # blocked by the moderator (action block)
MODERATOR = "mod"
PASSWORD = "correct horse battery"
ROUND_TIMEOUT_S = 5.0
START_TIMEOUT_S = 90.0
FLOOR_SAMPLES = 200
MODES = ("worker", "sidecar")
ACTIONS = ("logout", "block")

NOTES = [
    "Every component is its own OS process on one host: redis-server, the issuer (uvicorn, "
    "uvloop, httptools; it also runs its own Verifier, one more set of stream readers), the "
    "client (this script, uvloop), and N verifier processes. Nothing is pinned to a CPU.",
    "Each run is one (action, mode, verifiers). The timed call: action logout, POST "
    "/v1/logout with the session's own access token (expected rejection code "
    "session_revoked); action block, POST /v1/admin/users/{uid}/block with a moderator's "
    "access token and {'reason': 'bench'} (expected user_revoked: every token of the user "
    "issued up to the block dies). For block the target user is unblocked and logs in again "
    "before each round, outside the timing; the moderator is another user, so its own token "
    "stays valid (every unblock and block call is authorized with it).",
    "Clock start for every latency: time.monotonic() in the client right after the timed "
    "call returned (response read). The revocation is XADDed inside the call's Lua script, "
    "so a verifier can apply it before the issuer's HTTP reply reaches the client; such "
    "samples are negative and real (applied_before_reply counts them).",
    "mode worker, latency_ms: time.monotonic() in the verifier process right after its "
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
    "mode sidecar, latency_ms: from the timed call's return to the end of the first GET "
    "/verify that answered 401 with the expected code; one keep-alive httpx.AsyncClient per "
    "sidecar, all sidecars polled concurrently (asyncio.gather), back to back with no sleep. "
    "An upper bound: it includes one /verify round trip, and the polling itself loads the "
    "CPUs the sidecars and Redis need. poll_start_ms ends at the start of that 401 request "
    "instead. rejected_at_first_poll counts samples whose very first poll after the call got "
    "401.",
    "mode sidecar, floor: /verify round trip on an accepted token (200), after the rounds of "
    "that count: rtt_single_ms polls one sidecar at a time; rtt_concurrent_ms polls all N at "
    "once as the rounds do (per request), and rtt_concurrent_slowest_ms is the slowest of "
    "each such batch.",
    "from_request_ms (both modes) measures from just before the timed request was sent, so "
    "it adds the call's own HTTP round trip (revoke_http_ms). The XADD happens between "
    "sending and the reply, so from-reply and from-request bracket the propagation from the "
    "XADD. With more processes than CPUs the verifiers wake up while the issuer still has to "
    "write its reply: revoke_http_ms grows with N, the clock start moves later and the "
    "from-reply figures look better as N grows. from_request_ms has no such bias.",
    "The host may be shared with other work: loadavg_before/after are in the environment.",
    "cpu_ms_per_round (mode worker): CPU time used during the timed rounds by all verifier "
    "processes together, the issuer, redis-server (from /proc/<pid>/stat) and the client "
    "(time.process_time), divided by the rounds: the work one revocation round costs the "
    "host, to set against the CPUs available.",
    "slowest_per_round_ms: per round, the last verifier to apply (worker) or answer 401 "
    "(sidecar); it is the time until every verifier rejects the token.",
]


# --- child processes ----------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Children:
    """Every process this benchmark started; ``stop`` ends them: SIGTERM, then SIGKILL."""

    log_dir: Path
    running: list[Child] = field(default_factory=list)
    redis_pid: int | None = None  # for CPU accounting only

    def spawn(self, name: str, args: list[str], env: dict[str, str], *, pipes: bool) -> Child:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                args,
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stderr=stderr,
            )
        child = Child(name, process, log)
        self.running.append(child)
        return child

    def stop(self, children: Sequence[Child] | None = None, timeout_s: float = 5.0) -> None:
        targets = list(self.running if children is None else children)
        for child in targets:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + timeout_s
        for child in targets:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            for stream in (child.process.stdin, child.process.stdout):
                if stream is not None:
                    stream.close()
            self.running.remove(child)


def check_alive(children: Sequence[Child]) -> None:
    for child in children:
        if child.process.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with {child.process.returncode}:\n{child.tail()}"
            )


async def wait_http_ok(url: str, child: Child, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    async with httpx.AsyncClient(timeout=1.0) as http:
        while True:
            check_alive([child])
            try:
                reply = await http.get(url)
                if reply.status_code == 200:
                    return
                last = f"{reply.status_code} {reply.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{url} did not answer 200 in {timeout_s}s (last: {last}; "
                    f"{child.name} pid {child.process.pid} {proc_state(child.process.pid)}):\n"
                    f"{child.tail()}"
                )
            await asyncio.sleep(0.05)


def proc_state(pid: int) -> str:
    """The process state letter and kernel wait channel, for a start-up failure message."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return "state unknown"
    return f"state {stat.rsplit(')', 1)[1].split()[0]}, wchan {wchan or '-'}"


# --- issuer calls -------------------------------------------------------------------------


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


async def logout(issuer: httpx.AsyncClient, token: str) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {token}"}
    return await timed_post(issuer, "/v1/logout", 204, headers)


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
        return await logout(self.issuer, token)


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


def ms(seconds: float) -> float:
    return seconds * 1000


# --- mode worker --------------------------------------------------------------------------


@dataclass
class Worker:
    child: Child
    reader: asyncio.StreamReader
    transport: asyncio.BaseTransport

    def send(self, line: str) -> None:
        stdin = self.child.process.stdin
        assert stdin is not None
        stdin.write(line.encode() + b"\n")
        stdin.flush()

    async def receive(self, timeout_s: float) -> list[str]:
        try:
            line = await asyncio.wait_for(self.reader.readline(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"{self.child.name} said nothing in {timeout_s}s") from None
        if not line:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.child.process.wait(1.0)  # EOF comes just before the exit status
            check_alive([self.child])
            raise RuntimeError(f"{self.child.name} closed its output:\n{self.child.tail()}")
        return line.decode().split()


async def start_workers(
    children: Children,
    env: dict[str, str],
    count: int,
    workers: list[Worker],
    *,
    module: str = "bench._verifier_worker",
    args: Sequence[str] = (),
    name: str = "worker",
) -> None:
    """Start ``count`` workers into ``workers`` (so the caller can stop a partial start)."""
    loop = asyncio.get_running_loop()
    for index in range(count):
        child = children.spawn(
            f"{name}-{count}-{index}",
            [sys.executable, "-m", module, *args],
            env,
            pipes=True,
        )
        reader = asyncio.StreamReader()
        stdout: IO[bytes] | None = child.process.stdout
        assert stdout is not None
        protocol = functools.partial(asyncio.StreamReaderProtocol, reader)
        transport, _ = await loop.connect_read_pipe(protocol, stdout)
        # The transport owns the pipe now and closes it (later, on the loop): closing it here
        # too could close a newer pipe that reused the descriptor number.
        child.process.stdout = None
        workers.append(Worker(child, reader, transport))
    for worker in workers:
        words = await worker.receive(START_TIMEOUT_S)
        if words != ["ready"]:
            raise RuntimeError(f"{worker.child.name} said {words!r}, not ready")


async def clock_check(workers: Sequence[Worker], pings: int = 20) -> dict[str, Any]:
    """Check each worker's time.monotonic() falls between the client's send and receive.

    CLOCK_MONOTONIC is system-wide on Linux; this guards the cross-process subtraction. Also
    reports the pipe's one-way times (client -> worker, worker -> client) as a by-product.
    """
    there: list[float] = []
    back: list[float] = []
    for worker in workers:
        for _ in range(pings):
            before = time.monotonic()
            worker.send("ping")
            words = await worker.receive(ROUND_TIMEOUT_S)
            after = time.monotonic()
            if len(words) != 2 or words[0] != "pong":
                raise RuntimeError(f"{worker.child.name} said {words!r}, not pong")
            stamp = float(words[1])
            if not before <= stamp <= after:
                raise RuntimeError(
                    f"{worker.child.name}'s monotonic clock {stamp} is outside the client's "
                    f"[{before}, {after}]: cross-process times cannot be compared"
                )
            there.append(ms(stamp - before))
            back.append(ms(after - stamp))
    return {
        "pings": len(there),
        "ordered": True,
        "client_to_worker_ms": summary(there),
        "worker_to_client_ms": summary(back),
    }


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


async def stop_workers(children: Children, workers: Sequence[Worker]) -> None:
    for worker in workers:
        if worker.child.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, ValueError):
                worker.send("quit")
    deadline = time.monotonic() + 5.0
    for worker in workers:
        # Blocking is fine here: nothing else runs while the workers wind down.
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.child.process.wait(max(0.0, deadline - time.monotonic()))
        worker.transport.close()
    children.stop([w.child for w in workers])


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


# --- mode sidecar -------------------------------------------------------------------------


@dataclass
class Sidecar:
    child: Child
    url: str
    http: httpx.AsyncClient

    async def verify(self, token: str) -> tuple[int, str]:
        reply = await self.http.get("/verify", headers={"Authorization": f"Bearer {token}"})
        code = reply.json().get("error", "") if reply.status_code != 200 else ""
        return reply.status_code, str(code)


async def start_sidecars(
    children: Children, env: dict[str, str], count: int, sidecars: list[Sidecar]
) -> None:
    """Start ``count`` sidecars into ``sidecars`` (so the caller can stop a partial start)."""
    for index in range(count):
        port = free_port()
        args = [sys.executable, "-m", "revocast", "verifier", "--port", str(port)]
        child = children.spawn(
            f"sidecar-{count}-{index}", [*args, "--log-level", "warning"], env, pipes=False
        )
        url = f"http://127.0.0.1:{port}"
        http = httpx.AsyncClient(base_url=url, timeout=ROUND_TIMEOUT_S)
        sidecars.append(Sidecar(child, url, http))
    for sidecar in sidecars:
        await wait_http_ok(f"{sidecar.url}/readyz", sidecar.child)


async def stop_sidecars(children: Children, sidecars: Sequence[Sidecar]) -> None:
    for sidecar in sidecars:
        await sidecar.http.aclose()
    children.stop([s.child for s in sidecars])


async def wait_accepted(sidecar: Sidecar, token: str) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while (status := (await sidecar.verify(token))[0]) != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sidecar.child.name} still answers {status} to a fresh token")
        await asyncio.sleep(0.001)


@dataclass
class Poll:
    ended: float  # client's time.monotonic() when the 401 reply was read
    started: float  # ... when that request was started
    first: bool  # the first poll after the timed call already got 401


async def poll_until_rejected(sidecar: Sidecar, token: str, since: float, expected: str) -> Poll:
    polls = 0
    while True:
        started = time.monotonic()
        status, code = await sidecar.verify(token)
        ended = time.monotonic()
        polls += 1
        if status == 401:
            if code != expected:
                raise RuntimeError(f"{sidecar.child.name} rejected the token with {code}")
            return Poll(ended, started, polls == 1)
        if status != 200:
            raise RuntimeError(f"{sidecar.child.name} answered {status} {code}")
        if ended - since > ROUND_TIMEOUT_S:
            raise RuntimeError(f"{sidecar.child.name} still accepts after {ROUND_TIMEOUT_S}s")


@dataclass
class SidecarRound:
    revoke_http_ms: float
    latency_ms: list[float]
    poll_start_ms: list[float]
    from_request_ms: list[float]
    first_poll: int


async def sidecar_round(action: Action, sidecars: Sequence[Sidecar]) -> SidecarRound:
    token = await action.session()
    await asyncio.gather(*(wait_accepted(s, token) for s in sidecars))

    sent, returned = await action.revoke(token)
    polls = await asyncio.gather(
        *(poll_until_rejected(s, token, returned, action.code) for s in sidecars)
    )

    return SidecarRound(
        revoke_http_ms=ms(returned - sent),
        latency_ms=[ms(p.ended - returned) for p in polls],
        poll_start_ms=[ms(p.started - returned) for p in polls],
        from_request_ms=[ms(p.ended - sent) for p in polls],
        first_poll=sum(p.first for p in polls),
    )


async def timed_verify(sidecar: Sidecar, token: str) -> float:
    started = time.monotonic()
    status, code = await sidecar.verify(token)
    elapsed = ms(time.monotonic() - started)
    if status != 200:
        raise RuntimeError(f"{sidecar.child.name} answered {status} {code} to an accepted token")
    return elapsed


async def sidecar_floor(issuer: httpx.AsyncClient, sidecars: Sequence[Sidecar]) -> dict[str, Any]:
    """The /verify round trip on an accepted token: one sidecar at a time, then all at once."""
    token = (await login(issuer)).token
    await asyncio.gather(*(wait_accepted(s, token) for s in sidecars))
    single = [await timed_verify(sidecars[i % len(sidecars)], token) for i in range(FLOOR_SAMPLES)]
    batches = [
        await asyncio.gather(*(timed_verify(s, token) for s in sidecars))
        for _ in range(FLOOR_SAMPLES)
    ]
    await logout(issuer, token)
    return {
        "rtt_single_ms": summary(single),
        "rtt_concurrent_ms": summary([v for b in batches for v in b]),
        "rtt_concurrent_slowest_ms": summary([max(b) for b in batches]),
    }


async def run_sidecars(
    children: Children,
    env: dict[str, str],
    action: Action,
    count: int,
    rounds: int,
    warmup: int,
) -> dict[str, Any]:
    sidecars: list[Sidecar] = []
    try:
        await start_sidecars(children, env, count, sidecars)
        for _ in range(warmup):
            await sidecar_round(action, sidecars)
        results = [await sidecar_round(action, sidecars) for _ in range(rounds)]
        floor = await sidecar_floor(action.issuer, sidecars)
    finally:
        await stop_sidecars(children, sidecars)

    latency = [v for r in results for v in r.latency_ms]
    return {
        "action": action.name,
        "timed_call": action.call,
        "expected_code": action.code,
        "mode": "sidecar",
        "verifiers": count,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "samples": len(latency),
        "latency_ms": summary(latency),
        "slowest_per_round_ms": summary([max(r.latency_ms) for r in results]),
        "poll_start_ms": summary([v for r in results for v in r.poll_start_ms]),
        "from_request_ms": summary([v for r in results for v in r.from_request_ms]),
        "slowest_per_round_from_request_ms": summary([max(r.from_request_ms) for r in results]),
        "revoke_http_ms": summary([r.revoke_http_ms for r in results]),
        "rejected_at_first_poll": sum(r.first_poll for r in results),
        "floor": floor,
    }


# --- the whole run ------------------------------------------------------------------------


async def redis_version(url: str) -> str:
    client = redis_client(url)
    try:
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        await client.aclose()


def add_user(env: dict[str, str], name: str, roles: Sequence[str] = ()) -> None:
    role_args = [arg for role in roles for arg in ("--role", role)]
    done = subprocess.run(
        [sys.executable, "-m", "revocast", "user", "add", name, *role_args, "--password-stdin"],
        env=env,
        cwd=ROOT,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"revocast user add {name} failed: {done.stderr.strip()}")


async def measure(
    children: Children,
    env: dict[str, str],
    counts: Sequence[int],
    actions: Sequence[str],
    modes: Sequence[str],
    rounds: int,
    warmup: int,
) -> list[dict[str, Any]]:
    port = free_port()
    issuer_child = children.spawn(
        "issuer",
        [sys.executable, "-m", "revocast", "issuer", "--port", str(port), "--log-level", "warning"],
        env,
        pipes=False,
    )
    url = f"http://127.0.0.1:{port}"
    await wait_http_ok(f"{url}/healthz", issuer_child)
    add_user(env, USERNAME)  # the floor's login uses it too
    if "block" in actions:
        add_user(env, TARGET)
        add_user(env, MODERATOR, ["moderator"])
    runs: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=ROUND_TIMEOUT_S) as issuer:
        by_name = {name: make_action(name, issuer) for name in actions}
        for count in counts:
            for action in by_name.values():
                for mode in modes:
                    started = time.monotonic()
                    logins = action.moderator_logins if isinstance(action, Block) else 0
                    runner = run_workers if mode == "worker" else run_sidecars
                    result = await runner(children, env, action, count, rounds, warmup)
                    result["wall_s"] = round(time.monotonic() - started, 1)
                    if isinstance(action, Block):
                        result["moderator_logins"] = action.moderator_logins - logins
                    lat, req = result["latency_ms"], result["from_request_ms"]
                    print(
                        f"  {action.name} {mode} x{count}: p50 {lat['p50']:.3f} ms from reply, "
                        f"{req['p50']:.3f} ms from request ({result['wall_s']} s)",
                        flush=True,
                    )
                    runs.append(result)
                    check_alive([issuer_child])
    return runs


def run(
    counts: Sequence[int],
    actions: Sequence[str],
    modes: Sequence[str],
    rounds: int,
    warmup: int,
) -> dict[str, Any]:
    run_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    git = git_state()
    with tempfile.TemporaryDirectory(prefix="revocast-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False)
        children = Children(Path(tmp))
        server.start()
        children.redis_pid = server.pid
        try:
            env = os.environ | {
                "REDIS_URL": server.url,
                "REVOCAST_KEY_PREFIX": f"bench{uuid.uuid4().hex[:12]}",
                "REVOCAST_KEY_DIR": str(Path(tmp) / "keys"),
                "REVOCAST_ARGON2_TIME_COST": "1",
                "REVOCAST_ARGON2_MEMORY_KIB": "1024",
                "REVOCAST_ARGON2_PARALLELISM": "1",
                # hundreds of logins from one address: throttling off for the benchmark
                "REVOCAST_LOGIN_MAX_ATTEMPTS_PER_CLIENT": "0",
            }
            runs = uvloop.run(measure(children, env, counts, actions, modes, rounds, warmup))
            redis = uvloop.run(redis_version(server.url))
        finally:
            children.stop()
            server.stop()
    return {
        "benchmark": "propagation",
        "mode": "processes",
        "run_at": run_at,
        "measured": (
            "client's time.monotonic() after the timed call (POST /v1/logout, or a moderator's "
            "POST /v1/admin/users/{uid}/block) returned -> worker: the verifier process "
            "applied the revocation (verify() rejects from then on); sidecar: the client read "
            "the first 401 with the expected code from GET /verify (upper bound)"
        ),
        "notes": NOTES,
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "redis_server": f"{Path(server.binary).name} {redis}",
            "event_loop": f"uvloop {version('uvloop')} in every Python process",
            "uvicorn": version("uvicorn"),
            "httpx": version("httpx"),
            "git": git,
        },
        "runs": runs,
    }


# --- output -------------------------------------------------------------------------------


def triple(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.3f}/{stats['p99']:.3f}/{stats['max']:.3f}"


def print_table(report: dict[str, Any]) -> None:
    runs = report["runs"]
    print("From the timed call's reply (client's time.monotonic() after it returned):")
    header = (
        f"{'action':>6} {'mode':>7} {'N':>3} {'samples':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'slowest/round p50/p99/max':>26} {'<reply':>6} {'1st poll':>8}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        lat = run["latency_ms"]
        before = str(run.get("applied_before_reply", "-"))
        first = str(run.get("rejected_at_first_poll", "-"))
        print(
            f"{run['action']:>6} {run['mode']:>7} {run['verifiers']:>3} {run['samples']:>7} "
            f"{lat['p50']:>8.3f} {lat['p99']:>8.3f} {lat['max']:>8.3f} "
            f"{triple(run['slowest_per_round_ms']):>26} {before:>6} {first:>8}"
        )
    print()
    print("From just before the timed request was sent, and what the call itself cost:")
    header = (
        f"{'action':>6} {'mode':>7} {'N':>3} {'p50/p99/max ms':>22} "
        f"{'slowest/round p50/p99/max':>26} {'call HTTP p50/p99':>20} {'floor 1/N p50':>14}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        http = run["revoke_http_ms"]
        floor = "-"
        if "floor" in run:
            f = run["floor"]
            floor = f"{f['rtt_single_ms']['p50']:.3f}/{f['rtt_concurrent_ms']['p50']:.3f}"
        print(
            f"{run['action']:>6} {run['mode']:>7} {run['verifiers']:>3} "
            f"{triple(run['from_request_ms']):>22} "
            f"{triple(run['slowest_per_round_from_request_ms']):>26} "
            f"{http['p50']:>9.3f}/{http['p99']:<10.3f} {floor:>14}"
        )
    print()
    print("worker: ends when the verifier process applied the revocation (from then on verify()")
    print("  rejects); negative = before the reply reached the client, '<reply' counts those.")
    print("sidecar: ends when the client read the first 401 from GET /verify (upper bound);")
    print("  '1st poll' = rejected by the first poll; floor = /verify round trip on an accepted")
    print("  token, one sidecar at a time / all N at once (per request).")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--verifiers", type=int, nargs="+", default=[1], help="verifier counts to run (default 1)"
    )
    parser.add_argument("--rounds", type=int, default=200, help="timed rounds per count and mode")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument(
        "--mode", choices=MODES, nargs="+", default=list(MODES), help="default: both"
    )
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
    words = sys.argv[1:] if argv is None else list(argv)

    actions = list(dict.fromkeys(args.action))
    quiet = wait_for_quiet(not args.no_wait)
    report = run(args.verifiers, actions, args.mode, args.rounds, args.warmup)
    report["environment"]["quiet_wait"] = quiet
    command = [".venv/bin/python", "-m", "bench.propagation_processes", *words]
    report = {"command": shlex.join(command)} | report
    print()
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
