"""Browser mode: tokens in cookies scripts cannot read, and the CSRF defence cookies need.

- access token: ``__Host-revocast-at`` (Path=/, Secure, HttpOnly, SameSite)
- refresh token: ``__Secure-revocast-rt``, scoped to the refresh path, so it travels with
  no other request (the ``__Host-`` prefix would force Path=/, hence ``__Secure-``)
- CSRF token: ``__Host-revocast-csrf``, readable by the page's script, which echoes it in
  the ``X-CSRF-Token`` header (double submit)

A state-changing request authenticated by cookie must carry an allowed ``Origin`` and an
``X-CSRF-Token`` equal to the CSRF cookie (compared in constant time). Bearer requests
are unaffected: a browser never attaches an Authorization header by itself.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Final

from starlette.responses import Response

from revocast.settings import BrowserSettings, Settings

ACCESS_COOKIE: Final = "__Host-revocast-at"
REFRESH_COOKIE: Final = "__Secure-revocast-rt"
CSRF_COOKIE: Final = "__Host-revocast-csrf"
CSRF_HEADER: Final = "x-csrf-token"
REFRESH_PATH: Final = "/v1/refresh"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_token_cookies(
    response: Response, settings: Settings, *, access: str, refresh: str, csrf: str
) -> None:
    tokens = settings.tokens
    for name, value, max_age, path, httponly in (
        (ACCESS_COOKIE, access, tokens.access_ttl_s, "/", True),
        (REFRESH_COOKIE, refresh, tokens.refresh_ttl_s, REFRESH_PATH, True),
        (CSRF_COOKIE, csrf, tokens.refresh_ttl_s, "/", False),  # the page's script reads it
    ):
        response.set_cookie(
            name, value, max_age=max_age, path=path, secure=True, httponly=httponly,
            samesite=settings.browser.cookie_samesite,
        )  # fmt: skip


def clear_token_cookies(response: Response, browser: BrowserSettings) -> None:
    for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_PATH), (CSRF_COOKIE, "/")):
        response.delete_cookie(
            name, path=path, secure=True, httponly=name != CSRF_COOKIE,
            samesite=browser.cookie_samesite,
        )  # fmt: skip


def csrf_problem(
    method: str | None,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    browser: BrowserSettings,
    own_origin: str | None = None,
) -> str | None:
    """Why a cookie-authenticated request must be refused, or None when it may proceed.

    ``method`` None means nobody trustworthy said what the request is: it counts as unsafe.
    ``own_origin`` is the origin the request was sent to, where a gateway told it; by default
    it comes from ``Host`` and ``X-Forwarded-Proto``.
    """
    if method is not None and method.upper() in SAFE_METHODS:
        return None
    problem = origin_problem(headers, browser, own_origin)
    if problem:
        return problem
    expected, given = cookies.get(CSRF_COOKIE, ""), headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return "X-CSRF-Token does not match the CSRF cookie: send the csrf_token the login gave"
    return None


def origin_problem(
    headers: Mapping[str, str], browser: BrowserSettings, own_origin: str | None = None
) -> str | None:
    """Why the request's Origin is not one that may use the cookies, or None."""
    origin = headers.get("origin")
    if origin is None:
        return "a change made with the session cookie needs an Origin header: send one"
    own = own_origin if own_origin is not None else _own_origin(headers)
    if origin not in browser.allowed_origins and origin != own:
        return (
            f"origin {origin[:100]} may not use the session cookies: an operator can add it to "
            "REVOCAST_ALLOWED_ORIGINS"
        )
    return None


def _own_origin(headers: Mapping[str, str]) -> str | None:
    host = headers.get("host")
    if host is None:
        return None
    scheme = headers.get("x-forwarded-proto", "https")
    return f"{scheme}://{host}"
