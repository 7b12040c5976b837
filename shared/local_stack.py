"""Where a running ``revocast stack`` says which Redis it started, so the CLI finds it.

The embedded Redis takes a free port on every start. The stack writes that URL to
``.revocast/run/stack.json`` under the folder it runs in, and removes the file when
it stops; a ``revocast`` command with REDIS_URL unset looks for the file in the
current folder and its parents, as git looks for ``.git``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

RUN_DIR = Path(".revocast") / "run"
STATE_FILE = RUN_DIR / "stack.json"


@dataclass(frozen=True, slots=True)
class StackState:
    """What the CLI needs from a running stack: its Redis and who wrote the file."""

    redis_url: str
    pid: int
    path: Path

    def running(self) -> bool:
        """Whether the stack that wrote the file still runs (it may have been killed)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # alive, someone else's
        return True


def write_state(folder: Path, redis_url: str) -> Path:
    """Record this process as the stack running in ``folder``; the file's path."""
    path = folder / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"redis_url": redis_url, "pid": os.getpid()}) + "\n")
    temporary.replace(path)
    return path


def remove_state(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (folder / STATE_FILE).unlink()


def find_state(start: Path) -> StackState | None:
    """The state file in ``start`` or the nearest parent that has one; None if none does."""
    for folder in (start, *start.parents):
        path = folder / STATE_FILE
        try:
            raw = json.loads(path.read_text())
            return StackState(str(raw["redis_url"]), int(raw["pid"]), path)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: as if there were none; the caller says what to set
    return None
