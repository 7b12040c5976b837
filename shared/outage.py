"""One log line when a neighbour stops answering, a reminder every few seconds, one when it
is back.

A loop that retries Redis every 50 ms and logged every failure wrote about 30 lines a second
per process while Redis was down, burying the one line that said what happened. Each loop
keeps an ``Outage`` and reports every attempt to it; the log hears of a change of state (up
to down, another failure, back up) at once and of a long outage at most every
``REMIND_EVERY_S``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REMIND_EVERY_S = 10.0  # while a failure lasts, one line per this many seconds


class Outage:
    """The failures of one loop. ``what`` names what it tries, to read "{what} failed: ...",
    "{what} still failing after ..." and "{what} {back} after ..."."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        remind_every_s: float = REMIND_EVERY_S,
        back: str = "works again",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.what = what
        self.remind_every_s = remind_every_s
        self.back = back
        self.clock = clock
        self.since: float | None = None  # when the failures began; None while all is well
        self.failures = 0
        self._said = ""
        self._said_at = 0.0

    @property
    def failing(self) -> bool:
        return self.since is not None

    def failed(self, detail: str, level: int = logging.WARNING) -> None:
        """An attempt failed with ``detail`` (keep it free of retry counters and delays, so
        that the same failure reads the same)."""
        now = self.clock()
        self.failures += 1
        if self.since is None:
            self.since = now
        elif detail == self._said and now - self._said_at < self.remind_every_s:
            return
        if detail == self._said:
            self.log.log(level, "%s still failing after %.0f s (%d attempts): %s", self.what,
                         now - self.since, self.failures, detail)  # fmt: skip
        else:
            self.log.log(level, "%s failed: %s", self.what, detail)
        self._said, self._said_at = detail, now

    def recovered(self) -> None:
        """An attempt succeeded: say so once if it had been failing."""
        if self.since is None:
            return
        self.log.warning("%s %s after %.1f s (%d failed attempts)", self.what, self.back,
                         self.clock() - self.since, self.failures)  # fmt: skip
        self.since, self.failures, self._said = None, 0, ""
