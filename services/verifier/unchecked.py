"""Claims of a token whose signature and times are checked, but not its revocation.

Only the issuer needs this, to act *against* a token (log it out, revoke it, say in
introspection why it is inactive), where a stale cache must not stop it. It is never
an authorization: that is ``Verifier.verify``. It lives here, beside the cache and the
decoder it reads, so that the issuer uses the verifier through this function and never
its internals; it is left out of ``revocast.verifier.__all__`` on purpose, and ``Verifier``
has no such method (an API node has one way to check a token).
"""

from __future__ import annotations

from revocast.claims import AccessClaims
from revocast.verifier.decode import check_token
from revocast.verifier.verifier import Verifier


def signed_claims(verifier: Verifier, token: str) -> AccessClaims:
    """The token's claims if one of the verifier's keys signed it and it has not expired;
    TokenRejected otherwise. No revocation or freshness check."""
    return check_token(
        token, verifier.cache.keys, verifier.settings.tokens, verifier.redis_time_s()
    )[1]
