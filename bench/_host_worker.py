"""One worker process for ``bench.host_share``; not run by hand.

Started as ``python -m bench._host_worker`` with the revocast settings in the environment
(``REVOCAST_SHARED_CACHE`` 0 or 1 decides whether it follows on its own or shares its
host's follower). It runs a real ``Verifier`` on uvloop and answers one line per command:

- it prints ``ready`` once fresh;
- ``watch <token>``: wait until ``verify(token)`` accepts, print ``accepting``, then call
  ``verify(token)`` every ``POLL_S`` until it is refused, and print ``revoked <time.monotonic()>
  <code>``. A worker that shares the table wakes on nothing, so every worker polls alike;
- ``warm <token> <n>``: ``n`` calls of ``verify(token)`` in 10 batches, print ``warm <ns per
  call>`` of the fastest batch;
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
from pathlib import Path

import uvloop

from revocast.errors import TokenRejected, VerifierStale
from revocast.settings import Settings
from revocast.verifier import Verifier

POLL_S = 0.0005  # uvloop's timers tick in milliseconds: about 1 ms in effect, in both modes
ACCEPT_TIMEOUT_S = 10.0


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


async def watch(verifier: Verifier, token: str) -> None:
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
    while True:
        try:
            verifier.verify(token)
        except (TokenRejected, VerifierStale) as exc:
            say(f"revoked {time.monotonic()!r} {exc.code}")
            return
        await asyncio.sleep(POLL_S)


def warm(verifier: Verifier, token: str, n: int) -> float:
    """The best of 10 batches of ``n / 10`` calls: the host is shared, the best batch is
    the one least disturbed."""
    verifier.verify(token)
    verify = verifier.verify
    batch = max(1, n // 10)
    best = float("inf")
    for _ in range(10):
        started = time.perf_counter_ns()
        for _ in range(batch):
            verify(token)
        best = min(best, (time.perf_counter_ns() - started) / batch)
    return best


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    verifier = Verifier(Settings.from_env())
    before = anonymous()
    await verifier.start()
    tasks: set[asyncio.Task[None]] = set()
    try:
        for _ in range(1000):
            if verifier.ready:
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("the verifier did not become fresh")
        say("ready")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            command, *arguments = line.split()
            if command == "watch":
                task = asyncio.create_task(watch(verifier, arguments[0]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif command == "warm":
                say(f"warm {warm(verifier, arguments[0], int(arguments[1]))!r}")
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
