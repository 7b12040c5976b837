"""FastAPI integration: revocast's verification as dependencies, shown in /docs.

    auth = Revocast(Settings.from_env())
    app = FastAPI(lifespan=auth.lifespan, exception_handlers=auth.exception_handlers)

    @app.get("/me")
    async def me(claims: AccessClaims = Depends(auth.authenticated)) -> dict[str, str]: ...

    @app.post("/moderation")
    async def act(claims: AccessClaims = Security(auth.require, scopes=["moderator"])): ...

``auth.optional`` gives the claims or None. The same dependencies work on WebSocket routes
(a refusal closes the handshake with 1008). Refusals come in revocast's error shape with
their status and challenge: 401, 403 ``insufficient_scope``, 503 with Retry-After. The
verifier starts and stops with the app's lifespan. FastAPI is an optional extra:
``pip install revocast[fastapi]``. It builds on the verifier, so it lives beside it in
``services/``, not in the foundation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

from fastapi import Depends, FastAPI, WebSocketException
from fastapi.openapi.models import APIKey, APIKeyIn, HTTPBearer
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from revocast.browser import ACCESS_COOKIE
from revocast.claims import AccessClaims
from revocast.errors import RevocastError, TokenRejected
from revocast.http import credentials, error_answer
from revocast.settings import Settings
from revocast.verifier import Verifier
from revocast.verifier.gate import Original, admit

Mode = Literal["bearer", "cookie"]
Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


class RevocastScheme(SecurityBase):
    """The OpenAPI security scheme, so that /docs shows the Authorize button. Reading the
    credentials is left to ``admit``: a bearer header, or the access cookie."""

    def __init__(self, mode: Mode = "bearer") -> None:
        self.mode = mode
        if mode == "bearer":
            self.model: HTTPBearer | APIKey = HTTPBearer(bearerFormat="JWT")
            self.scheme_name = "revocastBearer"
        else:
            self.model = APIKey.model_validate({"in": APIKeyIn.cookie, "name": ACCESS_COOKIE})
            self.scheme_name = "revocastCookie"

    async def __call__(self) -> None:
        return None


class Revocast:
    """One verifier for the app, and the dependencies that use it."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        verifier: Verifier | None = None,
        mode: Mode = "bearer",
        realm: str = "revocast",
    ) -> None:
        if verifier is None:
            verifier = Verifier(settings or Settings.from_env())
        self.verifier = verifier
        self.realm = realm
        self.scheme = RevocastScheme(mode)
        scheme = self.scheme

        # The scheme is a sub-dependency of each, so OpenAPI lists it on every route using them.
        async def authenticated(
            connection: HTTPConnection, _: None = Depends(scheme)
        ) -> AccessClaims:
            return self._claims(connection, None)

        async def optional(
            connection: HTTPConnection, _: None = Depends(scheme)
        ) -> AccessClaims | None:
            try:
                token, _from_cookie = credentials(connection.headers)
            except RevocastError as exc:
                raise self._refusal(connection, exc) from None
            return None if token is None else self._claims(connection, None)

        async def require(
            security_scopes: SecurityScopes, connection: HTTPConnection, _: None = Depends(scheme)
        ) -> AccessClaims:
            return self._claims(connection, frozenset(security_scopes.scopes))

        self.authenticated = authenticated
        self.optional = optional
        self.require = require

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        async with self.verifier:
            yield

    @property
    def exception_handlers(self) -> dict[int | type[Exception], Handler]:
        """For ``FastAPI(exception_handlers=...)``: refusals in revocast's error shape."""
        return {RevocastError: self._answer}

    async def _answer(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RevocastError)
        return error_answer(exc, self.realm)

    def _claims(self, connection: HTTPConnection, roles: frozenset[str] | None) -> AccessClaims:
        try:
            original = Original.of(connection.scope)
            claims = admit(self.verifier, connection.headers, original, roles=roles or frozenset())
        except RevocastError as exc:
            raise self._refusal(connection, exc) from None
        return claims

    def _refusal(self, connection: HTTPConnection, exc: RevocastError) -> Exception:
        if isinstance(connection, WebSocket) or connection.scope["type"] == "websocket":
            return WebSocketException(code=1008, reason=exc.code)
        return exc


__all__ = ["AccessClaims", "Revocast", "RevocastScheme", "TokenRejected"]
