"""SSF push delivery is no SSRF (issue 19, point 7).

Before: a receiver could create push streams to 127.0.0.1, 2130706433 (127.0.0.1 in decimal),
169.254.169.254 or the loopback Redis port, and the issuer POSTed each SET there with the receiver's
``Authorization`` header. Now such endpoints are refused when the stream is created (after
resolving the host) and again at every connection (a stream stored with such a target, or a
name that resolves elsewhere later, reaches nothing), unless an operator allows the network
(``REVOCAST_SSF_ALLOWED_NETWORKS``). The listeners here are real servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from revocast.errors import SettingsError
from revocast.issuer import create_app
from revocast.issuer.ssf_targets import RefusedTarget, TargetPolicy, _owned, push_client
from revocast.settings import Settings
from tests.conftest import Issuer, bearer
from tests.support.servers import eventually, serve

PUSH = "urn:ietf:rfc:8935"


class Listener:
    """A receiver on 127.0.0.1 that keeps every Authorization header it is sent."""

    def __init__(self) -> None:
        self.hits: list[str | None] = []

    def app(self) -> Starlette:
        async def events(request: Request) -> Response:
            self.hits.append(request.headers.get("authorization"))
            return Response(status_code=202)

        return Starlette(routes=[Route("/e", events, methods=["POST"])])


@pytest.fixture
async def listener() -> AsyncIterator[tuple[Listener, str]]:
    found = Listener()
    async with serve(found.app()) as url:
        yield found, url


async def push_stream(issuer: Issuer, auth: dict[str, str], url: str) -> httpx.Response:
    delivery = {"method": PUSH, "endpoint_url": url, "authorization_header": "Bearer attacker"}
    return await issuer.http.post("/ssf/stream", headers=auth, json={"delivery": delivery})


async def ssf_caller(issuer: Issuer) -> dict[str, str]:
    await issuer.add_user("receiver", ["ssf"])
    return bearer(await issuer.login("receiver"))


def refused_urls(port: str, redis_port: int) -> list[str]:
    """``port`` is a local listener's; ``redis_port`` the test session's own Redis (the issue's
    attack aimed at the machine's shared Redis on its default port, which tests never touch)."""
    return [
        f"http://127.0.0.1:{port}/e",
        f"http://2130706433:{port}/e",  # 127.0.0.1 in decimal
        f"http://0x7f.1:{port}/e",  # and in hex, shortened
        f"http://0177.0.0.1:{port}/e",  # and in octal
        f"http://localhost:{port}/e",
        f"http://0.0.0.0:{port}/e",
        f"http://[::1]:{port}/e",
        f"http://[::ffff:127.0.0.1]:{port}/e",
        f"http://127.0.0.1:{redis_port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # shared address space
        "http://[fd00::1]/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://nowhere.invalid/",  # RFC 6761: never resolves
    ]


async def test_private_and_local_targets_are_refused_and_nothing_is_posted(
    issuer: Issuer, listener: tuple[Listener, str], caplog: pytest.LogCaptureFixture
) -> None:
    found, url = listener
    auth = await ssf_caller(issuer)
    await issuer.add_user("alice")
    targets = refused_urls(
        url.rsplit(":", 1)[1], urlsplit(issuer.settings.redis.redis_url).port or 0
    )
    with caplog.at_level(logging.INFO, logger="revocast.issuer"):
        replies = [await push_stream(issuer, auth, target) for target in targets]
    for target, reply in zip(targets, replies, strict=True):
        assert (reply.status_code, reply.json()["error"]) == (400, "invalid_request"), target
        assert "endpoint_url" in reply.json()["detail"], target
    # One line per refusal, naming the caller and the address; never the Authorization.
    assert caplog.text.count("ssf stream refused to") == len(replies) - 1  # octal: no URL
    assert "resolves to 127.0.0.1, a loopback address" in caplog.text
    assert "attacker" not in caplog.text
    decimal = await push_stream(issuer, auth, "http://2130706433/e")
    assert "resolves to 127.0.0.1, a loopback address" in decimal.json()["detail"]
    assert "REVOCAST_SSF_ALLOWED_NETWORKS" in decimal.json()["detail"]
    assert await issuer.ctx.store.signals.ssf_streams() == {}  # nothing written
    await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
    await asyncio.sleep(1.0)  # five delivery rounds
    assert found.hits == []


async def test_the_issuers_own_name_is_refused(settings: Settings, redis: Redis) -> None:
    named = settings.with_overrides(issuer="https://auth.example.com")
    app = create_app(named)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        auth = await ssf_caller(Issuer(url, http, named, app))
        reply = await push_stream(Issuer(url, http, named, app), auth,
                                  "https://AUTH.example.com./ssf/verify")  # fmt: skip
    assert reply.status_code == 400
    assert "is the issuer itself" in reply.json()["detail"]


async def test_a_stored_stream_to_a_local_target_reaches_nothing(
    issuer: Issuer, listener: tuple[Listener, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The check at connection time: a stream stored with a target that now resolves to
    loopback (made by an earlier version, or a name rebound since) is never posted to."""
    found, url = listener
    port = url.rsplit(":", 1)[1]
    for target in (f"{url}/e", f"http://localhost:{port}/e", f"http://2130706433:{port}/e"):
        await store_push_stream(issuer, target)
    await issuer.add_user("alice")
    with caplog.at_level(logging.WARNING, logger="revocast.issuer"):
        await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
        await eventually(lambda: caplog.text.count("refused push target") >= 3, timeout_s=5)
    assert found.hits == []
    assert "Bearer a" not in caplog.text  # the receiver's Authorization is never logged


async def store_push_stream(issuer: Issuer, url: str) -> str:
    """A push stream written straight to Redis, as ssf.create_stream would without checks."""
    stream_id = f"ssf_{secrets.token_urlsafe(12)}"
    config: dict[str, Any] = {
        "stream_id": stream_id, "owner": "u", "iss": issuer.settings.tokens.issuer,
        "aud": stream_id,
        "delivery": {"method": PUSH, "endpoint_url": url, "authorization_header": "Bearer a"},
        "events_supported": [], "events_requested": [],
        "events_delivered": ["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],
        "description": "",
    }  # fmt: skip
    ends = {}
    for stream in issuer.ctx.store.keys.streams():
        ends[stream.name] = await issuer.ctx.store.streams.last_entry(stream.name) or "0-0"
    added = await issuer.ctx.store.signals.add_ssf_stream(
        stream_id, json.dumps(config), ends, owner="u", max_streams=100, max_per_owner=10
    )
    assert added == "added"
    return stream_id


async def test_an_allowed_network_is_delivered_to(
    settings: Settings, redis: Redis, listener: tuple[Listener, str]
) -> None:
    found, url = listener
    allowed = settings.with_overrides(ssf_allowed_networks=("127.0.0.0/8",))
    app = create_app(allowed)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
        issuer = Issuer(base, http, allowed, app)
        auth = await ssf_caller(issuer)
        await issuer.add_user("alice")
        created = await push_stream(issuer, auth, f"{url}/e")
        assert created.status_code == 201, created.text
        await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
        await eventually(lambda: len(found.hits) == 1, timeout_s=5, every_s=0.05)
    assert found.hits == ["Bearer attacker"]


async def test_the_push_client_checks_every_connection(
    listener: tuple[Listener, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard sits under httpx, on every connection, and no proxy routes around it."""
    found, url = listener
    port = url.rsplit(":", 1)[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")  # would take every request
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{port}")
    async with push_client(TargetPolicy(), max_connections=4, timeout_s=5) as client:
        for target in (f"{url}/e", f"http://localhost:{port}/e", f"http://2130706433:{port}/e"):
            with pytest.raises(httpx.ConnectError, match="refused push target"):
                await client.post(target, content=b"x")
    allowed = TargetPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"),))
    async with push_client(allowed, max_connections=4, timeout_s=5) as client:
        assert (await client.post(f"{url}/e", content=b"x")).status_code == 202
        redirect = Starlette(routes=[Route("/r", lambda _: RedirectResponse(f"{url}/e", 307),
                                           methods=["POST"])])  # fmt: skip
        async with serve(redirect) as other:
            assert (await client.post(f"{other}/r", content=b"x")).status_code == 307
    assert found.hits == [None]  # the allowed post, and no redirect followed


async def test_policy_decisions() -> None:
    policy = TargetPolicy()
    for text, reason in [("127.0.0.1", "loopback"), ("::1", "loopback"),
                         ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
                         ("10.1.2.3", "private"), ("fd00::1", "private"),
                         ("100.64.0.1", "private"), ("224.0.0.1", "multicast"),
                         ("ff0e::1", "multicast"), ("0.0.0.0", "reserved"),
                         ("::ffff:127.0.0.1", "loopback"), ("64:ff9b::a01:203", "private"),
                         ("2002:7f00:1::1", "loopback")]:  # fmt: skip
        refusal = policy.refusal(ipaddress.ip_address(text))
        assert refusal is not None, text
        assert reason in refusal or "reserved" in refusal, (text, refusal)
    for text in ("8.8.8.8", "2606:4700:4700::1111"):
        assert policy.refusal(ipaddress.ip_address(text)) is None, text
    allowed = TargetPolicy(allowed=(ipaddress.ip_network("10.1.0.0/16"),))
    assert allowed.refusal(ipaddress.ip_address("10.1.2.3")) is None
    assert allowed.refusal(ipaddress.ip_address("10.2.0.1")) is not None
    assert _owned(ipaddress.ip_address("127.0.0.1"))  # this host's: it can bind there
    assert not _owned(ipaddress.ip_address("192.0.2.1"))  # TEST-NET-1: nobody's
    with pytest.raises(RefusedTarget, match=r"resolves to 127\.0\.0\.1"):
        await policy.resolve("2130706433", 80)


def test_allowed_networks_are_checked_at_start() -> None:
    assert Settings.from_env({"REVOCAST_SSF_ALLOWED_NETWORKS": "10.1.0.0/16, fd00::/8"}) \
        .ssf.ssf_allowed_networks == ("10.1.0.0/16", "fd00::/8")  # fmt: skip
    with pytest.raises(SettingsError, match="REVOCAST_SSF_ALLOWED_NETWORKS"):
        Settings.from_env({"REVOCAST_SSF_ALLOWED_NETWORKS": "10.1.0.0/16,intranet"})
