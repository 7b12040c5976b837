"""Request bodies: in their declared media type, size-limited, strictly typed, unknown
fields refused."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec
from starlette.requests import Request

from revocast import strict_json
from revocast.errors import BodyTooLarge, InvalidRequest, UnsupportedMediaType
from revocast.usernames import MAX_INPUT_CHARS

# Checked against the username rule only once normalised (``revocast.usernames``).
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_INPUT_CHARS)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
OpaqueToken = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ClientSecret = Annotated[str, msgspec.Meta(max_length=256)]
Scope = Annotated[str, msgspec.Meta(max_length=1100)]


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password
    # "cookie": browser mode, tokens in HttpOnly cookies instead of the body.
    delivery: Literal["body", "cookie"] = "body"
    # OAuth client (None: the built-in public client); scope: roles asked for (None: all).
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None
    scope: Scope | None = None
    # An ID token from the upstream IdP, and the upstream nonce (from POST
    # /v1/login/upstream-nonce) whose hash it carries: links its sub and sid to this user
    # and session (revocast.issuer.linking).
    upstream_id_token: Annotated[str, msgspec.Meta(max_length=8192)] | None = None
    upstream_nonce: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class RefreshBody(msgspec.Struct, forbid_unknown_fields=True):
    # Empty in browser mode: the refresh cookie carries it.
    refresh_token: Annotated[str, msgspec.Meta(max_length=512)] = ""
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None


Reason = Annotated[str, msgspec.Meta(max_length=500)]
Role = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_:-]{0,31}$")]


class BlockBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason = ""


class RolesBody(msgspec.Struct, forbid_unknown_fields=True):
    roles: Annotated[list[Role], msgspec.Meta(max_length=32)]
    reason: Reason = ""


class PasswordBody(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password


BodyT = TypeVar("BodyT", bound=msgspec.Struct)


async def read_raw(request: Request, media_type: str, max_bytes: int) -> bytes:
    """The body: refused (415) without a Content-Type or in another media type, (413) past
    ``max_bytes``. An empty body needs no Content-Type: it holds nothing to misread."""
    content_type = request.headers.get("content-type")
    if content_type is not None and _media_type(content_type) != media_type:
        raise UnsupportedMediaType(
            f"the body is not {media_type}: send it with Content-Type: {media_type}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(_too_large(max_bytes))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(_too_large(max_bytes))
        chunks.append(chunk)
    raw = b"".join(chunks)
    if content_type is None and raw:
        raise UnsupportedMediaType(
            f"the body comes without a Content-Type: send it with Content-Type: {media_type}"
        )
    return raw


def _media_type(content_type: str) -> str:
    """``application/json`` of ``Application/JSON; charset=utf-8``."""
    return content_type.split(";")[0].strip().lower()


async def read_body(
    request: Request, body_type: type[BodyT], max_bytes: int, *, optional: bool = False
) -> BodyT:
    """Decode a JSON body into ``body_type`` (``revocast.strict_json``: no repeated member
    names, no deep nesting); 415 without its media type, 413 past ``max_bytes``, 400 on
    anything malformed.

    With ``optional``, an empty body means every field's default.
    """
    raw = await read_raw(request, "application/json", max_bytes)
    return decode_body(raw, body_type, optional=optional)


def decode_body(raw: bytes, body_type: type[BodyT], *, optional: bool = False) -> BodyT:
    """``read_body``'s decoding, for a body already read with ``read_raw``."""
    if optional and not raw.strip():
        raw = b"{}"
    try:
        return strict_json.decode(raw, body_type)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"{exc}: correct the JSON body and send it again") from None
    except strict_json.StrictJsonError as exc:
        raise InvalidRequest(
            f"the body is not one JSON object as this server reads it: {exc}: send one JSON "
            "object, each member once"
        ) from None


def _too_large(max_bytes: int) -> str:
    return f"the body is over {max_bytes} bytes, this server's limit: send a smaller one"
