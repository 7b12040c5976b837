"""The issuer's start-up, retried until Redis lets it finish.

Right after a Cluster is created, while its replicas still sync, the recovery write of the
first start raised ``NotDurable``; raised from the lifespan, uvicorn printed a traceback and
the issuer exited. A service must not exit because a neighbour is not ready yet: the issuer
serves within 2 s, answers ``/readyz`` 503 with the step it waits for and why, and 503 to
every other request, and runs the steps again until each has succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from revocast.background import Background
from revocast.errors import RevocastError
from revocast.outage import Outage

log = logging.getLogger("revocast.issuer")

Step = tuple[str, Callable[[], Awaitable[object]]]  # what it does (for /readyz), the call

FIRST_WAIT_S = 2.0  # the lifespan waits this long for the steps before serving regardless
FIRST_RETRY_S = 0.05
MAX_RETRY_S = 2.0  # a start-up step is tried at least this often while it fails


class Startup:
    """Runs ``steps`` in order in the background, each until it succeeds."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self.finished = 0  # how many steps succeeded
        self.waiting_for = ""  # why not ready, for /readyz
        self._outage = Outage(log, "the issuer's start-up", back="finished")
        self._background = Background("revocast-issuer-startup")
        self._done = asyncio.Event()

    @property
    def done(self) -> bool:
        return self.finished == len(self.steps)

    async def start(self, wait_s: float = FIRST_WAIT_S) -> None:
        """Start the steps and wait for them up to ``wait_s``: with Redis ready, the issuer
        is ready when this returns (as the lifespan ends); a step that hangs (a cluster
        whose replicas are frozen) no longer keeps the server from answering /readyz."""
        self._background.start(self._run)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), wait_s)

    async def stop(self) -> None:
        await self._background.stop()

    async def _advance(self) -> bool:
        """Run the steps left, up to the first that fails; True when none is left."""
        while not self.done:
            what, call = self.steps[self.finished]
            try:
                await call()
            except RevocastError as exc:  # Redis down, not durable, a wrong setting
                self.waiting_for = f"{what}: {exc.detail}"
                self._outage.failed(f"{what}: {exc.code}: {exc.detail}")
                return False
            self.finished += 1
        self.waiting_for = ""
        self._outage.recovered()
        self._done.set()
        return True

    async def _run(self) -> None:
        delay = FIRST_RETRY_S
        while not await self._advance():
            if await self._background.pause(delay):
                return
            delay = min(delay * 2, MAX_RETRY_S)
