"""RFC 8414 authorization server metadata at ``/.well-known/oauth-authorization-server``.

Endpoint URLs hang off ``REVOCAST_ISSUER`` when it is a URL (in production it must be: the
https URL clients reach the issuer at), else off the URL the request came to. A document
built from the request's ``Host`` is the caller's own view and is never cached by anyone
(``no-store``): a shared cache keyed without ``Host`` would hand an attacker's version to
everyone. Only what revocast does is listed. There is no authorization endpoint (users log
in with a password grant, not a redirect), so ``response_types_supported`` is empty: RFC
8414 calls it REQUIRED and has no value for "none", and strict readers (Authlib's
``validate()``) refuse an empty list. Introspection also takes a bearer token with the
``introspect`` role, which RFC 8414's registry has no name for, so only the client methods
are listed for it.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import SettingsError
from revocast.http import json_response
from revocast.issuer.context import IssuerContext
from revocast.keys import ED25519_NAMES
from revocast.settings import Settings

CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]
# A document whose URLs come from REVOCAST_ISSUER is the same for everyone: 5 minutes.
PUBLIC_CACHE = "public, max-age=300"


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


def issuer_url(settings: Settings) -> bool:
    """Whether REVOCAST_ISSUER is a URL that the public documents can hang off."""
    return settings.tokens.issuer.startswith(("https://", "http://"))


def require_issuer_url(settings: Settings) -> None:
    """Production: REVOCAST_ISSUER must be an https URL (RFC 8414 §2: no query, no fragment),
    else every URL the issuer publishes would come from the caller's ``Host``."""
    if settings.deployment.environment != "production":
        return
    try:
        url = httpx.URL(settings.tokens.issuer)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme != "https" or not url.host or url.query or url.fragment:
        raise SettingsError(
            f"production: REVOCAST_ISSUER is {settings.tokens.issuer[:100]!r}, not an https URL: "
            "set it to the URL clients reach the issuer at, e.g. https://auth.example.com (no "
            "query or fragment); the metadata and SSF endpoints are named under it"
        )


def public_base(ctx: IssuerContext, request: Request) -> str:
    """Where clients reach the issuer: REVOCAST_ISSUER when it is a URL, else the request's."""
    base = ctx.settings.tokens.issuer if issuer_url(ctx.settings) else str(request.base_url)
    return base.rstrip("/")


def cache_control(ctx: IssuerContext) -> str:
    """Public caching only for a document that does not depend on the request's ``Host``."""
    return PUBLIC_CACHE if issuer_url(ctx.settings) else "no-store"


async def metadata(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    return json_response(
        document(ctx.settings.tokens.issuer, public_base(ctx, request)),
        headers={"Cache-Control": cache_control(ctx)},
    )
