"""Every revocation event says who it came from (issue 21, the demonstration): the route
states it, the script writes it, the verifier applies and counts it, and an SSF receiver
reads it in the SET as CAEP's ``initiating_entity``."""

from __future__ import annotations

from typing import Any

import pytest

from revocast.events import (
    ActorKind,
    AnyEvent,
    KeyPublished,
    KeyRevoked,
    RolesChanged,
    SessionRevoked,
    UserRevoked,
    decode_entry,
    lua_vocabulary,
)
from revocast.issuer import operator
from revocast.issuer.security_events import INITIATING_ENTITY
from revocast.settings import Settings
from revocast.store import Store
from revocast.verifier import Verifier
from revocast.verifier.metrics import VerifierCollector
from tests.conftest import Issuer, bearer
from tests.support.servers import eventually
from tests.test_ssf import checked, poll, receiver

ENTRY = {"type": "session_revoked", "v": "1", "ts_ms": "1", "sid": "s", "uid": "u",
         "at_ms": "1", "until_ms": "2", "reason": "logout"}  # fmt: skip


def test_an_entry_written_before_the_field_decodes_without_a_kind() -> None:
    event = decode_entry(ENTRY)
    assert isinstance(event, SessionRevoked)
    assert event.actor_kind == ""


def test_a_kind_this_verifier_does_not_know_still_revokes() -> None:
    """A kind added later must not make an older verifier stop at the entry: the revocation
    counts whoever made it."""
    event = decode_entry(ENTRY | {"actor_kind": "a-kind-from-the-future"})
    assert isinstance(event, SessionRevoked)
    assert event.sid == "s"


def test_every_kind_reaches_lua_and_has_an_initiating_entity() -> None:
    vocabulary = lua_vocabulary()
    for kind in ActorKind:
        assert f"local ACTOR_{kind.name} = '{kind.value}'" in vocabulary
        assert INITIATING_ENTITY[kind] in ("user", "admin", "policy", "system")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(max_sessions_per_user=2)  # the policy's revocation


def _who(events: list[AnyEvent]) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.actor_kind) for e in events if not isinstance(e, KeyPublished)]


async def test_each_revocation_carries_its_actor_kind_to_the_verifier_and_the_set(
    issuer: Issuer, settings: Settings
) -> None:
    auth, stream = await receiver(issuer)
    alice = await issuer.add_user("alice")
    bob = await issuer.add_user("bob")
    admin = bearer(await issuer.login(await _named(issuer, "boss", ["admin"])))
    mod = bearer(await issuer.login(await _named(issuer, "mod", ["moderator"])))
    applied: list[AnyEvent] = []
    async with Verifier(settings, on_applied=applied.extend) as verifier:
        first = await issuer.login("alice")
        assert (await issuer.post_bearer("/v1/logout", first["access_token"])).status_code == 204
        for _ in range(3):  # the third login ends the oldest: the session limit (2)
            await issuer.login("bob")
        reply = await issuer.http.post(f"/v1/admin/users/{alice}/block", headers=mod)
        assert reply.status_code == 200, reply.text
        reply = await issuer.http.put(f"/v1/admin/users/{bob}/roles", headers=admin,
                                      json={"roles": ["x"]})  # fmt: skip
        assert reply.status_code == 200, reply.text
        await operator.set_blocked(issuer.ctx.store, bob, "test", blocked=True)
        store: Store = issuer.ctx.store
        kid = await store.signing.signing_kid()
        assert kid is not None
        await operator.revoke_key(store, settings, kid, "test")

        expected = [
            ("SessionRevoked", ActorKind.USER),  # alice's logout
            ("SessionRevoked", ActorKind.POLICY),  # bob's oldest session, past the limit
            ("UserRevoked", ActorKind.MODERATOR),  # alice blocked by a moderator
            ("RolesChanged", ActorKind.ADMIN),  # bob's roles, by an admin
            ("UserRevoked", ActorKind.OPERATOR),  # bob blocked from the command line
            ("KeyRevoked", ActorKind.OPERATOR),
        ]
        await eventually(lambda: len(_who(applied)) >= len(expected))
        assert sorted(_who(applied)) == sorted(expected)  # streams of partitions interleave
        assert all(isinstance(e, SessionRevoked | UserRevoked | RolesChanged | KeyRevoked)
                   for e in applied if not isinstance(e, KeyPublished))  # fmt: skip
        counted = _samples(verifier, "revocast_revocations_applied_total")
        assert counted == {"user": 1, "policy": 1, "moderator": 1, "admin": 1, "operator": 2}

    auth = bearer(await issuer.login("receiver"))  # its token's key was revoked above
    claims = await checked(issuer, (await poll(issuer, auth, stream))["sets"])
    entities = [body.get("initiating_entity") for c in claims for body in c["events"].values()]
    # session-revoked (user), session-revoked (policy), account-disabled (RISC: none),
    # token-claims-change (admin), account-disabled; key events make no SET
    assert entities == ["user", "policy", None, "admin", None]


async def _named(issuer: Issuer, name: str, roles: list[str]) -> str:
    await issuer.add_user(name, roles)
    return name


def _samples(verifier: Verifier, name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for family in VerifierCollector(verifier).collect():
        for sample in family.samples:
            if sample.name == name:
                found[sample.labels["actor_kind"]] = int(sample.value)
    return found
