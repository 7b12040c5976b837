"""A Relying Party's reading of a Status List Token, written from draft-ietf-oauth-status-list-21
(the Status List, the Status List Token and its validation) and nothing of revocast's: the
tests hold the issuer's lists to it.

It checks what the draft asks of a reader: the JWS signed by a key of the issuer's JWKS, the
header ``typ`` ``statuslist+jwt``, ``sub`` equal to the uri the token names, ``iat``
present, ``exp`` not passed, ``ttl`` a positive number when present, ``bits`` 1, 2, 4 or 8,
``lst`` base64url of ZLIB (RFC 1950) data, and the index inside the list.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class ListRefused(Exception):
    """The Status List Token fails one of the draft's checks."""


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ReadList:
    claims: dict[str, Any]
    header: dict[str, Any]
    bits: int
    data: bytes

    def status(self, idx: int) -> int:
        """Index idx holds ``bits`` bits at bit position idx * bits, counted from the
        least significant bit of byte 0."""
        position = idx * self.bits
        if idx < 0 or position // 8 >= len(self.data):
            raise ListRefused(f"index {idx} is outside the list ({len(self.data)} bytes)")
        return (self.data[position // 8] >> (position % 8)) & ((1 << self.bits) - 1)


def read(token: str, jwks: dict[str, Any], uri: str, now: float | None = None) -> ReadList:
    """The list in ``token``, fetched from ``uri``, if every check passes."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(_b64(header_b64))
    if header.get("typ") != "statuslist+jwt":
        raise ListRefused(f"typ is {header.get('typ')!r}")
    keys = {k["kid"]: k for k in jwks["keys"]}
    jwk = keys.get(header.get("kid"))
    if jwk is None or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ListRefused("the kid is not an Ed25519 key of the issuer's JWKS")
    if header.get("alg") not in ("EdDSA", "Ed25519"):
        raise ListRefused(f"alg {header.get('alg')!r}")
    public = Ed25519PublicKey.from_public_bytes(_b64(jwk["x"]))
    public.verify(_b64(signature_b64), f"{header_b64}.{payload_b64}".encode())
    claims = json.loads(_b64(payload_b64))
    now = time.time() if now is None else now
    if claims.get("sub") != uri:
        raise ListRefused(f"sub {claims.get('sub')!r} is not the uri {uri!r}")
    if not isinstance(claims.get("iat"), int):
        raise ListRefused("no iat")
    if "exp" in claims and claims["exp"] <= now:
        raise ListRefused("expired")
    if "ttl" in claims and not (isinstance(claims["ttl"], int) and claims["ttl"] > 0):
        raise ListRefused(f"ttl {claims['ttl']!r}")
    status_list = claims.get("status_list")
    if not isinstance(status_list, dict) or status_list.get("bits") not in (1, 2, 4, 8):
        raise ListRefused("status_list or its bits")
    try:
        data = zlib.decompress(_b64(status_list["lst"]))  # ZLIB format, not raw DEFLATE
    except zlib.error as exc:
        raise ListRefused(f"lst is not ZLIB data: {exc}") from None
    return ReadList(claims, header, status_list["bits"], data)


def reference(access_token: str) -> tuple[int, str]:
    """(idx, uri) of a Referenced Token's ``status.status_list`` claim."""
    claims = json.loads(_b64(access_token.split(".")[1]))
    ref = claims["status"]["status_list"]
    return int(ref["idx"]), str(ref["uri"])
