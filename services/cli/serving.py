"""Run a service under uvicorn, with its metrics on the public port or on one of their own."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette

from revocast.errors import SettingsError
from revocast.http_protocol import uvicorn_options
from revocast.metrics_app import metrics_app

# On shutdown, open connections get this long to finish: a client that holds one open must
# not keep the process (and the lifespan's clean stop) waiting.
GRACEFUL_SHUTDOWN_S = 5


def _print_tasks() -> None:
    """SIGUSR1: every task's stack on stderr, to see what a service that will not stop
    waits for."""
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound now, so that a port in use, or a host that is not this machine's, is
    a one-line error before anything starts."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError):
        raise SettingsError(
            f"cannot listen on {host}: no such address: give --host an address of this machine "
            "(127.0.0.1, 0.0.0.0, ::) or a name that resolves to one"
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it. uvloop does not set it on connections of a socket it
    # was handed, and without it every keep-alive answer waited ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            what = "pick another port, or stop what uses this one"
        elif exc.errno == errno.EACCES:
            what = "ports below 1024 need privileges: pick a port from 1024 up"
        else:  # EADDRNOTAVAIL and the like: the address is not this machine's
            what = "give --host an address of this machine (127.0.0.1, 0.0.0.0, ::)"
        raise SettingsError(f"cannot listen on {host}:{port} ({exc.strerror}): {what}") from None
    return sock


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    max_header_bytes: int,
    metrics: tuple[Starlette, int] | None = None,
    metrics_host: str = "127.0.0.1",
    **options: Any,
) -> None:
    """Serve ``app``; with ``metrics`` (the Starlette app that holds the registry, and a
    port), also its ``/metrics`` there. Several workers (``workers=N`` with a factory's
    import path as ``app``) are uvicorn's own supervisor's, with metrics on the public port.
    Every port refuses a request head over ``max_header_bytes`` (``revocast.http_protocol``)."""
    # No access log: a line per request costs ~15% of throughput; the metrics count them.
    # No proxy headers: uvicorn would take X-Forwarded-For from any local peer; the peer stays
    # the connection's, and only REVOCAST_TRUSTED_PROXIES may say otherwise (revocast.proxies).
    common: dict[str, Any] = {"log_level": log_level, "access_log": False,
                              "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
                              "proxy_headers": False,
                              **uvicorn_options(max_header_bytes)}  # fmt: skip
    if options.get("workers", 1) > 1:
        uvicorn.run(app, host=host, port=port, **common, **options)
        return
    bound = [(uvicorn.Config(app, host=host, port=port, **common, **options),
              listening_socket(host, port))]  # fmt: skip
    if metrics is not None:
        side = uvicorn.Config(metrics_app(metrics[0]), host=metrics_host, port=metrics[1],
                              lifespan="off", **common)  # fmt: skip
        bound.append((side, listening_socket(metrics_host, metrics[1])))
    servers = [uvicorn.Server(config) for config, _ in bound]

    async def run_all() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _print_tasks)
        tasks = [asyncio.create_task(server.serve(sockets=[sock]))
                 for server, (_, sock) in zip(servers, bound, strict=True)]  # fmt: skip
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:  # one stopped (a signal, a failed start): stop the others
            server.should_exit = True
        await asyncio.gather(*tasks)

    asyncio.run(run_all())
    if not servers[0].started:
        raise SettingsError("the service did not start: its log above says why")
