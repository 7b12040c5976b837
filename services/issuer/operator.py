"""Operator commands: the same scripts as the issuer's routes, so the same events and audit.

Operators act as ``cli:<login name>``; the scripts let them act without a role.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import time
from collections.abc import Sequence
from typing import Any, Literal

from revocast import usernames
from revocast.clients import DEFAULT_CLIENT_ID, decode, encode, new_client
from revocast.errors import Conflict, InvalidRequest, NotFound, SigningKeyUnavailable
from revocast.events import ActorKind
from revocast.ids import USER_ID
from revocast.issuer.admin import iso, session_view
from revocast.issuer.keyring import KeyRing
from revocast.issuer.passwords import Passwords
from revocast.issuer.users import add_user, check_password_rules
from revocast.roles import OPERATOR_PREFIX
from revocast.settings import Settings
from revocast.store import Store

LINK_ID = re.compile(r"[0-9a-f]{40}")  # keyspace.upstream_digest
ROTATION_WAIT_S = 10.0  # how long `keys rotate` waits for every live issuer to hold the new key


def operator_name() -> str:
    try:
        return f"{OPERATOR_PREFIX}{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry, e.g. in a container
        return f"{OPERATOR_PREFIX}operator"


async def set_blocked(store: Store, uid: str, reason: str, *, blocked: bool) -> dict[str, Any]:
    """Block (every session ends, login refused) or unblock a user; with the block's event id
    (an unblock revokes nothing: None)."""
    action: Literal["block", "unblock"] = "block" if blocked else "unblock"
    event_id = await store.authority.moderate(
        operator_name(), action, uid, reason=reason, actor_kind=ActorKind.OPERATOR
    )
    return {"user_id": uid, "blocked": blocked, "event_id": event_id or None}


async def sessions(store: Store, uid: str) -> dict[str, Any]:
    return {
        "user_id": uid,
        "sessions": [session_view(s) for s in await store.sessions.of_user(uid)],
    }


async def user_id(store: Store, name_or_id: str) -> str:
    """The id of the user named ``name_or_id``, or ``name_or_id`` itself if it is a user's
    id (ids are 32 hex digits: a name that looks like an existing id loses to it)."""
    if USER_ID.fullmatch(name_or_id) and await store.users.exists(name_or_id):
        return name_or_id
    found = await store.users.find(name_or_id)
    if found is None:
        raise NotFound(
            f"no user named {name_or_id!r} and no user with that id: "
            "`revocast user list` shows them all"
        )
    return found[0]


def _user_view(uid: str, record: dict[str, str]) -> dict[str, Any]:
    try:
        roles = json.loads(record.get("roles", "[]"))
    except ValueError:
        roles = []
    return {
        "user_id": uid,
        "username": record.get("username", ""),
        "roles": roles,
        "blocked": record.get("blocked") == "1",
        "created_at": iso(record.get("created_ms", 0)),
    }


async def create_user(
    store: Store, settings: Settings, name: str, password: str, roles: list[str]
) -> str:
    """The new user's id (printed alone, for scripts)."""
    return await add_user(store, Passwords(settings.passwords), name, password, roles,
                          actor=operator_name())  # fmt: skip


async def list_users(store: Store) -> dict[str, Any]:
    return {"users": [_user_view(uid, record) for uid, record in await store.users.every()]}


async def show_user(store: Store, name_or_id: str) -> dict[str, Any]:
    uid = await user_id(store, name_or_id)
    view = _user_view(uid, await store.users.record(uid))
    return view | {"sessions": [session_view(s) for s in await store.sessions.of_user(uid)]}


async def set_password(
    store: Store, settings: Settings, name_or_id: str, password: str
) -> dict[str, Any]:
    """A new password; every session of the user ends, as after a reset should."""
    uid = await user_id(store, name_or_id)
    check_password_rules(password)
    ended, event_id = await store.users.change_password(
        uid,
        await Passwords(settings.passwords).hash(password),
        keep_sid="",
        actor=operator_name(),
        actor_kind=ActorKind.OPERATOR,
    )
    return {"user_id": uid, "password_changed": True, "sessions_ended": ended,
            "event_id": event_id}  # fmt: skip


