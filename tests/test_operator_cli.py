"""Operator commands talk to Redis with the issuer's scripts: same events, same audit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from revocast.errors import TokenRejected
from tests.conftest import PASSWORD, Issuer, VerifierFactory
from tests.support.servers import eventually


async def revocast(
    issuer: Issuer, *args: str, stdin: str = "", cwd: Path | None = None, **env_changes: str
) -> subprocess.CompletedProcess[str]:
    """The command as a process, awaited in a thread. A blocking call would stall this test's
    event loop, which also runs the issuer and the verifiers under test: on a busy host a CLI
    call took seconds, the verifiers read nothing meanwhile, and a check after it found
    them stale (the flaky failure of issue 20, point 10)."""
    settings = issuer.settings
    deployment = {
        "REDIS_URL": settings.redis.redis_url or "",
        "REVOCAST_KEY_PREFIX": settings.redis.key_prefix,
        "REVOCAST_KEY_DIR": settings.signing.key_dir,
    }
    env = os.environ | deployment | env_changes
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "revocast", *args],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def output(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_block_unblock_and_sessions_from_the_command_line(
    issuer: Issuer, make_verifier: VerifierFactory, redis: Redis
) -> None:
    uid = await issuer.add_user("alice")
    admin = await issuer.add_user("root", ["admin"])
    verifiers = [await make_verifier(), await make_verifier()]
    tokens = await issuer.login("alice")

    listed = output(await revocast(issuer, "sessions", uid))
    assert [s["session_id"] for s in listed["sessions"]] == [tokens["session_id"]]

    blocked = output(await revocast(issuer, "block", uid, "--reason", "abuse"))
    assert blocked == {"user_id": uid, "blocked": True, "event_id": blocked["event_id"]}
    assert blocked["event_id"].startswith("p0.")
    for verifier in verifiers:

        def dead(v: Any = verifier) -> bool:
            try:
                v.verify(tokens["access_token"])
            except TokenRejected as exc:
                return exc.code == "user_revoked"
            return False

        await eventually(dead)
    login = await issuer.http.post("/v1/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 403

    stream = await redis.xrevrange(issuer.ctx.store.keys.of(uid).stream.events, count=1)
    (_, fields), *_ = stream or [("", {})]
    assert fields is not None
    assert (fields["type"], fields["uid"], fields["reason"]) == ("user_revoked", uid, "blocked")

    output(await revocast(issuer, "unblock", uid))
    assert (await issuer.login("alice"))["user_id"] == uid

    root = await issuer.login("root")
    audit = await issuer.http.get(
        "/v1/admin/audit", headers={"Authorization": f"Bearer {root['access_token']}"}
    )
    entries = [(e["action"], e["target"], e["reason"]) for e in audit.json()["entries"]]
    assert entries == [("unblock", uid, ""), ("block", uid, "abuse")]
    assert all(e["actor"].startswith("cli:") for e in audit.json()["entries"])
    assert admin


async def test_operator_errors_are_clear(issuer: Issuer) -> None:
    missing = await revocast(issuer, "block", "nosuchuser")
    assert missing.returncode == 1
    assert "not_found" in missing.stderr
    assert "Traceback" not in missing.stderr
    unknown_key = await revocast(issuer, "keys", "revoke", "nosuchkid")
    assert unknown_key.returncode == 1
    assert "not_found" in unknown_key.stderr


async def test_keys_from_the_command_line(issuer: Issuer) -> None:
    before = output(await revocast(issuer, "keys", "list"))["keys"]
    assert [k["active"] for k in before] == [True]
    rotated = output(await revocast(issuer, "keys", "rotate"))
    after = output(await revocast(issuer, "keys", "list"))["keys"]
    assert {k["kid"]: k["active"] for k in after} == {
        before[0]["kid"]: False, rotated["kid"]: True,
    }  # fmt: skip
    # "--": a kid is base64url and may start with "-" (one kid in 64), which argparse
    # would read as an option.
    revoked = output(
        await revocast(issuer, "keys", "revoke", "--reason", "leak", "--", before[0]["kid"])
    )
    assert revoked == {"kid": before[0]["kid"], "revoked": True, "now_active": rotated["kid"],
                       "event_id": revoked["event_id"]}  # fmt: skip
    assert revoked["event_id"].startswith("global.")
    again = output(
        await revocast(issuer, "keys", "revoke", "--reason", "leak", "--", before[0]["kid"])
    )
    assert again == revoked  # a repeat: the same answer, nothing written


async def test_rotate_refuses_a_key_the_running_issuers_cannot_load(
    issuer: Issuer, tmp_path: Path
) -> None:
    """The bug this guards: a rotate run from another folder wrote its key there, made it
    active, and every login failed. Issuers announce the keys they hold; rotate checks."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = output(await revocast(issuer, "keys", "list"))["keys"]
    # A relative key directory, given explicitly: elsewhere/keys.
    refused = await revocast(issuer, "keys", "rotate", "--wait-s", "1",
                             cwd=elsewhere, REVOCAST_KEY_DIR="keys")  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "NOT active" in refused.stderr
    assert str(elsewhere / "keys") in refused.stderr  # where this command put it
    assert issuer.settings.signing.key_dir in refused.stderr  # where the issuer reads keys
    after = output(await revocast(issuer, "keys", "list"))["keys"]
    assert [k["kid"] for k in after if k["active"]] == [k["kid"] for k in before if k["active"]]
    assert (await issuer.http.get("/readyz")).status_code == 200  # logins still work
