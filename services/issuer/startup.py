"""The issuer's start-up, retried until Redis lets it finish.

Right after a Cluster is created, while its replicas still sync, the recovery write of the
first start raised ``NotDurable``; raised from the lifespan, uvicorn printed a traceback and
the issuer exited. A service must not exit because a neighbour is not ready yet: the issuer
serves at once, answers ``/readyz`` 503 with the step it waits for and why, and 503 to
every other request, and runs the steps again until each has succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from revocast.background import Background
from revocast.errors import RevocastError
from revocast.outage import Outage

log = logging.getLogger("revocast.issuer")

Step = tuple[str, Callable[[], Awaitable[object]]]  # what it does (for /readyz), the call

FIRST_RETRY_S = 0.05
MAX_RETRY_S = 2.0  # a start-up step is tried at least this often while it fails


class Startup:
    """Runs ``steps`` in order, each until it succeeds: once at once, then in the background."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self.finished = 0  # how many steps succeeded
        self.waiting_for = ""  # why not ready, for /readyz
        self._outage = Outage(log, "the issuer's start-up", back="finished")
        self._background = Background("revocast-issuer-startup")

    @property
    def done(self) -> bool:
        return self.finished == len(self.steps)

    async def start(self) -> None:
        """Try each step once now: with Redis ready, the issuer is ready when this returns
        (as the lifespan ends). What fails is retried in the background."""
        if not await self._advance():
            self._background.start(self._retry)

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
        return True

    async def _retry(self) -> None:
        delay = FIRST_RETRY_S
        while not await self._background.pause(delay):
            if await self._advance():
                return
            delay = min(delay * 2, MAX_RETRY_S)
