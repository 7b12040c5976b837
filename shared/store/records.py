"""What the store's calls return: plain frozen records, no Redis types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from revocast.keyspace import StreamKeys, upstream_digest
from revocast.proof import EventRef


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One stream's revocation state at stream position ``last_id`` (or one page of it:
    ``Follow.snapshot_pages``)."""

    stream: str  # "global" or "p<index>"
    epoch: str | None
    heartbeat_ms: int | None  # the primary's last heartbeat, as this server has it
    now_ms: int  # this server's time
    last_id: str  # the stream's last-generated id: read on from here
    link: str | None  # the last entry's link: the next entry's prev must be this
    sessions: dict[str, int] = field(default_factory=dict)  # sid -> until_ms
    users: dict[str, tuple[int, int]] = field(default_factory=dict)  # uid -> (nb_ms, until_ms)
    roles: dict[str, tuple[int, int]] = field(default_factory=dict)  # uid -> (at_ms, until_ms)
    revoked_keys: dict[str, int] = field(default_factory=dict)  # kid -> at_ms
    jwks: dict[str, str] = field(default_factory=dict)  # kid -> JWK JSON


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh token stands for: its session, user and client, as Redis has them."""

    sid: str
    uid: str
    client_id: str
    live: bool  # not yet rotated (a used one is still known, for the grace window)
    issued_ms: int | None  # None for tokens written before the field existed


@dataclass(frozen=True, slots=True)
class Status:
    """Where a stream ends on the server read, and what proves how current that server is."""

    link: str | None  # the last entry's link
    epoch: str | None
    heartbeat_ms: int | None  # the primary's last heartbeat, as this server has it
    now_ms: int  # this server's time


@dataclass(frozen=True, slots=True)
class RefreshResult:
    status: Literal["rotated", "grace", "reused"]
    sid: str
    uid: str
    now_ms: int
    roles_json: str
    sealed_next: str
    scope_json: str  # the roles granted at login ("" when all of them)
    status_idx: int  # the session's status list index, which the new access token names


@dataclass(frozen=True, slots=True)
class Power:
    """A user's authority over others after a change: to copy to every partition."""

    uid: str
    old_level: str
    level: str  # "admin", "moderator" or "" (none)
    version: int


@dataclass(frozen=True, slots=True)
class UpstreamLink:
    """An upstream IdP's user, and at a login its session, as an ID token names them."""

    issuer: str
    sub: str
    sid: str | None = None

    @property
    def link_id(self) -> str:
        """What names the link in keys and to operators: a digest, never the IdP's text."""
        return upstream_digest(self.issuer, self.sub)


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A link as an operator lists it. ``iss``, ``sub`` and ``linked_ms`` are None for a
    link made before links were recorded (only its digest is known)."""

    link_id: str
    user_id: str
    iss: str | None = None
    sub: str | None = None
    linked_ms: int | None = None


def event_id(stream: StreamKeys, entry_id: object) -> str:
    """A revoking script's reply (its stream entry id) as the ``EventRef`` text callers get."""
    return str(EventRef.of(stream.name, str(entry_id)))
