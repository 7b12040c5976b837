"""Where a running ``revocast stack`` says which Redis and key folder it uses, so that the
CLI finds them.

The embedded Redis takes a free port on every start. The stack writes that URL and its
key folder to ``.revocast/run/stack.json`` under the folder it runs in (mode 0600: a URL
may hold a password), and removes the file when it stops. A ``revocast`` command with
REDIS_URL unset looks for the file in the current folder and its parents, as git looks
for ``.git``, and trusts only a file of its own user that nobody else can write.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from revocast.errors import SettingsError
from revocast.settings import Settings

RUN_DIR = Path(".revocast") / "run"
STATE_FILE = RUN_DIR / "stack.json"


@dataclass(frozen=True, slots=True)
class StackState:
    """What the CLI needs from a running stack, and who wrote the file."""

    redis_url: str
    key_dir: str
    pid: int
    path: Path

    def running(self) -> bool:
        """Whether the stack that wrote the file still runs (it may have been killed)."""
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False  # gone, or another user's process under a reused pid
        return True


class UntrustedState(Exception):
    """A state file someone else could have written: the CLI must not follow it."""


def write_state(folder: Path, redis_url: str, key_dir: Path) -> Path:
    """Record this process as the stack running in ``folder``; the file's path."""
    path = folder / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"redis_url": redis_url, "key_dir": str(key_dir), "pid": os.getpid()}, out)
    temporary.replace(path)
    return path


def remove_state(folder: Path) -> None:
    """Remove the state file if this process wrote it (never another stack's)."""
    path = folder / STATE_FILE
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text())["pid"]) == os.getpid():
            path.unlink()


def find_state(start: Path) -> StackState | None:
    """The state file in ``start`` or the nearest parent that has one; None if none does.

    UntrustedState if that file belongs to another user or others may write it.
    """
    for folder in (start, *start.parents):
        path = folder / STATE_FILE
        try:
            info = path.stat()
        except OSError:
            continue
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UntrustedState(f"{path} is not yours alone (owner or mode)")
        try:
            raw = json.loads(path.read_text())
            return StackState(str(raw["redis_url"]), str(raw.get("key_dir", "")),
                              int(raw["pid"]), path)  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: as if there were none; the caller says what to set
    return None


def settings_here(folder: Path) -> Settings:
    """Settings from the environment; with REDIS_URL unset, the Redis (and key folder, unless
    REVOCAST_KEY_DIR is set) of a ``revocast stack`` running in ``folder`` or a parent.
    SettingsError, saying what to set, when there is neither."""
    settings = Settings.from_env()
    if settings.redis.redis_url is not None:
        return settings
    try:
        state = find_state(folder)
    except UntrustedState as exc:
        raise SettingsError(f"REDIS_URL is not set, and {exc}: set REDIS_URL") from None
    if state is not None and state.running():
        key_dir = settings.signing.key_dir or state.key_dir
        return settings.with_overrides(redis_url=state.redis_url, key_dir=key_dir)
    if state is not None:
        raise SettingsError(
            f"REDIS_URL is not set, and the revocast stack that wrote {state.path} is no "
            "longer running: start it again, or set REDIS_URL"
        )
    raise SettingsError(
        "REDIS_URL is not set: export REDIS_URL=redis://HOST:6379/0, or start `revocast "
        "stack` in this folder (the CLI finds its Redis by itself)"
    )
