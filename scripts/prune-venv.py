"""Uninstall from this venv what a requirements file no longer names (pip adds what a lock
names, never removes what it dropped): run by scripts/setup after installing the lock."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

OURS = {"revocast", "revocast-tools"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(requirements: str) -> None:
    with open(requirements) as lock:
        locked = {canonical(m[1]) for m in re.finditer(r"^([A-Za-z0-9._-]+)==", lock.read(), re.M)}
    installed = {canonical(d.metadata["Name"]) for d in importlib.metadata.distributions()}
    extra = sorted(installed - locked - OURS)
    if extra:
        uninstall = [sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", *extra]
        subprocess.run(uninstall, check=True)  # noqa: S603 (names read from this venv)


if __name__ == "__main__":
    main(sys.argv[1])
