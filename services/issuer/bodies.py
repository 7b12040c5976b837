"""Request bodies: size-limited, strictly typed, unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec
from starlette.requests import Request

from revocast.errors import BodyTooLarge, InvalidRequest
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
    """The body, refused (400) in another media type and (413) past ``max_bytes``."""
    content_type = request.headers.get("content-type", media_type)
    if content_type.split(";")[0].strip().lower() != media_type:
        raise InvalidRequest(
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
    return b"".join(chunks)


async def read_body(
    request: Request, body_type: type[BodyT], max_bytes: int, *, optional: bool = False
) -> BodyT:
    """Decode a JSON body into ``body_type``; 413 past ``max_bytes``, 400 on anything malformed.

    With ``optional``, an empty body means every field's default.
    """
    raw = await read_raw(request, "application/json", max_bytes)
    if optional and not raw.strip():
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"{exc}: correct the JSON body and send it again") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON in UTF-8: send one JSON object") from None


def _too_large(max_bytes: int) -> str:
    return f"the body is over {max_bytes} bytes, this server's limit: send a smaller one"
