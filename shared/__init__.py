"""revocast: local JWT verification with revocations pushed through a Redis Stream.

``revocast`` holds what the issuer and the verifiers share (settings, events,
keys, the Redis layout); ``revocast.issuer`` and ``revocast.verifier`` are the
two services.
"""

from __future__ import annotations

from revocast.errors import RevocastError
from revocast.settings import Settings

__version__ = "0.1.0"
__all__ = ["RevocastError", "Settings", "__version__"]
