"""The chaos runs' Redis: a private server (which, as every RedisServer, dies with the harness).

``appendfsync always`` is on the command line (a ``CONFIG SET`` after each restart
would leave a window), so every acknowledged write survives a SIGKILL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from revocast_tools.redis_server import RedisServer


class ChaosRedis(RedisServer):
    """A private server; with ``fsync_always`` every acknowledged write survives SIGKILL."""

    def __init__(
        self,
        data_dir: Path,
        *,
        appendonly: bool,
        fsync_always: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        fsync = ["--appendfsync", "always"] if appendonly and fsync_always else []
        super().__init__(
            data_dir,
            appendonly=appendonly,
            extra_args=[*extra_args, *fsync],
        )
