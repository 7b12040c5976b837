"""Noticing that Redis lost the issuer's state, and failing safe (DESIGN.md invariant 6).

Every stream (the global one and each partition's) has an ``epoch`` beside it,
all equal to the global one. If one vanishes (a server restarted with no
persistence, was flushed, or was restored from an old backup), sessions and
revocations the issuer answered for may be gone, and tokens it signed can no
longer be accounted for. The issuer then revokes every key, activates a new one
and sets a new epoch everywhere: every existing token is refused everywhere,
and users log in again. Verifiers keep what they knew; new ones learn the
revoked keys from the snapshot.

Every 250 ms the issuer also stamps the primaries' time on every stream (the
heartbeat that proves to verifiers reading replicas how current they are).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

from revocast.background import Background
from revocast.errors import StoreUnavailable
from revocast.issuer.keyring import KeyRing, new_epoch
from revocast.keyspace import GLOBAL
from revocast.outage import Outage
from revocast.settings import Settings
from revocast.store import Store

log = logging.getLogger("revocast.issuer")

CHECK_EVERY_S = 0.25  # verifiers that saw the epoch vanish answer 503 until it is back
RETRY_AFTER_ERROR_S = 0.05  # the first call after a Redis restart often meets a dead socket
SETTLE_S = 2.0  # another issuer starting a new deployment sets every partition's epoch by then
EPOCH_FILE = ".epoch"


class StateGuard:
    """Owns the epochs: starts the deployment, watches it, recovers when Redis lost some."""

    def __init__(self, settings: Settings, store: Store, keyring: KeyRing) -> None:
        self.settings = settings
        self.store = store
        self.keyring = keyring
        self.epoch_file = settings.key_path() / EPOCH_FILE
        self.epoch: str | None = None
        self.losses_detected = 0
        self._background = Background("revocast-state-guard")

    async def start(self) -> str:
        """Publish keys (or recover first); returns the active kid. Then watch the epochs."""
        epochs = await self._settled_epochs()
        remembered = self._read_remembered()
        fresh = all(epoch is None for epoch in epochs.values())
        if (fresh and remembered is not None) or (not fresh and None in epochs.values()):
            await self.recover(epochs.get(GLOBAL))
        active = await self.keyring.publish(self.store, new_epoch())
        await self._align(await self.store.signing.epochs())
        self._background.start(self._watch)
        return active

    async def stop(self) -> None:
        await self._background.stop()

    async def _settled_epochs(self) -> dict[str, str | None]:
        """The epochs, waiting briefly while another issuer is still setting up a deployment."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            epochs = await self.store.signing.epochs()
            values = set(epochs.values())
            if None not in values or values == {None} or time.monotonic() > deadline:
                return epochs
            await asyncio.sleep(0.05)

    async def recover(self, old_epoch: str | None) -> None:
        """Revoke every key, sign with a new one, give every stream a new epoch; once for all."""
        self.losses_detected += 1
        new = self.keyring.create()
        won = await self.store.signing.recover(
            old_epoch,
            new_epoch(),
            new.kid,
            json.dumps(new.public.jwk),
            [key.kid for key in self.keyring.all() if key.kid != new.kid],
            sealed=self.keyring.sealed(new),
        )
        self.keyring.reload()
        if won:
            log.error(
                "redis lost state (an epoch vanished): every earlier key revoked, now signing "
                "with %s; every earlier token is refused and users must log in again",
                new.kid,
            )
        await self._align(await self.store.signing.epochs(), recovered=won)

    async def _align(self, epochs: dict[str, str | None], *, recovered: bool = False) -> None:
        """Give every partition the global epoch, and remember it."""
        deployment = await self.store.signing.align_epochs(epochs)
        if deployment is None:
            return
        if deployment != self.epoch:
            if self.epoch is not None and not recovered:
                log.warning("epoch changed to %s (another issuer recovered)", deployment)
            await self.keyring.fetch(self.store, await self.store.signing.signing_kid() or "")
            self._adopt(deployment)

    async def _watch(self) -> None:
        pause = CHECK_EVERY_S
        outage = Outage(log, "checking the redis epochs")
        while not await self._background.pause(pause):
            pause = CHECK_EVERY_S
            try:
                epochs = await self.store.signing.heartbeat()
                if None in epochs.values():
                    await self.recover(epochs[GLOBAL])
                elif len(set(epochs.values())) > 1 or epochs[GLOBAL] != self.epoch:
                    await self._align(epochs)
                outage.recovered()
            except StoreUnavailable as exc:
                outage.failed(exc.detail)
                pause = RETRY_AFTER_ERROR_S

    def _adopt(self, epoch: str) -> None:
        self.epoch = epoch
        self.epoch_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.epoch_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(epoch)

    def _read_remembered(self) -> str | None:
        try:
            return self.epoch_file.read_text().strip() or None
        except FileNotFoundError:
            return None
