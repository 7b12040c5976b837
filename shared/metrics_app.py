"""``/metrics`` for both services, on their public port or on a port of its own.

Each app keeps its Prometheus registry in ``app.state.metrics`` (the issuer fills it
in its lifespan). ``metrics_app`` serves that registry on another port, so that
``--metrics-port`` can keep metrics off the public one.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from revocast.http import error_response


def _render(registry: CollectorRegistry | None) -> Response:
    if registry is None:
        return error_response("starting", "the service is starting: scrape again shortly", 503)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def metrics_endpoint(request: Request) -> Response:
    """The route on the service's own port."""
    return _render(getattr(request.app.state, "metrics", None))


def metrics_app(service: Starlette) -> ASGIApp:
    """An app that serves ``service``'s metrics at ``/metrics``, and nothing else."""

    async def endpoint(request: Request) -> Response:
        return _render(getattr(service.state, "metrics", None))

    return Starlette(routes=[Route("/metrics", endpoint, methods=["GET"])])
