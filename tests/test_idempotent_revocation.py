"""Idempotent revocation (DESIGN.md invariant 13; issue 19 point 4, issue 20 point 4).

Revoking what is revoked already writes no event: a repeat answers as the first call did,
with the id of the event that made the revocation, so no caller can grow the streams (or
the SSF queues copied from them) by repeating itself. Durability of repeats, with a frozen
replica, is in test_durability.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from revocast.events import ActorKind
from revocast.proof import EVENT_ID_HEADER
from revocast.store import Backend, Store
from tests.conftest import PASSWORD, Issuer, bearer
from tests.support.servers import eventually
from tests.support.verdicts import is_rejected

REPEATS = 20


@pytest.fixture(params=["single", "partitioned"])
def topology(request: pytest.FixtureRequest) -> str:
    """One server, and four partitions (a moderator and its target apart)."""
    return str(request.param)


async def entries(redis: Redis, issuer: Issuer) -> int:
    """Every entry of every revocation stream of the deployment."""
    streams = issuer.ctx.store.keys.streams()
    return sum([await redis.xlen(s.events) for s in streams])


def answer(reply: httpx.Response) -> tuple[int, str | None, Any]:
    body = reply.json() if reply.content else None
    return reply.status_code, reply.headers.get(EVENT_ID_HEADER), body


async def repeats_write_nothing(
    redis: Redis, issuer: Issuer, call: Callable[[], Awaitable[httpx.Response]], status: int
) -> str:
    """The call, then REPEATS repeats: the first writes one event, the repeats none, and
    every answer is the first one. Returns the event id answered."""
    before = await entries(redis, issuer)
    first = answer(await call())
    assert first[0] == status, first
    assert first[1] is not None
    assert await entries(redis, issuer) == before + 1
    again = await asyncio.gather(*(call() for _ in range(REPEATS)))  # at once, too
    assert [answer(reply) for reply in again] == [first] * REPEATS
    assert await entries(redis, issuer) == before + 1
    return first[1]


async def test_every_revoking_call_repeated_writes_no_event(issuer: Issuer, redis: Redis) -> None:
    http = issuer.http
    await issuer.add_user("mod", ["moderator"])
    mod = bearer(await issuer.login("mod"))
    uid = await issuer.add_user("alice")
    sessions = [await issuer.login("alice") for _ in range(6)]
    me = bearer(sessions[0])

    def calls() -> list[tuple[Callable[[], Awaitable[httpx.Response]], int]]:
        change = {"current_password": PASSWORD, "new_password": "another passphrase"}
        return [
            (lambda: http.post("/oauth/revoke", data={"token": sessions[1]["refresh_token"]}),
             200),
            (lambda: http.post("/oauth/revoke", data={"token": sessions[2]["access_token"]}),
             200),
            (lambda: http.delete(f"/v1/sessions/{sessions[3]['session_id']}", headers=me), 204),
            (lambda: http.delete(f"/v1/admin/sessions/{sessions[4]['session_id']}",
                                 headers=mod), 204),
            (lambda: http.post("/v1/password", headers=me, json=change), 200),  # ends [5]
            (lambda: http.post("/v1/logout", headers=me), 204),
            (lambda: http.put(f"/v1/admin/users/{uid}/roles", headers=mod,
                              json={"roles": ["vip"]}), 200),
        ]  # fmt: skip

    for call, status in calls():
        await repeats_write_nothing(redis, issuer, call, status)
    # Block and logout-all, on a user of their own, and the last.
    uid = await issuer.add_user("bob")
    bob = bearer(await issuer.login("bob"))
    await issuer.login("bob")

    async def logout_all() -> httpx.Response:
        return await http.post("/v1/logout-all", headers=bob)

    await repeats_write_nothing(redis, issuer, logout_all, 204)
    await repeats_write_nothing(
        redis, issuer, lambda: http.post(f"/v1/admin/users/{uid}/block", headers=mod), 200
    )


async def test_a_logout_with_a_session_revoked_by_someone_else_is_answered_as_done(
    issuer: Issuer, redis: Redis
) -> None:
    """The caller wants its session over, and it is: 204 (RFC 7009: 200) with the event that
    ended it, the newest that covers it when the user was cut off more than once."""
    await issuer.add_user("mod", ["moderator"])
    mod = bearer(await issuer.login("mod"))
    uid = await issuer.add_user("alice")
    ended_by_mod, a, b = [await issuer.login("alice") for _ in range(3)]

    async def answered_by(revocation: httpx.Response, *sessions: dict[str, Any]) -> None:
        written = await entries(redis, issuer)
        for tokens in sessions:
            # The issuer's own verifier refuses the token: the calls act on it as revoked.
            await eventually(partial(is_rejected, issuer.ctx.verifier, tokens["access_token"]))
            for kind in ("access_token", "refresh_token"):
                revoke = await issuer.http.post("/oauth/revoke", data={"token": tokens[kind]})
                assert revoke.status_code == 200
                assert revoke.headers[EVENT_ID_HEADER] == revocation.headers[EVENT_ID_HEADER]
            logout = await issuer.post_bearer("/v1/logout", tokens["access_token"])
            assert logout.status_code == 204
            assert logout.headers[EVENT_ID_HEADER] == revocation.headers[EVENT_ID_HEADER]
        assert await entries(redis, issuer) == written

    sid = ended_by_mod["session_id"]
    ended = await issuer.http.delete(f"/v1/admin/sessions/{sid}", headers=mod)
    await answered_by(ended, ended_by_mod)
    await answered_by(await issuer.post_bearer("/v1/logout-all", b["access_token"]), a)
    later = await issuer.login("alice")  # made after the logout-all: not ended by it
    block = await issuer.http.post(f"/v1/admin/users/{uid}/block", headers=mod)
    await answered_by(block, later, a)
    await answered_by(ended, ended_by_mod)  # a session's own revocation comes first


async def test_a_repeated_logout_all_keeps_the_sessions_made_since(issuer: Issuer) -> None:
    await issuer.add_user("alice")
    old = await issuer.login("alice")
    first = await issuer.post_bearer("/v1/logout-all", old["access_token"])
    later = await issuer.login("alice")
    again = await issuer.post_bearer("/v1/logout-all", old["access_token"])
    assert again.status_code == 204
    assert again.headers[EVENT_ID_HEADER] == first.headers[EVENT_ID_HEADER]
    assert (await issuer.refresh(later["refresh_token"])).status_code == 200


async def test_a_password_repeat_is_told_from_a_wrong_password(issuer: Issuer) -> None:
    """Only the session that made the change, sending the same new password, gets its answer
    again; any other request with a password that is not the current one is still 403."""
    await issuer.add_user("alice")
    changer, other = await issuer.login("alice"), await issuer.login("alice")
    change = {"current_password": PASSWORD, "new_password": "another passphrase"}
    first = await issuer.http.post("/v1/password", headers=bearer(changer), json=change)
    assert first.json()["other_sessions_ended"] == 1
    again = await issuer.http.post("/v1/password", headers=bearer(changer), json=change)
    assert (again.status_code, again.json()) == (200, first.json())
    login = {"username": "alice", "password": "another passphrase"}
    elsewhere = (await issuer.http.post("/v1/login", json=login)).json()
    for who, body in (
        (changer, change | {"new_password": "yet another passphrase"}),
        (elsewhere, change),  # the right new password, but not from the session that set it
    ):
        refused = await issuer.http.post("/v1/password", headers=bearer(who), json=body)
        assert (refused.status_code, refused.json()["error"]) == (403, "wrong_password")
    assert other  # ended by the first change


@pytest.mark.parametrize("topology", ["single"])  # the same script on every partition
async def test_the_remembered_event_ids_go_with_their_revocations(
    issuer: Issuer, redis: Redis
) -> None:
    """Memory stays bounded (invariant 5): the id kept beside a revocation is pruned with it."""
    short = issuer.settings.with_overrides(
        access_ttl_s=1, leeway_s=0, max_staleness_s=1.0
    )  # remembered 2 s
    backend = Backend(short)
    await backend.start()
    try:
        store = Store(backend)
        p = store.keys.partition(0)
        uids = [store.keys.draw_in(p, lambda: secrets.token_hex(8)) for _ in range(6)]
        for i, uid in enumerate(uids[:5]):
            await store.sessions.revoke_session(f"s{i}", uid, "test", actor_kind=ActorKind.USER)
        await store.sessions.revoke_user(uids[0], "test", actor_kind=ActorKind.USER)
        assert await redis.hlen(p.revoked_session_events) == 5
        assert await redis.hlen(p.revoked_user_events) == 1
        await asyncio.sleep(2.1)
        await store.sessions.revoke_session(
            "s9", uids[5], "test", actor_kind=ActorKind.USER
        )  # prunes what outlived its tokens
        assert await redis.hkeys(p.revoked_session_events) == ["s9"]
        assert await redis.hlen(p.revoked_user_events) == 0
        assert await redis.zrange(p.revoked_sessions, 0, -1) == ["s9"]
    finally:
        await backend.aclose()
