"""The verifier's ``on_applied`` hook: what benchmarks time propagation with."""

from __future__ import annotations

from revocast.events import AnyEvent, SessionRevoked, UserRevoked
from revocast.settings import Settings
from revocast.verifier import Verifier
from tests.conftest import Issuer, bearer
from tests.support.servers import eventually
from tests.support.verdicts import outcome


async def test_on_applied_gets_each_revocation_once_it_is_in_the_cache(
    issuer: Issuer, settings: Settings
) -> None:
    await issuer.add_user("alice")
    await issuer.add_user("mod", ["moderator"])
    alice, mod = await issuer.login("alice"), await issuer.login("mod")
    token = alice["access_token"]
    applied: list[AnyEvent] = []
    verdicts: list[str] = []  # what verify() said about alice's token inside the hook

    def on_applied(events: list[AnyEvent]) -> None:
        applied.extend(events)
        verdicts.append(outcome(verifier, token))

    async with Verifier(settings, on_applied=on_applied) as verifier:
        assert outcome(verifier, token) == "accepted"
        assert applied == []  # the snapshot is not a batch of events
        await issuer.post_bearer("/v1/logout", token)
        await eventually(lambda: bool(applied))
        assert [(type(e), e.sid) for e in applied if isinstance(e, SessionRevoked)] == [
            (SessionRevoked, alice["session_id"])
        ]
        assert verdicts[-1] == "session_revoked"  # called after the cache has it

        blocked = await issuer.http.post(
            f"/v1/admin/users/{alice['user_id']}/block",
            json={"reason": "test"},
            headers=bearer(mod),
        )
        assert blocked.status_code == 200, blocked.text
        await eventually(lambda: any(isinstance(e, UserRevoked) for e in applied))
        assert [e.uid for e in applied if isinstance(e, UserRevoked)] == [alice["user_id"]]


async def test_revocations_made_before_start_come_in_the_snapshot_not_the_hook(
    issuer: Issuer, settings: Settings
) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    await issuer.post_bearer("/v1/logout", tokens["access_token"])
    applied: list[AnyEvent] = []
    async with Verifier(settings, on_applied=applied.extend) as verifier:
        assert outcome(verifier, tokens["access_token"]) == "session_revoked"
        # One revocation after the start: it alone comes through the hook.
        later = await issuer.login("alice")
        await issuer.post_bearer("/v1/logout", later["access_token"])
        await eventually(lambda: bool(applied))
        assert [e.sid for e in applied if isinstance(e, SessionRevoked)] == [later["session_id"]]
