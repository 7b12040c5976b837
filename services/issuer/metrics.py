"""Prometheus view of the issuer: requests by route and status, throttled logins, detected
data losses, SSF events lost before copying, the password queue, and the live verifiers (how
many, how many behind)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from revocast.issuer.context import Counts
from revocast.issuer.passwords import Passwords
from revocast.issuer.state import StateGuard
from revocast.issuer.upkeep import Upkeep
from revocast.store.sessions.throttle import Limit, Throttle

RequestCounts = Counter[tuple[str, str, int]]  # (method, route template, status) -> responses


class RequestCounter:
    """ASGI middleware counting responses by route template (never raw paths) and status."""

    def __init__(self, app: ASGIApp, counts: RequestCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(matched_route(scope), "path", "unmatched")
            self.counts[(scope["method"], template, status)] += 1


def matched_route(scope: Scope) -> BaseRoute | None:
    """The route that answered: Starlette 1.7+ leaves it in the scope; before, the app's
    routes are asked again as its router asked them (the first full match, else the first
    partial one, which answered 405)."""
    if "route" in scope:
        route: BaseRoute | None = scope["route"]
        return route
    partial = None
    for route in getattr(scope.get("app"), "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


class IssuerCollector(Collector):
    def __init__(
        self,
        requests: RequestCounts,
        guard: StateGuard,
        upkeep: Upkeep,
        passwords: Passwords,
        counts: Counts,
        logins: Throttle,
    ) -> None:
        self.requests = requests
        self.guard = guard
        self.upkeep = upkeep
        self.passwords = passwords
        self.counts = counts
        self.logins = logins

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "revocast_issuer_requests",
            "Issuer responses by method, route and status.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in sorted(self.requests.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        throttled = CounterMetricFamily(
            "revocast_login_throttled",
            "Login attempts refused (429) before any password check, by the limit that refused "
            "them: client (address), user_address, user (the growing delay).",
            labels=["limit"],
        )
        for limit in get_args(Limit):
            throttled.add_metric([limit], self.logins.refused[limit])
        yield throttled
        yield CounterMetricFamily(
            "revocast_issuer_state_lost",
            "Times this issuer found Redis had lost its state and revoked every signing key.",
            value=self.guard.losses_detected,
        )
        yield CounterMetricFamily(
            "revocast_ssf_losses",
            "Runs of revocation events trimmed before this issuer could copy them into an SSF "
            "stream's queue; each was told to its receiver (stream-updated SET, stream status).",
            value=self.counts.ssf_losses,
        )
        yield GaugeMetricFamily(
            "revocast_issuer_password_checks_queued",
            "Password checks running or waiting for a hashing thread.",
            value=self.passwords.admitted,
        )
        yield CounterMetricFamily(
            "revocast_issuer_password_checks_refused",
            "Logins refused at once (503) because the password-check queue was full.",
            value=self.passwords.refused,
        )
        yield GaugeMetricFamily(
            "revocast_verifiers_live",
            "Verifiers whose receipt is live in Redis (counted every second).",
            value=self.upkeep.verifiers_live,
        )
        yield GaugeMetricFamily(
            "revocast_verifiers_behind",
            "Live verifiers that have not applied an entry written over a second ago.",
            value=self.upkeep.verifiers_behind,
        )
