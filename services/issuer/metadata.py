"""RFC 8414 authorization server metadata at ``/.well-known/oauth-authorization-server``.

Endpoint URLs hang off ``REVOCAST_ISSUER`` when it is a URL (in production: the https URL
clients reach the issuer at), else off the URL the request came to. Only what revocast does
today is listed: revocation takes no client authentication (``none``); introspection takes a
bearer token with the ``introspect`` role, which RFC 8414's registry has no name for, so no
introspection method is listed. There is no ``token_endpoint`` yet: ``/v1/login`` and
``/v1/refresh`` take JSON, not RFC 6749's form, and a client must not be told otherwise
(so strict readers such as Authlib's refuse this document until there is one).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from revocast.http import json_response
from revocast.issuer.context import IssuerContext
from revocast.keys import ED25519_NAMES


def document(issuer: str, base: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint": f"{base}/oauth/introspect",
        # No authorization endpoint: revocast logs users in with /v1/login, not a redirect.
        "response_types_supported": [],
        "grant_types_supported": ["refresh_token"],
        # Not in RFC 8414's registry: the algorithms of the access tokens (RFC 9068) it signs.
        "access_token_signing_alg_values_supported": sorted(ED25519_NAMES),
    }


async def metadata(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    issuer = ctx.settings.issuer
    base = issuer if issuer.startswith(("https://", "http://")) else str(request.base_url)
    return json_response(
        document(issuer, base.rstrip("/")), headers={"Cache-Control": "public, max-age=300"}
    )
