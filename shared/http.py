"""HTTP pieces both services share: the JSON error body and bearer-token parsing."""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import Response

from revocast.browser import ACCESS_COOKIE
from revocast.errors import (
    InsufficientScope,
    InvalidClient,
    InvalidRequest,
    NotDurable,
    Overloaded,
    RevocastError,
    StoreUnavailable,
    TokenRejected,
    TooManyAttempts,
    TooManyRevocations,
    VerifierStale,
)

# A message, not a secret:
MISSING_TOKEN = "this needs an access token: send Authorization: Bearer <token>"  # noqa: S105

_encoder = msgspec.json.Encoder()
# RFC 6750 b64token: the only characters a bearer token may hold.
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_BEARER_SCHEME = re.compile(r"Bearer(\s|$)", re.IGNORECASE)
# RFC 6750 §3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), no quote, no backslash.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(_encoder.encode(body), status, headers, media_type="application/json")


def error_response(
    code: str,
    detail: str,
    status: int,
    headers: Mapping[str, str] | None = None,
    *,
    oauth: bool = False,
) -> Response:
    """revocast's error shape, ``{"error": code, "detail": text}``; on the OAuth endpoints
    RFC 6749 §5.2's, ``{"error": code, "error_description": text}``."""
    return json_response({"error": code, "error_description" if oauth else "detail": detail},
                         status, headers)  # fmt: skip


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None if absent or malformed."""
    if not authorization:
        return None
    match = _BEARER.fullmatch(authorization.strip())
    return match.group(1) if match else None


def credentials(headers: Headers) -> tuple[str | None, bool]:
    """(access token, came from the cookie). The Authorization header wins over the cookie.

    Two Authorization headers are refused (400): proxies and frameworks disagree on which
    one counts, and a check must not read another token than the application.
    """
    authorization = headers.getlist("authorization")
    if len(authorization) > 1:
        raise InvalidRequest("the request has more than one Authorization header: send one")
    if authorization:
        token = bearer_token(authorization[0])
        if token is None and _BEARER_SCHEME.match(authorization[0].strip()):
            # RFC 6750 §3.1: a malformed request is 400 invalid_request, not a missing token.
            raise InvalidRequest(
                "the Authorization header is not 'Bearer <token>' with a well-formed token: "
                "send the access token as the issuer gave it"
            )
        return token, False  # another scheme: no bearer credentials (401, bare challenge)
    token = cookie_parser(headers.get("cookie", "")).get(ACCESS_COOKIE)
    return (token, True) if token else (None, False)


def error_answer(exc: RevocastError, realm: str = "revocast", *, oauth: bool = False) -> Response:
    """The JSON error for ``exc``, with the headers its status calls for: an RFC 6750
    challenge for 401 and insufficient_scope, Retry-After where a repeat may succeed."""
    headers: dict[str, str] = {}
    if isinstance(exc, TokenRejected):
        code = None if exc.code == "missing_token" else exc.code
        headers["WWW-Authenticate"] = www_authenticate(code, realm)
    elif isinstance(exc, InvalidClient):
        headers["WWW-Authenticate"] = exc.challenge
    elif isinstance(exc, InsufficientScope):
        headers["WWW-Authenticate"] = www_authenticate(
            "the token holds none of the roles in scope", realm, "insufficient_scope", exc.roles
        )
    elif isinstance(exc, TooManyAttempts | TooManyRevocations | Overloaded):
        headers["Retry-After"] = str(exc.retry_after_s)
    elif isinstance(exc, VerifierStale | StoreUnavailable | NotDurable):
        headers["Retry-After"] = "1"
    return error_response(exc.code, exc.detail, exc.status, headers, oauth=oauth)


def refusal(exc: TokenRejected | VerifierStale | None, realm: str = "revocast") -> Response:
    """The answer when the access token cannot be accepted; None means there was none."""
    return error_answer(exc or TokenRejected("missing_token", MISSING_TOKEN), realm)


def www_authenticate(
    description: str | None,
    realm: str = "revocast",
    error: str = "invalid_token",
    scope: str = "",
) -> str:
    """RFC 6750 challenge: no error attribute when the request carried no token; ``scope``
    (space-separated) names what the resource needs (§3), each value that RFC 6750 allows
    in a scope: the others (a route may ask for any text) would break the header."""
    if description is None:
        return f'Bearer realm="{realm}"'
    challenge = f'Bearer realm="{realm}", error="{error}", error_description="{description}"'
    needed = " ".join(token for token in scope.split() if _SCOPE_TOKEN.fullmatch(token))
    return f'{challenge}, scope="{needed}"' if needed else challenge


def routing_error(method: str, status: int, headers: Mapping[str, str] | None, *,
                  oauth: bool = False) -> Response:  # fmt: skip
    """A 404 or 405 from the router, in revocast's error shape with a detail that helps."""
    if status == 404:
        return error_response("not_found", "no endpoint at this path: check the URL against "
                              "the API in README.md", 404, headers, oauth=oauth)  # fmt: skip
    if status == 405:
        allowed = (headers or {}).get("allow", "")
        return error_response("method_not_allowed", f"{method} is not allowed on this path: "
                              f"use {allowed or 'another method'}", 405, headers,
                              oauth=oauth)  # fmt: skip
    return error_response("http_error", "the request was refused: check the method and URL",
                          status, headers, oauth=oauth)  # fmt: skip
