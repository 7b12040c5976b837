"""The access-token contract shared by issuer and verifier."""

from __future__ import annotations

from typing import Final

import msgspec

TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (RFC 9068 header typ, not a secret)
MAX_TOKEN_BYTES: Final = 4096  # longer tokens are refused before any parsing
# Header members that would let a token choose its own key or extend the rules.
FORBIDDEN_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit"})


class AccessClaims(msgspec.Struct, frozen=True):
    """Every claim is required: a token missing one is rejected, never defaulted."""

    iss: str
    aud: str
    sub: str
    sid: str
    jti: str
    iat: float  # seconds, millisecond precision (Redis server time)
    nbf: float
    exp: float
    roles: tuple[str, ...]

    @property
    def iat_ms(self) -> int:
        return round(self.iat * 1000)
