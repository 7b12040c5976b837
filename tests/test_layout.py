"""The runtime apart from the tooling: what the issuer and verifiers ship, and import."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = [ROOT / "shared", ROOT / "services"]
TOOLING = ("revocast_tools",)


def runtime_modules() -> list[Path]:
    return sorted(path for folder in RUNTIME for path in folder.rglob("*.py"))


def imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [alias.name for alias in node.names]


@pytest.mark.parametrize("path", runtime_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_modules_import_no_tooling_and_only_at_the_top(path: Path) -> None:
    """No chaos harness, stack or embedded-server launcher in the runtime, and no import
    hidden in a function to dodge a cycle."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for name in imported(node):
            assert not name.startswith(TOOLING), f"{path.name}:{node.lineno} imports {name}"
        assert id(node) in top_level, f"{path.name}:{node.lineno}: import inside a block"


def test_the_runtime_distribution_leaves_the_tooling_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]
    assert not [p for p in packages if "chaos" in p or p.startswith(TOOLING)]
    assert not (ROOT / "shared" / "chaos").exists()
    for module in ("stack.py", "redis_server.py", "operator.py"):
        assert not (ROOT / "shared" / module).exists(), module
    assert "tools" in (ROOT / ".dockerignore").read_text().split()


def test_importing_the_services_loads_no_tooling() -> None:
    code = (
        "import sys, revocast.cli, revocast.issuer, revocast.verifier, revocast.fastapi; "
        "print(sorted(m for m in sys.modules if m.startswith(('revocast_tools', 'valkey'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)  # fmt: skip
    assert loaded.stdout.strip() == "[]"


def test_tool_commands_without_the_tooling_say_how_to_get_it(tmp_path: Path) -> None:
    """The production image has no revocast-tools: `revocast chaos` says so in one line."""
    hide = tmp_path / "sitecustomize.py"
    hide.write_text(
        "import importlib.metadata as m\n"
        "real = m.entry_points\n"
        "m.entry_points = lambda **kw: [e for e in real(**kw) "
        "if e.group != 'revocast.commands']\n"
    )
    for command in ("chaos", "stack"):
        result = subprocess.run(
            [sys.executable, "-m", "revocast", command, "--help"],
            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "revocast-tools" in result.stderr
