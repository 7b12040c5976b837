"""ASGI middleware: verify the access token, put the claims on the request, or answer itself.

The token comes from ``Authorization: Bearer`` or, in browser mode, the access cookie;
a state-changing request authenticated by cookie must also pass the CSRF check
(allowed Origin and X-CSRF-Token matching the CSRF cookie), else 403.

Works with Starlette and FastAPI: claims land in ``request.state.claims``
(``scope["state"]["claims"]``). Rejections get 401 with an RFC 6750 challenge;
a stale verifier gets 503, never a guess. A WebSocket handshake is checked the
same way and closed with 1008 (policy violation) when it fails; a connection
already open is not re-checked.

CORS preflights (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) carry
no credentials and pass untouched. Put ``CORSMiddleware`` *outside* this one (listed
before it), so that its headers reach the 401 and 503 answers too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from revocast.errors import RevocastError
from revocast.http import error_answer
from revocast.verifier.gate import Original, admit
from revocast.verifier.paths import PathRules, Rule
from revocast.verifier.verifier import Verifier, checked_staleness


class RevocastMiddleware:
    """Requires a valid access token on every HTTP request except ``public_paths``.

    ``public_paths`` and the keys of ``staleness`` are path rules (``revocast.verifier.paths``):
    ``"/health"``, ``"/docs*"``, or a compiled pattern. ``staleness`` sets a route's own
    bound in seconds, stricter or looser than ``REVOCAST_MAX_STALENESS_S``, never above the
    access-token lifetime.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        *,
        public_paths: Collection[Rule] = (),
        staleness: Mapping[Rule, float] | None = None,
        realm: str = "revocast",
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.public = PathRules((rule, True) for rule in public_paths)
        bounds = (staleness or {}).items()
        self.staleness = PathRules(
            (rule, checked_staleness(s, verifier.settings.tokens)) for rule, s in bounds
        )
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.public.get(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["type"] == "http" and _preflight(scope, headers):
            await self.app(scope, receive, send)  # a CORS preflight: no credentials to check
            return
        try:
            bound = self.staleness.get(scope["path"]) if self.staleness else None
            claims = admit(self.verifier, headers, Original.of(scope), bound)
        except RevocastError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
            else:
                await error_answer(exc, self.realm)(scope, receive, send)
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)


def _preflight(scope: Scope, headers: Headers) -> bool:
    return (
        scope["method"] == "OPTIONS"
        and "origin" in headers
        and "access-control-request-method" in headers
    )
