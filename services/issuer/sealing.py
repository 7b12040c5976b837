"""Private signing keys sealed for Redis under the key-encryption key (KEK).

With ``REVOCAST_KEY_ENCRYPTION_KEY`` set, an issuer stores each private key it
makes in Redis sealed with AES-256-GCM, bound (as associated data) to the
deployment's key prefix and the key's ``kid``; every issuer that shares the KEK
can then sign with a key rotated in anywhere. Redis alone yields no key.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from revocast.errors import SettingsError
from revocast.keys import SigningKey, signing_key_from_pem

_VERSION = "v1"


def _context(prefix: str, kid: str) -> bytes:
    return f"revocast sealed signing key {_VERSION}|{prefix}|{kid}".encode()


def seal(key: SigningKey, kek: bytes, prefix: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(kek).encrypt(nonce, key.pem(), _context(prefix, key.kid))
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(text: str, kek: bytes, prefix: str, kid: str) -> SigningKey | None:
    """The key, or None when this KEK did not seal it (or the text is not a sealed key)."""
    version, _, body = text.partition(".")
    if version != _VERSION:
        return None
    try:
        raw = base64.urlsafe_b64decode(body)
        pem = AESGCM(kek).decrypt(raw[:12], raw[12:], _context(prefix, kid))
        key = signing_key_from_pem(pem, f"sealed key {kid}")
    except (InvalidTag, ValueError, SettingsError):
        return None
    return key if key.kid == kid else None
