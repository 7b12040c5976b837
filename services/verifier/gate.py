"""One way in: a request's credentials, the CSRF check a cookie needs, and the verification.

The middleware (HTTP and WebSocket), the FastAPI dependencies, the sidecar and the issuer's
own guard all admit callers here, so that the order of the checks, what a cookie must
prove, and the role a route asks for are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope

from revocast.browser import csrf_problem, origin_problem
from revocast.claims import AccessClaims
from revocast.errors import CsrfFailed, InsufficientScope, TokenRejected
from revocast.http import MISSING_TOKEN, credentials
from revocast.verifier.verifier import Verifier


@dataclass(frozen=True)
class Original:
    """What the request being authorized was, as far as someone trustworthy said.

    ``method`` None: unknown (a gateway that did not say), which a cookie must treat as a
    state-changing request. ``origin`` None: the one ``Host`` and ``X-Forwarded-Proto`` give.
    ``websocket``: a handshake, where a cookie can carry no CSRF token: its Origin must be
    allowed, or the cookie does not count.
    """

    method: str | None
    origin: str | None = None
    websocket: bool = False

    @classmethod
    def of(cls, scope: Scope) -> Original:
        """An app's own request, HTTP or WebSocket, with nobody in front to ask."""
        if scope["type"] == "websocket":
            return cls(None, websocket=True)
        return cls(scope["method"])


def admit(
    verifier: Verifier,
    headers: Headers,
    original: Original,
    max_staleness_s: float | None = None,
    roles: frozenset[str] = frozenset(),
) -> AccessClaims:
    """The verified claims of the bearer token or access cookie, carrying one of ``roles``
    when any are named.

    Raises InvalidRequest (two Authorization headers, a malformed one), CsrfFailed (a cookie
    on an unsafe or unknown method without Origin and CSRF token), TokenRejected,
    VerifierStale, InsufficientScope.
    """
    token, from_cookie = credentials(headers)
    if from_cookie and original.websocket:
        if origin_problem(headers, verifier.settings.browser, original.origin):
            token = None  # a cookie a cross-site handshake carried along
    elif from_cookie:
        cookies = cookie_parser(headers.get("cookie", ""))
        problem = csrf_problem(
            original.method, headers, cookies, verifier.settings.browser, original.origin
        )
        if problem:
            raise CsrfFailed(problem)
    if token is None:
        raise TokenRejected("missing_token", MISSING_TOKEN)
    claims = verifier.verify(token, max_staleness_s=max_staleness_s)
    if roles and roles.isdisjoint(claims.roles):
        raise InsufficientScope(" ".join(sorted(roles)))
    return claims
