"""Property tests (hypothesis) of the SSF transmitter's HTTP surface (issue 19): stream
management, verification, status, poll and the public documents, under random bodies, media
types, credentials and stream ids; and push endpoints aimed at local and private addresses.

The harness is test_fuzz.py's (fixed budgets, the same examples every run, one issuer per
test on the session loop). The stage holds a poll stream with a verification SET queued, so a
well-formed poll answers at once instead of long-polling (RFC 8936's default): the fuzz cannot
guess the SET's ``jti`` to acknowledge it away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from redis.asyncio import Redis

from revocast.issuer import create_app
from revocast.settings import Settings
from tests.conftest import Issuer
from tests.security.test_fuzz import (
    B64URL,
    JSON,
    OTHER_MEDIA_TYPES,
    Auth,
    Call,
    Stage,
    as_json,
    authorizations,
    bodies,
    budget,
    check_reply,
    path_ids,
    weighted,
)
from tests.support.servers import serve

STREAM = "{target}"  # the stage's poll stream id, in paths and bodies
POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"


@dataclass(frozen=True)
class SsfRoute:
    method: str
    path: str
    media_type: str | None
    body: st.SearchStrategy[bytes]


# Hosts push delivery must refuse, none of which needs DNS: literal addresses (decimal and hex
# IPv4 forms, IPv6 forms carrying IPv4) and localhost (from /etc/hosts).
REFUSED_HOSTS = [
    "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0x7f.1", "0", "0.0.0.0", "localhost",
    "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::]", "169.254.169.254", "[fe80::1]",
    "10.0.0.1", "172.16.5.4", "192.168.0.1", "100.64.0.1", "[fd00::1]", "224.0.0.1",
    "[ff02::1]", "240.0.0.1", "255.255.255.255", "192.0.2.1", "[64:ff9b::a00:1]",
    "[2002:7f00:1::]", "167772161",  # 10.0.0.1 in decimal
]  # fmt: skip
ports = st.none() | st.sampled_from([80, 443, 6379, 8000, 9000]) | st.integers(1, 65535)
refused_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}{host}{'' if port is None else f':{port}'}{path}",
    st.sampled_from(["http://", "https://"]),
    st.sampled_from(REFUSED_HOSTS),
    ports,
    st.sampled_from(["", "/", "/events", "/latest/meta-data/", "/?a=b"]),
)
endpoint_urls = (
    refused_urls
    | st.sampled_from(["ftp://x", "http://", "http://[::1", "x"])
    | st.text(max_size=30)
)
texts = st.text(max_size=40) | st.sampled_from(["", "revocast", "https://rp.example"])
events_requested = st.lists(
    st.sampled_from(["https://schemas.openid.net/secevent/caep/event-type/session-revoked"])
    | st.text(max_size=300),
    max_size=20,
)
deliveries = st.fixed_dictionaries(
    {"method": st.sampled_from([POLL, PUSH, "", "email"])},
    optional={"endpoint_url": endpoint_urls, "authorization_header": texts | st.integers()},
)
stream_bodies = as_json(
    st.fixed_dictionaries(
        {},
        optional={
            "delivery": deliveries,
            "aud": texts | st.text(min_size=250, max_size=300),
            "events_requested": events_requested,
            "description": st.text(max_size=600),
        },
    )
)
stream_ids = st.sampled_from([STREAM]) | path_ids
other_ids = st.text(alphabet=B64URL, min_size=1, max_size=70) | st.text(max_size=20).map(
    lambda text: quote(text, safe="")
)  # never the stage's stream
verify_bodies = as_json(
    st.fixed_dictionaries({"stream_id": stream_ids}, optional={"state": st.text(max_size=300)})
)
poll_bodies = as_json(
    st.fixed_dictionaries(
        {"returnImmediately": st.just(True)},
        optional={
            "ack": st.lists(st.text(max_size=30), max_size=20),
            "maxEvents": st.integers(-5, 2000),
            "setErrs": st.dictionaries(st.text(max_size=20), st.dictionaries(texts, texts)),
        },
    )
)
NO_BODY = st.just(b"")
ROUTES = {
    "create": SsfRoute("POST", "/ssf/stream", JSON, stream_bodies),
    "read": SsfRoute("GET", "/ssf/stream?stream_id={id}", None, NO_BODY),
    "delete": SsfRoute("DELETE", "/ssf/stream?stream_id={other}", None, NO_BODY),
    "status": SsfRoute("GET", "/ssf/status?stream_id={id}", None, NO_BODY),
    "verify": SsfRoute("POST", "/ssf/verify", JSON, verify_bodies),
    "poll": SsfRoute("POST", "/ssf/poll/{id}", JSON, poll_bodies),
    "jwks": SsfRoute("GET", "/ssf/jwks.json", None, NO_BODY),
    "configuration": SsfRoute("GET", "/.well-known/ssf-configuration", None, NO_BODY),
}


@st.composite
def ssf_calls(draw: st.DrawFn, names: tuple[str, ...] = tuple(ROUTES)) -> Call:
    route = ROUTES[draw(st.sampled_from(names))]
    # Any stream id, the stage's stream often; never the stage's stream for a delete, so
    # that polls keep finding their SET (and answering at once).
    path = route.path.replace("{id}", draw(weighted(st.just(STREAM), path_ids)))
    path = path.replace("{other}", draw(other_ids))
    content_type = None
    body = b""
    if route.media_type is not None:
        content_type = draw(
            weighted(st.just(route.media_type), st.sampled_from(OTHER_MEDIA_TYPES) | st.none())
        )
        body = draw(st.one_of(route.body, bodies))
    auth: Auth = draw(authorizations("admin"))
    return Call(route.method, path, auth, content_type, body)


@dataclass(frozen=True)
class SsfStage:
    stage: Stage
    stream_id: str

    async def send(self, call: Call) -> httpx.Response:
        path = call.path.replace(STREAM, self.stream_id)
        body = call.body.replace(STREAM.encode(), self.stream_id.encode())
        issuer = self.stage.issuer
        return await issuer.http.request(
            call.method, path, content=body, headers=self.stage.headers(call)
        )


@pytest.fixture
async def ssf_stage(settings: Settings, redis: Redis) -> AsyncIterator[SsfStage]:
    """An issuer with an admin ("root", who may receive SSF events), a user ("alice", who may
    not) and root's poll stream holding one verification SET."""
    app = create_app(settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        issuer = Issuer(url, http, settings, app)
        await issuer.add_user("root", ["admin"])
        await issuer.add_user("alice")
        tokens = {
            "admin": (await issuer.login("root"))["access_token"],
            "user": (await issuer.login("alice"))["access_token"],
        }
        root = {"Authorization": f"Bearer {tokens['admin']}"}
        created = await http.post("/ssf/stream", headers=root, json={"aud": "https://rp.example"})
        stream_id = created.json()["stream_id"]
        queued = await http.post("/ssf/verify", headers=root, json={"stream_id": stream_id})
        assert queued.status_code == 204
        yield SsfStage(Stage(issuer, tokens, ""), stream_id)


async def streams(issuer: Issuer) -> dict[str, Any]:
    """Every stream's configuration and queue length: what 'nothing was written' means here
    (the issuer rewrites leases and copies revocations on its own, every 200 ms)."""
    store = issuer.ctx.store
    found = await store.signals.ssf_streams()
    return {stream_id: (config, (await store.signals.ssf_stream(stream_id) or ("", {}, -1))[2])
            for stream_id, config in found.items()}  # fmt: skip


@budget(200)
@given(call=ssf_calls())
async def test_ssf_routes_never_answer_500(ssf_stage: SsfStage, call: Call) -> None:
    """Random bodies (the routes' own fields with values of any type and size, any JSON, random
    bytes, deep nesting, invalid UTF-8) under random media types, credentials and stream ids,
    to every SSF route: every answer is below 500, every error is JSON with an "error"."""
    reply = await ssf_stage.send(call)
    event(f"{call.method} {call.path.split('?')[0][:20]} -> {reply.status_code}")
    check_reply(call, reply)


@budget(80)
@given(call=ssf_calls(("create",)))
async def test_refused_stream_creations_write_nothing(ssf_stage: SsfStage, call: Call) -> None:
    """A POST /ssf/stream answered 4xx adds no stream and queues nothing."""
    issuer = ssf_stage.stage.issuer
    before = await streams(issuer)
    reply = await ssf_stage.send(call)
    event(f"create -> {reply.status_code}")
    check_reply(call, reply)
    if reply.status_code >= 400:
        assert await streams(issuer) == before, (call, reply.text)


@budget(150)
@given(url=refused_urls, header=texts)
async def test_no_push_stream_reaches_a_local_or_private_address(
    ssf_stage: SsfStage, url: str, header: str
) -> None:
    """Whatever the form of a loopback, link-local, private, reserved or multicast address
    (decimal, hex, short, IPv6-mapped, NAT64, 6to4) and whatever port and path, a push stream
    to it is refused with 400 and nothing is written."""
    issuer = ssf_stage.stage.issuer
    before = await streams(issuer)
    delivery = {"method": PUSH, "endpoint_url": url, "authorization_header": header}
    root = {"Authorization": f"Bearer {ssf_stage.stage.tokens['admin']}"}
    reply = await issuer.http.post("/ssf/stream", headers=root, json={"delivery": delivery})
    event(f"{reply.status_code} {reply.json().get('detail', '')[:30]}")
    assert reply.status_code == 400, (url, reply.text)
    assert await streams(issuer) == before
