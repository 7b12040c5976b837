"""One worker process for ``bench.host_share``; not run by hand.

Started as ``python -m bench._host_worker`` with the revocast settings in the environment
(``REVOCAST_SHARED_CACHE`` 0 or 1 decides whether it follows on its own or shares its
host's follower). It runs a real ``Verifier`` on uvloop and answers one line per command:

- it prints ``ready`` once fresh;
- ``watch <token> <sid>``: wait until ``verify(token)`` accepts, print ``accepting``, then call
  ``verify(token)`` every ``POLL_S`` until it is refused, and print ``revoked <time.monotonic()>
  <code> <applied> <from XADD> <ms between polls>`` (the last: on average, as it was). A
  worker that shares the table wakes on nothing, so every worker polls alike. ``applied``
  is when this process's follower had the revocation in its cache or in the host's table
  (``Verifier(on_applied=...)``, called right after), and ``from XADD`` the ms from the
  event's ``ts_ms`` (Redis' clock when the script wrote it, cut to the ms: up to 1 ms too
  long) to then on the wall clock; both ``-`` in a worker that follows nothing (a reader of
  the shared table);
- ``expect <sid>``: print ``expecting``, then, without polling, ``applied <time.monotonic()>
  <from XADD>`` once this process's follower has applied the revocation of ``sid``, or at
  once ``reader`` in a worker that follows nothing;
- ``check <token>``: one ``verify(token)``: print ``refused <code>`` or ``accepted``;
- ``warm <token> <n>``: ``n`` calls of ``verify(token)`` in 10 batches, print ``warm <ns per
  call>`` of the fastest batch;
- ``pair <token> <n>``: start a second, in-process verifier in this process
  (``REVOCAST_SHARED_CACHE=0``), then time ``n`` calls of ``verify(token)`` on each in 10
  batches, taking turns (ABBA), and print ``pair <ns per call> <ns per call in-process>``,
  the fastest batch of each: the same core at the same moments, so the ratio holds where
  the workers' own figures spread with the core they ran on;
- ``mem``: print ``mem <before> <now>``: its anonymous memory (bytes, /proc/self/smaps_rollup,
  after a collection: the heap, not the shared table) before ``Verifier.start()`` and now, so
  the difference is what the verifier keeps;
- ``quit`` or end of input: stop the verifier and exit.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

from revocast.errors import TokenRejected, VerifierStale
from revocast.events import AnyEvent, SessionRevoked
from revocast.settings import Settings
from revocast.verifier import Verifier

# uvloop's timers count whole milliseconds: a 0.5 ms sleep was a zero timer, and the probes
# spun (some 100,000 verify() a second each) where they were meant to poll; 1 ms is 1 ms.
POLL_S = 0.001
ACCEPT_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0  # a first snapshot of a million entries on a loaded 2-core host


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def anonymous() -> int:
    """Bytes of anonymous memory (the heap; no file or shared mapping), after a collection."""
    gc.collect()
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) * 1024
    return 0


class Applied:
    """When this process's follower applied each session's revocation (monotonic s)."""

    def __init__(self) -> None:
        self.at: dict[str, str] = {}  # sid -> "<monotonic s> <ms from XADD>"
        self.waiting: dict[str, asyncio.Future[str]] = {}

    def __call__(self, events: list[AnyEvent]) -> None:
        now = time.monotonic()  # the hook runs right after the cache or the table has them
        wall_ms = time.time() * 1000
        for event in events:
            if isinstance(event, SessionRevoked):
                at = self.at[event.sid] = f"{now!r} {wall_ms - event.ts_ms:.3f}"
                waiter = self.waiting.pop(event.sid, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(at)

    def of(self, sid: str) -> str:
        return self.at.get(sid, "- -")

    async def wait(self, sid: str) -> str:
        if sid in self.at:
            return self.at[sid]
        waiter = self.waiting.setdefault(sid, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(waiter, ACCEPT_TIMEOUT_S)


def follows(verifier: Verifier) -> bool:
    """Whether this process follows the streams (its own, or as the host's follower)."""
    return verifier.host is None or verifier.host.leading


async def expect(verifier: Verifier, applied: Applied, sid: str) -> None:
    say("expecting")
    if not follows(verifier):
        say("reader")
        return
    say(f"applied {await applied.wait(sid)}")


def check(verifier: Verifier, token: str) -> str:
    try:
        verifier.verify(token)
    except (TokenRejected, VerifierStale) as exc:
        return f"refused {exc.code}"
    return "accepted"


async def watch(verifier: Verifier, applied: Applied, token: str, sid: str) -> None:
    deadline = time.monotonic() + ACCEPT_TIMEOUT_S
    while True:
        try:
            verifier.verify(token)
            break
        except (TokenRejected, VerifierStale):
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.001)
    say("accepting")
    polling, polls = time.monotonic(), 0
    while True:
        try:
            verifier.verify(token)
        except (TokenRejected, VerifierStale) as exc:
            now = time.monotonic()
            every_ms = (now - polling) * 1000 / max(1, polls)
            say(f"revoked {now!r} {exc.code} {applied.of(sid)} {every_ms:.3f}")
            return
        await asyncio.sleep(POLL_S)
        polls += 1


