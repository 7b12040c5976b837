"""Revocation events as they travel on the Redis Stream.

Each stream entry is a flat field map written by a Lua script (so the state
change and its event are one atomic step) and decoded here into a tagged,
frozen msgspec Struct. Schema evolution follows msgspec's rules: new fields get
defaults, a field never changes type, and ``v`` is bumped when meaning changes.
Times are Redis server milliseconds since the epoch.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec

SCHEMA_VERSION: Final = 1


class Reason(StrEnum):
    """The reasons the scripts themselves give a revocation (the others are the caller's):
    one table, given to Lua as ``REASON_<NAME>`` locals (``lua_vocabulary``)."""

    # the user's other sessions, at a password change
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a reason, not a password)
    SESSION_LIMIT = "session_limit"  # the oldest sessions, past REVOCAST_MAX_SESSIONS_PER_USER
    REFRESH_REUSE = "refresh_reuse"  # a refresh token used again after its grace window
    BLOCKED = "blocked"  # every session of a blocked user
    REMOVED = "removed"  # every session of a removed user


class ActorKind(StrEnum):
    """Who a revocation comes from, as its event says (``actor_kind``): one table, given to
    Lua as ``ACTOR_<NAME>`` locals (``lua_vocabulary``). An SSF receiver reads it as CAEP's
    ``initiating_entity`` (``revocast.issuer.security_events``)."""

    USER = "user"  # the session's own user: logout, logout-all, a password change, a revoke
    MODERATOR = "moderator"  # a moderator's call: a block, a session ended
    ADMIN = "admin"  # an admin's call: roles, a block, a session ended
    OPERATOR = "operator"  # the revocast command (``cli:`` actors): keys, users, passwords
    UPSTREAM = "upstream"  # the upstream IdP: a back-channel logout, a pushed CAEP event
    POLICY = "policy"  # revocast's own rules: refresh-token reuse, the session limit
    SYSTEM = "system"  # revocast's recovery: the keys of a deployment that lost its state


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Fields every event carries."""

    v: int = SCHEMA_VERSION
    ts_ms: int  # when the event was written, to measure propagation


class SessionRevoked(Event, tag="session_revoked", frozen=True):
    """Every token of session ``sid`` is dead; forget it after ``until_ms``."""

    sid: str
    uid: str
    at_ms: int
    until_ms: int
    reason: str = ""
    actor_kind: str = ""  # an ActorKind; "" in entries written before it (and never else)


class UserRevoked(Event, tag="user_revoked", frozen=True):
    """Every token of ``uid`` issued at or before ``not_before_ms`` is dead."""

    uid: str
    not_before_ms: int
    until_ms: int
    reason: str = ""
    actor_kind: str = ""


class RolesChanged(Event, tag="roles_changed", frozen=True):
    """Tokens of ``uid`` issued at or before ``not_before_ms`` carry stale roles: refresh."""

    uid: str
    not_before_ms: int
    until_ms: int
    actor_kind: str = ""


class KeyPublished(Event, tag="key_published", frozen=True):
    """A new public signing key verifiers should trust (JWK as JSON text)."""

    kid: str
    jwk: str


class KeyRevoked(Event, tag="key_revoked", frozen=True):
    """Every token signed with ``kid`` is dead, for good."""

    kid: str
    at_ms: int
    actor_kind: str = ""


AnyEvent = SessionRevoked | UserRevoked | RolesChanged | KeyPublished | KeyRevoked


class UnknownEvent(Exception):
    """An entry this verifier cannot understand (newer schema, or corrupt)."""


def decode_entry(fields: dict[str, str]) -> AnyEvent:
    """Turn one stream entry's field map into its event Struct."""
    try:
        event: AnyEvent = msgspec.convert(fields, AnyEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise UnknownEvent(f"{fields.get('type')!r}: {exc}") from None
    if event.v > SCHEMA_VERSION:
        raise UnknownEvent(f"{fields.get('type')!r} has schema v{event.v} > {SCHEMA_VERSION}")
    return event


def event_kinds() -> dict[str, str]:
    """Each event's type as the stream spells it, by its Lua name (``SESSION_REVOKED``)."""
    kinds: dict[str, str] = {}
    for struct in (SessionRevoked, UserRevoked, RolesChanged, KeyPublished, KeyRevoked):
        tag = struct.__struct_config__.tag
        assert isinstance(tag, str)
        kinds[tag.upper()] = tag
    return kinds


def lua_vocabulary() -> str:
    """The event version, the event kinds, the scripts' reasons and the actor kinds as Lua
    locals: this module's values, never copies (prepended to every script)."""
    lines = [f"local EVENT_VERSION = '{SCHEMA_VERSION}'  -- revocast.events.SCHEMA_VERSION"]
    lines += [f"local {name} = '{tag}'  -- revocast.events" for name, tag in event_kinds().items()]
    lines += [f"local REASON_{r.name} = '{r.value}'  -- revocast.events.Reason" for r in Reason]
    lines += [
        f"local ACTOR_{a.name} = '{a.value}'  -- revocast.events.ActorKind" for a in ActorKind
    ]
    return "\n".join(lines)
