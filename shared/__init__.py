"""revocast: local JWT verification with revocations pushed through a Redis Stream.

``revocast`` holds what the issuer and the verifiers share (settings, events,
keys, the Redis layout) and imports none of what builds on it: ``revocast.issuer``
and ``revocast.verifier`` (the two services), ``revocast.cli`` (the command) and
``revocast.fastapi`` (tests/test_layout.py).
"""

from __future__ import annotations

from revocast.errors import RevocastError
from revocast.settings import Settings

__version__ = "0.1.0"
__all__ = ["RevocastError", "Settings", "__version__"]
