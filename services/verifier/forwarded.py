"""What a gateway says about the request it asks the sidecar to authorize.

Only the proxies the operator names (``REVOCAST_TRUSTED_PROXIES``) are believed, and only
through ``X-Forwarded-Method``, ``X-Forwarded-Host`` and ``X-Forwarded-Proto``, which the
shipped gateway configs set and overwrite. A value a client could have slipped through
(repeated, or from a peer nobody trusts) decides nothing: the method is then unknown, and
a cookie must prove itself as for a state-changing request.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import Scope

from revocast.proxies import TrustedProxies
from revocast.verifier.gate import Original

_METHOD = re.compile(r"[A-Z]{3,10}")
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_READS = frozenset({"GET", "HEAD"})  # what an auth subrequest uses, whatever the original was


def original_request(scope: Scope, headers: Headers, proxies: TrustedProxies) -> Original:
    """The method and origin of the request being authorized, where trustworthy."""
    own_method = str(scope["method"]).upper()
    if not proxies.trust(scope):
        # An unsafe method is what it says; a GET may stand for anything. With no trusted
        # host, only REVOCAST_ALLOWED_ORIGINS may send cookie changes.
        return Original(None if own_method in _READS else own_method, origin="")
    said = _sole(headers, "x-forwarded-method")
    if said is not None:
        method = said.upper() if _METHOD.fullmatch(said.upper()) else None
    elif str(scope["path"]).startswith("/verify/"):
        method = own_method  # Envoy's ext_authz sends the original method and path as such
    else:
        method = None if own_method in _READS else own_method
    host, proto = _sole(headers, "x-forwarded-host"), _sole(headers, "x-forwarded-proto")
    trusted_origin = (
        f"{proto}://{host}" if host and _HOST.fullmatch(host) and proto in ("http", "https") else ""
    )
    return Original(method, origin=trusted_origin)


def _sole(headers: Headers, name: str) -> str | None:
    """The header's value if it was sent once, with one value; else None."""
    values = headers.getlist(name)
    if len(values) != 1 or "," in values[0]:
        return None
    return values[0].strip() or None
