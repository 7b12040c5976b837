"""Signature and claim checks for one access token, with no I/O.

Signature verification (pyjwt's JWS layer, algorithm pinned by the key) is kept
apart from claim validation (msgspec schema plus an injected clock), as
joserfc does. The token's ``alg`` header never selects the algorithm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import jwt
import msgspec
from jwt.api_jws import PyJWS

from revocast.claims import FORBIDDEN_HEADERS, MAX_TOKEN_BYTES, TOKEN_TYPE, AccessClaims
from revocast.errors import TokenRejected
from revocast.keys import PublicKey, b64url_decode

_jws = PyJWS()
_header_decoder = msgspec.json.Decoder(dict[str, object])
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_claims_decoder = msgspec.json.Decoder(AccessClaims)


def check_signature(token: str, keys: Mapping[str, PublicKey]) -> tuple[str, bytes]:
    """Return (kid, payload bytes) of a token signed by a trusted key, else raise."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("token_too_large", f"token exceeds {MAX_TOKEN_BYTES} bytes")
    header = _header(token)
    forbidden = FORBIDDEN_HEADERS.intersection(header)
    if forbidden:
        raise TokenRejected("forbidden_header", f"header carries {sorted(forbidden)}")
    if header.get("typ") != TOKEN_TYPE:
        raise TokenRejected("wrong_token_type", f"typ must be {TOKEN_TYPE}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise TokenRejected("missing_kid", "header has no kid")
    key = keys.get(kid)
    if key is None:
        raise TokenRejected("unknown_key", "kid is not a trusted key")
    try:
        decoded = _jws.decode_complete(token, key.key, algorithms=[key.algorithm])
    except jwt.InvalidAlgorithmError:
        raise TokenRejected(
            "algorithm_not_allowed", f"key {kid} only signs with {key.algorithm}"
        ) from None
    except jwt.InvalidSignatureError:
        raise TokenRejected("bad_signature", "signature does not verify") from None
    except jwt.InvalidTokenError:
        raise TokenRejected("malformed_token", "token is not a compact JWS") from None
    return kid, decoded["payload"]


def _header(token: str) -> dict[str, object]:
    """The JOSE header, read before pyjwt so each refusal gets its own reason."""
    segments = token.split(".")
    if len(segments) != 3 or not all(_B64URL.fullmatch(part) for part in segments[:2]):
        raise TokenRejected("malformed_token", "token is not three base64url segments")
    try:
        header = _header_decoder.decode(b64url_decode(segments[0]))
    except (msgspec.DecodeError, ValueError):
        raise TokenRejected("malformed_token", "header is not a JSON object") from None
    return header


def check_claims(
    payload: bytes, *, issuer: str, audience: str, now_s: float, leeway_s: float
) -> AccessClaims:
    """Parse the claims strictly and check issuer, audience and the time window."""
    try:
        claims = _claims_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise TokenRejected("invalid_claims", str(exc)) from None
    except msgspec.DecodeError:
        raise TokenRejected("malformed_token", "payload is not a JSON object") from None
    if claims.iss != issuer:
        raise TokenRejected("wrong_issuer", "iss does not match")
    if claims.aud != audience:
        raise TokenRejected("wrong_audience", "aud does not match")
    if now_s > claims.exp + leeway_s:
        raise TokenRejected("token_expired", "exp has passed")
    if now_s + leeway_s < claims.nbf:
        raise TokenRejected("token_not_yet_valid", "nbf is in the future")
    if now_s + leeway_s < claims.iat:
        raise TokenRejected("issued_in_future", "iat is in the future")
    return claims
