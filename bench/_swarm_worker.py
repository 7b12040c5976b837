"""Many verifiers in one process, for the replica fan-out benchmarks; not run by hand.

Started as ``python -m bench._swarm_worker K [READY_TIMEOUT_S]`` with the revocast settings in the
environment. One host cannot run a thousand verifier processes, but it can run a few
processes holding hundreds of real ``Verifier`` objects each: every one has its own
``Backend`` (its own topology, connection pools and ``StreamFollower`` per stream), so the
servers see exactly what K separate verifiers would do. One line per message on
stdin/stdout:

- ``ready`` once imported; ``start``: create the K verifiers and start them all at once
  (a cold start), then print ``started <json>``: per verifier, seconds from ``start`` until
  ``Verifier.start()`` returned and until ``ready`` (snapshots taken and fresh);
- after that, for every ``session_revoked`` event, ``applied <sid> <monotonic>`` once the
  last of the K verifiers has applied it (their ``on_applied`` hooks count the sid);
- ``status``: ``status <json>``: how many are ready, the worst staleness, read errors,
  snapshots, events applied;
- ``quit`` or end of input: stop every verifier and exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from collections import Counter

import uvloop

from revocast.events import AnyEvent, SessionRevoked
from revocast.settings import Settings
from revocast.verifier import Verifier

READY_TIMEOUT_S = 120.0  # a verifier not ready by then counts as never ready (null)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Swarm:
    """K verifiers in this process, and the count of verifiers that applied each sid."""

    def __init__(self, count: int, settings: Settings, ready_timeout_s: float) -> None:
        self.count = count
        self.settings = settings
        self.ready_timeout_s = ready_timeout_s
        self.verifiers: list[Verifier] = []
        self.applied: Counter[str] = Counter()

    def on_applied(self, events: list[AnyEvent]) -> None:
        now = time.monotonic()
        for event in events:
            if isinstance(event, SessionRevoked):
                self.applied[event.sid] += 1
                if self.applied[event.sid] == self.count:
                    del self.applied[event.sid]
                    say(f"applied {event.sid} {now!r}")

    async def start(self) -> dict[str, object]:
        """Start all K at once; seconds until each start() returned and until each is ready."""
        go = time.monotonic()
        self.verifiers = [
            Verifier(self.settings, on_applied=self.on_applied) for _ in range(self.count)
        ]
        started = await asyncio.gather(*(self._start_one(v, go) for v in self.verifiers))
        ready = await asyncio.gather(
            *(self._ready(v, go, self.ready_timeout_s) for v in self.verifiers)
        )
        return {"started_s": started, "ready_s": ready}

    @staticmethod
    async def _start_one(verifier: Verifier, go: float) -> float:
        await verifier.start()
        return time.monotonic() - go

    @staticmethod
    async def _ready(verifier: Verifier, go: float, timeout_s: float) -> float | None:
        while not verifier.ready:
            if time.monotonic() - go > timeout_s:
                return None
            await asyncio.sleep(0.005)
        return time.monotonic() - go

    def status(self) -> dict[str, object]:
        staleness = [v.staleness_s for v in self.verifiers]
        errors = sorted({v.follower.error for v in self.verifiers if v.follower.error})
        return {
            "verifiers": len(self.verifiers),
            "ready": sum(v.ready for v in self.verifiers),
            "max_staleness_s": max(staleness, default=math.inf),
            "read_errors": sum(v.follower.read_errors for v in self.verifiers),
            "snapshots": sum(v.follower.snapshots for v in self.verifiers),
            "events_applied": sum(v.follower.events_applied for v in self.verifiers),
            "errors": errors[:3],
        }

    async def stop(self) -> None:
        await asyncio.gather(*(v.stop() for v in self.verifiers), return_exceptions=True)


async def main(count: int, ready_timeout_s: float) -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    swarm = Swarm(count, Settings.from_env(), ready_timeout_s)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    say("ready")
    try:
        while line := (await reader.readline()).decode().strip():
            if line == "start":
                say("started " + json.dumps(await swarm.start()))
            elif line == "status":
                say("status " + json.dumps(swarm.status(), default=str))
            elif line == "quit":
                break
            else:
                raise RuntimeError(f"unknown command {line!r}")
    finally:
        await swarm.stop()


if __name__ == "__main__":
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else READY_TIMEOUT_S
    uvloop.run(main(int(sys.argv[1]), timeout))
