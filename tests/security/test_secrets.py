"""Secrets: unguessable, stored hashed, never logged; signing keys only from safe places."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from revocast.errors import SettingsError
from revocast.issuer import create_app
from revocast.issuer.keyring import KeyRing
from revocast.keys import SigningKey, create_signing_key
from revocast.settings import Settings
from tests.conftest import PASSWORD, Issuer
from tests.support.servers import serve


def test_production_refuses_to_invent_its_first_key(tmp_path: Path) -> None:
    settings = Settings.from_values(environment="production", key_dir=str(tmp_path / "empty"))
    with pytest.raises(SettingsError, match="no signing key"):
        KeyRing.from_settings(settings)
    assert not (tmp_path / "empty").exists()  # nothing was generated on the side


def test_production_takes_its_key_from_the_environment(tmp_path: Path) -> None:
    key = SigningKey.generate()
    settings = Settings.from_values(
        environment="production", key_dir=str(tmp_path / "none"), signing_key_pem=key.pem().decode()
    )
    ring = KeyRing.from_settings(settings)
    assert [k.kid for k in ring.all()] == [key.kid]
    assert "BEGIN" not in repr(settings)  # the PEM never shows in a repr or log line


def test_development_generates_a_private_key_file(tmp_path: Path) -> None:
    ring = KeyRing.from_settings(Settings.from_values(key_dir=str(tmp_path / "keys")))
    assert ring.all() == []  # made on first publish, not on load
    key = create_signing_key(tmp_path / "keys")
    assert (tmp_path / "keys" / f"{key.kid}.pem").stat().st_mode & 0o777 == 0o600


def test_a_key_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    create_signing_key(tmp_path / "keys")
    os.chmod(tmp_path / "keys", 0o777)
    with pytest.raises(SettingsError, match="writable by others"):
        KeyRing(tmp_path / "keys")


def test_a_bad_pem_in_the_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not a PEM"):
        KeyRing(tmp_path, env_pem="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")


async def test_refresh_tokens_are_stored_only_as_hashes(issuer: Issuer, redis: Redis) -> None:
    await issuer.add_user("alice")
    tokens = await issuer.login("alice")
    rotated = (await issuer.refresh(tokens["refresh_token"])).json()
    stored = ""
    async for key in redis.scan_iter(f"{issuer.settings.redis.key_prefix}:*"):
        stored += key + repr(await redis.dump(key))
    for secret in (tokens["refresh_token"], rotated["refresh_token"], PASSWORD):
        assert secret not in stored
    assert len(tokens["refresh_token"]) >= 43  # 256 bits of base64url
    assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", tokens["session_id"])  # 144 bits, not a counter


async def test_no_token_password_or_hash_reaches_the_logs(
    settings: Settings, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        issuer = Issuer(url, http, settings, app)
        await issuer.add_user("alice")
        tokens = await issuer.login("alice")
        await http.post("/v1/login", json={"username": "alice", "password": "wrong secret"})
        rotated = (await issuer.refresh(tokens["refresh_token"])).json()
        await issuer.refresh(tokens["refresh_token"])  # a reuse within grace
        await issuer.post_bearer("/v1/logout", rotated["access_token"])
        await http.post("/oauth/revoke", data={"token": rotated["refresh_token"]})
        password_hash = await app.state.ctx.store.users.password_hash(tokens["user_id"])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # the flow did log something
    for secret in (tokens["access_token"], tokens["refresh_token"], rotated["refresh_token"],
                   PASSWORD, "wrong secret", password_hash or "$argon2"):  # fmt: skip
        assert secret not in logged