def warm(verifier: Verifier, token: str, n: int) -> float:
    """The best of 10 batches of ``n / 10`` calls: the host is shared, the best batch is
    the one least disturbed."""
    verifier.verify(token)
    batch = max(1, n // 10)
    return min(batch_ns(verifier.verify, token, batch) for _ in range(10))


def batch_ns(verify: Callable[[str], object], token: str, batch: int) -> float:
    """ns per call of ``batch`` calls of ``verify(token)`` in a row."""
    started = time.perf_counter_ns()
    for _ in range(batch):
        verify(token)
    return (time.perf_counter_ns() - started) / batch


async def until_fresh(verifier: Verifier) -> None:
    for _ in range(int(READY_TIMEOUT_S / 0.01)):
        if verifier.ready:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the verifier did not become fresh")


async def paired(verifier: Verifier, token: str, n: int) -> tuple[float, float]:
    """This process's verify against an in-process verifier's, batch for batch in turn."""
    alone = Verifier(Settings.from_env().with_overrides(shared_cache="0"))
    await alone.start()
    try:
        await until_fresh(alone)
        pair = (verifier.verify, alone.verify)
        for verify in pair:
            verify(token)  # warm: the verdict kept, the claims decoded once
        batch = max(1, n // 10)
        best = [float("inf"), float("inf")]
        for round_ in range(10):
            for which in (0, 1) if round_ % 2 == 0 else (1, 0):
                best[which] = min(best[which], batch_ns(pair[which], token, batch))
        return best[0], best[1]
    finally:
        await alone.stop()


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    applied = Applied()
    verifier = Verifier(Settings.from_env(), on_applied=applied)
    before = anonymous()
    await verifier.start()
    tasks: set[asyncio.Task[None]] = set()
    try:
        await until_fresh(verifier)
        say("ready")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            command, *arguments = line.split()
            if command in ("watch", "expect"):
                task = asyncio.create_task(
                    watch(verifier, applied, arguments[0], arguments[1])
                    if command == "watch"
                    else expect(verifier, applied, arguments[0])
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif command == "check":
                say(check(verifier, arguments[0]))
            elif command == "warm":
                say(f"warm {warm(verifier, arguments[0], int(arguments[1]))!r}")
            elif command == "pair":
                this, in_process = await paired(verifier, arguments[0], int(arguments[1]))
                say(f"pair {this!r} {in_process!r}")
            elif command == "mem":
                say(f"mem {before} {anonymous()}")
            elif command == "quit":
                break
            else:
                raise RuntimeError(f"unknown command {command!r}")
    finally:
        await verifier.stop()


if __name__ == "__main__":
    uvloop.run(main())
