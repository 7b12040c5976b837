"""Static checks of compose.yaml, the Dockerfile and .dockerignore.

Nothing here needs Docker, Redis or the network: compose.yaml is validated against the
Compose Specification schema vendored inside check-jsonschema, and every ``revocast`` command
is parsed with the real CLI parser.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from revocast.cli import parser
from revocast.redis_url import parse_redis_url
from revocast_tools.redis_server import RedisServer, find_server_binary, free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

# Schema name for `check-jsonschema --builtin-schema`, and the file it names in the package.
COMPOSE_SCHEMA = "vendor.compose-spec"
COMPOSE_SCHEMA_FILE = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"

REDIS_URL = "redis://redis:6379/0"
SENTINEL_URL = "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/revocast"
KEY_DIR = "/keys"
# service -> (subcommand, container port, host port, health path)
DEFAULT_SERVICES: dict[str, tuple[str, int, int, str]] = {
    "issuer": ("issuer", 8000, 8000, "/readyz"),
    "verifier-1": ("verifier", 8001, 8001, "/readyz"),
    "verifier-2": ("verifier", 8001, 8002, "/readyz"),
}
# The "sentinel" profile: the same services on a primary, a replica and three sentinels.
SENTINEL_SERVICES: dict[str, tuple[str, int, int, str]] = {
    "issuer-sentinel": ("issuer", 8000, 8010, "/readyz"),
    "verifier-sentinel": ("verifier", 8001, 8011, "/readyz"),
}
SENTINEL_REDIS = {"redis-primary", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
REVOCAST_SERVICES = DEFAULT_SERVICES | SENTINEL_SERVICES
# Any attempt to reach the network fails at once instead of hanging the test.
_DEAD_PROXY = "http://127.0.0.1:9"
OFFLINE_ENV = {
    **os.environ,
    **{name: _DEAD_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
    "NO_PROXY": "",
    "no_proxy": "",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _argv(command: str | list[str]) -> list[str]:
    """A compose ``command`` as an argument list (a string is split the way Compose splits it)."""
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def _exec_form(arguments: str) -> list[str]:
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert isinstance(parsed, list)
        return [str(arg) for arg in parsed]
    return shlex.split(arguments)


# (a) The Compose Specification


def test_compose_schema_is_vendored_and_self_contained() -> None:
    assert COMPOSE_SCHEMA_FILE.is_file(), f"check-jsonschema does not ship {COMPOSE_SCHEMA}"
    text = COMPOSE_SCHEMA_FILE.read_text(encoding="utf-8")
    assert json.loads(text)["title"] == "Compose Specification"
    refs = [line for line in text.splitlines() if '"$ref"' in line]
    assert refs, "schema has no $ref at all; wrong file?"
    remote = [ref for ref in refs if '"#' not in ref]
    assert not remote, f"schema refers outside itself (would need the network): {remote}"


def test_compose_matches_compose_spec_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            COMPOSE_SCHEMA,
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=OFFLINE_ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


# (b) Commands


def test_revocast_services_are_the_expected_ones(services: dict[str, dict[str, Any]]) -> None:
    revocast = {
        name for name, svc in services.items() if _argv(svc.get("command", []))[:1] == ["revocast"]
    }
    assert revocast == set(REVOCAST_SERVICES)
    unprofiled = {name for name, svc in services.items() if not svc.get("profiles")}
    assert unprofiled == {"redis", *DEFAULT_SERVICES}  # `docker compose up` starts just these
    sentinel = {name for name, svc in services.items() if svc.get("profiles") == ["sentinel"]}
    assert sentinel == {*SENTINEL_REDIS, *SENTINEL_SERVICES}


@pytest.mark.parametrize("name", sorted(REVOCAST_SERVICES))
def test_revocast_command_parses(services: dict[str, dict[str, Any]], name: str) -> None:
    subcommand, container_port, host_port, health_path = REVOCAST_SERVICES[name]
    service = services[name]
    argv = _argv(service["command"])
    assert argv[0] == "revocast"
    try:
        args = parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{name}: `{shlex.join(argv)}` is rejected by the CLI (exit {exc.code})")
    assert args.command == subcommand
    assert args.host == "0.0.0.0", "the service must listen beyond the container's loopback"
    assert args.port == container_port
    assert f"{host_port}:{container_port}" in [
        ":".join(str(port).split(":")[-2:]) for port in service.get("ports", [])
    ]
    test = " ".join(_argv(service["healthcheck"]["test"]))
    assert f"http://127.0.0.1:{container_port}{health_path}" in test


def test_redis_command_persists(services: dict[str, dict[str, Any]]) -> None:
    argv = _argv(services["redis"]["command"])
    assert argv[0] == "redis-server"
    assert "--appendonly yes" in shlex.join(argv)
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])


def test_revocast_services_share_settings(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name in REVOCAST_SERVICES:
        service = services[name]
        url = REDIS_URL if name in DEFAULT_SERVICES else SENTINEL_URL
        assert _environment(service).get("REDIS_URL") == url, name
        assert service["build"]["context"] == ".", name
    assert _environment(services["issuer"]).get("REVOCAST_KEY_DIR") == KEY_DIR
    volume, _, target = services["issuer"]["volumes"][0].partition(":")
    assert target == KEY_DIR
    assert volume in compose["volumes"], "the signing key must live in a named volume"


# (c) Health checks and start order


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable", False), name
        test = _argv(check["test"])
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        if test[1:3] == ["python", "-c"]:
            compile(test[3], f"<{name} healthcheck>", "exec")  # the probe itself is valid Python


def _healthy_dependencies(service: dict[str, Any]) -> set[str]:
    depends = service.get("depends_on", {})
    assert isinstance(depends, dict), "depends_on needs the long form to wait for health"
    return {dep for dep, spec in depends.items() if spec.get("condition") == "service_healthy"}


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert "redis" in _healthy_dependencies(services["issuer"])
    for name in DEFAULT_SERVICES:
        if name.startswith("verifier"):
            assert "issuer" in _healthy_dependencies(services[name]), name
    assert "redis-primary" in _healthy_dependencies(services["redis-replica"])
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        assert "redis-replica" in _healthy_dependencies(services[name]), name
        assert {name} <= _healthy_dependencies(services["issuer-sentinel"])
    assert "issuer-sentinel" in _healthy_dependencies(services["verifier-sentinel"])


# (c') The sentinel profile


def test_sentinel_profile_is_durable_and_reads_replicas(
    services: dict[str, dict[str, Any]],
) -> None:
    url = parse_redis_url(SENTINEL_URL)
    assert (url.kind, url.master_name) == ("sentinel", "revocast")
    assert {host for host, _ in url.nodes} == {"sentinel-1", "sentinel-2", "sentinel-3"}
    for name in SENTINEL_SERVICES:
        assert _environment(services[name])["REVOCAST_MIN_REPLICAS"] == "1", name
    assert _environment(services["verifier-sentinel"])["REVOCAST_READ_FROM_REPLICAS"] == "1"
    replica = shlex.join(_argv(services["redis-replica"]["command"]))
    assert "--replicaof redis-primary 6379" in replica
    assert "--appendonly yes" in replica


def test_sentinel_profile_config_starts_real_sentinels(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The sentinels' own script, run with the compose host names mapped to a private primary:
    the sentinel comes up and names that primary as the master."""
    primary = RedisServer(tmp_path / "primary", appendonly=False)
    primary.start()
    sentinel_port = free_port()
    service = services["sentinel-1"]
    assert _argv(service["entrypoint"]) == ["sh", "-c"]
    script = _argv(service["command"])[0]
    script = script.replace("redis-primary 6379", f"127.0.0.1 {primary.port}")
    script = script.replace("port 26379", f"port {sentinel_port}")
    script = script.replace("/tmp/sentinel.conf", str(tmp_path / "sentinel.conf"))
    script = script.replace("redis-server", find_server_binary())
    process = subprocess.Popen(["sh", "-c", script])
    try:
        client = redis.Redis(port=sentinel_port, decode_responses=True, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                master = client.execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "get-master-addr-by-name", "revocast"
                )
                break
            except redis.RedisError:
                assert process.poll() is None, "the sentinel exited"
                assert time.monotonic() < deadline, "the sentinel never answered"
                time.sleep(0.05)
        assert [str(part) for part in master] == ["127.0.0.1", str(primary.port)]
        client.close()
    finally:
        process.terminate()
        process.wait(10)
        primary.stop()


