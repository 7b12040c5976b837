"""OAuth clients: the applications that use revocast's endpoints (RFC 6749 §2).

A *public* client (a browser app, a mobile app) has no secret. A *confidential* one (a
server) gets a secret, shown once when it is added; Redis keeps only its SHA-256 (the
secret is 256 random bits, so a fast hash is enough). ``revocast`` is the built-in public
client that calls without a ``client_id`` belong to.

A confidential client introspects the tokens issued to it; one that holds the role
``introspect`` (given by an operator: ``revocast client roles``) introspects any token, as
a resource server checking the tokens presented to it does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from typing import Final

import msgspec

from revocast.roles import INTROSPECT

DEFAULT_CLIENT_ID: Final = "revocast"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CLIENT_ROLES: Final = frozenset({INTROSPECT})  # the roles a client may hold


class Client(msgspec.Struct, frozen=True):
    client_id: str
    name: str
    confidential: bool
    created_ms: int
    secret_sha256: str | None = None
    roles: tuple[str, ...] = ()  # a subset of CLIENT_ROLES; clients added before have none

    def public_view(self) -> dict[str, object]:
        return {"client_id": self.client_id, "name": self.name,
                "confidential": self.confidential, "created_ms": self.created_ms,
                "roles": list(self.roles)}  # fmt: skip

    def with_roles(self, roles: Iterable[str]) -> Client:
        """The same client holding ``roles`` instead; ValueError for roles it cannot hold."""
        return msgspec.structs.replace(self, roles=checked_roles(roles, self.confidential))

    def secret_matches(self, secret: str) -> bool:
        if self.secret_sha256 is None:
            return False
        given = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(given, self.secret_sha256)


def checked_roles(roles: Iterable[str], confidential: bool) -> tuple[str, ...]:
    """``roles``, sorted; ValueError unless a confidential client may hold them all."""
    wanted = tuple(sorted(set(roles)))
    if not set(wanted) <= CLIENT_ROLES:
        raise ValueError(
            f"a client holds only the roles {', '.join(sorted(CLIENT_ROLES))}: leave out "
            f"{', '.join(sorted(set(wanted) - CLIENT_ROLES))}"
        )
    if wanted and not confidential:
        raise ValueError(
            "a public client cannot prove who it is, so it holds no role: add a "
            "--confidential client for this"
        )
    return wanted


def new_client(
    name: str, *, confidential: bool, roles: Iterable[str] = ()
) -> tuple[Client, str | None]:
    """A new client and, for a confidential one, its secret (never stored as such)."""
    held = checked_roles(roles, confidential)
    if not NAME.fullmatch(name):
        raise ValueError(
            "a client name is 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a "
            "letter or digit: pick another one"
        )
    secret = secrets.token_urlsafe(32) if confidential else None
    client = Client(
        client_id=f"c_{secrets.token_urlsafe(16)}",
        name=name,
        confidential=confidential,
        created_ms=int(time.time() * 1000),
        secret_sha256=hashlib.sha256(secret.encode()).hexdigest() if secret else None,
        roles=held,
    )
    return client, secret


def encode(client: Client) -> str:
    return msgspec.json.encode(client).decode()


def decode(record: str) -> Client:
    return msgspec.json.decode(record, type=Client)
