"""Moderator actions reach every verifier; only moderators may take them; all are audited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from redis.asyncio import Redis

from revocast.errors import Forbidden
from revocast.events import ActorKind
from revocast.issuer.guards import INTROSPECTOR_ROLES, MODERATOR_ROLES
from revocast.issuer.ssf import SSF_ROLES
from revocast.proof import EVENT_ID_HEADER
from revocast.roles import SERVICE_ROLES
from revocast.store.scripts import load_scripts
from revocast.verifier import Verifier
from tests.conftest import Issuer, VerifierFactory
from tests.support.servers import eventually
from tests.support.topologies import EVERY_TOPOLOGY
from tests.support.verdicts import rejection, rejects_with


@pytest.fixture(params=EVERY_TOPOLOGY)
def topology(request: pytest.FixtureRequest) -> str:
    """Every test here runs on one server, on four partitions, on Sentinel and on Cluster."""
    return str(request.param)


BOUND_S = 1.0  # loose: the measured figures are in BENCHMARKS.md


@dataclass
class Person:
    uid: str
    tokens: dict[str, Any]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}


@dataclass
class Team:
    issuer: Issuer
    verifiers: list[Verifier]
    admin: Person
    mod: Person
    alice: Person
    bob: Person

    async def call(self, who: Person, method: str, path: str, **kwargs: Any) -> Any:
        return await self.issuer.http.request(method, path, headers=who.bearer, **kwargs)


@pytest.fixture
async def team(issuer: Issuer, make_verifier: VerifierFactory) -> Team:
    people = {}
    for name, roles in (("admin", ["admin"]), ("mod", ["moderator"]), ("alice", ["user"]),
                        ("bob", ["user"])):  # fmt: skip
        uid = await issuer.add_user(name, roles)
        people[name] = Person(uid, await issuer.login(name))
    verifiers = [await make_verifier(), await make_verifier()]
    return Team(issuer, verifiers, **people)


async def all_reject(team: Team, token: str, code: str) -> float:
    """Seconds until both verifiers reject ``token`` with ``code``."""
    waits = await asyncio.gather(
        *(eventually(partial(rejects_with, v, token, code)) for v in team.verifiers)
    )
    return max(waits)


async def test_block_kills_every_session_and_refuses_login_until_unblock(team: Team) -> None:
    second = await team.issuer.login("alice")
    reply = await team.call(team.mod, "POST", f"/v1/admin/users/{team.alice.uid}/block",
                            json={"reason": "spam"})  # fmt: skip
    assert reply.status_code == 200
    assert reply.json() == {"user_id": team.alice.uid, "blocked": True,
                            "event_id": reply.headers["Revocast-Event-Id"]}  # fmt: skip
    assert await all_reject(team, team.alice.tokens["access_token"], "user_revoked") < BOUND_S
    await all_reject(team, second["access_token"], "user_revoked")
    for verifier in team.verifiers:
        verifier.verify(team.bob.tokens["access_token"])  # others untouched

    login = await team.issuer.http.post(
        "/v1/login", json={"username": "alice", "password": "correct horse battery"}
    )
    assert (login.status_code, login.json()["error"]) == (403, "user_blocked")
    refresh = await team.issuer.refresh(second["refresh_token"])
    assert (refresh.status_code, refresh.json()["error"]) == (403, "user_blocked")

    unblock = await team.call(team.mod, "POST", f"/v1/admin/users/{team.alice.uid}/unblock")
    assert unblock.json() == {"user_id": team.alice.uid, "blocked": False, "event_id": None}
    fresh = await team.issuer.login("alice")
    await eventually(lambda: all(rejection(v, fresh["access_token"]) is None
                                 for v in team.verifiers))  # fmt: skip
    assert rejection(team.verifiers[0], team.alice.tokens["access_token"]) == "user_revoked"


async def test_role_change_kills_old_tokens_but_not_the_session(team: Team) -> None:
    reply = await team.call(team.admin, "PUT", f"/v1/admin/users/{team.alice.uid}/roles",
                            json={"roles": ["editor", "user"]})  # fmt: skip
    assert reply.json() == {"user_id": team.alice.uid, "roles": ["editor", "user"],
                            "event_id": reply.headers["Revocast-Event-Id"]}  # fmt: skip
    assert await all_reject(team, team.alice.tokens["access_token"], "roles_changed") < BOUND_S
    refreshed = await team.issuer.refresh(team.alice.tokens["refresh_token"])
    assert refreshed.status_code == 200
    for verifier in team.verifiers:
        claims = verifier.verify(refreshed.json()["access_token"])
        assert claims.roles == ("editor", "user")
        assert claims.sid == team.alice.tokens["session_id"]


async def test_moderator_lists_and_ends_a_session(team: Team) -> None:
    listed = await team.call(team.mod, "GET", f"/v1/admin/users/{team.alice.uid}/sessions")
    assert listed.status_code == 200
    (session,) = listed.json()["sessions"]
    assert session["session_id"] == team.alice.tokens["session_id"]
    assert {"created_at", "last_refreshed_at", "user_agent", "client_address"} <= set(session)
    ended = await team.call(team.mod, "DELETE", f"/v1/admin/sessions/{session['session_id']}")
    assert ended.status_code == 204
    assert await all_reject(team, team.alice.tokens["access_token"], "session_revoked") < BOUND_S
    again = await team.call(team.mod, "DELETE", f"/v1/admin/sessions/{session['session_id']}")
    assert again.status_code == 204  # ended already: the same answer, nothing written
    assert again.headers[EVENT_ID_HEADER] == ended.headers[EVENT_ID_HEADER]


async def test_audit_trail_holds_every_action_newest_first(team: Team) -> None:
    alice = team.alice.uid
    await team.call(team.mod, "POST", f"/v1/admin/users/{alice}/block", json={"reason": "spam"})
    await team.call(team.mod, "POST", f"/v1/admin/users/{alice}/unblock")
    await team.call(team.admin, "PUT", f"/v1/admin/users/{team.bob.uid}/roles",
                    json={"roles": ["user", "vip"], "reason": "promo"})  # fmt: skip
    await team.call(team.admin, "DELETE", f"/v1/admin/sessions/{team.bob.tokens['session_id']}")
    page = (await team.call(team.admin, "GET", "/v1/admin/audit", params={"limit": 3})).json()
    actions = [(e["actor"], e["action"], e["target"], e["reason"]) for e in page["entries"]]
    assert actions == [
        (team.admin.uid, "end_session", f"{team.bob.uid}/{team.bob.tokens['session_id']}",
         "moderator"),
        (team.admin.uid, "roles", team.bob.uid, "promo"),
        (team.mod.uid, "unblock", alice, ""),
    ]  # fmt: skip
    rest = await team.call(team.admin, "GET", "/v1/admin/audit",
                           params={"before": page["next_before"], "limit": 3})  # fmt: skip
    assert [(e["action"], e["reason"]) for e in rest.json()["entries"]] == [("block", "spam")]
    assert rest.json()["next_before"] is None
    assert all(e["at"].endswith("+00:00") for e in page["entries"])


ADMIN_ROUTES = [
    ("POST", "/v1/admin/users/{uid}/block", None),
    ("POST", "/v1/admin/users/{uid}/unblock", None),
    ("PUT", "/v1/admin/users/{uid}/roles", {"roles": ["admin"]}),
    ("GET", "/v1/admin/users/{uid}/sessions", None),
    ("DELETE", "/v1/admin/sessions/{sid}", None),
    ("GET", "/v1/admin/audit", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_normal_users_get_403_and_anonymous_401(
    team: Team, method: str, path: str, body: dict[str, Any] | None
) -> None:
    url = path.format(uid=team.bob.uid, sid=team.bob.tokens["session_id"])
    reply = await team.call(team.alice, method, url, json=body)
    assert (reply.status_code, reply.json()["error"]) == (403, "insufficient_scope")
    assert 'error="insufficient_scope"' in reply.headers["www-authenticate"]
    anonymous = await team.issuer.http.request(method, url, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="revocast"'  # no error code
    for verifier in team.verifiers:  # nothing happened to bob
        verifier.verify(team.bob.tokens["access_token"])


Action = Callable[[Team], Awaitable[Any]]


async def _block_mod(team: Team) -> Any:
    return await team.call(team.admin, "POST", f"/v1/admin/users/{team.mod.uid}/block")


async def _demote_mod(team: Team) -> Any:
    return await team.call(team.admin, "PUT", f"/v1/admin/users/{team.mod.uid}/roles",
                           json={"roles": ["user"]})  # fmt: skip


@pytest.mark.parametrize("strip", [_block_mod, _demote_mod], ids=["blocked", "demoted"])
async def test_moderator_loses_power_at_once(team: Team, strip: Action) -> None:
    assert (await strip(team)).status_code == 200
    # No wait for propagation: the script checks the actor's roles in Redis.
    reply = await team.call(team.mod, "POST", f"/v1/admin/users/{team.alice.uid}/block")
    assert reply.status_code in (401, 403)
    # Even with a token no verifier has caught up on, the script itself refuses.
    with pytest.raises(Forbidden):
        await team.issuer.ctx.store.authority.moderate(
            team.mod.uid, "block", team.alice.uid, actor_kind=ActorKind.MODERATOR
        )
    team.verifiers[0].verify(team.alice.tokens["access_token"])


async def test_moderators_cannot_touch_admins_or_grant_power(team: Team) -> None:
    on_admin = await team.call(team.mod, "POST", f"/v1/admin/users/{team.admin.uid}/block")
    assert on_admin.status_code == 403
    grant = await team.call(team.mod, "PUT", f"/v1/admin/users/{team.alice.uid}/roles",
                            json={"roles": ["moderator"]})  # fmt: skip
    assert grant.status_code == 403
    ok = await team.call(team.admin, "PUT", f"/v1/admin/users/{team.alice.uid}/roles",
                         json={"roles": ["moderator"]})  # fmt: skip
    assert ok.status_code == 200
    selfblock = await team.call(team.admin, "POST", f"/v1/admin/users/{team.admin.uid}/block")
    assert selfblock.status_code == 403


async def test_only_admins_grant_or_withdraw_service_roles(team: Team) -> None:
    """Issue 19 point 8. Before: a moderator granted ``ssf`` and ``introspect`` to any
    non-admin account (200), which could then read every user's tokens and revocations."""
    roles_of = team.issuer.ctx.store.authority.roles_of
    bob = f"/v1/admin/users/{team.bob.uid}/roles"
    grants = {role: await team.call(team.mod, "PUT", bob, json={"roles": ["user", role]})
              for role in sorted(SERVICE_ROLES)}  # fmt: skip
    assert {role: reply.status_code for role, reply in grants.items()} == dict.fromkeys(
        SERVICE_ROLES, 403
    )
    assert await roles_of(team.bob.uid) == ["user"]
    assert grants["ssf"].json() == {
        "error": "forbidden",
        "detail": "only admins grant or withdraw the roles admin, introspect, moderator, ssf, "
        "or change the roles of an account holding one: ask an admin",
    }
    # The bearer path of introspection stays closed to bob.
    asked = await team.call(team.bob, "POST", "/oauth/introspect",
                            data={"token": team.alice.tokens["access_token"]})  # fmt: skip
    assert asked.status_code == 401
    # An admin grants them; a moderator can then neither withdraw them nor change bob's roles.
    assert (await team.call(team.admin, "PUT", bob, json={"roles": ["ssf"]})).status_code == 200
    for roles in ([], ["user"], ["ssf", "user"]):
        change = await team.call(team.mod, "PUT", bob, json={"roles": roles})
        assert (change.status_code, change.json()["error"]) == (403, "forbidden"), roles
    assert await roles_of(team.bob.uid) == ["ssf"]
    # User-level roles stay the moderators' to manage.
    alice = f"/v1/admin/users/{team.alice.uid}/roles"
    mine = await team.call(team.mod, "PUT", alice, json={"roles": ["editor", "user"]})
    assert mine.status_code == 200, mine.text
    assert await roles_of(team.alice.uid) == ["editor", "user"]


