"""ASGI apps for ``bench.sidecar_throughput``; each is served by its own uvicorn process::

    python -m uvicorn bench._asgi_apps:<factory> --factory --loop uvloop --http httptools \
        --workers 1 --log-level warning --no-access-log --host 127.0.0.1 --port PORT

Settings come from the environment (``REDIS_URL``, ``REVOCAST_KEY_PREFIX``, ...) plus
``BENCH_JWK`` (the public JWK the seed pattern decodes with). Every app answers
``GET /verify``; the checking ones answer like the sidecar: 200 with ``X-Auth-Subject``,
``X-Auth-Session`` and ``X-Auth-Roles``, 401 otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from revocast.connection import redis_client
from revocast.errors import TokenRejected, VerifierStale
from revocast.http import bearer_token
from revocast.keys import ALGORITHM, PublicKey
from revocast.keyspace import Keyspace
from revocast.settings import Settings
from revocast.store import Backend
from revocast.store.sessions import keys as session_keys
from revocast.verifier import Verifier, create_sidecar


def sidecar() -> ASGIApp:
    """revocast's sidecar, exactly as ``revocast verifier`` builds it."""
    return create_sidecar(Settings.from_env())


def noop() -> ASGIApp:
    """A Starlette app whose /verify does nothing: the same framework and server, no check."""

    async def verify(request: Request) -> Response:
        return Response(status_code=200)

    return Starlette(routes=[Route("/verify", verify, methods=["GET"])])


def noop_raw() -> ASGIApp:
    """A bare ASGI callable answering 200 to everything: uvicorn and httptools alone."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def _accepted(sub: str, sid: str, roles: list[str] | tuple[str, ...]) -> Response:
    return Response(
        status_code=200,
        headers={"X-Auth-Subject": sub, "X-Auth-Session": sid, "X-Auth-Roles": ",".join(roles)},
    )


def _refused(code: str, status: int = 401) -> Response:
    return Response(status_code=status, content=code)


class SessionKeys:
    """Names a session's Redis key, in its partition; ``start`` (at the app's start-up) reads
    the deployment's partition count."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys: Keyspace | None = None

    async def start(self) -> None:
        backend = Backend(self.settings)
        try:
            self.keys = await backend.start()
        finally:
            await backend.aclose()

    def __call__(self, sid: str) -> str:
        keys = self.keys
        if keys is None:
            raise RuntimeError("the partition count is read at start-up")
        return session_keys.session(keys.of(sid), sid)


def memo_exists() -> ASGIApp:
    """The sidecar's memoized ``Verifier.verify`` plus one Redis ``EXISTS`` of the session key
    per request (what a sidecar checking liveness in Redis instead of the stream would do)."""
    settings = Settings.from_env()
    verifier = Verifier(settings)
    session_key = SessionKeys(settings)
    redis = redis_client(settings.redis.redis_url or "")

    async def verify(request: Request) -> Response:
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None:
            return _refused("missing_token")
        try:
            claims = verifier.verify(token)
        except TokenRejected as exc:
            return _refused(exc.code)
        except VerifierStale as exc:
            return _refused(exc.code, 503)
        if not await redis.exists(session_key(claims.sid)):
            return _refused("session_revoked")
        return _accepted(claims.sub, claims.sid, claims.roles)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await session_key.start()
        async with verifier:
            yield
        await redis.aclose()

    return Starlette(routes=[Route("/verify", verify, methods=["GET"])], lifespan=lifespan)


def seed() -> ASGIApp:
    """The seed pattern: PyJWT ``jwt.decode`` (signature and claims) plus one Redis ``EXISTS``
    of the session key on every request; no memo, no stream."""
    settings = Settings.from_env()
    public = PublicKey.from_jwk(os.environ["BENCH_JWK"]).key
    session_key = SessionKeys(settings)
    redis = redis_client(settings.redis.redis_url or "")

    async def verify(request: Request) -> Response:
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None:
            return _refused("missing_token")
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                audience=settings.tokens.audience,
                issuer=settings.tokens.issuer,
            )
        except jwt.PyJWTError:
            return _refused("invalid_token")
        if not await redis.exists(session_key(claims["sid"])):
            return _refused("session_revoked")
        return _accepted(claims["sub"], claims["sid"], claims["roles"])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await session_key.start()
        yield
        await redis.aclose()

    return Starlette(routes=[Route("/verify", verify, methods=["GET"])], lifespan=lifespan)
