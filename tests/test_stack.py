"""`revocast stack`, the README's run command, as a user meets it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from revocast_tools.redis_server import free_port

READY = "revocast commands here find it"  # the stack's last line once it runs
CHEAP_ARGON2 = {"REVOCAST_ARGON2_TIME_COST": "1", "REVOCAST_ARGON2_MEMORY_KIB": "1024",
                "REVOCAST_ARGON2_PARALLELISM": "1"}  # fmt: skip


@contextlib.contextmanager
def _launched(
    folder: Path, ports: tuple[int, int], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`revocast stack` in ``folder`` (by default with an embedded Redis): on leaving,
    whatever the test's outcome, it is killed if it still runs (its children die with it)
    and its pipe is closed."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | CHEAP_ARGON2
    process = subprocess.Popen(
        [sys.executable, "-m", "revocast", "stack",
         "--issuer-port", str(ports[0]), "--verifier-port", str(ports[1])],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _rest_of_output(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.read()


def _read_until(process: subprocess.Popen[str], marker: str) -> str:
    assert process.stdout is not None
    output = ""
    deadline = time.monotonic() + 30
    while marker not in output:
        assert time.monotonic() < deadline, output
        line = process.stdout.readline()
        assert line, f"stack exited early:\n{output}"
        output += line
    return output


@contextlib.contextmanager
def stack(folder: Path, env: dict[str, str], ports: tuple[int, int]) -> Iterator[str]:
    """Run `revocast stack` in ``folder``; yield what it printed up to its last hint; then
    Ctrl-C, which must end it with 0."""
    with _launched(folder, ports, env) as process:
        output = _read_until(process, READY)
        try:
            yield output
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(20)
            assert code == 0, _rest_of_output(process)


def cli(folder: Path, env: dict[str, str], *args: str, stdin: str = "") -> str:
    result = subprocess.run([sys.executable, "-m", "revocast", *args], cwd=folder, env=env,
                            input=stdin, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stack_starts_embedded_redis_and_prints_a_working_demo(tmp_path: Path) -> None:
    ports = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | CHEAP_ARGON2
    with stack(tmp_path, env, ports) as output:
        assert "embedded Redis" in output
        password = re.search(r"Demo user: demo, password: (\S+)", output)
        assert password is not None
        url = re.search(r"export REDIS_URL=(\S+)", output)
        assert url is not None
        login = httpx.post(
            f"http://127.0.0.1:{ports[0]}/v1/login",
            json={"username": "demo", "password": password.group(1)},
        )
        assert login.status_code == 200
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert httpx.get(f"http://127.0.0.1:{ports[1]}/verify", headers=bearer).status_code == 200
        assert (tmp_path / ".revocast" / "redis" / "appendonlydir").is_dir()  # AOF on
        assert (tmp_path / ".revocast" / "keys").is_dir()  # the keys live with the data
        noisy = [line for line in output.splitlines() if " WARNING " in line or " ERROR " in line]
        assert noisy == []  # a first start logs nothing alarming
        state = tmp_path / ".revocast" / "run" / "stack.json"
        assert state.stat().st_mode & 0o777 == 0o600  # its URL may hold a password

        # A second stack here fails (the ports are taken) and leaves the first one's file.
        second = subprocess.run(
            [sys.executable, "-m", "revocast", "stack", "--issuer-port", str(ports[0]),
             "--verifier-port", str(ports[1])],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode != 0
        assert state.exists()

        # The CLI finds the stack's Redis without REDIS_URL, from the folder or one below it.
        below = tmp_path / "src"
        below.mkdir()
        users = json.loads(cli(below, env, "user", "list"))["users"]
        assert [u["username"] for u in users] == ["demo"]
        assert cli(tmp_path, env | {"REDIS_URL": url.group(1)}, "user", "list")

    # Stopped: the state file is gone, and the CLI says what to do.
    assert not (tmp_path / ".revocast" / "run" / "stack.json").exists()
    stopped = subprocess.run([sys.executable, "-m", "revocast", "user", "list"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert stopped.returncode == 2
    assert "REDIS_URL is not set" in stopped.stderr

    # A state file others could have written is not followed.
    planted = tmp_path / "shared" / ".revocast" / "run" / "stack.json"
    planted.parent.mkdir(parents=True)
    planted.write_text(json.dumps({"redis_url": "redis://203.0.113.9:6379/0", "pid": 1}))
    planted.chmod(0o666)
    refused = subprocess.run([sys.executable, "-m", "revocast", "user", "list"],
                             cwd=planted.parents[2], env=env, capture_output=True, text=True,
                             timeout=30)  # fmt: skip
    assert refused.returncode == 2
    assert "is not yours alone" in refused.stderr

    # Every start shows the demo password; after `user passwd` it says it was changed.
    with stack(tmp_path, env, ports) as again:
        assert f"Demo user: demo, password: {password.group(1)}" in again
        cli(tmp_path, env, "user", "passwd", "demo", "--password-stdin", stdin="a new secret\n")
    with stack(tmp_path, env, ports) as changed:
        assert "revocast user passwd demo" in changed


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc (the stack's children run in sessions of
    their own, so the process group would miss them)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has exited: it only waits to be reaped)."""
    running = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z":
                running.add(pid)
    return running


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.02)


