"""Shared set-up for benchmarks: a signing key published in a private Redis, minted tokens."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from revocast.connection import redis_client
from revocast.issuer.keyring import KeyRing
from revocast.issuer.tokens import TokenMinter, new_session_id
from revocast.keys import create_signing_key
from revocast.keyspace import Keyspace
from revocast.settings import Settings
from revocast.store import Store


@dataclass(frozen=True)
class Minted:
    token: str
    uid: str
    sid: str
    jti: str


@dataclass
class Rig:
    """One Ed25519 key, published through ``Store.publish_key`` (so verifiers learn it from
    Redis, as in production), and a minter for access tokens signed with it."""

    settings: Settings
    kid: str
    public: Ed25519PublicKey
    jwk_json: str
    minter: TokenMinter
    redis_version: str

    def mint(self, roles: tuple[str, ...] = ("reader",)) -> Minted:
        uid, sid = secrets.token_hex(16), new_session_id()
        token = self.minter.mint(
            uid=uid, sid=sid, roles=list(roles), issued_ms=int(time.time() * 1000), kid=self.kid
        )
        import jwt  # local: only for reading back the jti

        jti = str(jwt.decode(token, options={"verify_signature": False})["jti"])
        return Minted(token, uid, sid, jti)


async def make_rig(settings: Settings, key_dir: Path) -> Rig:
    keys = KeyRing(key_dir)
    key = create_signing_key(keys.key_dir)
    keys.reload()
    client = redis_client(settings.redis_url or "")
    try:
        store = Store(client, Keyspace(settings.key_prefix))
        jwk_json = json.dumps(key.public.jwk)
        await store.publish_key(
            key.kid, jwk_json, secrets.token_hex(16), settings.stream_retention_ms
        )
        version = str((await client.info("server")).get("redis_version", "?"))
    finally:
        await client.aclose()
    return Rig(settings, key.kid, key.public.key, jwk_json, TokenMinter(settings, keys), version)
