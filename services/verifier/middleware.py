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
from starlette.types import ASGIApp, Receive, Scope, Send

from revocast.browser import origin_problem
from revocast.errors import RevocastError, TokenRejected
from revocast.http import credentials, error_answer
from revocast.verifier.gate import Original, admit
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
        if scope["type"] == "websocket":
            await self._websocket(headers, scope, receive, send)
            return
        try:
            claims = admit(self.verifier, headers, Original(scope["method"]))
        except RevocastError as exc:
            await error_answer(exc, self.realm)(scope, receive, send)
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)

    async def _websocket(
        self, headers: Headers, scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            token, from_cookie = credentials(headers)
            # A cookie rides along on a cross-site handshake too: the Origin must be allowed.
            if token is None or (from_cookie and origin_problem(headers, self.verifier.settings)):
                raise TokenRejected("missing_token")
            claims = self.verifier.verify(token)
        except RevocastError as exc:
            await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)
