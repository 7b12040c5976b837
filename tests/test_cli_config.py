"""Configuration mistakes on the command line: one line naming what is wrong, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from revocast.cli import parser
from revocast.errors import SettingsError
from revocast.redis_url import ACCEPTED_FORMS, parse_redis_url
from revocast_tools.redis_server import free_port
from tests.test_cli import PASSWORD, revocast

BAD_URLS = [  # refused by the parser: nothing is ever dialled
    "http://127.0.0.1:6400",
    "redis+sentinel://127.0.0.1:26400",
    "redis+cluster://127.0.0.1",
    "redis+sentinel://127.0.0.1:1,127.0.0.1:x/m",
    "redis+cluster://127.0.0.1:7000/5",
    "redis+cluster://127.0.0.1:7000?sentinel_password=x",
    "nonsense",
]
COMMANDS = [
    ("user", "add", "x", "--password-stdin"),
    ("issuer",),
    ("verifier",),
    ("keys", "list"),
    ("block", "u1"),
    ("sessions", "u1"),
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_redis_url_names_the_accepted_forms(url: str) -> None:
    with pytest.raises(SettingsError) as refused:
        parse_redis_url(url)
    assert "\n" not in refused.value.detail
    assert ACCEPTED_FORMS in refused.value.detail


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_says_so_in_one_line(env: dict[str, str], command: tuple[str, ...]) -> None:
    result = revocast(*command, env=env | {"REDIS_URL": BAD_URLS[1]}, stdin=PASSWORD)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "redis+sentinel://" in result.stderr
    assert "redis+cluster://" in result.stderr


def test_a_partition_count_that_differs_from_the_deployments_stops_everything(
    env: dict[str, str],
) -> None:
    first = revocast("user", "add", "alice", "--password-stdin", env=env | {
        "REVOCAST_PARTITIONS": "4"}, stdin=PASSWORD)  # fmt: skip
    assert first.returncode == 0, first.stderr
    other = env | {"REVOCAST_PARTITIONS": "2"}
    for command in (*COMMANDS[:4],):
        result = revocast(*command, env=other, stdin=PASSWORD)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert "has 4 partitions" in result.stderr
        assert "REVOCAST_PARTITIONS=2 does not match" in result.stderr
    adopted = revocast("user", "add", "carol", "--password-stdin", env=env, stdin=PASSWORD)
    assert adopted.returncode == 0, adopted.stderr  # unset: the deployment's count is taken


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--version",), "revocast 0.1.0"),
        (("chaos", "--help"), "SCENARIO"),
        (("chaos", "-h"), "SCENARIO"),
    ],
)
def test_version_and_chaos_help(args: tuple[str, ...], expected: str) -> None:
    """Issue 13 in part: ``--version``, and ``chaos --help`` reaches the harness's help."""
    result = revocast(*args, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


# Every leaf command, with the arguments it needs; tests below check this covers them all.
EVERY_COMMAND: dict[str, tuple[str, ...]] = {
    "issuer": ("issuer",),
    "verifier": ("verifier",),
    "user add": ("user", "add", "x", "--password-stdin"),
    "user list": ("user", "list"),
    "user show": ("user", "show", "x"),
    "user passwd": ("user", "passwd", "x", "--password-stdin"),
    "user remove": ("user", "remove", "x"),
    "user unlock": ("user", "unlock", "x"),
    "block": ("block", "x", "--wait", "1"),
    "unblock": ("unblock", "x"),
    "verifiers": ("verifiers",),
    "sessions": ("sessions", "x"),
    "client add": ("client", "add", "x"),
    "client list": ("client", "list"),
    "client roles": ("client", "roles", "x"),
    "client remove": ("client", "remove", "x"),
    "keys list": ("keys", "list"),
    "keys rotate": ("keys", "rotate"),
    "keys revoke": ("keys", "revoke", "x"),
    "upstream links": ("upstream", "links"),
    "upstream unlink": ("upstream", "unlink", "x", "0" * 40),
    "stack": ("stack", "--issuer-port", "1", "--verifier-port", "1"),
    # `revocast chaos` starts private Redis servers of its own and never reads REDIS_URL.
}


def leaf_commands() -> set[str]:
    def walk(p: argparse.ArgumentParser, prefix: str) -> set[str]:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return {prefix}
        return {leaf for name, child in subs[0].choices.items()
                for leaf in walk(child, f"{prefix} {name}".strip())}  # fmt: skip

    return walk(parser(), "")


def test_the_error_tests_cover_every_command() -> None:
    assert leaf_commands() == set(EVERY_COMMAND) | {"chaos"}


SERVICES = {"issuer", "verifier"}  # they run on with Redis down; the rest are commands


def unreachable_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.mark.slow  # 40 processes, about 28 s
@pytest.mark.parametrize("name", sorted(EVERY_COMMAND))
@pytest.mark.parametrize("url", ["unreachable", "malformed"])
def test_every_command_fails_in_one_line(env: dict[str, str], name: str, url: str) -> None:
    """No traceback for an unreachable server or a malformed URL: one line that says what
    is wrong. The services start while Redis is down (DESIGN.md invariant 15): each warns in
    one line and serves 503 until Redis answers."""
    redis_url = unreachable_url() if url == "unreachable" else BAD_URLS[1]
    command = [sys.executable, "-m", "revocast", *EVERY_COMMAND[name]]
    service = name in SERVICES
    if service:
        command += ["--port", str(free_port())]
    process = subprocess.Popen(
        command, env=env | {"REDIS_URL": redis_url}, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(PASSWORD + "\n", timeout=4 if service else 20)
    except subprocess.TimeoutExpired:
        assert service, f"{name} hung"
        assert url == "unreachable", f"{name} hung"
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1, stderr
        assert "Traceback" not in stderr
        return
    assert process.returncode in (1, 2), stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("error: ")
    expected = "redis+cluster://" if url == "malformed" else "127.0.0.1"
    assert expected in stderr, stderr


@pytest.mark.parametrize("tool", ["chaos", "stack"])
def test_the_tools_help_is_plain_text(tool: str) -> None:
    result = revocast(tool, "--help", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "usage: revocast " + tool in result.stdout
    assert "``" not in result.stdout


def test_help_is_plain_text_and_every_option_says_what_it_does() -> None:
    def walk(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        return [p] + [q for s in subs for child in s.choices.values() for q in walk(child)]

    for command in walk(parser()):
        text = command.format_help()
        assert "``" not in text, text
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction) or action.dest == "tool_args":
                continue
            assert action.help, f"{command.prog}: {action.option_strings or action.dest}"
