"""Count the Redis round trips a request makes, at the socket, against a real server.

Every request a connection sends (a command, a pipeline, a script) opens an interval that
its replies close. Intervals that overlap were awaited together (``asyncio.gather``), so the
round trips one request waits for one after another are the groups of overlapping
intervals; ``sends`` counts every request. Only the work of the recorded request counts: the
recorder rides in a context variable, which the request's tasks inherit, so the issuer's
background loops (heartbeat, presence, its verifier's reads) are left out. A new
connection's set-up (HELLO, CLIENT SETNAME, READONLY, Sentinel's lookup) is once per
connection, not per request: it is listed apart, and its time belongs to the command that
waited for it.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import SentinelManagedConnection
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class Recording:
    """The intervals [sent, last reply] of one request's Redis traffic."""

    intervals: list[list[float]] = field(default_factory=list)
    open_: dict[int, list[float]] = field(default_factory=dict)  # connection id -> interval
    commands: list[str] = field(default_factory=list)  # each send's first command, in order
    handshakes: list[str] = field(default_factory=list)  # a new connection's, not counted
    setting_up: dict[int, float] = field(default_factory=dict)  # connection id -> since

    def sent(self, connection: int, name: str) -> None:
        now = time.perf_counter()
        if name in HANDSHAKE:  # the command that follows waited for it from the start
            self.handshakes.append(name)
            self.setting_up.setdefault(connection, now)
            return
        interval = [self.setting_up.pop(connection, now), now]
        self.intervals.append(interval)
        self.open_[connection] = interval
        self.commands.append(name)

    @property
    def round_trips(self) -> int:
        """Groups of overlapping intervals: the round trips awaited one after another."""
        groups, end = 0, -1.0
        for start, stop in sorted(self.intervals):
            if start > end:
                groups += 1
            end = max(end, stop)
        return groups


# A new connection's set-up (SENTINEL: where its primary is, asked per connection).
HANDSHAKE = frozenset({"HELLO", "AUTH", "CLIENT", "SELECT", "READONLY", "SENTINEL"})

_current: contextvars.ContextVar[Recording | None] = contextvars.ContextVar(
    "revocast_round_trips", default=None
)


@contextmanager
def instrumented() -> Iterator[None]:
    """Patch redis-py's connection so recorded requests note their sends and replies."""
    send, read = AbstractConnection.send_packed_command, AbstractConnection.read_response
    connects = {cls: cls.connect for cls in (AbstractConnection, SentinelManagedConnection)}

    def starting(connect: Any) -> Any:
        async def connect_(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            recording = _current.get()
            if recording is not None:  # the outermost (Sentinel's lookup first) sets it
                recording.setting_up.setdefault(id(self), time.perf_counter())
            await connect(self, *args, **kwargs)

        return connect_

    async def send_packed_command(
        self: AbstractConnection, command: Any, *args: Any, **kwargs: Any
    ) -> None:
        recording = _current.get()
        if recording is not None:
            recording.sent(id(self), _name(command))
        await send(self, command, *args, **kwargs)

    async def read_response(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        try:
            return await read(self, *args, **kwargs)
        finally:
            recording = _current.get()
            interval = recording.open_.get(id(self)) if recording is not None else None
            if interval is not None:
                interval[1] = time.perf_counter()

    AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    AbstractConnection.read_response = read_response  # type: ignore[method-assign]
    for cls, connect in connects.items():
        cls.connect = starting(connect)  # type: ignore[method-assign]
    try:
        yield
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        AbstractConnection.read_response = read  # type: ignore[method-assign]
        for cls, connect in connects.items():
            cls.connect = connect  # type: ignore[method-assign]


def _name(packed: Any) -> str:
    """The first command's name in a packed request (RESP: ``*N $len NAME ...``)."""
    head = b"".join(packed[:2]) if isinstance(packed, list) else bytes(packed)
    parts = head.split(b"\r\n")
    return parts[2].decode(errors="replace").upper() if len(parts) > 2 else "?"


class Recorder:
    """ASGI middleware: each HTTP request's Redis traffic, by path, the latest one kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last: dict[str, Recording] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recording = Recording()
        token = _current.set(recording)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
            self.last[scope["path"]] = recording
