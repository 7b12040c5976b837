"""What API nodes embed: the verifier, its middleware and sidecar, and their outcomes."""

from __future__ import annotations

from revocast.claims import AccessClaims
from revocast.errors import TokenRejected, VerifierStale
from revocast.verifier.cache import RevocationCache
from revocast.verifier.middleware import RevocastMiddleware
from revocast.verifier.sidecar import create_sidecar, sidecar_from_env
from revocast.verifier.verifier import Verifier, VerifierState

__all__ = [
    "AccessClaims",
    "RevocastMiddleware",
    "RevocationCache",
    "TokenRejected",
    "Verifier",
    "VerifierStale",
    "VerifierState",
    "create_sidecar",
    "sidecar_from_env",
]