# (d) Dockerfile and .dockerignore


def test_dockerfile_installs_the_project() -> None:
    instructions = _dockerfile()
    keywords = [keyword for keyword, _ in instructions]
    base = next(arguments for keyword, arguments in instructions if keyword == "FROM")
    assert base == "python:3.11-slim"
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11"

    copied = [_exec_form(arguments) for keyword, arguments in instructions if keyword == "COPY"]
    assert any(copy[0] == "." for copy in copied), "the build context (the repo) is never copied"
    targets = {copy[-1].rstrip("/") or "/" for copy in copied if copy[0] == "."}
    installs = [
        arguments
        for keyword, arguments in instructions
        if keyword == "RUN" and "pip install" in arguments
    ]
    assert len(installs) == 1
    steps = [step.split() for step in installs[0].split("pip install")[1:]]
    locked, package = (step[: step.index("&&")] if "&&" in step else step for step in steps)
    # First every dependency from the runtime lock, each file checked against its hash...
    assert "--require-hashes" in locked
    assert any(f"{t}/requirements/runtime.lock" in locked for t in targets), locked
    # ...then the copied repo itself, fetching nothing more (no deps, no build isolation).
    assert {"--no-deps", "--no-build-isolation"} <= set(package)
    assert not any(arg == "-e" or arg.startswith("--editable") for arg in package)
    assert not any("[" in arg for arg in package), "no extras (dev tools) in the image"
    assert any(arg in targets for arg in package), f"pip installs {package}, not the copied repo"

    # Compose gives full `revocast ...` commands, so an ENTRYPOINT would double the program name.
    assert "ENTRYPOINT" not in keywords
    assert "revocast" in project["scripts"]
    cmd = _exec_form(next(arguments for keyword, arguments in instructions if keyword == "CMD"))
    assert cmd[0] == "revocast"
    assert parser().parse_args(cmd[1:]).command == "issuer"


def test_dockerfile_runs_unprivileged() -> None:
    instructions = _dockerfile()
    users = [i for i, (keyword, _) in enumerate(instructions) if keyword == "USER"]
    assert users, "no USER: the services would run as root"
    assert instructions[users[-1]][1].split(":")[0] not in {"root", "0"}
    last_run = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "RUN")
    assert users[-1] > last_run
    # The key directory exists in the image, so a fresh named volume inherits its owner.
    assert any(keyword == "RUN" and KEY_DIR in arguments for keyword, arguments in instructions)


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {
        ".venv",
        ".git",
        ".revocast",
        "**/__pycache__",
        ".mypy_cache",
        ".ruff_cache",
    } <= patterns
    assert ".pytest_cache" in patterns
    # What `pip install .` needs must stay in the context.
    package_dirs = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-dir"
    ]
    needed = {"pyproject.toml"} | {path.split("/")[0] for path in package_dirs.values()}
    assert not needed & patterns, f"{needed & patterns} excluded from the build context"
