"""What API nodes embed: the verifier, its middleware and sidecar, and their outcomes.

``Verifier.cache`` (the revoked sessions, users and keys) and ``Verifier.state`` are
readable for diagnostics; their classes stay in their modules, not in this surface.
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
