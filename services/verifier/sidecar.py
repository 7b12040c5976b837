"""The verifier as an HTTP service, for any language or an auth-request gateway.

``GET /verify`` reads ``Authorization: Bearer`` or the access cookie (for a
cookie, the original method in ``X-Original-Method`` decides whether the CSRF
check applies): 200 with ``X-Auth-*`` headers,
401 with an RFC 6750 challenge, 503 when stale. ``/healthz`` says the process
is up; ``/readyz`` is 200 only after the first snapshot and while fresh;
``/metrics`` is the Prometheus text format.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from revocast.browser import csrf_problem
from revocast.errors import TokenRejected, VerifierStale
from revocast.http import bearer_token, credentials, error_response, json_response, refusal
from revocast.settings import Settings
from revocast.verifier.metrics import VerifierCollector
from revocast.verifier.verifier import Verifier

log = logging.getLogger("revocast.verifier")


class Sidecar:
    """``GET /verify`` with a bearer header answered straight in ASGI; the rest by Starlette.

    The hot path of a gateway's auth request is a header lookup, a dict-backed
    ``verify`` and three response headers: framework routing and request objects
    would cost more than the verification itself. Cookies, errors and every other
    route go through the Starlette app, with identical answers.
    """

    def __init__(self, app: Starlette, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/verify" and scope["method"] == "GET":
            token = _bearer(scope["headers"])
            if token is not None:
                try:
                    claims = self.verifier.verify(token)
                except (TokenRejected, VerifierStale) as exc:
                    await refusal(exc)(scope, receive, send)
                    return
                else:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"x-auth-subject", claims.sub.encode()),
                                (b"x-auth-session", claims.sid.encode()),
                                (b"x-auth-roles", ",".join(claims.roles).encode()),
                                (b"content-length", b"0"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            return bearer_token(value.decode("latin-1"))
    return None


def create_sidecar(settings: Settings, verifier: Verifier | None = None) -> Sidecar:
    """The sidecar app; it starts and stops the verifier with its lifespan."""
    verifier = verifier or Verifier(settings)

    async def verify(request: Request) -> Response:
        token, from_cookie = credentials(request.headers)
        if from_cookie:
            # A gateway's auth subrequest is a GET: it names the original method in a header.
            method = request.headers.get(
                "x-original-method", request.headers.get("x-forwarded-method", "GET")
            )
            problem = csrf_problem(method, request.headers, request.cookies, settings)
            if problem:
                return error_response("csrf_failed", problem, 403)
        if token is None:
            return refusal(None)
        try:
            claims = verifier.verify(token)
        except (TokenRejected, VerifierStale) as exc:
            return refusal(exc)
        return Response(
            status_code=200,
            headers={
                "X-Auth-Subject": claims.sub,
                "X-Auth-Session": claims.sid,
                "X-Auth-Roles": ",".join(claims.roles),
            },
        )

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    registry = CollectorRegistry()
    registry.register(VerifierCollector(verifier))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

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
        return error_response("internal_error", "the verifier failed", 500)

    app = Starlette(
        exception_handlers={Exception: internal_error},
        routes=[
            Route("/verify", verify, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    return Sidecar(app, verifier)
