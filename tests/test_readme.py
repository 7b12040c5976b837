"""README's first screen stays true: its commands exist and its example runs."""

from __future__ import annotations

import re
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
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("REVOCAST_KEY_PREFIX", settings.key_prefix)
    namespace: dict[str, Any] = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)

    uid = await issuer.add_user("alice", ["user"])
    tokens = await issuer.login("alice")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with serve(namespace["app"]) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/me", headers=bearer)).json() == {"user": uid, "roles": ["user"]}
        assert (await http.get("/me")).status_code == 401
