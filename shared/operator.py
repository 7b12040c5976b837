"""Operator commands: the same scripts as the issuer's routes, so the same events and audit.

Operators act as ``cli:<login name>``; the scripts let them act without a role.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

from revocast.keys import create_signing_key
from revocast.settings import Settings
from revocast.store import Store


def operator_name() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry, e.g. in a container
        return "cli:operator"


async def set_blocked(
    store: Store, settings: Settings, uid: str, reason: str, *, blocked: bool
) -> dict[str, Any]:
    """Block (every session ends, login refused) or unblock a user."""
    await store.moderate(
        operator_name(),
        "block" if blocked else "unblock",
        uid,
        reason=reason,
        lifetime_ms=settings.revocation_lifetime_ms,
        retention_ms=settings.stream_retention_ms,
    )
    return {"user_id": uid, "blocked": blocked}


async def sessions(store: Store, settings: Settings, uid: str) -> dict[str, Any]:
    from revocast.errors import NotFound
    from revocast.issuer.admin import session_view

    if not await store.user_exists(uid):
        raise NotFound("no such user")
    return {"user_id": uid, "sessions": [session_view(s) for s in await store.sessions(uid)]}


async def rotate_key(store: Store, settings: Settings) -> dict[str, Any]:
    """Add a key to the key directory and make it the one issuers sign with."""
    key = create_signing_key(Path(settings.key_dir))
    await store.publish_key(
        key.kid,
        json.dumps(key.public.jwk),
        "",  # the epoch is the issuer's to set
        settings.stream_retention_ms,
        activate=True,
        actor=operator_name(),
    )
    return {"kid": key.kid, "active": True}


async def revoke_key(store: Store, settings: Settings, kid: str, reason: str) -> dict[str, Any]:
    """Withdraw a key; if it is the active one, rotate first so issuers keep signing."""
    rotated = None
    if await store.signing_kid() == kid:
        rotated = (await rotate_key(store, settings))["kid"]
    await store.revoke_key(kid, settings.stream_retention_ms, operator_name(), reason)
    return {"kid": kid, "revoked": True, "now_active": rotated or await store.signing_kid()}


async def list_keys(store: Store, settings: Settings) -> dict[str, Any]:
    published = await store.redis.hgetall(store.keys.jwks)
    revoked = set(await store.redis.zrange(store.keys.revoked_keys, 0, -1))
    active = await store.signing_kid()
    return {
        "keys": [
            {"kid": kid, "active": kid == active, "revoked": kid in revoked}
            for kid in sorted(published)
        ]
    }
