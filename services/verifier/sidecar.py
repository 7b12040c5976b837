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

from revocast.browser import csrf_problem
from revocast.errors import TokenRejected, VerifierStale
from revocast.http import credentials, error_response, json_response, www_authenticate
from revocast.settings import Settings
from revocast.verifier.metrics import VerifierCollector
from revocast.verifier.verifier import Verifier

log = logging.getLogger("revocast.verifier")


def create_sidecar(settings: Settings, verifier: Verifier | None = None) -> Starlette:
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
            return error_response(
                "missing_token",
                "an Authorization: Bearer token is required",
                401,
                {"WWW-Authenticate": www_authenticate(None)},
            )
        try:
            claims = verifier.verify(token)
        except TokenRejected as exc:
            return error_response(
                exc.code, exc.detail, 401, {"WWW-Authenticate": www_authenticate(exc.code)}
            )
        except VerifierStale as exc:
            return error_response(exc.code, exc.detail, 503, {"Retry-After": "1"})
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
            "stream_id": verifier.follower.last_id,
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
    app.state.verifier = verifier
    return app
