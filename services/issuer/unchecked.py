"""Claims of a token whose signature and times are checked, but not its revocation.

Only the issuer needs this, to act *against* a token (log it out, revoke it, say in
introspection why it is inactive), where a stale cache must not stop it. It is never
an authorization: that is ``Verifier.verify``.
"""

from __future__ import annotations

from revocast.claims import AccessClaims
from revocast.verifier import Verifier
from revocast.verifier.decode import check_token


def signed_claims(verifier: Verifier, token: str) -> AccessClaims:
    """The token's claims if one of the verifier's keys signed it and it has not expired;
    TokenRejected otherwise. No revocation or freshness check."""
    return check_token(token, verifier.cache.keys, verifier.settings, verifier.redis_time_s())[1]
