"""Status List Tokens (draft-ietf-oauth-status-list-21) at ``REVOCAST_ISSUER/statuslists/K``.

Partition K's list is read from Redis at most every ``REFRESH_S`` (0.5 s) per issuer, so a
revocation's INVALID is served within about half a second of its script; readers may use
a list for its ``ttl`` (REVOCAST_STATUS_LIST_TTL_S). The list is signed with the key access
tokens are signed with (one of the JWKS), under ``typ: statuslist+jwt``, which no verifier
takes for an access token (``at+jwt``). Lists are served only when REVOCAST_ISSUER is a
URL: their ``sub`` must be the uri tokens name, never one made from a request's ``Host``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from revocast.errors import NotFound
from revocast.issuer.context import IssuerContext
from revocast.issuer.grants import signing_kid
from revocast.issuer.tokens import compact_jws
from revocast.keys import SigningKey
from revocast.settings import Settings
from revocast.status_list import LIST_TYPE, MEDIA_TYPE, REFRESH_S, encode, list_uri

MIN_INDEXES = 8192  # a list covers at least this many (1 KiB raw, some 30 bytes packed)
# Shared caches may keep a list a second: the issuer makes one at most every 0.5 s anyway.
CACHE_CONTROL = "public, max-age=1"


def covered(raw: bytes, drawn: int) -> bytes:
    """The list padded with VALID to the next power of two of twice the indexes drawn, so
    that tokens drawn after a reader fetched it still fall inside it (readers refuse an
    index past the end); zeros cost next to nothing once compressed."""
    size = MIN_INDEXES
    while size < 2 * drawn:
        size *= 2
    return raw + bytes(max(0, size // 8 - len(raw)))


@dataclass(slots=True)
class Made:
    token: str
    at: float  # monotonic


@dataclass(slots=True)
class StatusLists:
    """The lists this issuer signed lately, one per partition; one maker at a time each."""

    made: dict[int, Made] = field(default_factory=dict)
    locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    async def token(self, ctx: IssuerContext, partition: int, uri: str) -> str:
        made = self.made.get(partition)
        if made is not None and time.monotonic() - made.at < REFRESH_S:
            return made.token
        lock = self.locks.setdefault(partition, asyncio.Lock())
        async with lock:
            made = self.made.get(partition)
            if made is not None and time.monotonic() - made.at < REFRESH_S:
                return made.token  # another request made it meanwhile
            started = time.monotonic()
            token = await sign(ctx, partition, uri)
            self.made[partition] = Made(token, started)
            return token


async def sign(ctx: IssuerContext, partition: int, uri: str) -> str:
    """Read the partition's list and sign it: iat is just before it was read."""
    key = ctx.minter.keyring.get(await signing_kid(ctx))
    now = int(ctx.settings.wall_clock()())
    raw, drawn = await ctx.store.sessions.status_list(partition)
    # ZLIB takes tens of ms for a million sessions (BENCHMARKS.md): off the event
    # loop, so logins and refreshes are not held up meanwhile (zlib releases the GIL).
    return await asyncio.to_thread(list_token, ctx.settings, key, uri, covered(raw, drawn), now)


def list_token(settings: Settings, key: SigningKey, uri: str, raw: bytes, now: int) -> str:
    """The Status List Token of the list ``raw`` at ``uri``, signed with ``key``."""
    ttl = settings.status_lists.status_list_ttl_s
    # No iss and no aud: a JWT library given the JWKS and this API's issuer and audience
    # refuses a list as an access token even where it ignores typ.
    claims: dict[str, object] = {
        "sub": uri,
        "iat": now,
        "exp": now + ttl,
        "ttl": ttl,
        "status_list": {"bits": 1, "lst": encode(raw)},
    }
    header = {"alg": settings.tokens.jws_alg, "kid": key.kid, "typ": LIST_TYPE}
    return compact_jws(header, claims, key.private)


async def status_list(request: Request) -> Response:
    ctx = IssuerContext.of(request)
    text = request.path_params["partition"]
    partitions = ctx.store.keys.partitions
    index = int(text) if text.isdigit() and len(text) <= 4 else -1
    uri = list_uri(ctx.settings.tokens.issuer, index)
    if uri is None:
        raise NotFound("status lists are served only when REVOCAST_ISSUER is the issuer's URL")
    if not 0 <= index < partitions or str(index) != text:
        raise NotFound(f"no such status list: they are 0 to {partitions - 1}")
    lists: StatusLists = request.app.state.status_lists
    token = await lists.token(ctx, index, uri)
    return Response(token, media_type=MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})
