"""Child processes that never outlive the process that started them.

Two gaps let a launcher's children run on after it: a stop signal that arrives between a
child's fork and the launcher recording it (the handler's exception unwinds past a child
nobody knows of), and a launcher that cannot run any handler at all (SIGKILL, a crash).
``Launcher`` closes the first: its handlers turn SIGINT, SIGTERM and SIGHUP into ``Stopped``,
but never while a child is being started; the signal waits until the child is recorded.
``die_with_parent`` closes the second on Linux: the child asks the kernel for a signal when
its parent dies (``PR_SET_PDEATHSIG``).

Every child the tooling starts (the chaos harness's services, Redis servers, gateways, a
benchmark's workers and sidecars, ``revocast stack``) is started by ``spawn`` or a
``Launcher`` and ended by ``stop``, ``stop_all`` or ``kill`` here: one lifecycle, written once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEFAULT_GRACE_S = 10.0  # a child's time to stop on SIGTERM before SIGKILL

_PR_SET_PDEATHSIG = 1
# Resolved here, in the parent: the child between fork and exec must not load libraries.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``signum`` when this process dies (Linux). SIGTERM
    lets a Redis write its AOF and a service drain; the chaos harness asks for SIGKILL."""
    parent = os.getpid()

    def arm() -> None:
        if _prctl is None:
            return  # no PR_SET_PDEATHSIG here: the launcher's handlers are all there is
        _prctl(_PR_SET_PDEATHSIG, signum)
        if os.getppid() != parent:  # the parent died before the line above: go now
            os.kill(os.getpid(), signum)

    return arm


def spawn(
    args: Sequence[str],
    *,
    launcher: Launcher | None = None,
    name: str = "",
    death_signal: int = signal.SIGTERM,
    **options: Any,
) -> subprocess.Popen[Any]:
    """Start ``args`` so that it gets ``death_signal`` when this process dies; through
    ``launcher`` (which then owns it, in a session of its own) when there is one."""
    if launcher is not None:
        return launcher.popen(name or args[0], args, **options)
    return subprocess.Popen(args, preexec_fn=die_with_parent(death_signal), **options)  # noqa: S603


def ask_to_stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, if it still runs (after SIGCONT: a paused child could not act on it)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGCONT)
        process.terminate()


def reap(process: subprocess.Popen[Any], grace_s: float) -> None:
    """Wait up to ``grace_s`` for the process to exit, then SIGKILL it."""
    try:
        process.wait(max(0.0, grace_s))
    except subprocess.TimeoutExpired:
        kill(process)


def kill(process: subprocess.Popen[Any]) -> None:
    """SIGKILL and wait: no shutdown, no draining."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()


def stop(process: subprocess.Popen[Any], grace_s: float = DEFAULT_GRACE_S) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``grace_s``."""
    stop_all([process], grace_s)


def stop_all(processes: Sequence[subprocess.Popen[Any]], grace_s: float = DEFAULT_GRACE_S) -> None:
    """SIGTERM to all at once, then SIGKILL to whatever has not exited within ``grace_s``
    (one deadline for all, so that N children take the grace once, not N times)."""
    for process in processes:
        ask_to_stop(process)
    deadline = time.monotonic() + grace_s
    for process in processes:
        reap(process, deadline - time.monotonic())


class Stopped(BaseException):
    """A stop signal reached the launcher. A BaseException, like KeyboardInterrupt: the
    libraries it lands in (redis-py's connect wraps any Exception in a ConnectionError)
    must not turn a stop into an error."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Launcher:
    """Starts named children and stops them all, last started first, on every way out.

    Use it as a context manager from the main thread, before the first child starts: inside,
    a stop signal raises ``Stopped`` (deferred while ``holding()``, e.g. during a start);
    on leaving, for whatever reason, every child still running is stopped.
    """

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[Any]]] = []
        self._holding = 0
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Launcher:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop_all()
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._holding:
            self._pending = self._pending or signum
            return
        raise Stopped(signum)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Stop signals that arrive inside wait until the block is done, then raise."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding and self._pending is not None:
            signum, self._pending = self._pending, None
            raise Stopped(signum)

    def popen(self, name: str, args: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        """Start a child in a session of its own (so the terminal's Ctrl-C reaches the
        launcher alone, which stops the children in order) that dies with the launcher."""
        with self.holding():
            process = subprocess.Popen(  # noqa: S603 (our own commands)
                args, start_new_session=True, preexec_fn=die_with_parent(), **options
            )
            self.children.append((name, process))
        return process

    def exited(self) -> tuple[str, subprocess.Popen[Any]] | None:
        """The first child that is no longer running (reaping it), if any."""
        for name, process in self.children:
            if process.poll() is not None:
                return name, process
        return None

    def stop_all(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stop every child, last started first. From here on a stop signal (a second
        Ctrl-C) is only noted: it must not cut the stop short."""
        self._holding += 1
        for _, process in reversed(self.children):
            stop(process, grace_s)
