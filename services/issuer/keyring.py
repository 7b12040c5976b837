"""The issuer's private keys, and which one signs.

Keys come from the key directory, from ``REVOCAST_SIGNING_KEY``, and, with a
key-encryption key, from Redis, where each is sealed (``sealing.py``). Redis
names the active key (``signing_kid``). ``revocast keys rotate`` publishes a
new key, waits until every live issuer holds it, and only then activates it,
so no issuer is ever asked to sign with a key it lacks. A revoked key is never
used again.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from revocast.errors import SettingsError, SigningKeyUnavailable
from revocast.issuer.sealing import seal, unseal
from revocast.keys import SigningKey, create_signing_key, load_signing_keys, signing_key_from_pem
from revocast.settings import Settings, key_encryption_key_bytes
from revocast.store import Store

log = logging.getLogger("revocast.issuer")
# SETs (RFC 8417) are signed with a key derived from the active one for this purpose alone,
# published only in the SSF JWKS: no access-token verifier knows it, so no SET passes for an
# access token, whatever its claims.
SET_KEY_PURPOSE = b"revocast security event token signing key v1"
# The key folder's default before it became absolute: relative to wherever a command ran.
LEGACY_KEY_DIR = Path(".revocast") / "keys"


class KeyRing:
    """Private keys by kid; unknown kids are looked for in the directory and in Redis."""

    def __init__(
        self,
        key_dir: Path,
        env_pem: str | None = None,
        *,
        kek: bytes | None = None,
        prefix: str = "revocast",
    ) -> None:
        self.key_dir = key_dir
        self.kek = kek
        self.prefix = prefix
        self._env_key = (
            signing_key_from_pem(env_pem.encode(), "REVOCAST_SIGNING_KEY") if env_pem else None
        )
        self._keys: dict[str, SigningKey] = {}
        self._sealed: dict[str, SigningKey] = {}
        self._set_keys: dict[str, SigningKey] = {}  # access-token kid -> its SET key
        self.reload()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The issuer's keys; in production, refuses to start without a way to get one."""
        kek = (
            key_encryption_key_bytes(settings.signing.key_encryption_key)
            if settings.signing.key_encryption_key
            else None
        )
        keys = cls(
            settings.key_path(),
            settings.signing.signing_key_pem,
            kek=kek,
            prefix=settings.redis.key_prefix,
        )
        if not settings.signing.key_dir and LEGACY_KEY_DIR.is_dir():
            log.warning(
                "keys in ./%s are no longer read by default: this issuer uses %s; set "
                "REVOCAST_KEY_DIR=%s to keep using them",
                LEGACY_KEY_DIR, keys.key_dir, LEGACY_KEY_DIR.absolute(),
            )  # fmt: skip
        if settings.deployment.environment == "production" and not keys.all() and kek is None:
            raise SettingsError(
                "production: no signing key. Set REVOCAST_SIGNING_KEY, run `revocast keys "
                "rotate` with REVOCAST_KEY_DIR, or share keys with REVOCAST_KEY_ENCRYPTION_KEY"
            )
        return keys

    def reload(self) -> None:
        """Read the key directory again (keys from Redis stay)."""
        keys = load_signing_keys(self.key_dir) + ([self._env_key] if self._env_key else [])
        self._keys = {key.kid: key for key in keys} | self._sealed

    def all(self) -> list[SigningKey]:
        return list(self._keys.values())

    def kids(self) -> list[str]:
        return sorted(self._keys)

    def get(self, kid: str) -> SigningKey:
        """The key to sign with; SigningKeyUnavailable when none is active or it is not here."""
        if not kid:
            raise SigningKeyUnavailable("no active signing key: run `revocast keys rotate`")
        if kid not in self._keys:
            self.reload()
        key = self._keys.get(kid)
        if key is None:
            where = "the key directory or Redis (sealed)" if self.kek else str(self.key_dir)
            log.error("the active signing key %s is not in %s", kid, where)
            raise SigningKeyUnavailable(
                f"the active signing key {kid} is not loaded by this issuer: give it the key "
                "directory (or REVOCAST_KEY_ENCRYPTION_KEY) the key was made with, or run "
                "`revocast keys rotate`"
            )
        return key

    def set_key(self, kid: str) -> SigningKey:
        """The key that signs SETs while ``kid`` signs access tokens (``SET_KEY_PURPOSE``)."""
        found = self._set_keys.get(kid)
        if found is None:
            found = self._set_keys[kid] = self.get(kid).derive(SET_KEY_PURPOSE)
        return found

    def set_keys(self, kids: list[str]) -> list[SigningKey]:
        """The SET keys of those of ``kids`` this issuer holds (nothing is read to find more:
        the active key is always held, and readiness says so)."""
        return [self.set_key(kid) for kid in kids if kid in self._keys]

    async def fetch(self, store: Store, kid: str) -> bool:
        """Make sure ``kid`` is here: from the directory, or unsealed from Redis. True if it is."""
        if kid in self._keys:
            return True
        self.reload()
        if kid not in self._keys and self.kek is not None:
            sealed = await store.signing.sealed_key(kid)
            key = unseal(sealed, self.kek, self.prefix, kid) if sealed else None
            if sealed and key is None:
                log.error("cannot unseal key %s: REVOCAST_KEY_ENCRYPTION_KEY differs", kid)
            if key is not None:
                self._sealed[kid] = key
                self._keys[kid] = key
        return kid in self._keys

    def sealed(self, key: SigningKey) -> str:
        """The key sealed for Redis, or '' without a KEK."""
        return seal(key, self.kek, self.prefix) if self.kek else ""

    def create(self) -> SigningKey:
        """A new key: kept in the key directory, unless it is shared sealed through Redis."""
        if self.kek is not None:
            key = SigningKey.generate()
            self._sealed[key.kid] = key
            self._keys[key.kid] = key
            return key
        key = create_signing_key(self.key_dir)
        self._keys[key.kid] = key
        return key

    async def publish(self, store: Store, epoch: str) -> str:
        """Publish every usable key, newest first (so it becomes active if none is); the active kid.

        With a KEK, the published keys are fetched from Redis first. Keys revoked in
        Redis are skipped; if no key is active then, a new one is made, so a fresh or
        compromised deployment still starts with a key nobody revoked.
        """
        if self.kek is not None:
            for kid in await store.signing.jwks():
                await self.fetch(store, kid)
        active = ""
        for key in reversed(list(self._keys.values())):  # loaded oldest first
            try:
                active = await store.signing.publish_key(
                    key.kid, json.dumps(key.public.jwk), epoch, sealed=self.sealed(key)
                )
            except SigningKeyUnavailable:
                log.warning("key %s is revoked; it will not sign", key.kid)
        if not active:
            active = await store.signing.signing_kid() or ""
        if not active:
            key = self.create()
            active = await store.signing.publish_key(
                key.kid, json.dumps(key.public.jwk), epoch, activate=True, sealed=self.sealed(key)
            )
        if not await self.fetch(store, active):
            log.error(
                "the active signing key %s is not available to this issuer: share "
                "REVOCAST_KEY_DIR or set REVOCAST_KEY_ENCRYPTION_KEY; logins will fail",
                active,
            )
        return active


def new_epoch() -> str:
    return secrets.token_hex(16)
