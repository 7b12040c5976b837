"""SSF tenants (issue 19, point 11): each push stream is delivered on its own, within its own
deadline; one account holds at most its share of the streams; a 204 delivers (RFC 8935).

Before: push delivery was one loop over every stream with httpx's per-step 5 s timeout, so
four black-hole endpoints delayed another receiver's SETs from 0.15 s to 15-20 s, a receiver
answering a byte at a time held the loop for as long as it liked, one account could create
all 100 streams, and a receiver answering 204 was sent the same SET again and again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import jwt as pyjwt
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revocast.errors import SettingsError
from revocast.issuer import create_app, ssf_push
from revocast.settings import Settings
from tests.conftest import Issuer, bearer
from tests.support.servers import eventually, serve

PUSH = "urn:ietf:rfc:8935"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receivers here listen on 127.0.0.1: allowed (tests/test_ssf_targets.py)."""
    return settings.with_overrides(ssf_allowed_networks=("127.0.0.1/32",))


class Receiver:
    """Notes when each SET arrives, by jti; answers ``status``."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.arrived: list[tuple[str, float]] = []

    def app(self) -> Starlette:
        async def events(request: Request) -> Response:
            claims = pyjwt.decode(await request.body(), options={"verify_signature": False})
            self.arrived.append((str(claims["jti"]), time.monotonic()))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/e", events, methods=["POST"])])


class Hole:
    """A TCP server that accepts connections and never answers (a black hole), or answers
    one byte every ``drip_s`` seconds forever (``drip_s`` set)."""

    def __init__(self, drip_s: float | None = None) -> None:
        self.drip_s = drip_s
        self.connections: list[float] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(time.monotonic())
        self._writers.append(writer)
        if self.drip_s is None:
            return  # held open, never answered
        try:
            writer.write(b"HTTP/1.1 202 Accepted\r\nX-Slow: ")
            while True:
                await asyncio.sleep(self.drip_s)
                writer.write(b"x")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


@pytest.fixture
async def hole() -> AsyncIterator[tuple[Hole, str]]:
    found = Hole()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield found, f"http://127.0.0.1:{port}/e"
    found.close()
    server.close()


async def push_stream(issuer: Issuer, name: str, url: str) -> httpx.Response:
    """A push stream to ``url``, created by a new receiver account ``name``."""
    await issuer.add_user(name, ["ssf"])
    auth = bearer(await issuer.login(name))
    asked = {"delivery": {"method": PUSH, "endpoint_url": url}}
    return await issuer.http.post("/ssf/stream", headers=auth, json=asked)


async def test_black_holes_do_not_delay_another_receiver(
    issuer: Issuer, hole: tuple[Hole, str]
) -> None:
    holes, hole_url = hole
    for n in range(4):
        assert (await push_stream(issuer, f"hole{n}", hole_url)).status_code == 201
    receiver = Receiver()
    await issuer.add_user("alice")
    async with serve(receiver.app()) as url:
        assert (await push_stream(issuer, "good", f"{url}/e")).status_code == 201
        delays = []
        for _ in range(3):
            token = (await issuer.login("alice"))["access_token"]
            start, seen = time.monotonic(), len(receiver.arrived)
            await issuer.post_bearer("/v1/logout", token)
            arrived = lambda: len(receiver.arrived) > seen  # noqa: B023, E731 (awaited here)
            await eventually(arrived, timeout_s=30, every_s=0.01)
            delays.append(receiver.arrived[-1][1] - start)
    assert len(holes.connections) >= 4  # the black holes were being posted to meanwhile
    assert max(delays) < 1.5, delays  # about 0.2 s: one copy-and-push round (was 15-20 s)


async def test_a_receiver_that_answers_byte_by_byte_is_cut_off_at_the_deadline(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte every 0.2 s keeps each of httpx's per-step timeouts alive forever; the post's
    own deadline (1 s here, 5 s by default) ends it, and the stream is tried again."""
    monkeypatch.setattr(ssf_push, "POST_DEADLINE_S", 1.0)
    slow = Hole(drip_s=0.2)
    server = await asyncio.start_server(slow.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await push_stream(issuer, "slow", f"http://127.0.0.1:{port}/e")).status_code == 201
        await issuer.add_user("alice")
        await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
        await eventually(lambda: len(slow.connections) >= 2, timeout_s=10, every_s=0.05)
        first, second = slow.connections[:2]
        assert 1.0 <= second - first < 3.0  # the deadline, then a short backoff
    finally:
        slow.close()
        server.close()


