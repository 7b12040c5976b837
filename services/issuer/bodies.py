"""Request bodies: size-limited, strictly typed, unknown fields refused."""

from __future__ import annotations

from typing import Annotated, TypeVar

import msgspec
from starlette.requests import Request

from revocast.errors import BodyTooLarge, InvalidRequest

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
OpaqueToken = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password


class RefreshBody(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: OpaqueToken


BodyT = TypeVar("BodyT", bound=msgspec.Struct)


async def read_body(request: Request, body_type: type[BodyT], max_bytes: int) -> BodyT:
    """Decode a JSON body into ``body_type``; 413 past ``max_bytes``, 400 on anything malformed."""
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise InvalidRequest("Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"body exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    try:
        return msgspec.json.decode(b"".join(chunks), type=body_type)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc)) from None
    except msgspec.DecodeError:
        raise InvalidRequest("body is not valid JSON") from None
