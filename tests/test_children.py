"""revocast_tools.children: the one lifecycle every tool's child processes go through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from revocast_tools.children import Launcher, Stopped, kill, spawn, stop, stop_all

DEAF = ["sh", "-c", "trap '' TERM; sleep 30"]  # ignores SIGTERM: only SIGKILL ends it


def test_stop_all_gives_every_child_one_shared_grace() -> None:
    deaf = [spawn(DEAF) for _ in range(3)]
    time.sleep(0.2)  # the traps are set
    started = time.monotonic()
    stop_all(deaf, grace_s=0.5)
    took = time.monotonic() - started
    assert [p.returncode for p in deaf] == [-signal.SIGKILL] * 3
    assert took < 1.2, f"{took:.2f} s: the grace was spent once per child"


def test_stop_wakes_a_paused_child_so_it_can_act_on_sigterm() -> None:
    child = spawn(["sleep", "30"])
    child.send_signal(signal.SIGSTOP)
    stop(child, grace_s=5)
    assert child.returncode == -signal.SIGTERM


def test_kill_and_stop_of_an_exited_child_do_nothing() -> None:
    child = spawn(["true"])
    child.wait()
    stop(child, grace_s=0.1)
    kill(child)
    assert child.returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_gets_its_death_signal_when_its_parent_dies() -> None:
    parent = subprocess.run(
        [sys.executable, "-c",
         "import os, signal\n"
         "from revocast_tools.children import spawn\n"
         "child = spawn(['sleep', '30'], death_signal=signal.SIGKILL)\n"
         "print(child.pid, flush=True)\n"
         "os._exit(0)\n"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    pid = int(parent.stdout)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (reaped by init later) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_stop_signal_inside_a_catch_all_still_stops() -> None:
    """redis-py's asyncio connect turns any Exception raised inside it into a
    ConnectionError: a stop signal landing there (``revocast stack`` checking its new Redis)
    must stay a stop, not become "Redis unreachable" and exit 1 (seen once in CI). The
    signal lands here in Python code inside such a catch-all, every time."""
    signaller = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    with Launcher():
        signaller.start()
        with pytest.raises(Stopped):
            _busy_inside_a_catch_all(time.monotonic() + 10)
    signaller.cancel()


def _busy_inside_a_catch_all(deadline: float) -> None:
    try:
        while time.monotonic() < deadline:
            pass  # Python code running when the signal comes
    except Exception as exc:  # the library's way
        raise ConnectionError(exc) from exc
