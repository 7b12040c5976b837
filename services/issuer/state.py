"""Noticing that Redis lost the issuer's state, and failing safe (DESIGN.md invariant 6).

Redis holds a random ``epoch``; the issuer remembers it in its key directory.
If Redis comes back without it (restarted with no persistence, flushed, or
restored from an old backup), sessions and revocations the issuer answered for
are gone, and tokens it signed can no longer be accounted for. The issuer then
revokes every key it holds, activates a new one and sets a new epoch: every
existing token is refused everywhere, and users log in again. Verifiers keep
what they knew; new ones learn the revoked keys from the snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from pathlib import Path

from revocast.errors import StoreUnavailable
from revocast.issuer.keyring import KeyRing
from revocast.keys import create_signing_key
from revocast.settings import Settings
from revocast.store import Store

log = logging.getLogger("revocast.issuer")

CHECK_EVERY_S = 0.25  # verifiers that saw the epoch vanish answer 503 until it is back
RETRY_AFTER_ERROR_S = 0.05  # the first call after a Redis restart often meets a dead socket
EPOCH_FILE = ".epoch"


class StateGuard:
    """Owns the epoch: starts the deployment, watches it, recovers when Redis lost it."""

    def __init__(self, settings: Settings, store: Store, keys: KeyRing) -> None:
        self.settings = settings
        self.store = store
        self.keys = keys
        self.epoch_file = Path(settings.key_dir) / EPOCH_FILE
        self.epoch: str | None = None
        self.losses_detected = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Publish keys (or recover first); returns the active kid. Then watch the epoch."""
        remembered = self._read_remembered()
        current = await self.store.epoch()
        if current is None and remembered is not None:
            await self.recover()
        active = await self.keys.publish(self.store, self.settings.stream_retention_ms)
        self._adopt(await self.store.epoch())
        self._task = asyncio.create_task(self._watch(), name="revocast-state-guard")
        return active

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def recover(self) -> None:
        self.losses_detected += 1
        old = [key.kid for key in self.keys.all()]
        new = create_signing_key(self.keys.key_dir)
        new_epoch = secrets.token_hex(16)
        won = await self.store.recover(
            new_epoch,
            new.kid,
            json.dumps(new.public.jwk),
            self.settings.stream_retention_ms,
            old,
        )
        self.keys.reload()
        if won:
            log.error(
                "redis lost its state (epoch gone): revoked %d keys, now signing with %s; "
                "every earlier token is refused and users must log in again",
                len(old),
                new.kid,
            )
        self._adopt(await self.store.epoch())

    async def _watch(self) -> None:
        pause = CHECK_EVERY_S
        while True:
            await asyncio.sleep(pause)
            pause = CHECK_EVERY_S
            try:
                current = await self.store.epoch()
                if current is None:
                    await self.recover()
                elif current != self.epoch:
                    log.warning("epoch changed to %s (another issuer recovered)", current)
                    self.keys.reload()
                    self._adopt(current)
            except StoreUnavailable as exc:
                log.warning("cannot check the redis epoch: %s", exc.detail)
                pause = RETRY_AFTER_ERROR_S

    def _adopt(self, epoch: str | None) -> None:
        self.epoch = epoch
        if epoch is None:
            return
        self.epoch_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.epoch_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(epoch)

    def _read_remembered(self) -> str | None:
        try:
            return self.epoch_file.read_text().strip() or None
        except FileNotFoundError:
            return None