def test_every_role_a_guard_accepts_is_a_service_role() -> None:
    """A role that opens a route to other users' data must be out of moderators' reach."""
    assert MODERATOR_ROLES | INTROSPECTOR_ROLES | SSF_ROLES <= SERVICE_ROLES
    assert all(f'["{role}"] = true' in load_scripts()["moderate"].text for role in SERVICE_ROLES)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/admin/users/nosuchuser/block", None, 404, "not_found"),
        ("POST", "/v1/admin/users/bad%20id/block", None, 404, "not_found"),
        ("PUT", "/v1/admin/users/{uid}/roles", {"roles": "admin"}, 400, "invalid_request"),
        ("PUT", "/v1/admin/users/{uid}/roles", {"roles": ["Bad Role"]}, 400, "invalid_request"),
        ("GET", "/v1/admin/audit?limit=x", None, 400, "invalid_request"),
        ("GET", "/v1/admin/audit?before=nope", None, 400, "invalid_request"),
        ("GET", "/v1/admin/users/nosuchuser/sessions", None, 404, "not_found"),
    ],
)
async def test_bad_admin_requests(
    team: Team, method: str, path: str, body: Any, status: int, code: str
) -> None:
    reply = await team.call(team.admin, method, path.format(uid=team.alice.uid), json=body)
    assert (reply.status_code, reply.json()["error"]) == (status, code)


