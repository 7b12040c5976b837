"""The access-token contract shared by issuer and verifier."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from revocast.status_list import TokenStatus

TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (RFC 9068 header typ, not a secret)
# RFC 9068 §4: verifiers must accept both; RFC 7515 §4.1.9: compared case-insensitively.
TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_BYTES: Final = 4096  # longer tokens are refused before any parsing
# Header members that would let a token choose its own key or extend the rules.
FORBIDDEN_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit"})
# A time in a token: a whole number, never a float (no 1e400, which JSON readers take for
# infinity), within what every JSON reader holds exactly (2^53 - 1, JavaScript's limit).
MAX_TIME: Final = 2**53 - 1
TokenTime = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME)]


class AccessClaims(msgspec.Struct, frozen=True):
    """Every claim is required: a token missing one is rejected, never defaulted.

    ``iat``, ``nbf`` and ``exp`` are whole seconds, as every JWT library compares them, and
    nothing else: a fraction, a float, a number past ``MAX_TIME`` is refused.
    ``iat_ms`` (private) is the same issue time in milliseconds, the Redis time the session
    state was written: revocations cut off by it, so two events in one second stay ordered.
    Tokens without it are read as issued at the start of their ``iat`` second.
    ``client_id`` and ``scope`` (RFC 9068) inform; nothing here authorizes by them (``roles``
    does), and tokens minted before they existed lack them (read as the built-in client).
    ``status`` (draft-ietf-oauth-status-list) names the session's index in a Token Status
    List, for readers without Redis; tokens minted without an issuer URL, or before status
    lists existed, lack it.
    """

    iss: str
    aud: str
    sub: str
    sid: str
    jti: str
    iat: TokenTime
    nbf: TokenTime
    exp: TokenTime
    roles: tuple[str, ...]
    iat_ms: TokenTime | None = None
    client_id: str | None = None
    scope: str | None = None
    status: TokenStatus | None = None

    def __post_init__(self) -> None:
        if self.iat_ms is not None and self.iat_ms // 1000 != int(self.iat):
            raise ValueError("iat_ms is not the same time as iat")

    @property
    def issued_ms(self) -> int:
        """The issue time the revocation cut-offs compare with, in milliseconds."""
        return self.iat_ms if self.iat_ms is not None else self.iat * 1000
