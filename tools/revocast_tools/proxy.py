"""A TCP proxy that can cut, delay, black-hole and restore a path to Redis, for fault tests."""

from __future__ import annotations

import asyncio
import contextlib
import enum

from revocast_tools.redis_server import free_port


class Mode(enum.Enum):
    FORWARD = "forward"
    CUT = "cut"  # close every connection and refuse new ones
    BLACKHOLE = "blackhole"  # keep connections open but forward nothing
    DELAY = "delay"  # forward everything, each chunk ``delay_s`` late


class TcpProxy:
    """Listens on 127.0.0.1:``port`` and forwards to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode = Mode.FORWARD
        self.delay_s = 0.0
        self._passing = asyncio.Event()
        self._passing.set()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def cut(self) -> None:
        self.mode = Mode.CUT
        self._passing.set()  # release black-holed pipes so they notice the cut
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def blackhole(self) -> None:
        self.mode = Mode.BLACKHOLE
        self._passing.clear()

    def delay(self, seconds: float) -> None:
        self.mode = Mode.DELAY
        self.delay_s = seconds
        self._passing.set()

    def restore(self) -> None:
        self.mode = Mode.FORWARD
        self.delay_s = 0.0
        self._passing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode is Mode.CUT:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await src.read(65536):
                if self.mode is Mode.CUT:
                    break
                await self._passing.wait()
                if self.mode is Mode.DELAY:
                    await asyncio.sleep(self.delay_s)
                dst.write(data)
                await dst.drain()
        dst.transport.abort()
        self._writers.discard(dst)
