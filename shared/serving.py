"""Run a service under uvicorn, with its metrics on the public port or on their own."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.applications import Starlette

from revocast.metrics_app import metrics_app


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    metrics: tuple[Starlette, int] | None = None,
    metrics_host: str = "127.0.0.1",
    **options: Any,
) -> None:
    """Serve ``app`` (an ASGI app, or a factory's import path); with ``metrics`` (the
    Starlette app that holds the registry, and a port), also its ``/metrics`` there."""
    if metrics is None:
        # No access log: a line per request costs ~15% of throughput; the metrics count them.
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, **options)
        return
    main = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, **options
    )
    side = uvicorn.Config(
        metrics_app(metrics[0]),
        host=metrics_host,
        port=metrics[1],
        log_level=log_level,
        lifespan="off",
        access_log=False,
    )
    servers = [uvicorn.Server(main), uvicorn.Server(side)]

    async def both() -> None:
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:  # one stopped (Ctrl-C, or a port in use): stop the other
            server.should_exit = True
        await asyncio.gather(*tasks)

    asyncio.run(both())
