"""Signature and claim checks for one access token, with no I/O.

The compact JWS is parsed strictly here, not by a general JOSE library: three
canonical base64url segments, JSON objects without duplicate keys. The key is
chosen by ``kid`` among trusted keys, and each key is bound to one algorithm:
the header's ``alg`` must name it but never selects anything, and the only
signature check that exists is that key's Ed25519 verify. Claim validation is
kept apart from signature verification (as joserfc does) and takes its clock
from the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature

from revocast.claims import (
    FORBIDDEN_HEADERS,
    MAX_TOKEN_BYTES,
    TOKEN_TYPE,
    TOKEN_TYPES,
    AccessClaims,
)
from revocast.errors import TokenRejected
from revocast.keys import ED25519_NAMES, PublicKey

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def check_signature(token: str, keys: Mapping[str, PublicKey]) -> tuple[str, AccessClaims]:
    """Return (kid, claims) of a token signed by a trusted key; claims not yet validated."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("token_too_large", f"token exceeds {MAX_TOKEN_BYTES} bytes")
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenRejected("malformed_token", "a JWS has exactly three segments")
    header_b64, payload_b64, signature_b64 = segments
    header = _json_object(_b64decode(header_b64), "header")
    forbidden = FORBIDDEN_HEADERS.intersection(header)
    if forbidden:
        raise TokenRejected("forbidden_header", f"header carries {sorted(forbidden)}")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES:
        raise TokenRejected("wrong_token_type", f"typ must be {TOKEN_TYPE}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise TokenRejected("missing_kid", "header has no kid")
    key = keys.get(kid)
    if key is None:
        raise TokenRejected("unknown_key", "kid is not a trusted key")
    if header.get("alg") not in ED25519_NAMES:  # the key decides; the header must agree
        raise TokenRejected("algorithm_not_allowed", f"key {kid} only signs with Ed25519")
    payload_raw = _b64decode(payload_b64)  # well-formed before any cryptography
    signature = _b64decode(signature_b64)
    try:
        key.key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise TokenRejected("bad_signature", "signature does not verify") from None
    payload = _json_object(payload_raw, "payload")
    try:
        claims = msgspec.convert(payload, AccessClaims)
    except (msgspec.ValidationError, ValueError) as exc:
        raise TokenRejected("invalid_claims", str(exc)) from None
    return kid, claims


def _b64decode(segment: str) -> bytes:
    """Strict base64url: no padding, no stray characters, canonical trailing bits."""
    if not _SEGMENT.fullmatch(segment):
        raise TokenRejected("malformed_token", "segment is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected("malformed_token", "segment is not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise TokenRejected("malformed_token", "segment is not canonical base64url")
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [name for name, _ in pairs]
    if len(set(keys)) != len(keys):
        raise TokenRejected("malformed_token", "duplicate JSON member names")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise TokenRejected("malformed_token", f"{name} is not JSON")


def _json_object(raw: bytes, part: str) -> dict[str, Any]:
    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenRejected("malformed_token", f"{part} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected("malformed_token", f"{part} is not a JSON object")
    return value


def check_claims(
    claims: AccessClaims, *, issuer: str, audience: str, now_s: float, leeway_s: float
) -> AccessClaims:
    """Check issuer, audience and the time window against the caller's clock."""
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
