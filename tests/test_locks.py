"""The locks in requirements/ against pyproject.toml: every range the package states is met
by a hash-pinned version, the image and .venv pin the same versions, and the ranges a
library user resolves stay open (docs/dependencies.md)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;]+)")
OURS = {"revocast", "revocast-tools"}


def pins(lock: Path) -> dict[NormalizedName, list[tuple[Version, int]]]:
    """Each package's pinned versions (a universal lock may fork one by markers), with the
    number of hashes that follow each pin."""
    found: dict[NormalizedName, list[tuple[Version, int]]] = {}
    last: list[tuple[Version, int]] | None = None
    for line in lock.read_text().splitlines():
        if (match := PIN.match(line)) is not None:
            last = found.setdefault(canonicalize_name(match["name"]), [])
            last.append((Version(match["version"]), 0))
        elif last is not None and line.strip().startswith("--hash=sha256:"):
            version, count = last[-1]
            last[-1] = (version, count + 1)
    return found


def stated(pyproject: Path, extras: tuple[str, ...] = ()) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(text) for text in listed]


@pytest.mark.parametrize("lock", ["dev.lock", "runtime.lock", "resolver.lock"])
def test_every_pin_carries_hashes(lock: str) -> None:
    locked = pins(REQUIREMENTS / lock)
    assert locked, f"{lock} pins nothing"
    unhashed = [name for name, versions in locked.items() if any(n == 0 for _, n in versions)]
    assert unhashed == [], f"pins without a hash in {lock}: {unhashed}"
    assert not OURS & locked.keys(), "the lock pins revocast itself"


@pytest.mark.parametrize(
    ("lock", "sources"),
    [
        pytest.param("runtime.lock", [("pyproject.toml", ())], id="runtime"),
        pytest.param(
            "dev.lock", [("pyproject.toml", ("dev",)), ("tools/pyproject.toml", ())], id="dev"
        ),
    ],
)
def test_the_lock_meets_every_stated_range(
    lock: str, sources: list[tuple[str, tuple[str, ...]]]
) -> None:
    locked = pins(REQUIREMENTS / lock)
    unmet = []
    for pyproject, extras in sources:
        for requirement in stated(ROOT / pyproject, extras):
            name = canonicalize_name(requirement.name)
            if name in OURS:
                continue
            versions = [version for version, _ in locked.get(name, [])]
            if not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
                unmet.append(f"{requirement} (locked: {[str(v) for v in versions]})")
    assert unmet == [], f"{lock} is behind pyproject.toml, run ./scripts/lock: {unmet}"


def test_the_image_runs_the_versions_the_tests_ran() -> None:
    runtime, dev = pins(REQUIREMENTS / "runtime.lock"), pins(REQUIREMENTS / "dev.lock")
    differ = {
        name: (runtime[name], dev.get(name)) for name in runtime if runtime[name] != dev.get(name)
    }
    assert differ == {}


@pytest.mark.parametrize("pyproject", ["pyproject.toml", "tools/pyproject.toml"])
def test_a_library_users_ranges_stay_open(pyproject: str) -> None:
    """Upper bounds and exact pins belong in the lock, not in what a user's resolver sees."""
    closed = [
        str(requirement)
        for requirement in stated(ROOT / pyproject)
        for spec in requirement.specifier
        if spec.operator in {"==", "===", "<", "<=", "~=", "!="}
    ]
    assert closed == []


def test_what_is_installed_is_what_is_locked() -> None:
    """This very run uses the lock: scripts/setup installed it (skipped in the newest and
    lowest runs, which resolve afresh on purpose)."""
    if os.environ.get("REVOCAST_REQUIREMENTS", "requirements/dev.lock") != "requirements/dev.lock":
        pytest.skip("this run resolved its own versions (scripts/test-latest or test-lowest)")
    locked = pins(REQUIREMENTS / "dev.lock")
    installed = {
        canonicalize_name(dist.metadata["Name"]): Version(dist.version)
        for dist in importlib.metadata.distributions()
    }
    off = {
        name: (str(installed[name]), [str(v) for v, _ in versions])
        for name, versions in locked.items()
        if name in installed and installed[name] not in [v for v, _ in versions]
    }
    assert off == {}
    extra = sorted(installed.keys() - locked.keys() - OURS)
    assert extra == [], f"installed but not locked: {extra}"
