"""Serving the SSF streams in the background: copying revocations into each stream's queue,
and push delivery (RFC 8935).

Every 200 ms, for each stream, an issuer takes (or keeps) the stream's lease in Redis, so
that one issuer at a time serves a stream. It copies the revocations written since into
the stream's queue (``ssf.spool``), and for a push stream posts the queued SETs one by
one, dropping each from the queue only once the receiver answered 202 (or 200). A
receiver that is down or answers 5xx or 429 is tried again with exponential backoff
(0.2 s up to 30 s); nothing is skipped meanwhile. A 4xx other than 429
means the receiver will never take that SET (RFC 8935 §2.3): it is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import httpx

from revocast.errors import RevocastError
from revocast.issuer.context import IssuerContext
from revocast.issuer.ssf import PUSH, next_sets, record_ack, spool

log = logging.getLogger("revocast.issuer")

EVERY_S = 0.2
LEASE_MS = 5000
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
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._http = httpx.AsyncClient(timeout=5.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="revocast-ssf-push")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=6.0)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
            self._task = None
        await self._http.aclose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                for stream_id, config in (await self.ctx.reads.ssf_streams()).items():
                    if not self._stopping.is_set():
                        await self._serve(stream_id, config)
            except RevocastError as exc:  # Redis away: the next round tries again
                log.warning("ssf push: %s", exc.detail)
            except Exception:
                log.exception("ssf push round failed")
            waiter = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({waiter}, timeout=EVERY_S)
            waiter.cancel()

    async def _serve(self, stream_id: str, config: dict[str, Any]) -> None:
        """Copy new revocations into the stream's queue (poll streams too: the revocation
        streams are trimmed, the queue is not), and push what is queued."""
        if not await self.ctx.writes.take_lease(stream_id, self.owner, LEASE_MS):
            return  # another issuer serves this stream
        await spool(self.ctx, config, stream_id)
        if config["delivery"]["method"] != PUSH:
            return
        if time.monotonic() < self._retry_at.get(stream_id, 0.0):
            return
        sets, _ = await next_sets(self.ctx, config, stream_id, BATCH)
        for jti, token in sets.items():
            outcome = await self._post(config, token)
            if outcome == "retry":
                self._later(stream_id)
                return
            await record_ack(self.ctx, stream_id, [jti])
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
        if reply.status_code == 429 or reply.status_code >= 500:
            return "retry"
        log.warning("ssf push: %s refused a SET for good (%d): %s",
                    delivery["endpoint_url"], reply.status_code, reply.text[:200])  # fmt: skip
        return "refused"

    def _later(self, stream_id: str) -> None:
        self.failures += 1
        backoff = min(MAX_BACKOFF_S, self._backoff.get(stream_id, EVERY_S / 2) * 2)
        self._backoff[stream_id] = backoff
        self._retry_at[stream_id] = time.monotonic() + backoff
