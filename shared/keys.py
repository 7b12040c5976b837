"""Ed25519 signing keys, their RFC 7638 thumbprint ``kid``, and the public JWKS view.

The issuer holds private keys in files (one PEM per key, mode 0600); verifiers
only ever see public JWKs, which arrive through Redis. A public JWK is accepted
only if its ``kid`` is its own thumbprint, so a key cannot be relabelled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from revocast.errors import SettingsError

ALGORITHM: Final = "EdDSA"  # what the JWKS names; RFC 9864's fully specified name is Ed25519
ED25519_NAMES: Final = frozenset({"EdDSA", "Ed25519"})  # either may name an Ed25519 signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 OKP key: required members, sorted, no spaces."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A key a verifier trusts, bound to exactly one algorithm."""

    kid: str
    algorithm: str
    key: Ed25519PublicKey

    @property
    def jwk(self) -> dict[str, str]:
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(raw),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }

    @classmethod
    def from_jwk(cls, text: str) -> PublicKey:
        """Parse a published JWK; refuses anything but an Ed25519 EdDSA key named by its hash."""
        try:
            jwk = json.loads(text)
            if not isinstance(jwk, dict):
                raise ValueError("not an object")
            if (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519") or (
                jwk.get("alg") not in ED25519_NAMES
            ):
                raise ValueError("only OKP Ed25519 keys with alg EdDSA or Ed25519 are accepted")
            if "d" in jwk:
                raise ValueError("a private key was published")
            x = jwk["x"]
            if jwk.get("kid") != thumbprint(x):
                raise ValueError("kid is not the key's RFC 7638 thumbprint")
            key = Ed25519PublicKey.from_public_bytes(b64url_decode(x))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unusable JWK: {exc}") from None
        return cls(kid=jwk["kid"], algorithm=ALGORITHM, key=key)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key the issuer signs with."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        pub = self.private.public_key()
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey(kid=thumbprint(b64url(raw)), algorithm=ALGORITHM, key=pub)

    @property
    def kid(self) -> str:
        return self.public.kid

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def derive(self, purpose: bytes) -> SigningKey:
        """Another Ed25519 key for another ``purpose``: HKDF-SHA256 of this one's seed.

        Whoever holds this key holds the derived one, and nobody can tell from either public
        key that they are related; a signature by one is no signature by the other.
        """
        seed = self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        derived = HKDF(hashes.SHA256(), 32, salt=None, info=purpose).derive(seed)
        return SigningKey(Ed25519PrivateKey.from_private_bytes(derived))

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def load_signing_key(path: Path) -> SigningKey:
    """Load one PEM key, refusing files that group or others can read."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(f"{path} is readable by others (mode {oct(mode & 0o777)}); chmod 600")
    return signing_key_from_pem(path.read_bytes(), str(path))


def signing_key_from_pem(pem: bytes, source: str) -> SigningKey:
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SettingsError(f"{source} is not a PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SettingsError(f"{source} is not an Ed25519 private key")
    return SigningKey(private)


def load_signing_keys(key_dir: Path) -> list[SigningKey]:
    """Every key in ``key_dir``, oldest file first; refuses a directory others may write to."""
    if not key_dir.is_dir():
        return []
    mode = key_dir.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SettingsError(
            f"{key_dir} is writable by others (mode {oct(mode & 0o777)}); chmod 700"
        )
    pems = sorted(key_dir.glob("*.pem"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [load_signing_key(path) for path in pems]


def create_signing_key(key_dir: Path) -> SigningKey:
    """Generate a key and write it as ``<kid>.pem``, mode 0600, in a 0700 directory."""
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = SigningKey.generate()
    fd = os.open(key_dir / f"{key.kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.pem())
    return key


# A revoked key leaves a JWKS at once; a reader that honours this header drops it within 15 s.
JWKS_CACHE_CONTROL = "public, max-age=15, must-revalidate"


def jwks_document(jwks: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """The ``/.well-known/jwks.json`` body from published JWK texts."""
    return {"keys": [json.loads(text) for _, text in sorted(jwks.items())]}
