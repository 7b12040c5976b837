"""Where SSF push delivery may connect, decided on addresses, not on URLs.

A receiver names its push endpoint and the ``Authorization`` header sent with every SET, so
an unchecked endpoint would make the issuer POST the receiver's bytes to whatever the issuer
can reach: Redis on 127.0.0.1:6379, a cloud metadata service on 169.254.169.254, the issuer
itself. So the issuer connects only to global unicast addresses that are not its own:
loopback, link-local, private, shared (100.64/10), reserved, unspecified and multicast
addresses are refused, and so are IPv6 forms that carry such an IPv4 address (mapped,
NAT64, 6to4), and any address this host owns (one it can bind to). An operator may allow
networks (``REVOCAST_SSF_ALLOWED_NETWORKS``): an address in one of them is allowed, whatever
it is.

The check runs when a stream is created (the URL's host resolved: decimal, hex and octal
IPv4 forms resolve the way a connection would), and again on every connection: the
``GuardedBackend`` under the push client resolves the name itself, checks every address,
and connects to the checked address, never to the name. A name whose answer changes between
the two (DNS rebinding) gains nothing. A name with any refused address is refused whole.
Proxies from the environment are not used (``trust_env=False``): through a proxy, the
address the issuer connects to says nothing about where the SET goes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import typing
from dataclasses import dataclass

import httpcore
import httpx

from revocast.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are IPv4
RESOLVE_TIMEOUT_S = 5.0


class RefusedTarget(Exception):
    """The endpoint's host is not a place push delivery may connect to; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which addresses push delivery may connect to (see the module docstring)."""

    allowed: tuple[Network, ...] = ()
    issuer_host: str = ""  # REVOCAST_ISSUER's host, if it is a URL: the issuer itself

    @classmethod
    def from_settings(cls, settings: Settings) -> TargetPolicy:
        allowed = tuple(ipaddress.ip_network(net, strict=False)
                        for net in settings.ssf.ssf_allowed_networks)  # fmt: skip
        try:
            host = httpx.URL(settings.tokens.issuer).host if "://" in settings.tokens.issuer else ""
        except httpx.InvalidURL:
            host = ""
        return cls(allowed, host.lower())

    def refusal(self, address: Address) -> str | None:
        """Why ``address`` may not be connected to, or None when it may."""
        candidates = [address] + [inner for inner in [_embedded_ipv4(address)] if inner]
        if any(candidate in net for candidate in candidates for net in self.allowed):
            return None
        for candidate in candidates:
            if candidate.is_loopback:
                return "a loopback address"
            if candidate.is_link_local:
                return "a link-local address"
            if candidate.is_multicast:
                return "a multicast address"
            if candidate.is_unspecified or candidate.is_reserved:
                return "a reserved address"
            if not candidate.is_global:
                return "a private address"
        if _owned(address):
            return "an address of the issuer's own host"
        return None

    async def resolve(self, host: str, port: int, timeout_s: float | None = None) -> list[str]:
        """Every address of ``host``, each allowed; RefusedTarget if any is not, or if the name
        does not resolve."""
        if self.issuer_host and host.lower().rstrip(".") == self.issuer_host:
            raise RefusedTarget(f"{host[:100]} is the issuer itself")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s or RESOLVE_TIMEOUT_S):
                found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, TimeoutError):
            raise RefusedTarget(f"{host[:100]} does not resolve") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        for text in addresses:
            reason = self.refusal(ipaddress.ip_address(text.partition("%")[0]))
            if reason is not None:
                raise RefusedTarget(f"{host[:100]} resolves to {text}, {reason}")
        if not addresses:
            raise RefusedTarget(f"{host[:100]} does not resolve")
        return addresses


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to (mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _owned(address: Address) -> bool:
    """Whether this host has ``address``: only then can a socket be bound to it."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows, by
    address: the name is resolved here once per connection, and checked."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore names it so)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.resolve(host, port, timeout)
        except RefusedTarget as exc:
            raise httpcore.ConnectError(f"refused push target: {exc}") from None
        failure: Exception = httpcore.ConnectError(f"no address of {host} answered")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore names it so)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a unix socket is never a push target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a ``GuardedBackend``, with no proxy from the environment."""

    def __init__(self, policy: TargetPolicy, *, max_connections: int) -> None:
        super().__init__(trust_env=False)
        context: ssl.SSLContext = httpx.create_ssl_context()
        # httpx takes no network backend; its pool is replaced by one that has ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,  # seconds, httpx's default
            network_backend=GuardedBackend(policy),
        )


def push_client(
    policy: TargetPolicy, *, max_connections: int, timeout_s: float
) -> httpx.AsyncClient:
    """The client push delivery posts with: guarded connections, no redirect followed (a 3xx
    is an answer, retried later), no proxy from the environment (``trust_env=False``: httpx
    would route around the transport through one)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, max_connections=max_connections),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )
