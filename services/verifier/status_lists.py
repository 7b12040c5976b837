"""The verifier's second channel (``REVOCAST_STATUS_LIST=fallback``): the issuer's Token
Status Lists, fetched every partition, every half ``ttl``, with its JWKS (a revoked key
leaves it: the lists say nothing of keys).

While the streams are fresh, the lists are not consulted. When they go stale, a token is
still answered if its status says so in a list younger than the list's ``ttl`` (both the
time since it was fetched and since its ``iat`` count); otherwise the verifier is stale as
before. A list is taken only if it is what the draft and the issuer promise: ``typ``
``statuslist+jwt``, signed by a key the verifier trusts (it learnt the keys from Redis),
``sub`` the uri it was fetched from, ``bits`` 1. What it says then adds to the revocations
the verifier knows; it never removes one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import msgspec
from cryptography.exceptions import InvalidSignature

from revocast import strict_json
from revocast.background import Background
from revocast.keys import ED25519_NAMES, PublicKey, b64url_decode
from revocast.settings import Settings
from revocast.status_list import (
    INVALID,
    LIST_TYPE,
    MAX_LIST_BYTES,
    StatusListClaims,
    decode,
    list_uri,
    status_at,
)

log = logging.getLogger("revocast.verifier")

FETCH_TIMEOUT_S = 5.0


JWKS_PATH = "/.well-known/jwks.json"


class JwksKey(msgspec.Struct):
    kid: str


class JwksKids(msgspec.Struct):
    keys: list[JwksKey]


class ListRefused(Exception):
    """A fetched list that is not what the issuer promises: it is not used."""


@dataclass(frozen=True, slots=True)
class HeldList:
    raw: bytes
    iat: int  # seconds, the issuer's clock
    ttl_s: float
    fetched_at: float  # monotonic


def read_list(token: str, uri: str, keys: Mapping[str, PublicKey]) -> StatusListClaims:
    """The claims of a Status List Token fetched from ``uri``; ListRefused if any check fails."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = strict_json.decode(b64url_decode(header_b64), dict[str, object])
        payload = b64url_decode(payload_b64)
        signature = b64url_decode(signature_b64)
    except (ValueError, strict_json.StrictJsonError, msgspec.ValidationError) as exc:
        raise ListRefused(f"not a compact JWS: {exc}") from None
    if header.get("typ") != LIST_TYPE:
        raise ListRefused(f"typ {header.get('typ')!r} is not {LIST_TYPE}")
    key = keys.get(str(header.get("kid")))
    if key is None or header.get("alg") not in ED25519_NAMES:
        raise ListRefused("signed with no key this verifier trusts")
    try:
        key.key.verify(signature, f"{header_b64}.{payload_b64}".encode("ascii"))
        claims = strict_json.decode(payload, StatusListClaims)
    except InvalidSignature:
        raise ListRefused("the signature does not verify") from None
    except (strict_json.StrictJsonError, msgspec.ValidationError) as exc:
        raise ListRefused(f"the claims are not a status list's: {exc}") from None
    if claims.sub != uri:
        raise ListRefused(f"sub {claims.sub[:100]!r} is not the uri fetched")
    if claims.status_list.bits != 1:
        raise ListRefused(f"bits {claims.status_list.bits}, where revocast writes 1")
    return claims


