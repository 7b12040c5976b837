"""The issuer's private keys, and which one signs.

Every issuer instance reads the same key directory (a shared secret volume).
Redis names the active key (``signing_kid``); ``revocast keys rotate`` adds a
key and activates it, so running issuers switch on their next login or refresh
without a restart. A revoked key is never used again.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from revocast.errors import SettingsError, SigningKeyUnavailable
from revocast.keys import SigningKey, create_signing_key, load_signing_keys, signing_key_from_pem
from revocast.settings import Settings
from revocast.store import Store

log = logging.getLogger("revocast.issuer")


class KeyRing:
    """Private keys by kid, reloaded from the directory when an unknown kid is asked for.

    Keys come from the key directory, plus one from ``REVOCAST_SIGNING_KEY`` if set.
    """

    def __init__(self, key_dir: Path, env_pem: str | None = None) -> None:
        self.key_dir = key_dir
        self._env_key = (
            signing_key_from_pem(env_pem.encode(), "REVOCAST_SIGNING_KEY") if env_pem else None
        )
        self._keys: dict[str, SigningKey] = {}
        self.reload()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The issuer's keys; in production, refuses to start without one."""
        keys = cls(Path(settings.key_dir), settings.signing_key_pem)
        if settings.environment == "production" and not keys.all():
            raise SettingsError(
                "production: no signing key. Set REVOCAST_SIGNING_KEY or run "
                "`revocast keys rotate` with REVOCAST_KEY_DIR"
            )
        return keys

    def reload(self) -> None:
        keys = load_signing_keys(self.key_dir) + ([self._env_key] if self._env_key else [])
        self._keys = {key.kid: key for key in keys}

    def all(self) -> list[SigningKey]:
        return list(self._keys.values())

    def get(self, kid: str) -> SigningKey:
        """The key to sign with; SigningKeyUnavailable when none is active or it is not here."""
        if not kid:
            raise SigningKeyUnavailable("no active signing key: run `revocast keys rotate`")
        if kid not in self._keys:
            self.reload()
        key = self._keys.get(kid)
        if key is None:
            raise SigningKeyUnavailable(f"active key {kid} is not in {self.key_dir}")
        return key

    async def publish(self, store: Store, retention_ms: int) -> str:
        """Publish every usable key, newest first (so it becomes active if none is); the active kid.

        Keys revoked in Redis are skipped; if none is left, a new key is made, so a
        fresh or compromised deployment still starts with a key nobody revoked.
        """
        epoch = secrets.token_hex(16)
        active = ""
        for key in reversed(self._keys.values()):  # loaded oldest first
            try:
                active = await store.publish_key(
                    key.kid, json.dumps(key.public.jwk), epoch, retention_ms
                )
            except SigningKeyUnavailable:
                log.warning("key %s is revoked; it will not sign", key.kid)
        if not active:
            key = create_signing_key(self.key_dir)
            self._keys[key.kid] = key
            active = await store.publish_key(
                key.kid, json.dumps(key.public.jwk), epoch, retention_ms, activate=True
            )
        return active
