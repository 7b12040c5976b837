"""Serving the SSF streams in the background: copying revocations into each stream's queue,
and push delivery (RFC 8935).

Every 200 ms an issuer lists the streams and gives each one that is not being served a round
of its own, in its own task: it takes (or keeps) the stream's lease in Redis, so that one
issuer at a time serves a stream, copies the revocations written since into the stream's
queue (``ssf_spool.spool``), and for a push stream posts the queued SETs one by one, each within
its own deadline (5 s from connecting to the last byte of the answer), dropping each from
the queue only once the receiver has it: any 2xx (RFC 8935 asks for 202; 200 and 204 say
the same). So a receiver that is slow, down or a black hole delays its own stream only,
never another's. A receiver that is down or answers 5xx or 429 is tried again with
exponential backoff (0.2 s up to 30 s); nothing is skipped meanwhile. A 400 means the
receiver will never take that SET (RFC 8935 §2.3): it is logged and skipped. Any other
answer (401, 404, a redirect...) is retried: a receiver that rotated its token must not see
its queue emptied.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import httpx

from revocast.background import Background
from revocast.errors import RevocastError
from revocast.issuer.context import IssuerContext
from revocast.issuer.ssf import MAX_STREAMS, PUSH, queued_sets
from revocast.issuer.ssf_spool import spool
from revocast.issuer.ssf_targets import TargetPolicy, push_client
from revocast.lifetimes import SSF_LEASE_MS
from revocast.outage import Outage

log = logging.getLogger("revocast.issuer")

EVERY_S = 0.2
POST_DEADLINE_S = 5.0  # one post, from connecting to the answer's last byte
BATCH = 50
MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 1.0  # a post cut short at shutdown is not acknowledged: it comes again


class Pusher:
    """Serves the SSF streams this issuer leads, each in a task of its own; start after the
    issuer's context exists."""

    def __init__(self, ctx: IssuerContext) -> None:
        self.ctx = ctx
        self.owner = secrets.token_hex(8)
        self.delivered = 0
        self.failures = 0
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._rounds: dict[str, asyncio.Task[None]] = {}  # stream id -> its round in progress
        self._background = Background("revocast-ssf-push")
        # Connects only where ssf_targets allows, checked at every connection; one connection
        # at most per stream (a round posts one SET at a time).
        policy = TargetPolicy.from_settings(ctx.settings)
        self._http = push_client(policy, max_connections=MAX_STREAMS, timeout_s=POST_DEADLINE_S)

    def start(self) -> None:
        self._background.start(self._run)

    async def stop(self) -> None:
        await self._background.stop(grace_s=STOP_GRACE_S)
        rounds = list(self._rounds.values())
        if rounds:
            _, late = await asyncio.wait(rounds, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        self._rounds.clear()
        await self._http.aclose()

    async def _run(self) -> None:
        outage = Outage(log, "ssf push")
        while not self._background.stopping():
            try:
                self._start_rounds(await self.ctx.store.signals.ssf_streams())
                outage.recovered()
            except RevocastError as exc:  # Redis away: the next round tries again
                outage.failed(exc.detail)
            except Exception:
                log.exception("ssf push round failed")
            await self._background.pause(EVERY_S)

    def _start_rounds(self, streams: dict[str, dict[str, Any]]) -> None:
        """A round for every stream whose last one has ended; forget the deleted streams."""
        for stream_id in [s for s, task in self._rounds.items() if task.done()]:
            del self._rounds[stream_id]
        for gone in set(self._backoff) - set(streams):
            self._backoff.pop(gone, None)
            self._retry_at.pop(gone, None)
        for stream_id, config in streams.items():
            if stream_id not in self._rounds:
                self._rounds[stream_id] = asyncio.create_task(
                    self._round(stream_id, config), name=f"revocast-ssf-{stream_id}"
                )

    async def _round(self, stream_id: str, config: dict[str, Any]) -> None:
        """One stream's round: its faults, like its receiver's delays, are its own."""
        try:
            await self._serve(stream_id, config)
        except RevocastError as exc:
            log.warning("ssf stream %s: %s", stream_id, exc.detail)
            self._later(stream_id)
        except Exception:
            log.exception("ssf stream %s: serving failed", stream_id)
            self._later(stream_id)

    async def _serve(self, stream_id: str, config: dict[str, Any]) -> None:
        """Copy new revocations into the stream's queue (poll streams too: the revocation
        streams are trimmed, the queue is not), and push what is queued."""
        if not await self.ctx.store.signals.take_lease(stream_id, self.owner, SSF_LEASE_MS):
            return  # another issuer serves this stream
        await spool(self.ctx, config, stream_id)
        if config["delivery"]["method"] != PUSH:
            return
        if time.monotonic() < self._retry_at.get(stream_id, 0.0):
            return
        for raw, token in await queued_sets(self.ctx, config, stream_id, BATCH):
            # Held before every post, so that no other issuer posts this stream meanwhile.
            if self._background.stopping() or not await self.ctx.store.signals.take_lease(
                stream_id, self.owner, SSF_LEASE_MS
            ):
                return
            outcome = await self._post(config, token)
            if outcome == "retry":
                self._later(stream_id)
                return
            await self.ctx.store.signals.ack_ssf(stream_id, [raw])
            self.delivered += outcome == "delivered"
        self._backoff.pop(stream_id, None)

    async def _post(self, config: dict[str, Any], token: str) -> str:
        delivery = config["delivery"]
        url = delivery["endpoint_url"]
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if delivery.get("authorization_header"):
            headers["Authorization"] = delivery["authorization_header"]
        try:
            # httpx's timeouts are per step (a byte every 4 s keeps a read alive): this one
            # bounds the whole post.
            async with asyncio.timeout(POST_DEADLINE_S):
                reply = await self._http.post(url, content=token, headers=headers)
        except TimeoutError:
            log.warning("ssf push to %s: no answer within %.0f s", url, POST_DEADLINE_S)
            return "retry"
        except httpx.HTTPError as exc:
            log.warning("ssf push to %s failed: %s", url, exc)
            return "retry"
        if 200 <= reply.status_code < 300:  # 202 per RFC 8935; 200 and 204 say the same
            return "delivered"
        if reply.status_code != 400:  # 401, 403, 404, redirects, 429, 5xx: not this SET's fault
            log.warning("ssf push to %s: %d, trying again later", url, reply.status_code)
            return "retry"
        log.warning("ssf push: %s refused a SET for good (400): %s", url, reply.text[:200])
        return "refused"

    def _later(self, stream_id: str) -> None:
        self.failures += 1
        backoff = min(MAX_BACKOFF_S, self._backoff.get(stream_id, EVERY_S / 2) * 2)
        self._backoff[stream_id] = backoff
        self._retry_at[stream_id] = time.monotonic() + backoff