async def test_a_204_delivers_the_set(issuer: Issuer) -> None:
    receiver = Receiver(status=204)
    await issuer.add_user("alice")
    async with serve(receiver.app()) as url:
        created = await push_stream(issuer, "r", f"{url}/e")
        assert created.status_code == 201
        for _ in range(3):
            await issuer.post_bearer("/v1/logout", (await issuer.login("alice"))["access_token"])
        await eventually(lambda: len(receiver.arrived) >= 3, timeout_s=5, every_s=0.05)
        await asyncio.sleep(0.6)  # three more rounds: nothing is sent again
    jtis = [jti for jti, _ in receiver.arrived]
    assert len(jtis) == 3
    assert len(set(jtis)) == 3
    found = await issuer.ctx.store.signals.ssf_stream(created.json()["stream_id"])
    assert found is not None
    assert found[2] == 0  # the queue is empty


async def test_one_account_holds_at_most_its_share(issuer: Issuer) -> None:
    await issuer.add_user("greedy", ["ssf"])
    greedy = bearer(await issuer.login("greedy"))

    async def create(auth: dict[str, str]) -> int:
        return (await issuer.http.post("/ssf/stream", headers=auth, json={})).status_code

    codes = await asyncio.gather(*(create(greedy) for _ in range(20)))  # all at once
    assert sorted(codes) == [201] * 10 + [409] * 10
    refused = await issuer.http.post("/ssf/stream", headers=greedy, json={})
    assert refused.json()["error"] == "conflict"
    assert "REVOCAST_SSF_MAX_STREAMS_PER_OWNER" in refused.json()["detail"]
    await issuer.add_user("other", ["ssf"])
    assert await create(bearer(await issuer.login("other"))) == 201  # others are not held up
    # One of greedy's own (the registry's order is a hash's: the first may be other's).
    for one in await issuer.ctx.store.signals.ssf_streams():
        mine = await issuer.http.get(f"/ssf/stream?stream_id={one}", headers=greedy)
        if mine.status_code == 200:
            break
    deleted = await issuer.http.delete(f"/ssf/stream?stream_id={one}", headers=greedy)
    assert deleted.status_code == 204
    assert await create(greedy) == 201


async def test_the_deployment_cap_holds_too(settings: Settings, redis: Redis) -> None:
    """100 streams in all, whoever holds them (a cap of 60 per account here)."""
    wide = settings.with_overrides(ssf_max_streams_per_owner=60)
    app = create_app(wide)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, wide, app)
        callers = []
        for name in ("a", "b"):
            await issuer.add_user(name, ["ssf"])
            callers.append(bearer(await issuer.login(name)))
        codes = [(await http.post("/ssf/stream", headers=callers[n % 2], json={})).status_code
                 for n in range(101)]  # fmt: skip
    assert codes == [201] * 100 + [409]


def test_the_cap_is_a_setting() -> None:
    assert Settings().ssf.ssf_max_streams_per_owner == 10
    env = {"REVOCAST_SSF_MAX_STREAMS_PER_OWNER": "3"}
    assert Settings.from_env(env).ssf.ssf_max_streams_per_owner == 3
    for bad in ("0", "101"):
        expected = "REVOCAST_SSF_MAX_STREAMS_PER_OWNER must be from 1 to 100"
        with pytest.raises(SettingsError, match=expected):
            Settings.from_env({"REVOCAST_SSF_MAX_STREAMS_PER_OWNER": bad})
