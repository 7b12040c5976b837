"""A full SSF queue never loses an event silently (issue 19, point 4).

Before: with a receiver's queue full (100,000), copying paused; a genuine logout made
meanwhile was trimmed from the revocation stream before it was copied, and the receiver
never heard of it. Now copying resumes where it paused, and what the stream no longer holds
is told: a stream-updated SET in its place, the stream status' reason, a metric, one log
line. A queue of 3 stands for the 100,000 here (REVOCAST_SSF_MAX_QUEUE); trimming is done by
hand, as a pause longer than the revocation streams keep entries would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from revocast.events import ActorKind
from revocast.issuer import create_app
from revocast.issuer.security_events import SESSION_REVOKED, STREAM_UPDATED
from revocast.proof import EVENT_ID_HEADER, EventRef
from revocast.settings import Settings
from tests.conftest import Issuer
from tests.support.servers import eventually, serve
from tests.test_metrics import samples
from tests.test_ssf import checked, poll, receiver

CAP = 3
TOTAL = 700  # revocations: more than one copy reads (SPOOL_BATCH, 500)


@pytest.fixture
async def small(settings: Settings, redis: Redis) -> AsyncIterator[Issuer]:
    """An issuer whose SSF queues hold CAP events."""
    tight = settings.with_overrides(ssf_max_queue=CAP)
    app = create_app(tight)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Issuer(url, http, tight, app)


async def logout(issuer: Issuer) -> str:
    """A new session of alice's, logged out; the event id."""
    tokens = await issuer.login("alice")
    reply = await issuer.post_bearer("/v1/logout", tokens["access_token"])
    return reply.headers[EVENT_ID_HEADER]


async def full_queue(issuer: Issuer, stream: dict[str, Any]) -> list[str]:
    """CAP logouts, copied: the queue is full. Their event ids."""
    ids = [await logout(issuer) for _ in range(CAP)]

    async def copied() -> bool:
        found = await issuer.ctx.store.signals.ssf_stream(stream["stream_id"])
        return found is not None and found[2] == CAP

    await eventually(copied, timeout_s=5, every_s=0.05)
    return ids


async def status(issuer: Issuer, auth: dict[str, str], stream: dict[str, Any]) -> Any:
    reply = await issuer.http.get(f"/ssf/status?stream_id={stream['stream_id']}", headers=auth)
    return reply.json()


def events_of(claims: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [next(iter(c["events"].items())) for c in claims]


async def test_copying_resumes_where_it_paused(
    small: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = small
    auth, stream = await receiver(issuer)
    await issuer.add_user("alice")
    with caplog.at_level(logging.INFO, logger="revocast.issuer"):
        first = await full_queue(issuer, stream)
        genuine = await logout(issuer)  # made while copying is paused

        async def paused() -> bool:
            return "reason" in await status(issuer, auth, stream)

        await eventually(paused, timeout_s=5, every_s=0.05)
        assert "paused" in (await status(issuer, auth, stream))["reason"]
        answer = await poll(issuer, auth, stream, maxEvents=10)
        assert list(answer["sets"]) == first  # the queue: nothing past the cap
        rest = await poll(issuer, auth, stream, ack=first, maxEvents=10)
        assert list(rest["sets"]) == [genuine]  # resumed from where it paused
        assert await status(issuer, auth, stream) == {
            "stream_id": stream["stream_id"], "status": "enabled"
        }  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "ssf stream" in r.getMessage()]
    assert len([line for line in lines if "copying paused" in line]) == 1  # not every round
    assert len([line for line in lines if "copying resumed" in line]) == 1


async def test_events_trimmed_while_paused_are_told_not_lost(
    small: Issuer, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = small
    auth, stream = await receiver(issuer)
    uid = await issuer.add_user("alice")
    events = issuer.ctx.store.keys.of(uid).stream.events
    first = await full_queue(issuer, stream)
    lost = await logout(issuer)  # made while paused, then trimmed before it was copied
    await redis.xtrim(events, minid=f"{EventRef.parse(lost).ms + 1}-0")
    later = await logout(issuer)
    with caplog.at_level(logging.WARNING, logger="revocast.issuer"):
        answer = await poll(issuer, auth, stream, ack=first, maxEvents=10)
    claims = await checked(issuer, answer["sets"])  # signed like every SET
    (updated, told), (revoked, _) = events_of(claims)
    assert (updated, revoked) == (STREAM_UPDATED, SESSION_REVOKED)
    assert told["status"] == "enabled"
    assert "events were lost" in told["reason"]
    assert claims[0]["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
    assert list(answer["sets"])[1] == later
    assert lost not in answer["sets"]
    assert (await status(issuer, auth, stream))["reason"] == told["reason"]
    lines = [r.getMessage() for r in caplog.records if "events were lost" in r.getMessage()]
    assert len(lines) == 1
    scraped = samples((await issuer.http.get("/metrics")).text)
    assert scraped[("revocast_ssf_losses_total", ())] == 1


async def test_a_gap_at_the_streams_end_is_told_too(small: Issuer, redis: Redis) -> None:
    """Everything after the cursor trimmed and nothing written since: the end of the stream
    is past entries the copy never saw."""
    issuer = small
    auth, stream = await receiver(issuer)
    uid = await issuer.add_user("alice")
    first = await full_queue(issuer, stream)
    await logout(issuer)
    await redis.xtrim(issuer.ctx.store.keys.of(uid).stream.events, maxlen=0)
    answer = await poll(issuer, auth, stream, ack=first, maxEvents=10)
    [(kind, told)] = events_of(await checked(issuer, answer["sets"]))
    assert kind == STREAM_UPDATED
    assert "until now" in told["reason"]
    assert (await poll(issuer, auth, stream, ack=list(answer["sets"])))["sets"] == {}


async def test_no_gap_is_told_when_nothing_was_lost(issuer: Issuer) -> None:
    """More entries than one copy reads: every event arrives, and no stream-updated SET."""
    auth, stream = await receiver(issuer)
    uid = await issuer.add_user("alice")
    for chunk in range(0, TOTAL, 100):
        await asyncio.gather(
            *(
                issuer.ctx.store.sessions.revoke_session(
                    f"s{i}", uid, "t", actor_kind=ActorKind.USER
                )
                for i in range(chunk, chunk + 100)
            )
        )
    received: list[str] = []
    batch: list[str] = []
    while True:
        answer = await poll(issuer, auth, stream, ack=batch, maxEvents=300)  # 16 KB bodies
        batch = list(answer["sets"])
        if not batch:
            break
        received += batch
    assert len(received) == len(set(received)) == TOTAL
    assert all(not jti.startswith("gap.") for jti in received)
    assert "reason" not in await status(issuer, auth, stream)