async def one_user_per_partition(team: Team) -> dict[int, str]:
    """A user in every partition (usernames are drawn until each partition has one)."""
    keys = team.issuer.ctx.store.keys
    found: dict[int, str] = {}
    for n in range(10_000):
        name = f"p{n}"
        index = keys.of(name).index
        if index not in found:
            found[index] = await team.issuer.add_user(name)
        if len(found) == keys.partitions:
            return found
    raise AssertionError("unreachable: 10,000 names cover every partition")


async def test_a_demoted_moderator_has_no_power_in_any_partition(team: Team) -> None:
    """The moderator's own record is in one partition; the copies of its power in every
    other partition are updated before the demotion is acknowledged."""
    targets = await one_user_per_partition(team)
    store = team.issuer.ctx.store
    for uid in targets.values():  # power everywhere first
        await store.authority.moderate(team.mod.uid, "unblock", uid, actor_kind=ActorKind.MODERATOR)
    assert (await _demote_mod(team)).status_code == 200
    for uid in targets.values():
        with pytest.raises(Forbidden):
            await store.authority.moderate(
                team.mod.uid, "block", uid, actor_kind=ActorKind.MODERATOR
            )


async def test_a_copy_left_behind_is_repaired(team: Team) -> None:
    """An issuer that died between a demotion and the copies leaves an old copy in some
    partition; the repair (every issuer runs it every 5 s) brings it up to date."""
    targets = await one_user_per_partition(team)
    ctx = team.issuer.ctx
    keys = ctx.store.keys
    home = keys.of(team.mod.uid)
    assert (await _demote_mod(team)).status_code == 200
    entry = await ctx.backend.hget(home.authority, team.mod.uid)
    assert entry is not None
    assert entry.startswith(":")
    version = int(entry.rpartition(":")[2])
    others = [p for p in keys.all_partitions if p is not home]
    if not others:
        pytest.skip("one partition: the moderator's own copy is the only one")
    stale = others[0]

    async def plant(client: Redis) -> None:
        await client.hset(stale.authority, team.mod.uid, f"moderator:{version - 1}")

    await ctx.backend.on_primary(stale.authority, plant)
    await ctx.store.authority.moderate(
        team.mod.uid, "unblock", targets[stale.index], actor_kind=ActorKind.MODERATOR
    )  # the hole, shown
    assert await ctx.store.authority.reconcile_authority() >= 1
    with pytest.raises(Forbidden):
        await ctx.store.authority.moderate(
            team.mod.uid, "block", targets[stale.index], actor_kind=ActorKind.MODERATOR
        )