async def remove_user(store: Store, name_or_id: str, reason: str) -> dict[str, Any]:
    """Delete the user: every session and token ends, and the name is free again."""
    uid = await user_id(store, name_or_id)
    username = await store.users.username_of(uid) or ""
    event_id = await store.users.remove(
        operator_name(), uid, username, reason, actor_kind=ActorKind.OPERATOR
    )
    return {"user_id": uid, "username": username, "removed": True, "event_id": event_id}


async def unlock_user(store: Store, name_or_id: str, reason: str) -> dict[str, Any]:
    """Forgive every login attempt counted for the user: the delay for new addresses ends,
    and no address stays refused for this user (the client-address limit is not the
    user's: it stays). Audited."""
    uid = await user_id(store, name_or_id)
    username = usernames.normalize(await store.users.username_of(uid) or "")
    forgiven = await store.sessions.throttle.unlock(username, uid, operator_name(), reason)
    return {"user_id": uid, "username": username, "unlocked": True} | forgiven


async def rotate_key(
    store: Store, settings: Settings, wait_s: float = ROTATION_WAIT_S
) -> dict[str, Any]:
    """Add a key, wait until every live issuer announces that it holds it, then make it the
    one they sign with.

    The key goes to the key directory, or, with a key-encryption key, sealed into
    Redis, where every issuer fetches it. Issuers announce the kids they hold in
    their presence record; if some live issuer still lacks the key after ``wait_s``,
    it stays published but inactive, and SigningKeyUnavailable names the issuers and
    the key directory each reads. With no live issuer (a first key before the first
    start), the key becomes active at once and the answer says where it is.
    """
    ring = KeyRing.from_settings(settings)
    key = ring.create()
    jwk = json.dumps(key.public.jwk)
    await store.signing.publish_key(key.kid, jwk, sealed=ring.sealed(key), actor=operator_name())
    holding, lacking = await _issuers_holding(store, key.kid, wait_s)
    if lacking:
        raise SigningKeyUnavailable(
            f"key {key.kid} is published but NOT active: live issuers {', '.join(lacking)} do "
            f"not hold it after {wait_s:g} s; it is in {_stored_in(ring)}. Give them the same "
            "REVOCAST_KEY_DIR, or set the same REVOCAST_KEY_ENCRYPTION_KEY everywhere, then "
            "rotate again"
        )
    await store.signing.publish_key(key.kid, jwk, activate=True, actor=operator_name())
    answer: dict[str, Any] = {"kid": key.kid, "active": True, "stored_in": _stored_in(ring),
                              "issuers_holding_it": holding}  # fmt: skip
    if holding == 0:
        answer["note"] = (
            "no issuer is running: the issuers you start must read keys from "
            f"{_stored_in(ring)}, or they cannot sign"
        )
    return answer


def _stored_in(ring: KeyRing) -> str:
    return "Redis, sealed with REVOCAST_KEY_ENCRYPTION_KEY" if ring.kek else str(ring.key_dir)


async def _issuers_holding(store: Store, kid: str, wait_s: float) -> tuple[int, list[str]]:
    """How many live issuers announce ``kid``, and those that do not (with their key
    directory), once all do or ``wait_s`` passes."""
    deadline = time.monotonic() + wait_s
    while True:
        issuers = list((await store.presence.live_issuers()).values())
        lacking = [
            f"{record.get('host', '?')}/{record.get('pid', '?')} "
            f"(keys in {record.get('key_dir', '?')})"
            for record in issuers
            if kid not in record.get("kids", "").split(",")
        ]
        if not lacking or time.monotonic() > deadline:
            return len(issuers) - len(lacking), lacking
        await asyncio.sleep(0.1)


async def revoke_key(store: Store, settings: Settings, kid: str, reason: str) -> dict[str, Any]:
    """Withdraw a key; if it is the active one, rotate first so issuers keep signing."""
    rotated = None
    if await store.signing.signing_kid() == kid:
        rotated = (await rotate_key(store, settings))["kid"]
    event_id = await store.signing.revoke_key(
        kid, operator_name(), reason, actor_kind=ActorKind.OPERATOR
    )
    return {"kid": kid, "revoked": True, "now_active": rotated or await store.signing.signing_kid(),
            "event_id": event_id}  # fmt: skip


