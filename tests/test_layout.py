"""The layers hold: what the issuer and verifiers ship, and import.

From the bottom up: ``revocast`` (``shared/``, the foundation); ``revocast.verifier``;
``revocast.issuer`` (which embeds a verifier, through its public surface only);
``revocast.cli`` and ``revocast.fastapi`` (``services/``, on top of the services). Beside
them, never imported by them: ``revocast_tools`` (``tools/``), ``bench/`` and ``tests/``.
"""

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


TOOLING_AND_TESTS = ("revocast_tools", "bench", "tests")
SERVICES = ("revocast.issuer", "revocast.verifier", "revocast.cli", "revocast.fastapi")
# What each layer must not import (a name and every module under it).
FORBIDDEN = {
    "revocast": (*SERVICES, *TOOLING_AND_TESTS),
    "revocast.verifier": (
        "revocast.issuer",
        "revocast.cli",
        "revocast.fastapi",
        *TOOLING_AND_TESTS,
    ),
    "revocast.issuer": ("revocast.cli", "revocast.fastapi", *TOOLING_AND_TESTS),
    "revocast.fastapi": ("revocast.issuer", "revocast.cli", *TOOLING_AND_TESTS),
    "revocast.cli": ("revocast.fastapi", *TOOLING_AND_TESTS),
    "revocast_tools": ("bench", "tests"),
    "bench": ("tests",),
}
# Outside the verifier, only these modules of it: the package's surface, admit() (the one
# way in for the middleware, the sidecar and the issuer), its metrics collector and the
# issuer's check without revocation (revocast/verifier/__init__.py says the same).
VERIFIER_PUBLIC = (
    "revocast.verifier",
    "revocast.verifier.gate",
    "revocast.verifier.metrics",
    "revocast.verifier.unchecked",
)
# `python -m revocast` runs the command: an entry point, at the top of every layer, that
# nothing imports (checked below), though setuptools keeps it in the foundation's folder.
ENTRY_POINTS = {ROOT / "shared" / "__main__.py"}


def runtime_modules() -> list[Path]:
    return sorted(path for folder in RUNTIME for path in folder.rglob("*.py"))


def layered_modules() -> list[Path]:
    folders = [*RUNTIME, ROOT / "tools" / "revocast_tools", ROOT / "bench"]
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def layer(path: Path) -> str:
    """The layer a file belongs to, by the folder setuptools maps it from."""
    relative = path.relative_to(ROOT).parts
    if relative[0] == "shared":
        return "revocast"
    if relative[0] == "services":
        return f"revocast.{relative[1]}"
    return "revocast_tools" if relative[0] == "tools" else relative[0]


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("").parts
    if relative[0] in ("shared", "services"):
        parts = [layer(path), *relative[1 if relative[0] == "shared" else 2 :]]
    else:
        parts = list(relative[1:] if relative[0] == "tools" else relative)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


VERIFIER_MODULES = {module_name(path) for path in (ROOT / "services" / "verifier").rglob("*.py")}


def absolute_imports(path: Path, tree: ast.Module) -> list[tuple[int, str]]:
    """Every module an import statement names, relative ones resolved, ``from m import n``
    also as ``m.n`` (n may be a submodule)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("path", layered_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    forbidden = () if path in ENTRY_POINTS else FORBIDDEN.get(layer(path), ())
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in absolute_imports(path, ast.parse(path.read_text()))
        if under(name, forbidden)
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("path", layered_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_verifier_reaches_into_the_verifier(path: Path) -> None:
    """The issuer, the CLI and the FastAPI integration use the verifier's public surface:
    no internal module, and no attribute of its cache (``verifier.cache.users``)."""
    if layer(path) not in ("revocast.issuer", "revocast.cli", "revocast.fastapi"):
        return  # the foundation imports no verifier at all; the tooling may look inside
    tree = ast.parse(path.read_text())
    reach = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in absolute_imports(path, tree)
        if name in VERIFIER_MODULES and name not in VERIFIER_PUBLIC
    ]
    reach += [
        f"{path.relative_to(ROOT)}:{node.lineno} reads .{node.value.attr}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "cache"
    ]
    assert not reach, "\n".join(reach)


def test_the_layers_are_the_packages_setuptools_ships() -> None:
    """Every folder under services/ is a layer of its own, and nothing imports the entry
    point."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapped = project["tool"]["setuptools"]["package-dir"]
    for folder in sorted((ROOT / "services").iterdir()):
        if (folder / "__init__.py").exists():
            assert mapped[f"revocast.{folder.name}"] == f"services/{folder.name}"
            assert f"revocast.{folder.name}" in FORBIDDEN
    for path in layered_modules():
        names = [name for _, name in absolute_imports(path, ast.parse(path.read_text()))]
        assert "revocast.__main__" not in names, path


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