def _ports_free(ports: tuple[int, int]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


STARTING = {
    "redis": lambda pids: any("redis-server" in _command(pid) for pid in pids),
    "issuer": lambda pids: any("revocast issuer" in _command(pid) for pid in pids),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["redis", "issuer"], ids=["redis-started", "issuer-started"])
def test_sigterm_while_starting_leaves_nothing_running(tmp_path: Path, moment: str) -> None:
    """TERM as soon as the embedded Redis (or the issuer) exists, long before the stack is
    ready: everything it started stops, and the ports are free again."""
    ports = free_port(), free_port()
    seen: set[int] = set()
    with _launched(tmp_path, ports) as process:

        def started() -> bool:
            seen.update(_descendants(process.pid))
            return STARTING[moment](seen)

        _wait_until(started, 30, f"the stack starting its {moment}")
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
        output = _rest_of_output(process)
    assert code == 0, output
    _wait_until(lambda: not _alive(seen), 15, f"the stack's children exiting: {_alive(seen)}")
    assert _ports_free(ports)
    assert "Traceback" not in output


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP, signal.SIGKILL],
                         ids=["INT", "HUP", "KILL"])  # fmt: skip
def test_a_stopped_stack_leaves_nothing_running(tmp_path: Path, signum: int) -> None:
    """INT (Ctrl-C), HUP (a closed terminal) or KILL of the launcher once running: every
    process it started exits, and the next start on the same ports works."""
    ports = free_port(), free_port()
    with _launched(tmp_path, ports) as process:
        _read_until(process, READY)
        children = _descendants(process.pid)
        assert len(children) >= 3, [_command(pid) for pid in children]  # Redis, issuer, verifier
        process.send_signal(signum)
        code = process.wait(30)
        output = "" if signum == signal.SIGKILL else _rest_of_output(process)
    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 0), output
    _wait_until(lambda: not _alive(children), 15, f"children exiting: {_alive(children)}")
    assert _ports_free(ports)
    with _launched(tmp_path, ports) as again:
        _read_until(again, READY)
        again.send_signal(signal.SIGINT)
        code = again.wait(30)
        assert code == 0, _rest_of_output(again)


@pytest.mark.slow
def test_a_stack_whose_redis_dies_stops_and_says_why(tmp_path: Path) -> None:
    """The embedded Redis killed: the stack notices, stops the services with one line that
    names what exited, and does not keep logging about the lost server."""
    ports = free_port(), free_port()
    with _launched(tmp_path, ports) as process:
        _read_until(process, READY)
        children = _descendants(process.pid)
        redis_pid = next(pid for pid in children if "redis-server" in _command(pid))
        os.kill(redis_pid, signal.SIGKILL)
        code = process.wait(15)
        after = _rest_of_output(process).splitlines()
    assert code == 1, after
    _wait_until(lambda: not _alive(children), 15, f"children exiting: {_alive(children)}")
    said = [line for line in after if line.startswith("error:")]
    assert len(said) == 1, after
    assert f"Redis server (pid {redis_pid}) exited" in said[0]
    assert len(after) <= 10, after  # the services' own notice of the loss, at most
