"""Revocation floods (issue 19, point 4): one user wrote 104,000 events in 3.4 minutes by
repeating /oauth/revoke and /v1/logout with revoked tokens, which filled an SSF receiver's
queue. Repeats now write nothing, and each actor's revocations that write are limited
(REVOCAST_REVOCATIONS_PER_MINUTE); repeats are neither counted nor refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from revocast.issuer import create_app, operator
from revocast.proof import EVENT_ID_HEADER
from revocast.settings import Settings
from tests.conftest import Issuer, bearer
from tests.support.servers import serve

LIMIT = 3


async def entries(redis: Redis, issuer: Issuer) -> int:
    return sum([await redis.xlen(s.events) for s in issuer.ctx.store.keys.streams()])


async def test_a_flood_of_repeats_writes_no_event(issuer: Issuer, redis: Redis) -> None:
    await issuer.add_user("mallory")
    tokens = await issuer.login("mallory")
    first = await issuer.http.post("/oauth/revoke", data={"token": tokens["refresh_token"]})
    assert first.status_code == 200
    other = await issuer.login("mallory")
    assert (await issuer.post_bearer("/v1/logout", other["access_token"])).status_code == 204
    before = await entries(redis, issuer)
    started = time.monotonic()
    first_token = tokens["refresh_token"]

    async def flood(n: int) -> list[int]:
        codes = []
        for _ in range(n):
            revoke = await issuer.http.post("/oauth/revoke", data={"token": first_token})
            logout = await issuer.post_bearer("/v1/logout", other["access_token"])
            codes += [revoke.status_code, logout.status_code]
        return codes

    codes = [c for batch in await asyncio.gather(*(flood(50) for _ in range(4))) for c in batch]
    print(f"\n400 repeats in {time.monotonic() - started:.2f} s")
    assert sorted(set(codes)) == [200, 204]
    assert await entries(redis, issuer) == before  # before: 400 new events


@pytest.fixture
async def limited(settings: Settings, issuer: Issuer) -> AsyncIterator[httpx.AsyncClient]:
    """An issuer that allows LIMIT revocations per actor and minute, sharing the test's users."""
    tight = settings.with_overrides(revocations_per_minute=LIMIT)
    async with serve(create_app(tight)) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


async def test_revocations_past_the_limit_are_refused_and_change_nothing(
    issuer: Issuer, limited: httpx.AsyncClient, redis: Redis
) -> None:
    uid = await issuer.add_user("mallory")
    await issuer.add_user("mod", ["moderator"])
    sessions = [await issuer.login("mallory") for _ in range(LIMIT + 2)]
    answers = []
    for tokens in sessions[:LIMIT]:
        reply = await limited.post("/v1/logout", headers=bearer(tokens))
        assert reply.status_code == 204
        answers.append(reply.headers[EVENT_ID_HEADER])
    before = await entries(redis, issuer)
    refused = await limited.post("/v1/logout", headers=bearer(sessions[LIMIT]))
    assert (refused.status_code, refused.json()["error"]) == (429, "too_many_revocations")
    assert 0 < int(refused.headers["retry-after"]) <= 60
    oauth = await limited.post("/oauth/revoke", data={"token": sessions[LIMIT]["refresh_token"]})
    assert (oauth.status_code, oauth.json()["error"]) == (429, "too_many_revocations")
    assert "error_description" in oauth.json()  # RFC 6749's shape on /oauth/*
    everything = await limited.post("/v1/logout-all", headers=bearer(sessions[LIMIT + 1]))
    assert everything.status_code == 429
    assert await entries(redis, issuer) == before  # nothing was written
    assert await issuer.ctx.store.sessions.live(sessions[LIMIT]["session_id"])
    # Repeats of what was done are neither counted nor refused.
    for tokens, event_id in zip(sessions, answers, strict=False):
        again = await limited.post("/v1/logout", headers=bearer(tokens))
        assert (again.status_code, again.headers[EVENT_ID_HEADER]) == (204, event_id)
    # Each actor has its own budget: a moderator still acts, and operators are not limited.
    mod = bearer(await issuer.login("mod"))
    sid = sessions[LIMIT]["session_id"]
    ended = await limited.delete(f"/v1/admin/sessions/{sid}", headers=mod)
    assert ended.status_code == 204
    ctx = issuer.ctx
    for _ in range(LIMIT + 1):
        await operator.set_blocked(ctx.store, uid, "flood", blocked=True)
        await operator.set_blocked(ctx.store, uid, "flood", blocked=False)


async def test_a_moderator_is_limited_too(
    issuer: Issuer, limited: httpx.AsyncClient, redis: Redis
) -> None:
    """Blocking and unblocking in turn writes an event per block: counted for the moderator."""
    uid = await issuer.add_user("victim")
    await issuer.add_user("mod", ["moderator"])
    mod = bearer(await issuer.login("mod"))
    for _ in range(LIMIT):
        for action in ("block", "unblock"):
            reply = await limited.post(f"/v1/admin/users/{uid}/{action}", headers=mod)
            assert reply.status_code == 200
    before = await entries(redis, issuer)
    refused = await limited.post(f"/v1/admin/users/{uid}/block", headers=mod)
    assert (refused.status_code, refused.json()["error"]) == (429, "too_many_revocations")
    roles = await limited.put(f"/v1/admin/users/{uid}/roles", headers=mod, json={"roles": ["x"]})
    assert roles.status_code == 429
    assert await entries(redis, issuer) == before
    assert await issuer.ctx.store.authority.roles_of(uid) == []
    assert (await issuer.ctx.store.users.record(uid)).get("blocked") is None
