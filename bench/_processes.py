"""The child processes of a benchmark: started with logs kept, stopped for sure, talked to.

``Children`` owns every process a benchmark starts, through revocast_tools.children (each
dies with the benchmark; stopped with SIGTERM, then SIGKILL). Workers
(``bench._verifier_worker``, ``bench._swarm_worker``, ``bench._pubsub_worker``) answer
one line per command over their pipes; sidecars (``revocast verifier``) over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from bench._env import ROOT
from bench._stats import ms, summary
from revocast_tools.children import spawn, stop_all
from revocast_tools.redis_server import free_port

ROUND_TIMEOUT_S = 5.0
START_TIMEOUT_S = 90.0  # a few dozen Python processes importing at once on 2 CPUs


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Children:
    """Every process this benchmark started; ``stop`` ends them: SIGTERM, then SIGKILL."""

    log_dir: Path
    running: list[Child] = field(default_factory=list)
    redis_pid: int | None = None  # for CPU accounting only

    def spawn(self, name: str, args: list[str], env: dict[str, str], *, pipes: bool) -> Child:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as stderr:
            process = spawn(
                args,
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stderr=stderr,
            )
        child = Child(name, process, log)
        self.running.append(child)
        return child

    def stop(self, children: Sequence[Child] | None = None, timeout_s: float = 5.0) -> None:
        targets = list(self.running if children is None else children)
        stop_all([child.process for child in targets], timeout_s)
        for child in targets:
            for stream in (child.process.stdin, child.process.stdout):
                if stream is not None:
                    stream.close()
            self.running.remove(child)


def check_alive(children: Sequence[Child]) -> None:
    for child in children:
        if child.process.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with {child.process.returncode}:\n{child.tail()}"
            )


async def wait_http_ok(url: str, child: Child, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    async with httpx.AsyncClient(timeout=1.0) as http:
        while True:
            check_alive([child])
            try:
                reply = await http.get(url)
                if reply.status_code == 200:
                    return
                last = f"{reply.status_code} {reply.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{url} did not answer 200 in {timeout_s}s (last: {last}; "
                    f"{child.name} pid {child.process.pid} {proc_state(child.process.pid)}):\n"
                    f"{child.tail()}"
                )
            await asyncio.sleep(0.05)


def proc_state(pid: int) -> str:
    """The process state letter and kernel wait channel, for a start-up failure message."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return "state unknown"
    return f"state {stat.rsplit(')', 1)[1].split()[0]}, wchan {wchan or '-'}"


# --- workers: one line per command over their pipes -----------------------------------------


@dataclass
class Worker:
    child: Child
    reader: asyncio.StreamReader
    transport: asyncio.BaseTransport

    def send(self, line: str) -> None:
        stdin = self.child.process.stdin
        assert stdin is not None
        stdin.write(line.encode() + b"\n")
        stdin.flush()

    async def receive(self, timeout_s: float) -> list[str]:
        try:
            line = await asyncio.wait_for(self.reader.readline(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"{self.child.name} said nothing in {timeout_s}s") from None
        if not line:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.child.process.wait(1.0)  # EOF comes just before the exit status
            check_alive([self.child])
            raise RuntimeError(f"{self.child.name} closed its output:\n{self.child.tail()}")
        return line.decode().split()


async def start_workers(
    children: Children,
    env: dict[str, str],
    count: int,
    workers: list[Worker],
    *,
    module: str = "bench._verifier_worker",
    args: Sequence[str] = (),
    name: str = "worker",
) -> None:
    """Start ``count`` workers into ``workers`` (so the caller can stop a partial start)."""
    loop = asyncio.get_running_loop()
    for index in range(count):
        child = children.spawn(
            f"{name}-{count}-{index}",
            [sys.executable, "-m", module, *args],
            env,
            pipes=True,
        )
        reader = asyncio.StreamReader()
        stdout: IO[bytes] | None = child.process.stdout
        assert stdout is not None
        protocol = functools.partial(asyncio.StreamReaderProtocol, reader)
        transport, _ = await loop.connect_read_pipe(protocol, stdout)
        # The transport owns the pipe now and closes it (later, on the loop): closing it here
        # too could close a newer pipe that reused the descriptor number.
        child.process.stdout = None
        workers.append(Worker(child, reader, transport))
    for worker in workers:
        words = await worker.receive(START_TIMEOUT_S)
        if words != ["ready"]:
            raise RuntimeError(f"{worker.child.name} said {words!r}, not ready")


async def stop_workers(children: Children, workers: Sequence[Worker]) -> None:
    for worker in workers:
        if worker.child.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, ValueError):
                worker.send("quit")
    deadline = time.monotonic() + 5.0
    for worker in workers:
        # Blocking is fine here: nothing else runs while the workers wind down.
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.child.process.wait(max(0.0, deadline - time.monotonic()))
        worker.transport.close()
    children.stop([w.child for w in workers])


async def clock_check(workers: Sequence[Worker], pings: int = 20) -> dict[str, Any]:
    """Check each worker's time.monotonic() falls between the client's send and receive.

    CLOCK_MONOTONIC is system-wide on Linux; this guards the cross-process subtraction. Also
    reports the pipe's one-way times (client -> worker, worker -> client) as a by-product.
    """
    there: list[float] = []
    back: list[float] = []
    for worker in workers:
        for _ in range(pings):
            before = time.monotonic()
            worker.send("ping")
            words = await worker.receive(ROUND_TIMEOUT_S)
            after = time.monotonic()
            if len(words) != 2 or words[0] != "pong":
                raise RuntimeError(f"{worker.child.name} said {words!r}, not pong")
            stamp = float(words[1])
            if not before <= stamp <= after:
                raise RuntimeError(
                    f"{worker.child.name}'s monotonic clock {stamp} is outside the client's "
                    f"[{before}, {after}]: cross-process times cannot be compared"
                )
            there.append(ms(stamp - before))
            back.append(ms(after - stamp))
    return {
        "pings": len(there),
        "ordered": True,
        "client_to_worker_ms": summary(there),
        "worker_to_client_ms": summary(back),
    }


# --- sidecars: `revocast verifier` processes ------------------------------------------------


async def start_sidecars(
    children: Children, env: dict[str, str], count: int, sidecars: list[Child]
) -> None:
    """Start ``count`` sidecars into ``sidecars`` (so the caller can stop a partial start)."""
    started = []
    for index in range(count):
        port = free_port()
        args = [sys.executable, "-m", "revocast", "verifier", "--port", str(port)]
        child = children.spawn(
            f"sidecar-{count}-{index}", [*args, "--log-level", "warning"], env, pipes=False
        )
        sidecars.append(child)
        started.append((child, f"http://127.0.0.1:{port}/readyz"))
    for child, url in started:
        await wait_http_ok(url, child)
