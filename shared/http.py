"""HTTP pieces both services share: the JSON error body and bearer-token parsing."""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec
from starlette.requests import cookie_parser
from starlette.responses import Response

from revocast.browser import ACCESS_COOKIE
from revocast.errors import TokenRejected, VerifierStale

MISSING_TOKEN = "an Authorization: Bearer token is required"  # noqa: S105 (a message)

_encoder = msgspec.json.Encoder()
# RFC 6750 b64token: the only characters a bearer token may hold.
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(_encoder.encode(body), status, headers, media_type="application/json")


def error_response(
    code: str, detail: str, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    """The one error shape: ``{"error": code, "detail": text}``."""
    return json_response({"error": code, "detail": detail}, status, headers)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None if absent or malformed."""
    if not authorization:
        return None
    match = _BEARER.fullmatch(authorization.strip())
    return match.group(1) if match else None


def credentials(headers: Mapping[str, str]) -> tuple[str | None, bool]:
    """(access token, came from the cookie). The Authorization header wins over the cookie."""
    authorization = headers.get("authorization")
    if authorization is not None:
        return bearer_token(authorization), False
    token = cookie_parser(headers.get("cookie", "")).get(ACCESS_COOKIE)
    return (token, True) if token else (None, False)


def refusal(exc: TokenRejected | VerifierStale | None, realm: str = "revocast") -> Response:
    """The answer when the access token cannot be accepted; None means there was none."""
    if exc is None:
        challenge = {"WWW-Authenticate": www_authenticate(None, realm)}
        return error_response("missing_token", MISSING_TOKEN, 401, challenge)
    if isinstance(exc, VerifierStale):
        return error_response(exc.code, exc.detail, 503, {"Retry-After": "1"})
    challenge = {"WWW-Authenticate": www_authenticate(exc.code, realm)}
    return error_response(exc.code, exc.detail, 401, challenge)


def www_authenticate(code: str | None, realm: str = "revocast") -> str:
    """RFC 6750 challenge: no error attribute when the request carried no token."""
    if code is None:
        return f'Bearer realm="{realm}"'
    return f'Bearer realm="{realm}", error="invalid_token", error_description="{code}"'
