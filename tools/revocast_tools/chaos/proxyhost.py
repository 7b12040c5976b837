"""TcpProxies on an event loop of their own, so the driver's load cannot stall a verifier's link.

The driver's loop is busy with thousands of HTTP requests; a proxy sharing it
would delay Redis traffic and make verifiers stale for reasons that are the
harness's, not the product's. Fault switches are applied on the proxy thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from revocast_tools.proxy import TcpProxy

T = TypeVar("T")


class ProxyHost:
    """A thread running an event loop that owns every proxy."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxies")
        self._thread.daemon = True
        self.proxies: list[RemoteProxy] = []

    def start(self) -> None:
        self._thread.start()

    def add(self, target_port: int) -> RemoteProxy:
        async def make() -> TcpProxy:
            proxy = TcpProxy(target_port)
            await proxy.start()
            return proxy

        remote = RemoteProxy(self, self.run(make()))
        self.proxies.append(remote)
        return remote

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.run(call())

    def stop(self) -> None:
        if not self._thread.is_alive():
            self._loop.close()
            return
        for remote in self.proxies:
            self.run(remote.proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class RemoteProxy:
    """A TcpProxy driven from another thread; each call returns once applied."""

    def __init__(self, host: ProxyHost, proxy: TcpProxy) -> None:
        self._host = host
        self.proxy = proxy

    @property
    def url(self) -> str:
        return self.proxy.url

    def cut(self) -> None:
        self._host.call(self.proxy.cut)

    def blackhole(self) -> None:
        self._host.call(self.proxy.blackhole)

    def delay(self, seconds: float) -> None:
        self._host.call(lambda: self.proxy.delay(seconds))

    def restore(self) -> None:
        self._host.call(self.proxy.restore)
