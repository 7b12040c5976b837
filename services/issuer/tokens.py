"""Access-token minting and refresh-token handling.

Refresh tokens (``revocast.ids``) are stored only as SHA-256 hashes. When one is
rotated, its successor is sealed (AES-GCM) under a key derived from the
presented token itself, so that a retry inside the grace window can be given
the same successor while Redis holds nothing that yields a usable token.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from revocast.claims import TOKEN_TYPE
from revocast.clients import DEFAULT_CLIENT_ID
from revocast.issuer.keyring import KeyRing
from revocast.keys import b64url
from revocast.settings import TokenSettings
from revocast.status_list import list_uri

_SEAL_INFO = b"revocast refresh-token successor v1"


def _seal_key(presented: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=_SEAL_INFO).derive(presented.encode())


def seal_successor(presented: str, successor: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_seal_key(presented)).encrypt(nonce, successor.encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal_successor(presented: str, sealed: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(sealed)
        return AESGCM(_seal_key(presented)).decrypt(raw[:12], raw[12:], None).decode()
    except (InvalidTag, ValueError):
        return None


class TokenMinter:
    """Signs access tokens; ``iat`` is the Redis server time the session state was written."""

    def __init__(self, tokens: TokenSettings, keyring: KeyRing) -> None:
        self.tokens = tokens
        self.keyring = keyring

    def mint(
        self,
        *,
        uid: str,
        sid: str,
        roles: list[str],
        issued_ms: int,
        kid: str,
        client_id: str = DEFAULT_CLIENT_ID,
        status: tuple[int, int] | None = None,
    ) -> str:
        """Sign with ``kid``, the key Redis named active before the session was written.

        ``client_id`` and ``scope`` are RFC 9068's; ``scope`` repeats ``roles`` as the
        space-separated string OAuth tools read, ``roles`` is what revocast checks.
        ``status`` is (partition, index): the session's place in its partition's Token
        Status List, named in the ``status`` claim when REVOCAST_ISSUER is a URL to serve
        the lists under (``revocast.status_list``).
        """
        key = self.keyring.get(kid)
        iat = issued_ms // 1000  # whole seconds for every JWT library; iat_ms for revocation
        claims = {
            "iss": self.tokens.issuer,
            "aud": self.tokens.audience,
            "sub": uid,
            "sid": sid,
            "jti": secrets.token_urlsafe(16),
            "iat": iat,
            "nbf": iat,
            "exp": iat + self.tokens.access_ttl_s,
            "roles": roles,
            "client_id": client_id,
            "scope": " ".join(roles),
            "iat_ms": issued_ms,
        }
        if status is not None and (uri := list_uri(self.tokens.issuer, status[0])):
            claims["status"] = {"status_list": {"idx": status[1], "uri": uri}}
        header = {"alg": self.tokens.jws_alg, "kid": key.kid, "typ": TOKEN_TYPE}
        return compact_jws(header, claims, key.private)


def compact_jws(header: dict[str, str], claims: dict[str, object], key: Ed25519PrivateKey) -> str:
    """A JWS in compact form, Ed25519-signed (RFC 7515 §7.1, RFC 8037): written here so that
    the header's ``alg`` can be either name RFC 9864 allows for the same signature."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
