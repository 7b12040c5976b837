"""Configuration mistakes on the command line: one line naming what is wrong, never a traceback."""

from __future__ import annotations

import os

import pytest

from revocast.errors import SettingsError
from revocast.redis_url import ACCEPTED_FORMS, parse_redis_url
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
