"""A background loop that ends when asked, not only when cancelled.

Cancelling a task is not enough to stop it: on Python 3.11, a cancellation that lands
inside a redis-py call can be swallowed by the timeout around it, and the loop runs on
while ``stop()`` waits forever (a service then never exits on SIGTERM). So the loop
checks a stop event between rounds and sleeps on it; cancelling is only the fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("revocast")


class Background:
    """One named loop: ``start(loop)``, ``await pause(s)`` between its rounds, ``stop()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Started and not yet stopped."""
        return self._task is not None

    def stopping(self) -> bool:
        """``stop()`` was called: a loop checks this between its steps (a method, as its
        answer changes while the loop awaits)."""
        return self._stopping.is_set()

    def start(self, loop: Callable[[], Awaitable[None]]) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(_run(loop), name=self.name)

    async def pause(self, seconds: float, *, wake: asyncio.Event | None = None) -> bool:
        """Wait up to ``seconds``, or until ``wake`` is set; True when ``stop()`` was called:
        the loop should end."""
        if seconds > 0:
            waiters = {asyncio.ensure_future(self._stopping.wait())}
            if wake is not None:
                waiters.add(asyncio.ensure_future(wake.wait()))
            try:
                await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        return self._stopping.is_set()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Ask the loop to end, give it ``grace_s`` to finish its round, then cancel it."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if not done:
                log.error("%s did not stop within %.0f s; left behind", self.name, grace_s + 1)


async def _run(loop: Callable[[], Awaitable[None]]) -> None:
    try:
        await loop()
    except asyncio.CancelledError:
        pass  # the fallback in stop(): nothing to report
    except Exception:
        log.exception("background loop failed")
