"""RFC 8414 authorization server metadata at ``/.well-known/oauth-authorization-server``.

Endpoint URLs hang off ``REVOCAST_ISSUER`` when it is a URL (in production: the https URL
clients reach the issuer at), else off the URL the request came to. Only what revocast does
is listed. There is no authorization endpoint (users log in with a password grant, not a
redirect), so ``response_types_supported`` is empty: RFC 8414 calls it REQUIRED and has no
value for "none", and strict readers (Authlib's ``validate()``) refuse an empty list.
Introspection also takes a bearer token with the ``introspect`` role, which RFC 8414's
registry has no name for, so only the client methods are listed for it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from revocast.http import json_response
from revocast.issuer.context import IssuerContext
from revocast.keys import ED25519_NAMES

CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]


def document(issuer: str, base: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/oauth/token",
        # "none": a public client only names itself with client_id.
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH, "none"],
        "grant_types_supported": ["password", "refresh_token"],
        "revocation_endpoint": f"{base}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": [*CLIENT_AUTH, "none"],
        "introspection_endpoint": f"{base}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH,
        "response_types_supported": [],
        # Not in RFC 8414's registry: the algorithms of the access tokens (RFC 9068) it signs.
        "access_token_signing_alg_values_supported": sorted(ED25519_NAMES),
    }


def public_base(ctx: IssuerContext, request: Request) -> str:
    """Where clients reach the issuer: REVOCAST_ISSUER when it is a URL, else the request's."""
    issuer = ctx.settings.issuer
    base = issuer if issuer.startswith(("https://", "http://")) else str(request.base_url)
    return base.rstrip("/")


async def metadata(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    return json_response(
        document(ctx.settings.issuer, public_base(ctx, request)),
        headers={"Cache-Control": "public, max-age=300"},
    )
