"""The issuer: a Starlette app that owns users, sessions, signing keys and revocations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from revocast.errors import (
    NotDurable,
    RevocastError,
    StoreUnavailable,
    VerifierStale,
)
from revocast.http import error_answer, error_response, json_response, routing_error
from revocast.issuer import (
    account,
    admin,
    auth,
    linking,
    oauth,
    revocations,
    ssf,
    status_lists,
    upstream_revocations,
)
from revocast.issuer.context import IssuerContext
from revocast.issuer.keyring import KeyRing
from revocast.issuer.metadata import metadata, require_issuer_url
from revocast.issuer.metrics import IssuerCollector, RequestCounter, RequestCounts
from revocast.issuer.passwords import Passwords
from revocast.issuer.ssf_push import Pusher
from revocast.issuer.startup import Startup
from revocast.issuer.state import StateGuard
from revocast.issuer.tokens import TokenMinter
from revocast.issuer.upkeep import Upkeep
from revocast.issuer.upstream import Upstream
from revocast.keys import JWKS_CACHE_CONTROL, jwks_document
from revocast.metrics_app import metrics_endpoint
from revocast.proxies import ForwardedClient, TrustedProxies
from revocast.settings import Settings
from revocast.status_list import PATH as STATUS_LIST_PATH
from revocast.store import Backend, Store
from revocast.verifier import Verifier
from revocast.verifier.metrics import VerifierCollector

log = logging.getLogger("revocast.issuer")

# Paths that answer errors in RFC 6749 §5.2's shape (the OAuth endpoints; the back-channel
# logout receiver, as OIDC Back-Channel Logout 1.0 §2.8 suggests).
RFC_6749_ERRORS = ("/oauth/", "/v1/signals/")
RECEIVERS = "/v1/signals/"  # the IdP's calls: no answer of theirs may be cached

# revocast's own verifiers do not read the JWKS (keys reach them through Redis); others
# honour JWKS_CACHE_CONTROL.


async def _jwks(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    document = jwks_document(await ctx.store.signing.jwks())
    return json_response(document, headers={"Cache-Control": JWKS_CACHE_CONTROL})


async def _healthz(request: Request) -> Response:
    """Liveness: the process answers. Readiness is /readyz."""
    return json_response({"status": "ok"})


async def _readyz(request: Request) -> Response:
    """Ready when Redis answers within the staleness bound, the active signing key is
    usable here, and the issuer's own verifier is fresh (it checks callers' tokens). Until
    its start-up has finished, ``starting`` says what it waits for."""
    startup: Startup = request.app.state.startup
    if not startup.done:
        return json_response({"ready": False, "starting": startup.waiting_for or "starting"}, 503)
    ctx = IssuerContext.of(request)
    body: dict[str, object] = {"ready": False, "redis": "ok", "signing_key": "ok",
                               "verifier_ready": ctx.verifier.ready}  # fmt: skip
    try:
        async with asyncio.timeout(ctx.settings.freshness.max_staleness_s):
            kid = await ctx.store.signing.signing_kid() or ""
    except TimeoutError:
        body["redis"] = f"no answer within {ctx.settings.freshness.max_staleness_s:g} s"
        return json_response(body, 503)
    except StoreUnavailable as exc:
        body["redis"] = exc.detail
        return json_response(body, 503)
    if not kid:
        body["signing_key"] = "no active signing key: run `revocast keys rotate`"
    elif not await ctx.minter.keyring.fetch(ctx.store, kid):  # from the folder, or unsealed
        body["signing_key"] = (
            f"the active signing key {kid} is not loaded by this issuer: give it the key "
            "folder (or REVOCAST_KEY_ENCRYPTION_KEY) the key was made with"
        )
    body["ready"] = body["signing_key"] == "ok" and ctx.verifier.ready
    return json_response(body, 200 if body["ready"] else 503)


async def _revocast_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RevocastError)
    if isinstance(exc, VerifierStale | StoreUnavailable | NotDurable):
        log.warning("%s: %s", exc.code, exc.detail)
    # RFC 7009 and 7662 endpoints answer in RFC 6749's error shape; the /v1 API in ours.
    answer = error_answer(exc, oauth=request.url.path.startswith(RFC_6749_ERRORS))
    if request.url.path.startswith(RECEIVERS):
        answer.headers["Cache-Control"] = "no-store"  # Back-Channel Logout 1.0 §2.8
    return answer


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    oauth = request.url.path.startswith(RFC_6749_ERRORS)
    return routing_error(request.method, exc.status_code, exc.headers, oauth=oauth)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
    return error_response("internal_error", "the issuer failed unexpectedly (it is logged): "
                          "retry, and tell an operator if it persists", 500)  # fmt: skip


def create_app(settings: Settings, *, public_metrics: bool = True) -> Starlette:
    """The issuer app; its lifespan connects Redis, publishes the signing key, starts a verifier.

    ``public_metrics=False`` leaves ``/metrics`` out of its routes; ``metrics_app`` can
    serve them on another port.
    """
    if settings.redis.redis_url is None:
        raise ValueError("the issuer needs settings.redis.redis_url")
    require_issuer_url(settings)
    requests: RequestCounts = Counter()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        backend = Backend(settings)
        store = Store(backend)
        keyring = KeyRing.from_settings(settings)
        guard = StateGuard(settings, store, keyring)
        upkeep = Upkeep(backend, store, keyring)
        verifier = Verifier(settings, role="issuer")
        passwords, minter = Passwords(settings.passwords), TokenMinter(settings.tokens, keyring)
        app.state.ctx = IssuerContext(
            settings, backend, store, minter, passwords, verifier,
            Upstream.configured(settings.upstream),
        )  # fmt: skip
        registry = CollectorRegistry()
        registry.register(
            IssuerCollector(
                requests, guard, upkeep, passwords, app.state.ctx.counts, store.sessions.throttle
            )
        )
        registry.register(VerifierCollector(verifier))
        app.state.metrics = registry
        pusher = Pusher(app.state.ctx)

        async def keys_and_epochs() -> None:
            active = await guard.start()
            log.info("active signing key %s; %r", active, backend.keys)

        async def push_delivery() -> None:
            pusher.start()

        # Redis not reachable, not ready or not durable yet: serve anyway, say not ready.
        app.state.startup = startup = Startup([
            ("connecting to Redis", backend.start),
            ("the signing key and the epochs", keys_and_epochs),
            ("the issuer's upkeep", upkeep.start),
            ("the issuer's own verifier", verifier.start),
            ("SSF push delivery", push_delivery),
        ])  # fmt: skip
        await startup.start()
        try:
            yield
        finally:
            await startup.stop()
            await pusher.stop()
            await guard.stop()
            await upkeep.stop()
            await verifier.stop()
            await backend.aclose()

    app = Starlette(
        middleware=[
            # The client address (what logins are throttled by) is the peer's, unless the
            # peer is a proxy the operator trusts.
            Middleware(ForwardedClient, proxies=TrustedProxies(settings.http.trusted_proxies)),
            Middleware(RequestCounter, counts=requests),
        ],
        routes=[
            Route("/v1/login", auth.login, methods=["POST"]),
            Route("/v1/login/upstream-nonce", linking.upstream_nonce, methods=["POST"]),
            Route("/v1/refresh", auth.refresh, methods=["POST"]),
            Route("/v1/logout", auth.logout, methods=["POST"]),
            Route("/v1/logout-all", auth.logout_all, methods=["POST"]),
            Route("/v1/sessions", account.my_sessions, methods=["GET"]),
            Route("/v1/sessions/{session_id}", account.end_my_session, methods=["DELETE"]),
            Route("/v1/password", account.change_password, methods=["POST"]),
            Route("/v1/admin/users/{user_id}/block", admin.block, methods=["POST"]),
            Route("/v1/admin/users/{user_id}/unblock", admin.unblock, methods=["POST"]),
            Route("/v1/admin/users/{user_id}/roles", admin.set_roles, methods=["PUT"]),
            Route("/v1/admin/users/{user_id}/sessions", admin.user_sessions, methods=["GET"]),
            Route("/v1/admin/sessions/{session_id}", admin.end_session, methods=["DELETE"]),
            Route("/v1/admin/audit", admin.audit, methods=["GET"]),
            Route(
                "/v1/admin/revocations/{event_id}",
                revocations.revocation_status,
                methods=["GET"],
            ),
            Route(
                "/v1/signals/backchannel-logout",
                upstream_revocations.backchannel_logout,
                methods=["POST"],
            ),
            Route("/v1/signals/events", upstream_revocations.pushed_event, methods=["POST"]),
            Route("/oauth/token", oauth.token, methods=["POST"]),
            Route("/.well-known/ssf-configuration", ssf.configuration, methods=["GET"]),
            Route("/ssf/stream", ssf.create_stream, methods=["POST"]),
            Route("/ssf/stream", ssf.read_stream, methods=["GET"]),
            Route("/ssf/stream", ssf.delete_stream, methods=["DELETE"]),
            Route("/ssf/status", ssf.status, methods=["GET"]),
            Route("/ssf/verify", ssf.verify, methods=["POST"]),
            Route("/ssf/poll/{stream_id}", ssf.poll, methods=["POST"]),
            Route("/ssf/jwks.json", ssf.jwks, methods=["GET"]),
            Route("/oauth/revoke", oauth.revoke, methods=["POST"]),
            Route("/oauth/introspect", oauth.introspect, methods=["POST"]),
            Route("/.well-known/jwks.json", _jwks, methods=["GET"]),
            Route(f"{STATUS_LIST_PATH}/{{partition}}", status_lists.status_list, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz, methods=["GET"]),
            *([Route("/metrics", metrics_endpoint, methods=["GET"])] if public_metrics else []),
        ],
        exception_handlers={
            RevocastError: _revocast_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.status_lists = status_lists.StatusLists()
    return app
