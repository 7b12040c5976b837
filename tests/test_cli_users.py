"""`revocast user ...`, and every command that takes a user by name or by id."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, Issuer, VerifierFactory
from tests.support.servers import eventually
from tests.support.verdicts import outcome
from tests.test_operator_cli import output, revocast

NEW_PASSWORD = "a different battery staple"


@pytest.fixture(
    params=[
        "partitioned",
        *(pytest.param(p, marks=pytest.mark.slow) for p in ("single", "sentinel", "cluster")),
    ]
)
def topology(request: pytest.FixtureRequest) -> str:
    """Listing users SCANs each partition's server, and a removal spreads to every partition:
    four partitions on one server by default; one partition, Sentinel and Cluster are slow."""
    return str(request.param)


async def test_list_show_and_moderate_by_name_or_id(issuer: Issuer) -> None:
    alice = await issuer.add_user("alice", ["editor"])
    bob = await issuer.add_user("bob")
    tokens = await issuer.login("alice")

    listed = output(await revocast(issuer, "user", "list"))["users"]
    assert [(u["username"], u["user_id"], u["roles"], u["blocked"]) for u in listed] == [
        ("alice", alice, ["editor"], False),
        ("bob", bob, [], False),
    ]
    assert all("password" not in key for user in listed for key in user)

    by_name, by_id = [
        output(await revocast(issuer, "user", "show", who)) for who in ("alice", alice)
    ]
    assert by_name == by_id
    assert [s["session_id"] for s in by_name["sessions"]] == [tokens["session_id"]]
    assert output(await revocast(issuer, "sessions", "alice"))["user_id"] == alice

    blocked = output(await revocast(issuer, "block", "alice", "--reason", "spam"))
    assert blocked["user_id"] == alice
    assert output(await revocast(issuer, "user", "show", "alice"))["blocked"] is True
    output(await revocast(issuer, "unblock", alice))

    missing = await revocast(issuer, "block", "nobody")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "no user named 'nobody'" in missing.stderr
    assert "revocast user list" in missing.stderr


async def test_passwd_sets_the_password_and_ends_every_session(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    uid = await issuer.add_user("carol")
    verifier = await make_verifier()
    tokens = await issuer.login("carol")
    changed = await revocast(issuer, "user", "passwd", "carol", "--password-stdin",
                       stdin=NEW_PASSWORD + "\n")  # fmt: skip
    answer = output(changed)
    assert (answer["user_id"], answer["sessions_ended"]) == (uid, 1)
    await eventually(lambda: outcome(verifier, tokens["access_token"]) == "session_revoked")

    old = await issuer.http.post("/v1/login", json={"username": "carol", "password": PASSWORD})
    assert old.status_code == 401
    new = await issuer.http.post("/v1/login", json={"username": "carol", "password": NEW_PASSWORD})
    assert new.status_code == 200

    weak = await revocast(issuer, "user", "passwd", "carol", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1
    assert "8 characters" in weak.stderr
    without = await revocast(issuer, "user", "passwd", "carol")
    assert without.returncode == 2
    assert "--password-stdin" in without.stderr


async def test_remove_ends_everything_and_frees_the_name(
    issuer: Issuer, make_verifier: VerifierFactory
) -> None:
    root = await issuer.add_user("root", ["admin"])
    added = await revocast(issuer, "user", "add", "dave", "--role", "moderator", "--password-stdin",
                     stdin=PASSWORD + "\n")  # fmt: skip
    uid = added.stdout.strip()
    assert added.returncode == 0, added.stderr
    verifier = await make_verifier()
    tokens = await issuer.login("dave")
    output(await revocast(issuer, "user", "passwd", uid, "--password-stdin", stdin=PASSWORD + "\n"))
    tokens = await issuer.login("dave")
    removed = output(await revocast(issuer, "user", "remove", "dave", "--reason", "left"))
    assert (removed["user_id"], removed["removed"]) == (uid, True)
    assert removed["event_id"].startswith("p")
    await eventually(lambda: outcome(verifier, tokens["access_token"]) == "user_revoked")

    refresh = await issuer.http.post("/v1/refresh",
                                     json={"refresh_token": tokens["refresh_token"]})  # fmt: skip
    assert refresh.status_code == 401
    login = await issuer.http.post("/v1/login", json={"username": "dave", "password": PASSWORD})
    assert login.status_code == 401
    names = [u["username"] for u in output(await revocast(issuer, "user", "list"))["users"]]
    assert names == ["root"]
    # Its moderator power is withdrawn in every partition, not only its own.
    backend = issuer.ctx.backend
    for partition in backend.keys.all_partitions:
        power = await backend.hget(partition.authority, uid)
        assert power is not None
        assert power.startswith(":"), (partition, power)

    admin = await issuer.login("root")
    audit = await issuer.http.get("/v1/admin/audit", headers={
        "Authorization": f"Bearer {admin['access_token']}"})  # fmt: skip
    trail = [(e["action"], e["target"], e["reason"]) for e in audit.json()["entries"]
             if e["target"] == uid]  # fmt: skip
    assert trail == [("remove", uid, "left"), ("password", uid, "reset"),
                     ("add", uid, '["moderator"]')]  # fmt: skip
    assert root not in [e["target"] for e in audit.json()["entries"]]

    again = await issuer.add_user("dave")  # the name is free again, for a new user
    assert again != uid
    gone = await revocast(issuer, "user", "show", uid)
    assert gone.returncode == 1
    assert "not_found" in gone.stderr


async def test_unlock_forgives_the_users_failed_logins_and_is_audited(issuer: Issuer) -> None:
    uid = await issuer.add_user("erin")
    await issuer.add_user("root", ["admin"])

    async def login(password: str) -> int:
        body = {"username": "erin", "password": password}
        return (await issuer.http.post("/v1/login", json=body)).status_code

    assert [await login("wrong") for _ in range(11)] == [401] * 10 + [429]
    assert await login(PASSWORD) == 429  # this address is refused for erin for 15 min

    unlocked = output(
        await revocast(issuer, "user", "unlock", "erin", "--reason", "called support")
    )
    assert unlocked.pop("delay_lifted_ms") in range(1001)  # the 1 s delay, or what is left
    assert unlocked == {"user_id": uid, "username": "erin", "unlocked": True,
                        "attempts_forgiven": 10}  # fmt: skip
    assert await login(PASSWORD) == 200
    # What is counted after the unlock counts again.
    assert [await login("wrong") for _ in range(11)] == [401] * 10 + [429]

    again = output(await revocast(issuer, "user", "unlock", uid))  # by id; nothing left to forgive
    assert (again["user_id"], again["attempts_forgiven"]) == (uid, 10)
    assert await login(PASSWORD) == 200

    admin = await issuer.login("root")
    audit = await issuer.http.get("/v1/admin/audit", headers={
        "Authorization": f"Bearer {admin['access_token']}"})  # fmt: skip
    trail = [(e["action"], e["target"], e["reason"]) for e in audit.json()["entries"]
             if e["action"] == "unlock"]  # fmt: skip
    assert trail == [("unlock", uid, ""), ("unlock", uid, "called support")]

    missing = await revocast(issuer, "user", "unlock", "nobody")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "not_found" in missing.stderr
