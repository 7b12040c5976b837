"""Which OAuth client is calling, and whether it proved it (RFC 6749 §2.3).

A confidential client authenticates with its secret, either in an ``Authorization: Basic``
header (``client_secret_basic``) or as ``client_secret`` beside ``client_id`` in the body
(``client_secret_post``), never both. A public client only names itself with ``client_id``;
a request that names no client acts for the built-in public client ``revocast``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.datastructures import Headers

from revocast.clients import DEFAULT_CLIENT_ID, decode
from revocast.errors import InvalidClient, InvalidRequest
from revocast.issuer.context import IssuerContext


@dataclass(frozen=True, slots=True)
class CallingClient:
    client_id: str
    confidential: bool
    authenticated: bool  # proved with its secret (only a confidential client can)
    roles: tuple[str, ...] = ()  # ``Client.roles``: only an authenticated client holds any


BUILT_IN = CallingClient(DEFAULT_CLIENT_ID, confidential=False, authenticated=False)


def basic_credentials(headers: Headers) -> tuple[str, str] | None:
    """(client_id, secret) of an ``Authorization: Basic`` header; None for another scheme."""
    authorization = headers.getlist("authorization")
    if len(authorization) > 1:
        raise InvalidRequest("the request has more than one Authorization header: send one")
    if not authorization:
        return None
    scheme, _, encoded = authorization[0].strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient(
            "the HTTP Basic credentials are not valid base64 of UTF-8 text: encode "
            "client_id:client_secret in base64"
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidClient(
            "the HTTP Basic credentials lack a client_id or the colon: send "
            "base64(client_id:client_secret)"
        )
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
    return unquote_plus(client_id), unquote_plus(secret)


async def identify(
    ctx: IssuerContext, headers: Headers, client_id: str | None, client_secret: str | None
) -> CallingClient | None:
    """The client a request names (None if it names none), checked against the registry.

    InvalidClient (401) for an unknown client, a confidential one without its secret or
    with a wrong one, and a secret sent for a public client; InvalidRequest (400) when
    both authentication methods are used at once.
    """
    basic = basic_credentials(headers)
    if basic is not None:
        if client_secret is not None or (client_id is not None and client_id != basic[0]):
            raise InvalidRequest("use one client authentication method: HTTP Basic or the body")
        client_id, client_secret = basic
    if not client_id:
        if client_secret is not None:
            raise InvalidRequest("client_secret was sent without client_id: send both")
        return None
    if client_id == DEFAULT_CLIENT_ID:
        if client_secret is not None:
            raise InvalidClient(f"{DEFAULT_CLIENT_ID} is a public client: send no client_secret")
        return BUILT_IN
    record = await ctx.store.clients.get(client_id)
    if record is None:
        raise InvalidClient(
            f"no client {client_id} is registered: `revocast client list` shows the ones there are"
        )
    client = decode(record)
    if not client.confidential:
        if client_secret is not None:
            raise InvalidClient(f"{client_id} is a public client: send no client_secret")
        return CallingClient(client_id, confidential=False, authenticated=False)
    if client_secret is None:
        raise InvalidClient(f"{client_id} is a confidential client: send its client_secret")
    if not client.secret_matches(client_secret):
        raise InvalidClient(
            f"wrong secret for client {client_id}: send the one `revocast client add` printed"
        )
    return CallingClient(client_id, confidential=True, authenticated=True, roles=client.roles)


async def is_confidential(ctx: IssuerContext, client_id: str) -> bool | None:
    """Whether the client a token was issued to is confidential; None if it was removed."""
    if client_id == DEFAULT_CLIENT_ID:
        return False
    record = await ctx.store.clients.get(client_id)
    return None if record is None else decode(record).confidential