async def list_keys(store: Store) -> dict[str, Any]:
    published, revoked, active = await store.signing.keys_overview()
    return {
        "keys": [
            {"kid": kid, "active": kid == active, "revoked": kid in revoked}
            for kid in sorted(published)
        ]
    }


async def add_client(
    store: Store, name: str, confidential: bool, roles: Sequence[str] = ()
) -> dict[str, Any]:
    """Register a client; a confidential one's secret is in this answer and nowhere else."""
    try:
        client, secret = new_client(name, confidential=confidential, roles=roles)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    known = [decode(record) for record in (await store.clients.every()).values()]
    if name == DEFAULT_CLIENT_ID or any(c.name == name for c in known):
        raise Conflict(
            f"a client named {name} exists: pick another name, or `revocast client remove` it"
        )
    if not await store.clients.add(client.client_id, encode(client)):
        raise Conflict("client id taken: try again")
    answer = client.public_view()
    if secret is not None:
        answer["client_secret"] = secret  # shown once: Redis keeps only its hash
    return answer


async def list_clients(store: Store) -> dict[str, Any]:
    clients = sorted(
        (decode(r) for r in (await store.clients.every()).values()), key=lambda c: c.name
    )
    built_in = {"client_id": DEFAULT_CLIENT_ID, "name": DEFAULT_CLIENT_ID,
                "confidential": False, "roles": [], "built_in": True}  # fmt: skip
    return {"clients": [built_in, *(c.public_view() for c in clients)]}


async def remove_client(store: Store, name_or_id: str) -> dict[str, Any]:
    client_id, record = await _find_client(store, name_or_id, "removed")
    await store.clients.remove(client_id)
    return {"removed": decode(record).public_view()}


async def set_client_roles(store: Store, name_or_id: str, roles: Sequence[str]) -> dict[str, Any]:
    """Replace the roles a client holds (``introspect``: it may introspect any token)."""
    client_id, record = await _find_client(store, name_or_id, "given roles")
    try:
        changed = decode(record).with_roles(roles)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if not await store.clients.replace(client_id, record, encode(changed)):
        raise Conflict(f"client {name_or_id} changed or went meanwhile: run the command again")
    return changed.public_view()


async def _find_client(store: Store, name_or_id: str, done: str) -> tuple[str, str]:
    """(client id, record) of a registered client, by name or id."""
    for client_id, record in (await store.clients.every()).items():
        if name_or_id in (client_id, decode(record).name):
            return client_id, record
    raise NotFound(
        f"no client {name_or_id} (the built-in {DEFAULT_CLIENT_ID} cannot be {done}): "
        "`revocast client list` shows them"
    )


async def upstream_links(store: Store, name_or_id: str | None) -> dict[str, Any]:
    """The links between the upstream IdP's users and local users (one user's, if named)."""
    uid = await user_id(store, name_or_id) if name_or_id else None
    links = await store.signals.upstream_links(uid)
    names = {u: await store.users.username_of(u) or "" for u in {link.user_id for link in links}}
    views = [
        {
            "link_id": link.link_id,
            "user_id": link.user_id,
            "username": names[link.user_id],  # "" once the user is removed
            "iss": link.iss,
            "sub": link.sub,
            "linked_at": None if link.linked_ms is None else iso(link.linked_ms),
        }
        for link in links
    ]
    return {"links": views}


async def upstream_unlink(
    store: Store, name_or_id: str, link_id: str, reason: str
) -> dict[str, Any]:
    """Remove a link, audited: the IdP's logouts of that user end nothing here any more, and
    a later login with its ID token (and that login's nonce) may link it again. Revokes
    nothing. A removed user's link goes by the user id ``upstream links`` shows."""
    if not LINK_ID.fullmatch(link_id):
        raise InvalidRequest(
            f"{link_id!r} is not a link id: give the 40 hex digits `revocast upstream links` shows"
        )
    try:
        uid = await user_id(store, name_or_id)
    except NotFound:
        if not USER_ID.fullmatch(name_or_id):
            raise
        uid = name_or_id  # a removed user's dangling link
    if not await store.signals.unlink_upstream(uid, link_id, operator_name(), reason):
        raise NotFound(
            f"{name_or_id} has no link {link_id}: `revocast upstream links {name_or_id}` "
            "shows the user's links"
        )
    return {"user_id": uid, "link_id": link_id, "unlinked": True}
