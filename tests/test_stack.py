"""`revocast stack`, the README's run command, as a user meets it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from revocast_tools.redis_server import free_port

CHEAP_ARGON2 = {"REVOCAST_ARGON2_TIME_COST": "1", "REVOCAST_ARGON2_MEMORY_KIB": "1024",
                "REVOCAST_ARGON2_PARALLELISM": "1"}  # fmt: skip


@contextlib.contextmanager
def stack(folder: Path, env: dict[str, str], ports: tuple[int, int]) -> Iterator[str]:
    """Run `revocast stack` in ``folder``; yield what it printed up to its last hint."""
    process = subprocess.Popen(
        [sys.executable, "-m", "revocast", "stack",
         "--issuer-port", str(ports[0]), "--verifier-port", str(ports[1])],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        output = ""
        deadline = time.monotonic() + 30
        while "revocast commands here find it" not in output:
            assert time.monotonic() < deadline, output
            line = process.stdout.readline()
            assert line, f"stack exited early:\n{output}"
            output += line
        yield output
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
        process.stdout.close()


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
        password = re.search(r'"password":"([^"]+)"', output)
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
        assert f'"password":"{password.group(1)}"' in again
        cli(tmp_path, env, "user", "passwd", "demo", "--password-stdin", stdin="a new secret\n")
    with stack(tmp_path, env, ports) as changed:
        assert "revocast user passwd demo" in changed
