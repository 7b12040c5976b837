"""Run an ASGI app on a real uvicorn server inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import uvicorn
from starlette.types import ASGIApp

from revocast.http_protocol import uvicorn_options
from revocast.settings import DEFAULT_HEADER_BYTES
from revocast_tools.redis_server import free_port


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp, port: int | None = None, max_header_bytes: int = DEFAULT_HEADER_BYTES
) -> AsyncIterator[str]:
    """Yield the base URL while uvicorn serves ``app`` (lifespan included) on ``port`` or a
    free one, with the HTTP protocol and head bound the services run with."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
        proxy_headers=False,  # as `revocast verifier` runs: the peer is the connection's
        **uvicorn_options(max_header_bytes),
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited during start-up")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 2.0, every_s: float = 0.001
) -> float:
    """Wait until ``check`` is true; return the seconds it took, fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return loop.time() - start
        if loop.time() - start > timeout_s:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(every_s)