class StatusLists:
    """Every partition's list, kept fetched in the background; ``status`` reads them."""

    def __init__(
        self,
        settings: Settings,
        keys: Callable[[], Mapping[str, PublicKey]],
        partitions: Callable[[], int | None],
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self._ttl_s = settings.status_lists.status_list_ttl_s  # until a list says its own
        self._keys = keys
        self._partitions = partitions
        self._clock = clock  # Redis time, as the verifier estimates it
        self._monotonic = monotonic
        self._client = client
        self._owns_client = client is None
        self.held: dict[str, HeldList] = {}  # uri -> the last list taken
        self.kids: frozenset[str] | None = None  # the kids of the issuer's JWKS, as fetched
        self.kids_at = 0.0  # monotonic time of that fetch
        self.refused = 0
        self._loop = Background("revocast status lists")

    def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=FETCH_TIMEOUT_S)
        self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while not self._loop.stopping():
            await self.fetch_all()
            interval = max(0.25, min(self._ttl_s, *self._ttls()) / 2)
            if await self._loop.pause(interval):
                return

    def _ttls(self) -> list[float]:
        return [held.ttl_s for held in self.held.values()] or [self._ttl_s]

    def uris(self) -> list[str]:
        count = self._partitions()
        if count is None:
            return []  # the partition count is known once Redis answered once
        return [uri for k in range(count) if (uri := list_uri(self.settings.tokens.issuer, k))]

    async def fetch_all(self) -> None:
        try:
            await self.fetch_jwks()
        except (httpx.HTTPError, ListRefused) as exc:
            self.refused += 1
            log.warning("the issuer's JWKS not taken: %s", exc)
        for uri in self.uris():
            try:
                await self.fetch(uri)
            except (httpx.HTTPError, ListRefused, ValueError) as exc:
                self.refused += 1
                log.warning("status list %s not taken: %s", uri, exc)

    async def fetch(self, uri: str) -> None:
        assert self._client is not None, "start() first"
        started = self._monotonic()
        reply = await self._client.get(uri)
        reply.raise_for_status()
        if len(reply.content) > MAX_LIST_BYTES:
            raise ListRefused("the list is over its size bound")
        claims = read_list(reply.text, uri, self._keys())
        raw = decode(claims.status_list.lst)
        ttl = float(claims.ttl or self._ttl_s)
        held = self.held.get(uri)
        if held is None or claims.iat >= held.iat:  # never step back to an older list
            self.held[uri] = HeldList(raw, claims.iat, ttl, started)

    async def fetch_jwks(self) -> None:
        """The kids the issuer publishes now: revoked keys are not among them."""
        assert self._client is not None, "start() first"
        started = self._monotonic()
        reply = await self._client.get(self.settings.tokens.issuer.rstrip("/") + JWKS_PATH)
        reply.raise_for_status()
        try:
            document = strict_json.decode(reply.content, JwksKids)
        except (strict_json.StrictJsonError, msgspec.ValidationError) as exc:
            raise ListRefused(f"not a JWKS: {exc}") from None
        self.kids = frozenset(key.kid for key in document.keys)
        self.kids_at = started

    # ``max_age_s`` below: a caller's own staleness bound (``verify(max_staleness_s=...)``),
    # which a list must meet as well as its ttl; None: the ttl alone.

    def key_live(self, kid: str, max_age_s: float | None = None) -> bool | None:
        """Whether the issuer still publishes ``kid``; None without a JWKS young enough."""
        limit = min(self._ttls()) if max_age_s is None else min(*self._ttls(), max_age_s)
        if self.kids is None or self._monotonic() - self.kids_at > limit:
            return None
        return kid in self.kids

    def _young(self, held: HeldList, max_age_s: float | None) -> bool:
        age = max(self._monotonic() - held.fetched_at, self._clock() - held.iat)
        return age <= (held.ttl_s if max_age_s is None else min(held.ttl_s, max_age_s))

    @property
    def usable(self) -> bool:
        """Every partition's list is held and younger than its ttl."""
        return self.usable_within(None)

    def usable_within(self, max_age_s: float | None) -> bool:
        uris = self.uris()
        if not uris or self.key_live("", max_age_s) is None:
            return False
        return all(
            (held := self.held.get(uri)) is not None and self._young(held, max_age_s)
            for uri in uris
        )

    def status(self, uri: str, idx: int, max_age_s: float | None = None) -> int | None:
        """The status of index ``idx`` in the list at ``uri``; None if no young list is held."""
        held = self.held.get(uri)
        if held is None or not self._young(held, max_age_s):
            return None
        return status_at(held.raw, idx)

    def invalid(self, uri: str, idx: int, max_age_s: float | None = None) -> bool | None:
        status = self.status(uri, idx, max_age_s)
        return None if status is None else status == INVALID
