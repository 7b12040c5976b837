"""Whose forwarded headers count (``revocast.proxies``): the one rule of issuer and sidecar."""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from revocast.proxies import MAX_HOPS, ForwardedClient, TrustedProxies, parse_address
from revocast.store.sessions.throttle import throttled_as

PROXIES = TrustedProxies(["10.0.0.0/8", "::1"])


def scope(peer: str | None, *headers: tuple[str, str], kind: str = "http") -> Scope:
    return {
        "type": kind,
        "client": None if peer is None else (peer, 5000),
        "scheme": "http" if kind == "http" else "ws",
        "headers": [(name.encode(), value.encode("latin-1")) for name, value in headers],
    }


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        pytest.param("203.0.113.9", ["198.51.100.1"], "203.0.113.9", id="untrusted-peer"),
        pytest.param("10.0.0.1", ["198.51.100.1"], "198.51.100.1", id="trusted-peer"),
        pytest.param("10.0.0.1", [], "10.0.0.1", id="trusted-peer-no-header"),
        pytest.param("10.0.0.1", ["198.51.100.1, 10.0.0.2"], "198.51.100.1", id="chain"),
        pytest.param("10.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1", id="spoofed-left"),
        pytest.param("10.0.0.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1", id="two-lines"),
        pytest.param("10.0.0.1", ["198.51.100.1, unknown"], "10.0.0.1", id="garbage-right"),
        pytest.param("10.0.0.1", ["garbage, 10.0.0.3"], "10.0.0.3", id="garbage-past-proxy"),
        pytest.param("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3", id="all-trusted"),
        pytest.param("10.0.0.1", ["198.51.100.1:4711"], "198.51.100.1", id="ipv4-port"),
        pytest.param("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1", id="ipv6-port"),
        pytest.param("::1", ["2001:db8::1"], "2001:db8::1", id="ipv6-proxy"),
        pytest.param("::ffff:10.0.0.1", ["198.51.100.1"], "198.51.100.1", id="mapped-proxy"),
        pytest.param("testclient", ["198.51.100.1"], "testclient", id="not-an-address"),
    ],
)
def test_the_client_is_the_last_address_no_trusted_proxy_holds(
    peer: str, forwarded: list[str], client: str
) -> None:
    headers = [("x-forwarded-for", value) for value in forwarded]
    assert PROXIES.client_address(scope(peer, *headers)) == client


def test_a_long_chain_of_trusted_looking_hops_is_walked_only_so_far() -> None:
    chain = ", ".join(f"10.0.{i // 250}.{i % 250 + 1}" for i in range(100))
    walked = PROXIES.client_address(scope("10.0.0.1", ("x-forwarded-for", chain)))
    assert walked == chain.split(", ")[-MAX_HOPS]


def test_nobody_is_trusted_by_default() -> None:
    nobody = TrustedProxies([])
    forwarded = scope("127.0.0.1", ("x-forwarded-for", "198.51.100.1"))
    assert not nobody.trust(forwarded)
    assert nobody.client_address(forwarded) == "127.0.0.1"
    assert nobody.client_address(scope(None)) == ""


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:80", "192.0.2.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:80", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:http", None),
        ("[2001:db8::1]x", None),
        ("[2001:db8::1", None),
        ("example.com", None),
        ("", None),
    ],
)
def test_addresses_are_read_as_proxies_write_them(text: str, parsed: str | None) -> None:
    address = parse_address(text)
    assert (None if address is None else str(address)) == parsed


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("", "unknown"),
    ],
)
def test_an_ipv6_client_is_throttled_as_its_64(address: str, counted_as: str) -> None:
    assert throttled_as(address) == counted_as


async def seen_by_the_app(proxies: TrustedProxies, request: Scope) -> Scope:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        pass

    await ForwardedClient(app, proxies)(request, receive, send)
    return seen[0]


async def test_the_middleware_takes_client_and_scheme_from_trusted_proxies_only() -> None:
    said = (("x-forwarded-for", "198.51.100.1"), ("x-forwarded-proto", "https"))
    trusted = await seen_by_the_app(PROXIES, scope("10.0.0.1", *said))
    assert (trusted["client"], trusted["scheme"]) == (("198.51.100.1", 0), "https")
    socket = await seen_by_the_app(PROXIES, scope("10.0.0.1", *said, kind="websocket"))
    assert socket["scheme"] == "wss"
    untrusted = await seen_by_the_app(PROXIES, scope("203.0.113.9", *said))
    assert (untrusted["client"], untrusted["scheme"]) == (("203.0.113.9", 5000), "http")


@pytest.mark.parametrize(
    "protos",
    [["https", "https"], ["https, http"], ["ftp"], ["HTTPS"]],
    ids=["repeated", "list", "other", "upper-case"],
)
async def test_an_unclear_forwarded_scheme_changes_nothing(protos: list[str]) -> None:
    request = scope("10.0.0.1", *(("x-forwarded-proto", proto) for proto in protos))
    assert (await seen_by_the_app(PROXIES, request))["scheme"] == "http"


async def test_other_scopes_pass_untouched() -> None:
    lifespan: Scope = {"type": "lifespan"}
    assert await seen_by_the_app(PROXIES, lifespan) is lifespan
