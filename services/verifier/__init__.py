"""What API nodes embed: the verifier, its middleware and sidecar, and their outcomes.

``Verifier.cache`` (the revoked sessions, users and keys) and ``Verifier.state`` are
readable for diagnostics; their classes stay in their modules, not in this surface.
What builds on the verifier (the issuer, ``revocast.fastapi``, the CLI) uses this surface
and three modules besides: ``gate`` (``admit``, the one way in), ``metrics``
(``VerifierCollector``) and ``unchecked`` (the issuer's check without revocation), and
nothing else of it (tests/test_layout.py).
"""

from __future__ import annotations

from revocast.claims import AccessClaims
from revocast.errors import TokenRejected, VerifierStale
from revocast.verifier.middleware import RevocastMiddleware
from revocast.verifier.sidecar import create_sidecar, sidecar_from_env
from revocast.verifier.verifier import Verifier

__all__ = [
    "AccessClaims",
    "RevocastMiddleware",
    "TokenRejected",
    "Verifier",
    "VerifierStale",
    "create_sidecar",
    "sidecar_from_env",
]
