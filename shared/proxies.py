"""Whose forwarded headers count: one rule for the issuer and the sidecar.

A peer in ``REVOCAST_TRUSTED_PROXIES`` may say what its client's request was: for the
issuer, who the client is (``X-Forwarded-For``) and the scheme it used
(``X-Forwarded-Proto``); for the sidecar, the method and origin of the request being
authorized (``revocast.verifier.forwarded``). Anyone else's forwarded headers are ignored,
so no client picks the address it is throttled by. The peer must be the TCP connection's:
``revocast.cli.serving`` runs uvicorn with ``proxy_headers=False``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Hops of X-Forwarded-For walked at most: a chain of trusted proxies is never this long, and
# a header stuffed with trusted-looking entries costs no more than this.
MAX_HOPS = 16


def parse_address(text: str) -> Address | None:
    """An address as peers and proxies write it (bare, ``1.2.3.4:port``, ``[v6]:port``;
    an IPv4-mapped IPv6 address as the IPv4 one), or None for anything else."""
    text = text.strip()
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The peers whose forwarded headers count."""

    def __init__(self, proxies: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(proxy, strict=False) for proxy in proxies
        )

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def trust(self, scope: Scope) -> bool:
        """Is the connection's peer a trusted proxy?"""
        client = scope.get("client")
        return client is not None and self.trusts(parse_address(str(client[0])))

    def client_address(self, scope: Scope) -> str:
        """The client's address: the peer's, or, if the peer is a trusted proxy, the last
        address in ``X-Forwarded-For`` that is not one. Each entry was appended by the hop
        after it, so walking from the right believes only what trusted proxies wrote; an
        entry that is no address stops the walk at the proxy that wrote it."""
        client = scope.get("client")
        if not client:
            return ""
        peer = parse_address(str(client[0]))
        if peer is None or not self.trusts(peer):
            return str(client[0])
        said = b",".join(value for name, value in scope["headers"] if name == b"x-forwarded-for")
        nearest: Address = peer
        for hop in reversed(said.decode("latin-1").split(",")[-MAX_HOPS:]):
            address = parse_address(hop)
            if address is None:
                break
            nearest = address
            if not self.trusts(address):
                break
        return str(nearest)


class ForwardedClient:
    """ASGI middleware: the client address and scheme that a trusted proxy says, in
    ``scope["client"]`` and ``scope["scheme"]``; a request from anyone else is left as
    it came, whatever its headers say."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.proxies.trust(scope):
            address = self.proxies.client_address(scope)
            scope = dict(scope, client=(address, 0))
            protos = [value for name, value in scope["headers"] if name == b"x-forwarded-proto"]
            if len(protos) == 1 and protos[0] in (b"http", b"https"):
                secure = protos[0] == b"https"
                if scope["type"] == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = "https" if secure else "http"
        await self.app(scope, receive, send)
