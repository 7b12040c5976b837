"""What a verifier says about a token, as plain values the tests can wait on."""

from __future__ import annotations

from revocast.errors import TokenRejected, VerifierStale
from revocast.verifier import Verifier


def outcome(verifier: Verifier, token: str) -> str:
    """``accepted``, ``stale``, or the rejection code."""
    try:
        verifier.verify(token)
    except TokenRejected as exc:
        return exc.code
    except VerifierStale:
        return "stale"
    return "accepted"


def rejection(verifier: Verifier, token: str) -> str | None:
    """The rejection code, or None when the token is accepted (or the verifier stale)."""
    code = outcome(verifier, token)
    return None if code in ("accepted", "stale") else code


def is_rejected(verifier: Verifier, token: str) -> bool:
    return rejection(verifier, token) is not None


def rejects_with(verifier: Verifier, token: str, code: str) -> bool:
    return outcome(verifier, token) == code
