"""Serving the SSF streams in the background: copying revocations into each stream's queue,
and push delivery (RFC 8935).

Every 200 ms, for each stream, an issuer takes (or keeps) the stream's lease in Redis, so
that one issuer at a time serves a stream. It copies the revocations written since into
the stream's queue (``ssf_spool.spool``), and for a push stream posts the queued SETs one by
one, dropping each from the queue only once the receiver answered 202 (or 200). A
receiver that is down or answers 5xx or 429 is tried again with exponential backoff
(0.2 s up to 30 s); nothing is skipped meanwhile. A 400 means the
receiver will never take that SET (RFC 8935 §2.3): it is logged and skipped.
Any other answer (401, 404, a redirect...) is retried: a receiver that rotated its token
must not see its queue emptied.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import httpx

from revocast.background import Background
from revocast.errors import RevocastError
from revocast.issuer.context import IssuerContext
from revocast.issuer.ssf import PUSH, queued_sets
from revocast.issuer.ssf_spool import spool

log = logging.getLogger("revocast.issuer")

EVERY_S = 0.2
LEASE_MS = 15_000  # above one post's timeout (5 s): renewed before each post
BATCH = 50
MAX_BACKOFF_S = 30.0


class Pusher:
    """Delivers the push streams this issuer leads; start after the issuer's context exists."""

    def __init__(self, ctx: IssuerContext) -> None:
        self.ctx = ctx
        self.owner = secrets.token_hex(8)
        self.delivered = 0
        self.failures = 0
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._background = Background("revocast-ssf-push")
        self._http = httpx.AsyncClient(timeout=5.0)

    def start(self) -> None:
        self._background.start(self._run)

    async def stop(self) -> None:
        await self._background.stop(grace_s=6.0)  # a post may take its 5 s timeout
        await self._http.aclose()

    async def _run(self) -> None:
        while not self._background.stopping():
            try:
                for stream_id, config in (await self.ctx.reads.ssf_streams()).items():
                    if self._background.stopping():
                        break
                    try:
                        await self._serve(stream_id, config)
                    except RevocastError:
                        raise
                    except Exception:  # one stream's fault must not stop the others
                        log.exception("ssf stream %s: serving failed", stream_id)
                        self._later(stream_id)
            except RevocastError as exc:  # Redis away: the next round tries again
                log.warning("ssf push: %s", exc.detail)
            except Exception:
                log.exception("ssf push round failed")
            await self._background.pause(EVERY_S)

    async def _serve(self, stream_id: str, config: dict[str, Any]) -> None:
        """Copy new revocations into the stream's queue (poll streams too: the revocation
        streams are trimmed, the queue is not), and push what is queued."""
        if not await self.ctx.writes.signals.take_lease(stream_id, self.owner, LEASE_MS):
            return  # another issuer serves this stream
        await spool(self.ctx, config, stream_id)
        if config["delivery"]["method"] != PUSH:
            return
        if time.monotonic() < self._retry_at.get(stream_id, 0.0):
            return
        for raw, token in await queued_sets(self.ctx, config, stream_id, BATCH):
            # Held before every post, so that no other issuer posts this stream meanwhile.
            if not await self.ctx.writes.signals.take_lease(stream_id, self.owner, LEASE_MS):
                return
            outcome = await self._post(config, token)
            if outcome == "retry":
                self._later(stream_id)
                return
            await self.ctx.writes.signals.ack_ssf(stream_id, [raw])
            self.delivered += outcome == "delivered"
        self._backoff.pop(stream_id, None)

    async def _post(self, config: dict[str, Any], token: str) -> str:
        delivery = config["delivery"]
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if delivery.get("authorization_header"):
            headers["Authorization"] = delivery["authorization_header"]
        try:
            reply = await self._http.post(delivery["endpoint_url"], content=token, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("ssf push to %s failed: %s", delivery["endpoint_url"], exc)
            return "retry"
        if reply.status_code in (200, 202):
            return "delivered"
        if reply.status_code != 400:  # 401, 403, 404, redirects, 429, 5xx: not this SET's fault
            log.warning("ssf push to %s: %d, trying again later",
                        delivery["endpoint_url"], reply.status_code)  # fmt: skip
            return "retry"
        log.warning("ssf push: %s refused a SET for good (400): %s",
                    delivery["endpoint_url"], reply.text[:200])  # fmt: skip
        return "refused"

    def _later(self, stream_id: str) -> None:
        self.failures += 1
        backoff = min(MAX_BACKOFF_S, self._backoff.get(stream_id, EVERY_S / 2) * 2)
        self._backoff[stream_id] = backoff
        self._retry_at[stream_id] = time.monotonic() + backoff
