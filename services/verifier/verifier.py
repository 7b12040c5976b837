"""The Verifier: local access-token checks kept fresh by the revocation stream."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple

import httpx

from revocast.claims import AccessClaims
from revocast.errors import TokenRejected, VerifierStale
from revocast.events import AnyEvent
from revocast.settings import Settings, TokenSettings
from revocast.store import Backend, Follow
from revocast.verifier.cache import RevocationCache
from revocast.verifier.decode import check_token
from revocast.verifier.follower import Applied, Clocks, FollowOptions
from revocast.verifier.followers import Followers
from revocast.verifier.host import HostFollower, host_name
from revocast.verifier.lifecycle import Lifecycle
from revocast.verifier.receipts import Receipts, default_name
from revocast.verifier.status_lists import StatusLists
from revocast.verifier.table import SEQ_WORD


class _Verified(NamedTuple):
    """What the memo keeps of a token whose signature and claims were checked."""

    kid: str
    claims: AccessClaims
    iat_ms: int
    expires_at: float  # exp + leeway, in seconds of Redis time


REFUSALS = {
    "session_revoked": "this session was ended: log in again",
    "user_revoked": "every token of this user issued before a revocation is refused: log in again",
    "roles_changed": "the user's roles changed: refresh the token",
}


class Verifier:
    """Verifies access tokens with no network call; start it before use, stop it after.

    The verifier opens its own connections (to replicas with
    ``read_from_replicas``): they hold blocking stream reads, and ``stop``
    closes them.

    ``verify`` returns the claims, raises ``TokenRejected`` (with a ``code``) for
    a token that must not be accepted, or ``VerifierStale`` when the verifier
    cannot prove it has seen every revocation up to ``max_staleness_s`` ago.

    With ``REVOCAST_STATUS_LIST=fallback`` a stale verifier still answers from the issuer's
    Token Status Lists while they are younger than their ``ttl``; ``lists_client`` (an
    ``httpx.AsyncClient``) fetches them, for a transport of the embedder's choosing.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_applied: Applied | None = None,
        role: str = "verifier",
        lists_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        shared = settings.verifier.shared_cache == "1"
        # The one set of clocks: the verifier's, its followers', its receipts' and its lists'.
        # A host's table holds times on the host's monotonic clock, whatever the caller passed.
        self.clocks = Clocks(
            clock or settings.wall_clock(), time.monotonic if shared else monotonic
        )
        block_ms = max(20, min(1000, int(settings.freshness.max_staleness_s * 250)))
        self._backend = backend or Backend(
            settings,
            reads_from_replicas=settings.redis.read_from_replicas,
            socket_timeout_s=block_ms / 1000 + settings.freshness.max_staleness_s,
        )
        self.cache = RevocationCache()
        # Retry well inside the staleness bound, so a healed link is fresh again soon.
        options = FollowOptions(
            block_ms, min(2.0, max(0.05, settings.freshness.max_staleness_s / 4))
        )
        self._on_applied = on_applied
        self.host: HostFollower | None = None
        self.follower: Followers | HostFollower
        if shared:
            # The host's follower keeps the table, writes the receipt and calls on_applied.
            self.host = self.follower = HostFollower(
                settings,
                self._backend,
                self.cache,
                self.clocks,
                dataclasses.replace(options, on_applied=on_applied),
                name=host_name(settings, role),
            )
        else:
            self.follower = Followers(
                Follow(self._backend),
                self.cache,
                self.clocks,
                dataclasses.replace(options, on_applied=self._applied),
            )
        self.receipts = (
            Receipts(
                self.follower.follow,
                self.follower,
                self.clocks,
                name=settings.verifier.verifier_name or default_name(role),
                interval_s=settings.verifier.receipt_interval_ms / 1000,
                # Failing open, it accepts for up to the token lifetime without proof.
                max_staleness_s=settings.freshness.max_staleness_s
                if settings.freshness.fail_mode != "open"
                else settings.tokens.access_ttl_s,
            )
            if settings.verifier.receipt_interval_ms and isinstance(self.follower, Followers)
            else None
        )
        self.state = Lifecycle.CREATED
        self._memo: dict[str, _Verified] = {}
        self._memo_size = settings.freshness.verify_memo_size
        # Plain counters: cheap in the hot path, exported by metrics.VerifierCollector.
        self.accepted = 0
        self.stale = 0
        self.rejected: Counter[str] = Counter()
        # Fail-open is bounded by the access-token lifetime: past that, even open fails closed.
        self._stale_after_s = settings.freshness.max_staleness_s
        self._open_until_s = (
            settings.tokens.access_ttl_s if settings.freshness.fail_mode == "open" else None
        )
        # REVOCAST_STATUS_LIST=fallback: the issuer's lists answer while the streams are stale.
        self.lists = (
            StatusLists(
                settings,
                lambda: self.cache.keys,
                self._partition_count,
                clock=self.redis_time_s,
                monotonic=self.clocks.monotonic,
                client=lists_client,
            )
            if settings.status_lists.status_list == "fallback"
            else None
        )
        self.by_list = 0  # answers given from the lists while the streams were stale

    def _partition_count(self) -> int | None:
        return self._backend.keys.partitions if self._backend.started else None

    async def start(self) -> None:
        """Take the first snapshots (waiting up to max_staleness) and follow the streams.

        SettingsError if REVOCAST_PARTITIONS does not match the deployment's.
        """
        if self.state is not Lifecycle.CREATED:
            raise RuntimeError("Cannot start the verifier, as it was already started.")
        self.state = Lifecycle.RUNNING
        await self.follower.start(wait_s=self.settings.freshness.max_staleness_s)
        if self.receipts is not None:
            self.receipts.start()
        if self.lists is not None:
            self.lists.start()

    async def stop(self) -> None:
        self.state = Lifecycle.STOPPED
        if self.lists is not None:
            await self.lists.stop()
        if self.receipts is not None:
            await self.receipts.stop()
        await self.follower.stop()
        await self._backend.aclose()

    async def __aenter__(self) -> Verifier:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _applied(self, events: list[AnyEvent]) -> None:
        if self.receipts is not None:
            self.receipts.applied()
        if self._on_applied is not None:
            self._on_applied(events)

    @property
    def staleness_s(self) -> float:
        """Seconds since the least fresh stream proved nothing was missed (inf: no proof); the
        one place it is computed, for verify(), readiness, metrics and the sidecar alike."""
        return self.clocks.monotonic() - self.follower.fresh_at

    @property
    def ready(self) -> bool:
        return (
            self.follower.state is Lifecycle.RUNNING
            and self.follower.snapshotted
            and self.staleness_s <= self._stale_after_s
        )

    def verify(self, token: str, *, max_staleness_s: float | None = None) -> AccessClaims:
        """Check signature, claims and the revocation cache; no I/O.

        ``max_staleness_s`` replaces ``REVOCAST_MAX_STALENESS_S`` for this call: stricter for a
        sensitive route, looser for a public read, never above the access-token lifetime.
        """
        # The hot path, in one frame (each call costs ~40 ns here): every check runs inside the
        # try that counts the outcomes.
        try:
            host = self.host
            if host is not None and host.view.words[SEQ_WORD] == host.settled_seq:
                fresh_at = host.settled_fresh_at  # the host's table unchanged: no call
            else:
                fresh_at = self.follower.fresh_at
            staleness = self.clocks.monotonic() - fresh_at  # staleness_s, inlined
            bound = self._stale_after_s
            if max_staleness_s is not None:
                bound = checked_staleness(max_staleness_s, self.settings.tokens)
            stale = staleness > bound and (
                self._open_until_s is None or staleness > self._open_until_s
            )
            if stale and (self.lists is None or not self.lists.usable_within(max_staleness_s)):
                raise _stale(staleness)
            seen = self._memo.get(token)
            if seen is None:
                seen = self._first_sight(token)
            elif (clocks := self.clocks).wall() + clocks.offset_s > seen.expires_at:
                del self._memo[token]
                raise TokenRejected("token_expired", "the access token expired (exp): refresh it")
            # The revocation checks run on every call, memo or not: plain dict lookups.
            cache = self.cache
            claims = seen.claims
            if seen.kid in cache.revoked_keys:
                raise TokenRejected(
                    "key_revoked", "the key that signed this token was revoked: log in again"
                )
            if host is not None:
                kept = host.verdicts.get(token)  # the table's verdict, while its revision holds
                if kept is not None and kept[0] == host.rev:
                    code = kept[1]
                else:
                    code = host.refusal(token, claims.sid, claims.sub, seen.iat_ms)
                if code is not None:
                    raise TokenRejected(code, REFUSALS[code])
            else:
                if claims.sid in cache.sessions:
                    raise TokenRejected("session_revoked", REFUSALS["session_revoked"])
                user = cache.users.get(claims.sub)
                if user is not None and seen.iat_ms <= user[0]:
                    raise TokenRejected("user_revoked", REFUSALS["user_revoked"])
                changed = cache.roles_changed.get(claims.sub)
                if changed is not None and seen.iat_ms <= changed[0]:
                    raise TokenRejected("roles_changed", REFUSALS["roles_changed"])
            if stale:  # the streams cannot vouch: the lists decide, or nothing does
                self._check_list(seen.kid, claims, staleness, max_staleness_s)
        except TokenRejected as exc:
            self.rejected[exc.code] += 1
            raise
        except VerifierStale:
            self.stale += 1
            raise
        self.accepted += 1
        return claims

    def _check_list(
        self, kid: str, claims: AccessClaims, staleness: float, max_age_s: float | None
    ) -> None:
        """The streams are stale: the token's status in a young list and its key in a young
        JWKS decide, or nothing does. A caller's own bound (``max_age_s``) holds for the lists
        too."""
        assert self.lists is not None
        ref = claims.status.status_list if claims.status is not None else None
        invalid = None if ref is None else self.lists.invalid(ref.uri, ref.idx, max_age_s)
        live = self.lists.key_live(kid, max_age_s)
        if invalid is None or live is None:
            raise _stale(staleness)  # no status claim, or no young list of its partition
        if not live:
            raise TokenRejected(
                "key_revoked", "the key that signed this token was revoked: log in again"
            )
        if invalid:
            raise TokenRejected(
                "token_revoked",
                "the issuer's status list says this token is revoked: refresh it, or log in again",
            )
        self.by_list += 1

    def _first_sight(self, token: str) -> _Verified:
        """Signature and claim checks, remembered (bounded, first in first out) until exp."""
        kid, claims = self._decode(token)
        seen = _Verified(kid, claims, claims.issued_ms, claims.exp + self.settings.tokens.leeway_s)
        memo = self._memo
        if self._memo_size:
            if len(memo) >= self._memo_size:
                del memo[next(iter(memo))]
            memo[token] = seen
        return seen

    def redis_time_s(self) -> float:
        """Now on the Redis clock, as this verifier estimates it: token times are checked
        against it, so that a host whose clock is off neither accepts nor refuses early."""
        clocks = self.clocks
        return clocks.wall() + clocks.offset_s

    def _decode(self, token: str) -> tuple[str, AccessClaims]:
        return check_token(token, self.cache.keys, self.settings.tokens, self.redis_time_s())


def _stale(staleness: float) -> VerifierStale:
    return VerifierStale(
        f"no word from Redis for {staleness:.1f} s, so recent revocations may be "
        "missing: retry in a moment"
    )


def checked_staleness(seconds: float, tokens: TokenSettings) -> float:
    """A per-route staleness bound, refused above the access-token lifetime (beyond it, a
    revoked token could outlive the revocation's record in a stale cache)."""
    if not 0 < seconds <= tokens.access_ttl_s:
        raise ValueError(
            f"a staleness bound must be above 0 and at most the access-token lifetime "
            f"({tokens.access_ttl_s} s), not {seconds}"
        )
    return seconds
