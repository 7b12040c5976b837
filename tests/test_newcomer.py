"""The newcomer's path: every command the stack and README print works when pasted into a
shell, with revocast's venv not on PATH (as after ./scripts/run), and the FastAPI example
runs as its docstring says."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from revocast_tools.redis_server import free_port
from tests.test_stack import CHEAP_ARGON2, cli, stack

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.slow  # each starts the whole stack


@pytest.fixture
def shell_env() -> dict[str, str]:
    """A user's shell: no REDIS_URL, and the venv's bin folder not on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    plain = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "VIRTUAL_ENV"}}
    return plain | CHEAP_ARGON2 | {"PATH": path}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A checkout as ./scripts/run leaves it: .venv beside the stack's .revocast."""
    (tmp_path / ".venv").symlink_to(sys.prefix)
    return tmp_path


def paste(commands: str, folder: Path, env: dict[str, str], stdin: str = "") -> str:
    """Run ``commands`` as a user pasting them into bash would; stdout and stderr."""
    done = subprocess.run(["bash", "-c", commands], cwd=folder, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return output


def try_it_block(banner: str) -> str:
    """The commands under "Try it:" in the stack's banner."""
    block = banner.split("Try it:\n", 1)[1].split("\n\n", 1)[0]
    return textwrap.dedent(block)


def readme_block(marker: str) -> str:
    """The ```sh block of README that contains ``marker``."""
    blocks: list[str] = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    return next(block for block in blocks if marker in block)


def test_the_stacks_commands_work_when_pasted(folder: Path, shell_env: dict[str, str]) -> None:
    ports = free_port(), free_port()
    with stack(folder, shell_env, ports) as banner:
        commands = try_it_block(banner)
        output = paste(commands, folder, shell_env)
        statuses = re.findall(r"^HTTP/1.1 (\d+)", output, re.MULTILINE)
        assert statuses == ["200", "204", "401"], output
        assert "session_revoked" in output
        assert '"username":"demo"' in output.replace(" ", "")  # `... user list` found the users
        cli(folder, shell_env, "user", "passwd", "demo", "--password-stdin", stdin=PASSWORD + "\n")
    with stack(folder, shell_env, ports) as banner:
        commands = try_it_block(banner)
        assert "<" not in commands.split("\n", 1)[0]  # no placeholder to paste
        output = paste(commands, folder, shell_env, stdin=PASSWORD + "\n")  # read -s asks
        assert re.findall(r"^HTTP/1.1 (\d+)", output, re.MULTILINE) == ["200", "204", "401"]
        # A wrong password says so in one line, and nothing after it passes.
        wrong = paste(commands, folder, shell_env, stdin="not it\n")
        assert "invalid_credentials" in wrong
        assert "HTTP/1.1 200" not in wrong


def test_readmes_operator_commands_work_when_pasted(
    folder: Path, shell_env: dict[str, str]
) -> None:
    ports = free_port(), free_port()
    with stack(folder, shell_env, ports):
        output = paste(readme_block("revocast user add alice"), folder, shell_env)
        assert "error" not in output.lower(), output

        def user(name: str, role: str) -> dict[str, str]:
            cli(folder, shell_env, "user", "add", name, "--role", role, "--password-stdin",
                stdin=PASSWORD + "\n")  # fmt: skip
            login = httpx.post(f"http://127.0.0.1:{ports[0]}/v1/login",
                               json={"username": name, "password": PASSWORD})  # fmt: skip
            assert login.status_code == 200, login.text
            return dict(login.json())

        moderator, member = user("mia", "moderator"), user("bob", "user")
        block = readme_block("MODERATOR_ACCESS_TOKEN").replace(
            "http://127.0.0.1:8000", f"http://127.0.0.1:{ports[0]}"
        )
        env = shell_env | {
            "MODERATOR_ACCESS_TOKEN": moderator["access_token"],
            "USER_ID": member["user_id"],
            "SESSION_ID": member["session_id"],
        }
        output = paste(block, folder, env)
        assert '"error"' not in output, output
        actions = re.findall(r'"action":"(\w+)"', output.replace(" ", ""))
        assert {"block", "unblock"} <= set(actions), output


def test_the_fastapi_example_runs_as_its_docstring_says(
    folder: Path, shell_env: dict[str, str]
) -> None:
    source = (ROOT / "examples" / "fastapi_app.py").read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    documented = next(line.strip() for line in docstring.splitlines() if "uvicorn" in line)
    port = free_port()
    command = documented.replace("--port 8002", f"--port {port}")
    assert command != documented, documented
    env = shell_env | {"PYTHONPATH": str(ROOT)}  # the docstring runs it from the checkout
    # Without a stack or REDIS_URL: one line saying what to do, no traceback.
    alone = subprocess.run(shlex.split(command), cwd=folder, env=env, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert alone.returncode != 0
    assert "REDIS_URL is not set" in alone.stderr
    assert "Traceback" not in alone.stderr
    with stack(folder, shell_env, (free_port(), free_port())):
        server = subprocess.Popen(shlex.split(command), cwd=folder, env=env)
        try:
            for _ in range(300):
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/me")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, "the example exited"
                    time.sleep(0.1)
            assert answer.status_code == 401  # running, and guarding /me
        finally:
            server.terminate()
            server.wait(20)
