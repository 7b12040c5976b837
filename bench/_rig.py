"""Shared set-up for benchmarks: a signing key published in a private Redis, minted tokens."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.asyncio import Redis

from revocast.ids import new_session_id
from revocast.issuer.keyring import KeyRing
from revocast.issuer.tokens import TokenMinter
from revocast.keys import create_signing_key
from revocast.keyspace import Keyspace
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast_tools.redis_server import RedisServer


@dataclass(frozen=True)
class Minted:
    token: str
    uid: str
    sid: str
    jti: str


@dataclass
class Rig:
    """One Ed25519 key, published through ``Store.signing.publish_key`` (then ``align_epochs``, so
    verifiers learn it from Redis, as in production), and a minter for access tokens signed
    with it. ``keys`` is the deployment's key layout (its partition count read from Redis)."""

    settings: Settings
    kid: str
    public: Ed25519PublicKey
    jwk_json: str
    minter: TokenMinter
    redis_version: str
    keys: Keyspace

    def mint(self, roles: tuple[str, ...] = ("reader",)) -> Minted:
        uid = secrets.token_hex(16)
        sid = new_session_id(self.keys, uid)  # in its user's partition, as the issuer draws it
        token = self.minter.mint(
            uid=uid, sid=sid, roles=list(roles), issued_ms=int(time.time() * 1000), kid=self.kid
        )
        import jwt  # local: only for reading back the jti

        jti = str(jwt.decode(token, options={"verify_signature": False})["jti"])
        return Minted(token, uid, sid, jti)


async def server_info(backend: Backend) -> dict[str, Any]:
    """``INFO server`` of the Redis server holding the deployment's global keys."""

    async def info(client: Redis) -> dict[str, Any]:
        return dict(await client.info("server"))

    return await backend.on_primary(backend.keys.global_.jwks, info)


async def make_rig(settings: Settings, key_dir: Path) -> Rig:
    ring = KeyRing(key_dir)
    key = create_signing_key(ring.key_dir)
    ring.reload()
    backend = Backend(settings)
    try:
        keys = await backend.start()
        store = Store(backend)
        jwk_json = json.dumps(key.public.jwk)
        await store.signing.publish_key(key.kid, jwk_json, secrets.token_hex(16))
        await store.signing.align_epochs()  # every partition gets the deployment's epoch
        version = str((await server_info(backend)).get("redis_version", "?"))
    finally:
        await backend.aclose()
    minter = TokenMinter(settings.tokens, ring)
    return Rig(settings, key.kid, key.public.key, jwk_json, minter, version, keys)


@dataclass
class TokenBench:
    """A private redis-server with a published key, one token for it, and the environment a
    ``revocast`` process needs to check that token there."""

    redis_server: RedisServer
    rig: Rig
    minted: Minted
    env: dict[str, str]


@contextlib.asynccontextmanager
async def token_bench(tmp: Path) -> AsyncIterator[TokenBench]:
    redis_server = RedisServer(tmp / "redis", appendonly=False)
    redis_server.start()
    try:
        prefix = f"bench{uuid.uuid4().hex[:12]}"
        settings = Settings.from_values(
            redis_url=redis_server.url, key_prefix=prefix, access_ttl_s=3600
        )
        rig = await make_rig(settings, tmp / "keys")
        env = os.environ | {
            "REDIS_URL": redis_server.url,
            "REVOCAST_KEY_PREFIX": prefix,
            "REVOCAST_ACCESS_TTL_S": "3600",
        }
        yield TokenBench(redis_server, rig, rig.mint(), env)
    finally:
        redis_server.stop()
