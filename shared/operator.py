"""Operator commands: the same scripts as the issuer's routes, so the same events and audit.

Operators act as ``cli:<login name>``; the scripts let them act without a role.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
from typing import Any, Literal

from revocast.clients import DEFAULT_CLIENT_ID, decode, encode, new_client
from revocast.errors import Conflict, InvalidRequest, NotFound, SigningKeyUnavailable
from revocast.settings import Settings
from revocast.store import Reads, Writes

ROTATION_WAIT_S = 10.0  # how long `keys rotate` waits for every live issuer to hold the new key


def operator_name() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry, e.g. in a container
        return "cli:operator"


async def set_blocked(writes: Writes, uid: str, reason: str, *, blocked: bool) -> dict[str, Any]:
    """Block (every session ends, login refused) or unblock a user; with the block's event id
    (an unblock revokes nothing: None)."""
    action: Literal["block", "unblock"] = "block" if blocked else "unblock"
    event_id = await writes.moderate(operator_name(), action, uid, reason=reason)
    return {"user_id": uid, "blocked": blocked, "event_id": event_id or None}


async def sessions(reads: Reads, uid: str) -> dict[str, Any]:
    from revocast.issuer.admin import session_view

    if not await reads.user_exists(uid):
        raise NotFound("no such user")
    return {"user_id": uid, "sessions": [session_view(s) for s in await reads.sessions(uid)]}


async def rotate_key(
    writes: Writes, reads: Reads, settings: Settings, wait_s: float = ROTATION_WAIT_S
) -> dict[str, Any]:
    """Add a key, wait until every live issuer holds it, then make it the one they sign with.

    The key goes to the key directory, or, with a key-encryption key, sealed into
    Redis, where every issuer fetches it. If some live issuer still lacks it after
    ``wait_s``, the key stays published but inactive, and SigningKeyUnavailable
    names the issuers.
    """
    from revocast.issuer.keyring import KeyRing

    ring = KeyRing.from_settings(settings)
    key = ring.create()
    jwk = json.dumps(key.public.jwk)
    await writes.publish_key(key.kid, jwk, sealed=ring.sealed(key), actor=operator_name())
    lacking = await _issuers_lacking(reads, key.kid, wait_s)
    if lacking:
        raise SigningKeyUnavailable(
            f"key {key.kid} is published but NOT active: live issuers {', '.join(lacking)} do "
            f"not hold it after {wait_s:g} s. Share REVOCAST_KEY_DIR with them, or set the same "
            "REVOCAST_KEY_ENCRYPTION_KEY everywhere, then rotate again"
        )
    await writes.publish_key(key.kid, jwk, activate=True, actor=operator_name())
    return {"kid": key.kid, "active": True}


async def _issuers_lacking(reads: Reads, kid: str, wait_s: float) -> list[str]:
    deadline = time.monotonic() + wait_s
    while True:
        lacking = [
            f"{record.get('host', '?')}/{record.get('pid', '?')}"
            for record in (await reads.live_issuers()).values()
            if kid not in record.get("kids", "").split(",")
        ]
        if not lacking or time.monotonic() > deadline:
            return lacking
        await asyncio.sleep(0.1)


async def revoke_key(
    writes: Writes, reads: Reads, settings: Settings, kid: str, reason: str
) -> dict[str, Any]:
    """Withdraw a key; if it is the active one, rotate first so issuers keep signing."""
    rotated = None
    if await reads.signing_kid() == kid:
        rotated = (await rotate_key(writes, reads, settings))["kid"]
    await writes.revoke_key(kid, operator_name(), reason)
    return {"kid": kid, "revoked": True, "now_active": rotated or await reads.signing_kid()}


async def list_keys(reads: Reads) -> dict[str, Any]:
    published, revoked, active = await reads.keys_overview()
    return {
        "keys": [
            {"kid": kid, "active": kid == active, "revoked": kid in revoked}
            for kid in sorted(published)
        ]
    }


async def add_client(writes: Writes, reads: Reads, name: str, confidential: bool) -> dict[str, Any]:
    """Register a client; a confidential one's secret is in this answer and nowhere else."""
    try:
        client, secret = new_client(name, confidential=confidential)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    known = [decode(record) for record in (await reads.clients()).values()]
    if name == DEFAULT_CLIENT_ID or any(c.name == name for c in known):
        raise Conflict(f"a client named {name} exists")
    if not await writes.add_client(client.client_id, encode(client)):
        raise Conflict("client id taken: try again")
    answer = client.public_view()
    if secret is not None:
        answer["client_secret"] = secret  # shown once: Redis keeps only its hash
    return answer


async def list_clients(reads: Reads) -> dict[str, Any]:
    clients = sorted((decode(r) for r in (await reads.clients()).values()), key=lambda c: c.name)
    built_in = {"client_id": DEFAULT_CLIENT_ID, "name": DEFAULT_CLIENT_ID,
                "confidential": False, "built_in": True}  # fmt: skip
    return {"clients": [built_in, *(c.public_view() for c in clients)]}


async def remove_client(writes: Writes, reads: Reads, name_or_id: str) -> dict[str, Any]:
    for client in (decode(r) for r in (await reads.clients()).values()):
        if name_or_id in (client.client_id, client.name):
            await writes.remove_client(client.client_id)
            return {"removed": client.public_view()}
    raise NotFound(f"no client {name_or_id} (the built-in {DEFAULT_CLIENT_ID} cannot be removed)")
