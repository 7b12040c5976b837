"""Who is calling: the caller's access token, checked by the issuer's own verifier."""

from __future__ import annotations

from starlette.requests import Request

from revocast.claims import AccessClaims
from revocast.errors import Forbidden, TokenRejected
from revocast.http import bearer_token
from revocast.issuer.context import IssuerContext

MODERATOR_ROLES = frozenset({"admin", "moderator"})
INTROSPECTOR_ROLES = frozenset({"admin", "introspect"})


def caller(ctx: IssuerContext, request: Request) -> AccessClaims:
    """The verified claims of the request's bearer token (401/503 otherwise)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise TokenRejected("missing_token", "an Authorization: Bearer token is required")
    return ctx.verifier.verify(token)


def caller_with_role(ctx: IssuerContext, request: Request, roles: frozenset[str]) -> AccessClaims:
    """Like ``caller``, and the token must carry one of ``roles`` (403 otherwise).

    Admin actions check the roles again in Redis inside their script, so a
    moderator demoted or blocked a moment ago has no power even before the
    revocation of their token reaches this verifier.
    """
    claims = caller(ctx, request)
    if roles.isdisjoint(claims.roles):
        raise Forbidden(f"requires one of the roles {sorted(roles)}")
    return claims
