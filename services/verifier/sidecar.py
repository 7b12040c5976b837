"""The verifier as an HTTP service, for any language or an auth-request gateway.

``/verify`` and every path under it, with any method (Envoy's ext_authz forwards the
original method and path): the bearer token or access cookie is checked; 200 with
``X-Auth-*`` headers, 401 with an RFC 6750 challenge, 403 (CSRF, or a role the route asks
for with ``?role=``, with an ``insufficient_scope`` challenge), 503 when stale. For a
cookie, the original method and origin count only from trusted proxies
(``revocast.verifier.forwarded``). ``/healthz`` says the process is up; ``/readyz`` is 200
only after the first snapshot and while fresh; ``/metrics`` is the Prometheus text format.
Every answer, 404 and 405 included, is JSON; a gateway that drops the body of a refusal can
ask for it in a header too (``revocast.verifier.body_header``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

from revocast.claims import AccessClaims
from revocast.errors import RevocastError, TokenRejected, VerifierStale
from revocast.http import (
    bearer_token,
    error_answer,
    error_response,
    json_response,
    refusal,
    routing_error,
)
from revocast.metrics_app import metrics_endpoint
from revocast.proxies import TrustedProxies
from revocast.settings import Settings
from revocast.verifier import body_header
from revocast.verifier.forwarded import original_request
from revocast.verifier.gate import admit
from revocast.verifier.metrics import VerifierCollector
from revocast.verifier.verifier import Verifier

log = logging.getLogger("revocast.verifier")


class Sidecar:
    """``GET /verify`` with a bearer header answered straight in ASGI; the rest by Starlette.

    The hot path of a gateway's auth request is a header lookup, a dict-backed
    ``verify`` and three response headers: framework routing and request objects
    would cost more than the verification itself. It is ``admit``'s bearer case (a bearer
    token needs no CSRF check) written out: going through ``admit`` with a ``Headers``
    object cost 20 % of the sidecar's requests/s (46,000 to 37,000). Cookies, errors and
    every other route go through the Starlette app and ``admit``, with identical answers.
    """

    def __init__(self, app: Starlette, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        to_verify = scope["type"] == "http" and _is_verify(scope["path"])
        if (
            to_verify
            and not scope["query_string"]
            and (token := _sole_bearer(scope["headers"])) is not None
        ):
            try:
                claims = self.verifier.verify(token)
            except (TokenRejected, VerifierStale) as exc:
                await refusal(exc)(scope, receive, _answering(scope, send))
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*_identity(claims), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, _answering(scope, send) if to_verify else send)


def _answering(scope: Scope, send: Send) -> Send:
    """``send``, repeating a refusal's body in a header if the gateway asked for it."""
    return body_header.repeating_body(send) if body_header.asked(scope["headers"]) else send


class _AnyMethod:
    """An endpoint for every method: Starlette routes a plain function for GET only, and
    any method to an ASGI app."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.app = request_response(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _is_verify(path: str) -> bool:
    return path == "/verify" or path.startswith("/verify/")


def _sole_bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of the one Authorization header; None if absent, malformed or
    repeated (the Starlette path answers those)."""
    found = [value for name, value in headers if name == b"authorization"]
    return bearer_token(found[0].decode("latin-1")) if len(found) == 1 else None


NO_ROLES = b"-"  # never empty: a gateway may skip an empty value when it copies headers


def _identity(claims: AccessClaims) -> list[tuple[bytes, bytes]]:
    """The X-Auth-* answer. Without roles, X-Auth-Roles is ``-`` (no role can start with
    it): some gateways copy no empty header and would leave a client's own in place."""
    return [
        (b"x-auth-subject", claims.sub.encode()),
        (b"x-auth-session", claims.sid.encode()),
        (b"x-auth-roles", ",".join(claims.roles).encode() or NO_ROLES),
    ]


def _roles_asked(request: Request) -> frozenset[str]:
    """``?role=a&role=b`` or ``?role=a,b``: the route needs any one of them."""
    asked = (
        part.strip() for value in request.query_params.getlist("role") for part in value.split(",")
    )
    return frozenset(role for role in asked if role)


def create_sidecar(
    settings: Settings, verifier: Verifier | None = None, *, public_metrics: bool = True
) -> Sidecar:
    """The sidecar app; it starts and stops the verifier with its lifespan.

    ``public_metrics=False`` leaves ``/metrics`` out of its routes; ``metrics_app`` can
    serve them on another port.
    """
    verifier = verifier or Verifier(settings, role="sidecar")

    proxies = TrustedProxies(settings.http.trusted_proxies)

    async def verify(request: Request) -> Response:
        try:
            original = original_request(request.scope, request.headers, proxies)
            claims = admit(verifier, request.headers, original, roles=_roles_asked(request))
        except RevocastError as exc:
            return error_answer(exc)
        headers = [(name.decode(), value.decode()) for name, value in _identity(claims)]
        return Response(status_code=200, headers=dict(headers))

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    registry = CollectorRegistry()
    registry.register(VerifierCollector(verifier))

    async def readyz(request: Request) -> Response:
        body = {
            "ready": verifier.ready,
            "staleness_s": round(min(verifier.staleness_s, 1e9), 3),
            "snapshots": verifier.follower.snapshots,
            "streams": verifier.follower.positions,
            "error": verifier.follower.error,
        }
        return json_response(body, 200 if verifier.ready else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await verifier.start()
        try:
            yield
        finally:
            await verifier.stop()

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
        detail = (
            "the verifier failed unexpectedly (logged): retry, and tell an operator if it persists"
        )
        return error_response("internal_error", detail, 500)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return routing_error(request.method, exc.status_code, exc.headers)

    app = Starlette(
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        routes=[
            Route("/verify", _AnyMethod(verify)),
            Route("/verify/{rest:path}", _AnyMethod(verify)),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *([Route("/metrics", metrics_endpoint, methods=["GET"])] if public_metrics else []),
        ],
        lifespan=lifespan,
    )
    app.state.metrics = registry
    return Sidecar(app, verifier)


def sidecar_from_env() -> Sidecar:
    """The sidecar of ``Settings.from_env()``: the factory each worker process calls."""
    return create_sidecar(Settings.from_env())


def sidecar_without_metrics() -> Sidecar:
    """The same, without ``/metrics`` (``revocast verifier --workers N --metrics-port off``)."""
    return create_sidecar(Settings.from_env(), public_metrics=False)
