"""README's first screen stays true: its commands exist and its example runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Issuer
from tests.support.servers import serve

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_two_commands_exist_and_ci_runs_the_test_one() -> None:
    commands = re.findall(r"^(\./scripts/\w+)", README, re.MULTILINE)
    assert commands[:2] == ["./scripts/run", "./scripts/test"]
    for command in commands[:2]:
        assert (ROOT / command).stat().st_mode & 0o111
    assert "./scripts/test" in (ROOT / ".ci/run").read_text()


async def test_embedding_example_runs(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    example = re.search(r"```python\n(.*?)```", README, re.DOTALL)
    assert example is not None
    settings = issuer.settings
    monkeypatch.setenv("REDIS_URL", settings.redis.redis_url or "")
    monkeypatch.setenv("REVOCAST_KEY_PREFIX", settings.redis.key_prefix)
    namespace: dict[str, Any] = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)

    uid = await issuer.add_user("alice", ["user"])
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with serve(namespace["app"]) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/me", headers=bearer)).json() == {"user": uid, "roles": ["user"]}
        assert (await http.get("/me")).status_code == 401


def test_benchmark_figures_match_their_results() -> None:
    """BENCHMARKS.md's tables are what `bench.report` makes of bench/results/*.json, and the
    README's verify figures are the ones in those results."""
    checked = subprocess.run([sys.executable, "-m", "bench.report", "--check"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    results = json.loads((ROOT / "bench" / "results" / "verify_cost.json").read_text())
    median = {name: case["median_us"] for name, case in results["results"].items()}
    warm = median["revocast Verifier.verify, warm"]
    first = median["revocast Verifier.verify, first sight"]
    decode = median["jwt.decode (PyJWT, no revocation check)"]
    assert f"{first:.0f} µs against {decode:.0f} µs" in README
    assert f"{warm:.2f} µs" in README


def test_a_set_up_checkout_starts_without_the_registry_and_quietly() -> None:
    """scripts/run calls scripts/setup on every start: once set up, it installs nothing (so
    no registry is needed) and prints nothing, deprecation warnings included."""
    offline = os.environ | {"PIP_NO_INDEX": "1", "PIP_INDEX_URL": "http://127.0.0.1:9/"}
    setup = subprocess.run([str(ROOT / "scripts" / "setup")], env=offline, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert setup.returncode == 0, setup.stderr
    assert setup.stdout + setup.stderr == ""
