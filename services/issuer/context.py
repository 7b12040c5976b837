"""What the issuer's request handlers share, built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request

from revocast.errors import StoreUnavailable
from revocast.issuer.passwords import Passwords
from revocast.issuer.tokens import TokenMinter
from revocast.issuer.upstream import Upstream
from revocast.settings import Settings
from revocast.store import Backend, Store
from revocast.verifier import Verifier


@dataclass(slots=True)
class Counts:
    """What the handlers and background loops count, for the issuer's metrics."""

    ssf_losses: int = 0  # runs of revocation events lost before an SSF queue had them


@dataclass(frozen=True, slots=True)
class IssuerContext:
    settings: Settings
    backend: Backend
    store: Store  # the deployment's state, by aggregate
    minter: TokenMinter
    passwords: Passwords
    verifier: Verifier  # the issuer checks callers' access tokens like any verifier
    upstream: Upstream | None = None  # the IdP whose logouts end sessions here, if any
    counts: Counts = field(default_factory=Counts)

    @staticmethod
    def of(request: Request) -> IssuerContext:
        return IssuerContext.of_app(request.app)

    @staticmethod
    def of_app(app: Starlette) -> IssuerContext:
        """The context of a started issuer; 503 while its start-up still waits for Redis."""
        waiting_for: str = app.state.startup.waiting_for
        if not app.state.startup.done:
            raise StoreUnavailable(
                f"the issuer is not ready yet ({waiting_for or 'starting'}): retry in a moment"
            )
        ctx: IssuerContext = app.state.ctx
        return ctx
