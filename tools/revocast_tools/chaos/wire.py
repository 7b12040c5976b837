"""A minimal keep-alive HTTP/1.1 GET client for the probes' hot path.

Measured on this 2-core host against one sidecar: httpx sustains about 860
``/verify`` requests/s (410/s with 16 concurrent requests), this client about
3,500/s. The harness shares the CPUs with the verifiers it measures, so its own
cost per probe distorts staleness and latency; httpx stays for everything else.
Only what a uvicorn answer needs: a status line, headers, and a body framed by
Content-Length or chunked encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

MAX_HEAD_BYTES = 16 * 1024


class WireError(Exception):
    """No (complete) answer: the connection failed, closed, timed out or spoke nonsense."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.writer.transport.abort()


_FAILURES = (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
             TimeoutError, ValueError)  # fmt: skip


class WirePool:
    """Up to ``size`` keep-alive connections to one host; each carries one request at a time.

    A GET that fails on a reused connection (the server may have closed it while
    idle) is sent once more on a new one; idle connections older than
    ``IDLE_S`` (under uvicorn's 5 s keep-alive) are not reused.
    """

    IDLE_S = 4.0

    def __init__(self, host: str, port: int, size: int = 4, timeout_s: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._gate = asyncio.Semaphore(size)

    async def get(self, path: str, headers: Mapping[str, str]) -> Answer:
        async with self._gate:
            reused = self._take_idle()
            if reused is not None:
                try:
                    return await self._send(reused, path, headers)
                except WireError:
                    pass  # stale keep-alive connection: one more try on a fresh one
            return await self._send(None, path, headers)

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < self.IDLE_S:
                return connection
            connection.close()
        return None

    async def _send(
        self, connection: _Connection | None, path: str, headers: Mapping[str, str]
    ) -> Answer:
        try:
            async with asyncio.timeout(self.timeout_s):
                if connection is None:
                    connection = _Connection(*await asyncio.open_connection(self.host, self.port))
                answer, keep = await _exchange(connection, self.host, path, headers)
        except _FAILURES as exc:
            if connection is not None:
                connection.close()
            raise WireError(f"{type(exc).__name__}: {exc}") from None
        except BaseException:  # cancelled mid-exchange: the connection is in an unknown state
            if connection is not None:
                connection.close()
            raise
        if keep:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


async def _exchange(
    connection: _Connection, host: str, path: str, headers: Mapping[str, str]
) -> tuple[Answer, bool]:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    connection.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await connection.writer.drain()
    head = await connection.reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("response head too large")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = status_line.split(" ", 2)
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1 answer: {status_line!r}")
    fields: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = await _chunked(connection.reader)
    else:
        body = await connection.reader.readexactly(int(fields.get("content-length", "0")))
    keep = fields.get("connection", "").lower() != "close"
    return Answer(int(status), fields, body), keep


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            with contextlib.suppress(asyncio.IncompleteReadError):
                await reader.readuntil(b"\r\n")  # no trailers expected
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
