"""Signature and claim checks for one access token, with no I/O.

The compact JWS is parsed strictly here, not by a general JOSE library: three
canonical base64url segments, JSON objects read by ``revocast.strict_json``. The key is
chosen by ``kid`` among trusted keys, and each key is bound to one algorithm:
the header's ``alg`` must name it but never selects anything, and the only
signature check that exists is that key's Ed25519 verify. Claim validation is
kept apart from signature verification (as joserfc does) and takes its clock
from the caller.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature

from revocast import strict_json
from revocast.claims import (
    FORBIDDEN_HEADERS,
    MAX_TOKEN_BYTES,
    TOKEN_TYPE,
    TOKEN_TYPES,
    AccessClaims,
)
from revocast.errors import TokenRejected
from revocast.keys import ED25519_NAMES, PublicKey
from revocast.settings import TokenSettings

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
# What a client can do about a token that was changed, cut or made up: send the one it got.
_AS_ISSUED = "send the access token exactly as the issuer gave it"


def check_signature(token: str, keys: Mapping[str, PublicKey]) -> tuple[str, AccessClaims]:
    """Return (kid, claims) of a token signed by a trusted key; claims not yet validated."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected(
            "token_too_large", f"the token is over {MAX_TOKEN_BYTES} bytes: {_AS_ISSUED}"
        )
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenRejected(
            "malformed_token", f"the token is not three dot-separated segments: {_AS_ISSUED}"
        )
    header_b64, payload_b64, signature_b64 = segments
    header = _json_object(_b64decode(header_b64), "header")
    forbidden = FORBIDDEN_HEADERS.intersection(header)
    if forbidden:
        raise TokenRejected(
            "forbidden_header",
            f"the token header carries {', '.join(sorted(forbidden))}, which revocast never "
            f"sets: {_AS_ISSUED}",
        )
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES:
        raise TokenRejected(
            "wrong_token_type",
            f"the token's typ is not {TOKEN_TYPE}: send an access token, not another kind of JWT",
        )
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise TokenRejected("missing_kid", f"the token header names no key (kid): {_AS_ISSUED}")
    key = keys.get(kid)
    if key is None:
        raise TokenRejected(
            "unknown_key",
            "the token names a key (kid) not trusted here: log in again for a new one",
        )
    if header.get("alg") not in ED25519_NAMES:  # the key decides; the header must agree
        raise TokenRejected(
            "algorithm_not_allowed",
            f"the token's alg is not EdDSA, the only one key {kid} signs with: {_AS_ISSUED}",
        )
    payload_raw = _b64decode(payload_b64)  # well-formed before any cryptography
    signature = _b64decode(signature_b64)
    try:
        key.key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise TokenRejected(
            "bad_signature", f"the token's signature does not verify: {_AS_ISSUED}"
        ) from None
    payload = _json_object(payload_raw, "payload")
    try:
        claims = msgspec.convert(payload, AccessClaims)
    except (msgspec.ValidationError, ValueError) as exc:
        raise TokenRejected(
            "invalid_claims", f"the token's claims are not valid ({exc}): {_AS_ISSUED}"
        ) from None
    return kid, claims


def _b64decode(segment: str) -> bytes:
    """Strict base64url: no padding, no stray characters, canonical trailing bits."""
    if not _SEGMENT.fullmatch(segment):
        raise TokenRejected(
            "malformed_token", f"a token segment is not unpadded base64url: {_AS_ISSUED}"
        )
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected(
            "malformed_token", f"a token segment is not base64url: {_AS_ISSUED}"
        ) from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise TokenRejected(
            "malformed_token", f"a token segment is not canonical base64url: {_AS_ISSUED}"
        )
    return raw


def _json_object(raw: bytes, part: str) -> dict[str, Any]:
    try:
        return strict_json.decode(raw, dict[str, Any])
    except (strict_json.StrictJsonError, msgspec.ValidationError):
        raise TokenRejected(
            "malformed_token", f"the token's {part} is not a JSON object: {_AS_ISSUED}"
        ) from None


def check_claims(
    claims: AccessClaims, *, issuer: str, audience: str, now_s: float, leeway_s: float
) -> AccessClaims:
    """Check issuer, audience and the time window against the caller's clock."""
    if claims.iss != issuer:
        raise TokenRejected(
            "wrong_issuer", "the token is from another issuer (iss): log in to this one"
        )
    if claims.aud != audience:
        raise TokenRejected(
            "wrong_audience", "the token is for another audience (aud): get one for this API"
        )
    if now_s > claims.exp + leeway_s:
        raise TokenRejected("token_expired", "the access token expired (exp): refresh it")
    if now_s + leeway_s < claims.nbf:
        raise TokenRejected(
            "token_not_yet_valid", "the token is not valid yet (nbf): check the clocks, then retry"
        )
    if now_s + leeway_s < claims.iat:
        raise TokenRejected(
            "issued_in_future", "the token says it was issued later (iat): check the clocks"
        )
    return claims


def check_token(
    token: str, keys: Mapping[str, PublicKey], tokens: TokenSettings, now_s: float
) -> tuple[str, AccessClaims]:
    """(kid, claims) of a token signed by one of ``keys``, for this issuer and audience, and
    within its time window at ``now_s``. Revocation is the caller's to check."""
    kid, claims = check_signature(token, keys)
    check_claims(claims, issuer=tokens.issuer, audience=tokens.audience, now_s=now_s,
                 leeway_s=tokens.leeway_s)  # fmt: skip
    return kid, claims
