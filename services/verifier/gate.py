"""One way in: a request's credentials, the CSRF check a cookie needs, and the verification.

The middleware, the sidecar and the issuer's own guard all admit callers here, so that
the order of the checks, and what a cookie must prove, are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from revocast.browser import csrf_problem
from revocast.claims import AccessClaims
from revocast.errors import CsrfFailed, TokenRejected
from revocast.http import MISSING_TOKEN, credentials
from revocast.verifier.verifier import Verifier


@dataclass(frozen=True)
class Original:
    """What the request being authorized was, as far as someone trustworthy said.

    ``method`` None: unknown (a gateway that did not say), which a cookie must treat as a
    state-changing request. ``origin`` None: the one ``Host`` and ``X-Forwarded-Proto`` give.
    """

    method: str | None
    origin: str | None = None


def admit(
    verifier: Verifier,
    headers: Headers,
    original: Original,
    max_staleness_s: float | None = None,
) -> AccessClaims:
    """The verified claims of the bearer token or access cookie.

    Raises InvalidRequest (two Authorization headers), CsrfFailed (a cookie on an unsafe or
    unknown method without Origin and CSRF token), TokenRejected, VerifierStale.
    """
    token, from_cookie = credentials(headers)
    if from_cookie:
        cookies = cookie_parser(headers.get("cookie", ""))
        problem = csrf_problem(
            original.method, headers, cookies, verifier.settings, original.origin
        )
        if problem:
            raise CsrfFailed(problem)
    if token is None:
        raise TokenRejected("missing_token", MISSING_TOKEN)
    return verifier.verify(token, max_staleness_s=max_staleness_s)
