"""Who is calling: the caller's access token, checked by the issuer's own verifier."""

from __future__ import annotations

from starlette.requests import Request

from revocast.claims import AccessClaims
from revocast.errors import TokenRejected
from revocast.events import ActorKind
from revocast.http import credentials
from revocast.issuer.context import IssuerContext
from revocast.roles import ADMIN, INTROSPECT, MODERATOR
from revocast.verifier.gate import Original, admit
from revocast.verifier.unchecked import signed_claims

MODERATOR_ROLES = frozenset({ADMIN, MODERATOR})
INTROSPECTOR_ROLES = frozenset({ADMIN, INTROSPECT})


def caller(ctx: IssuerContext, request: Request) -> AccessClaims:
    """The verified claims of the bearer token or access cookie (401/403/503 otherwise)."""
    return admit(ctx.verifier, request.headers, Original(request.method))


def revoked_caller(ctx: IssuerContext, request: Request, refused: TokenRejected) -> AccessClaims:
    """The claims of a token ``caller`` refused as revoked (its signature and times are good).

    For repeats of the revoking calls: a client whose logout got 503 (not
    durable) repeats it with the same token, which is now refused as revoked;
    the call finds the revocation made, writes nothing, and waits for the
    replicas again before it answers as the first call would have.
    """
    token, _ = credentials(request.headers)
    if token is None:
        raise refused
    return signed_claims(ctx.verifier, token)


def by_cookie(request: Request) -> bool:
    """True when the request authenticates with the access cookie (browser mode)."""
    return credentials(request.headers)[1]


def caller_with_role(ctx: IssuerContext, request: Request, roles: frozenset[str]) -> AccessClaims:
    """Like ``caller``, and the token must carry one of ``roles`` (403 otherwise).

    Admin actions check the roles again in Redis inside their script, so a
    moderator demoted or blocked a moment ago has no power even before the
    revocation of their token reaches this verifier.
    """
    return admit(ctx.verifier, request.headers, Original(request.method), roles=roles)


def kind_of(actor: AccessClaims) -> ActorKind:
    """Who a moderation call comes from, for its event: its token's roles are current (a
    change of them refuses the token), and its script checks the power in Redis again."""
    return ActorKind.ADMIN if ADMIN in actor.roles else ActorKind.MODERATOR


async def authorize(ctx: IssuerContext, actor: AccessClaims, target: str = "") -> str:
    """The actor's power for a read, as Redis has it now; Forbidden if none (or over an admin):
    the authority rule, stated once (``revocast.store.authority``)."""
    return await ctx.store.authority.authorize(actor.sub, target)
