"""`revocast stack`, the README's run command, as a user meets it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from revocast.redis_server import free_port


def test_stack_starts_embedded_redis_and_prints_a_working_demo(tmp_path: Path) -> None:
    issuer_port, verifier_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env |= {"REVOCAST_ARGON2_TIME_COST": "1", "REVOCAST_ARGON2_MEMORY_KIB": "1024",
            "REVOCAST_ARGON2_PARALLELISM": "1"}  # fmt: skip
    stack = subprocess.Popen(
        [sys.executable, "-m", "revocast", "stack",
         "--issuer-port", str(issuer_port), "--verifier-port", str(verifier_port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert stack.stdout is not None
    try:
        output = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C stops it" not in output:
            assert time.monotonic() < deadline, output
            line = stack.stdout.readline()
            assert line, f"stack exited early:\n{output}"
            output += line
        while "401 session_revoked" not in output:
            output += stack.stdout.readline()
        assert "embedded Redis" in output
        password = re.search(r'"password":"([^"]+)"', output)
        assert password is not None
        login = httpx.post(
            f"http://127.0.0.1:{issuer_port}/v1/login",
            json={"username": "demo", "password": password.group(1)},
        )
        assert login.status_code == 200
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (
            httpx.get(f"http://127.0.0.1:{verifier_port}/verify", headers=bearer).status_code == 200
        )
        assert (tmp_path / ".revocast" / "redis" / "appendonlydir").is_dir()  # AOF on
    finally:
        stack.send_signal(signal.SIGINT)
        assert stack.wait(20) == 0
        stack.stdout.close()
