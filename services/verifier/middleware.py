"""ASGI middleware: verify the access token, put the claims on the request, or answer itself.

The token comes from ``Authorization: Bearer`` or, in browser mode, the access cookie;
a state-changing request authenticated by cookie must also pass the CSRF check
(allowed Origin and X-CSRF-Token matching the CSRF cookie), else 403.

Works with Starlette and FastAPI: claims land in ``request.state.claims``
(``scope["state"]["claims"]``). Rejections get 401 with an RFC 6750 challenge;
a stale verifier gets 503, never a guess. A WebSocket handshake is checked the
same way and closed with 1008 (policy violation) when it fails; a connection
already open is not re-checked.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from revocast.browser import csrf_problem, origin_problem
from revocast.errors import TokenRejected, VerifierStale
from revocast.http import credentials, error_response, refusal
from revocast.verifier.verifier import Verifier


class RevocastMiddleware:
    """Requires a valid access token on every HTTP request except ``public_paths``."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        *,
        public_paths: Collection[str] = (),
        realm: str = "revocast",
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.public_paths = frozenset(public_paths)
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        token, from_cookie = credentials(headers)
        if scope["type"] == "websocket":
            # A cookie rides along on a cross-site handshake too: the Origin must be allowed.
            bad_origin = from_cookie and origin_problem(headers, self.verifier.settings)
            await self._websocket(None if bad_origin else token, scope, receive, send)
            return
        if from_cookie:
            cookies = cookie_parser(headers.get("cookie", ""))
            problem = csrf_problem(scope["method"], headers, cookies, self.verifier.settings)
            if problem:
                response = error_response("csrf_failed", problem, 403)
                await response(scope, receive, send)
                return
        if token is None:
            await refusal(None, self.realm)(scope, receive, send)
            return
        try:
            claims = self.verifier.verify(token)
        except (TokenRejected, VerifierStale) as exc:
            await refusal(exc, self.realm)(scope, receive, send)
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)

    async def _websocket(
        self, token: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            if token is None:
                raise TokenRejected("missing_token")
            claims = self.verifier.verify(token)
        except (TokenRejected, VerifierStale) as exc:
            await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)
