"""Access-token minting and refresh-token handling.

Refresh tokens (``revocast.ids``) are stored only as SHA-256 hashes. When one is
rotated, its successor is sealed (AES-GCM) under a key derived from the
presented token itself, so that a retry inside the grace window can be given
the same successor while Redis holds nothing that yields a usable token.
"""

from __future__ import annotations

import base64
import os
import secrets

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from revocast.claims import TOKEN_TYPE
from revocast.issuer.keyring import KeyRing
from revocast.keys import ALGORITHM
from revocast.settings import Settings

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

    def __init__(self, settings: Settings, keys: KeyRing) -> None:
        self.settings = settings
        self.keys = keys

    def mint(self, *, uid: str, sid: str, roles: list[str], issued_ms: int, kid: str) -> str:
        """Sign with ``kid``, the key Redis named active before the session was written."""
        key = self.keys.get(kid)
        iat = issued_ms / 1000
        claims = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": uid,
            "sid": sid,
            "jti": secrets.token_urlsafe(16),
            "iat": iat,
            "nbf": iat,
            "exp": iat + self.settings.access_ttl_s,
            "roles": roles,
        }
        headers = {"kid": key.kid, "typ": TOKEN_TYPE}
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers=headers)
