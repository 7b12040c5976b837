"""argon2id password hashing, off the event loop, with a bounded queue.

Unknown users are checked against a dummy hash made with the same parameters,
so a login costs the same work whether or not the user exists.

Each check costs about 60 ms of CPU (t=3, 64 MiB). Queued without bound, 200 logins at once
left 101 clients waiting past their 30 s timeout while the issuer kept hashing for clients
that had gone. Checks now run on ``password_workers`` threads with at most
``password_queue`` waiting: past that, a login is refused at once with 503 and Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from revocast.errors import Overloaded
from revocast.settings import PasswordSettings

T = TypeVar("T")


class Passwords:
    """Hashes and checks passwords with the deployment's argon2id parameters."""

    def __init__(self, settings: PasswordSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy_hash = self._hasher.hash("revocast-dummy-password")
        workers = settings.password_workers or os.cpu_count() or 1
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="revocast-argon2")
        self.workers = workers
        self.capacity = workers + settings.password_queue  # running plus waiting
        self.admitted = 0  # submitted and not yet finished (counted on the event loop)
        self.refused = 0
        self.check_s = 0.1  # a check's own time (not its wait), moving average: Retry-After

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True only for a real hash that matches; same cost when ``stored_hash`` is None."""
        return await self._run(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(stored_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def refuse_when_full(self) -> None:
        """Overloaded now if a check would not be admitted: a login asks before any other
        work (its throttle count in Redis included), so that a refusal costs next to
        nothing. Its Retry-After is about when the queue has room again."""
        if self.admitted >= self.capacity:
            self.refused += 1
            wait_s = self.capacity * self.check_s / self.workers
            raise Overloaded(max(1, math.ceil(wait_s)))

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        """``work`` on a hashing thread, or Overloaded at once when the queue is full. A slot
        is freed when the thread finishes, not when the caller stops waiting: a check whose
        client went away still occupies a thread."""
        self.refuse_when_full()
        loop = asyncio.get_running_loop()
        self.admitted += 1
        done: Future[tuple[T, float]] = self._executor.submit(_timed, work, *args)
        done.add_done_callback(lambda _: self._release_on(loop))
        result, seconds = await asyncio.wrap_future(done)
        self.check_s = 0.9 * self.check_s + 0.1 * seconds
        return result

    def _release_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """From the hashing thread: free the slot on the event loop (gone: nothing to free)."""
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (a CLI's run)
            loop.call_soon_threadsafe(self._release)

    def _release(self) -> None:
        self.admitted -= 1


def _timed(work: Callable[..., T], *args: object) -> tuple[T, float]:
    """On the hashing thread: the result, and how long the check itself took (not its wait)."""
    started = time.perf_counter()
    return work(*args), time.perf_counter() - started
