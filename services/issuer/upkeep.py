"""What every running issuer does in the background, twice a second.

- It registers itself in Redis (id, host, pid, start time, the keys it holds)
  under a short TTL, so ``revocast keys rotate`` can wait until every live
  issuer holds a new key before activating it, and dead issuers drop out.
- It loads keys published since it started (from its key directory, or sealed
  in Redis), so that it holds a rotated key before the key is activated.
- Every few seconds it repairs copies of admins' and moderators' power that an
  interrupted change left behind in some partition.
- Every second it counts the live verifiers, and those behind (``revocast.enforcement``),
  for the ``revocast_verifiers_live`` and ``revocast_verifiers_behind`` gauges.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time

from revocast.background import Background
from revocast.enforcement import count_behind
from revocast.errors import StoreUnavailable
from revocast.issuer.keyring import KeyRing
from revocast.lifetimes import ISSUER_TTL_S
from revocast.outage import Outage
from revocast.store import Backend, Store

log = logging.getLogger("revocast.issuer")

EVERY_S = 0.5
RECONCILE_EVERY = 10  # rounds between authority repairs (5 s)
COUNT_VERIFIERS_EVERY = 2  # rounds between counts of the verifiers behind (1 s)


class Upkeep:
    """Presence, key loading and authority repair for one issuer process."""

    def __init__(self, backend: Backend, store: Store, keyring: KeyRing) -> None:
        self.backend = backend
        self.store = store
        self.keyring = keyring
        self.issuer_id = secrets.token_hex(8)
        self.started_ms = int(time.time() * 1000)
        self.authority_repairs = 0
        self.verifiers_live = 0
        self.verifiers_behind = 0
        self._background = Background("revocast-upkeep")

    async def start(self) -> None:
        await self.round(0)
        self._background.start(self._loop)

    async def stop(self) -> None:
        await self._background.stop()
        if not self.backend.started:
            return  # it never reached Redis: nothing to take back
        with contextlib.suppress(StoreUnavailable):  # else it drops out after ISSUER_TTL_S
            await self.store.presence.forget_issuer(self.issuer_id)

    async def _loop(self) -> None:
        rounds = 0
        outage = Outage(log, "issuer upkeep")
        while not await self._background.pause(EVERY_S):
            rounds += 1
            try:
                await self.round(rounds)
                outage.recovered()
            except StoreUnavailable as exc:
                outage.failed(exc.detail)

    async def round(self, number: int) -> None:
        for kid in await self.store.signing.jwks():
            await self.keyring.fetch(self.store, kid)
        await self.store.presence.announce_issuer(
            self.issuer_id,
            {
                "host": socket.gethostname(),
                "pid": str(os.getpid()),
                "started_ms": str(self.started_ms),
                "kids": ",".join(self.keyring.kids()),
                "key_dir": str(self.keyring.key_dir),  # `keys rotate` names it if a key is missing
            },
            ISSUER_TTL_S,
        )
        if number % COUNT_VERIFIERS_EVERY == 0:
            try:
                self.verifiers_live, self.verifiers_behind = await count_behind(self.store)
            except StoreUnavailable:
                raise  # Redis gone: the loop's outage notice says it once, no traceback
            except Exception:  # a gauge must never stop key loading and presence
                log.exception("counting the verifiers behind failed")
        if number % RECONCILE_EVERY == 0:
            repaired = await self.store.authority.reconcile_authority()
            if repaired:
                self.authority_repairs += repaired
                log.warning("repaired %d partition copies of admin/moderator power", repaired)
