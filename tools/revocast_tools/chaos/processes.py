"""Issuer and verifier sidecars as child processes: spawn, wait until ready, kill, restart.

Children get PR_SET_PDEATHSIG, so even a harness killed with SIGKILL leaves no
service behind; a normal exit terminates them and kills what does not stop.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from revocast_tools.children import ask_to_stop, kill, reap, spawn


class Service:
    """One ``python -m revocast <command> --port P`` process, restartable on the same port."""

    def __init__(
        self, name: str, command: str, port: int, env: dict[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.command = command
        self.port = port
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    @property
    def ready_path(self) -> str:
        return "/readyz" if self.command == "verifier" else "/healthz"

    def spawn(self) -> None:
        if self.pid is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.starts + 1} at {time.monotonic():.3f}\n".encode())
        self._log.flush()
        args = [sys.executable, "-m", "revocast", self.command, "--port", str(self.port),
                "--log-level", "warning"]  # fmt: skip
        self._process = spawn(
            args,
            death_signal=signal.SIGKILL,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    async def wait_ready(self, http: httpx.AsyncClient, timeout_s: float) -> None:
        """Poll the readiness route until it answers 200; fail if the process exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            try:
                reply = await http.get(self.url + self.ready_path, timeout=1.0)
                if reply.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout_s}s:\n{self.log_tail()}")
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no draining."""
        if self._process is not None:
            kill(self._process)
        self._process = None

    def terminate(self) -> None:
        if self._process is not None:
            ask_to_stop(self._process)

    def reap(self, timeout_s: float) -> None:
        """Wait for the process after ``terminate``; SIGKILL it if it takes longer."""
        if self._process is not None:
            reap(self._process, timeout_s)
        self._process = None
        self._close_log()

    def pause(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
