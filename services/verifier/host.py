"""One follower per host (``REVOCAST_SHARED_CACHE=1``): the verifier processes of a host
share one stream follower and one revocation table (``revocast.verifier.table``).

Whichever process holds the host's lock (``flock`` on a file beside the table) follows the
streams, writes the table and hands in the host's receipt; the others read the table and
hold no Redis connection. The kernel frees the lock when its holder dies, and every other
process tries to take it several times per staleness bound: the next one snapshots and
goes on. Until then the table says how fresh it was when last written, so a host whose
follower is gone answers stale once its proof is older than the bound, as one process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import fcntl
import gc
import logging
import math
import os
import secrets
import socket
import stat
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from revocast.errors import SettingsError, VerifierStale
from revocast.events import AnyEvent
from revocast.keys import PublicKey
from revocast.settings import Settings
from revocast.store import Backend, Follow, Snapshot
from revocast.verifier.cache import RevocationCache
from revocast.verifier.follower import (
    PROPAGATION_BUCKETS_S,
    Clocks,
    FollowOptions,
    StreamFollower,
)
from revocast.verifier.followers import Followers
from revocast.verifier.lifecycle import Lifecycle
from revocast.verifier.receipts import Receipts
from revocast.verifier.table import (
    ROLES,
    SEQ_WORD,
    SESSION,
    USER,
    Blob,
    TableFull,
    TableView,
    TableWriter,
    deployment_id,
)

log = logging.getLogger("revocast.verifier")

TRIM_AFTER_S = 0.25  # a snapshot's pages come faster: one trim after many of them


def host_dir(settings: Settings) -> Path:
    """``/dev/shm/revocast-<deployment>``: one per Redis URL and key prefix (and layout)."""
    base = Path("/dev/shm")  # noqa: S108 (a folder of this user's only: _private_dir)
    if not base.is_dir():
        base = Path(tempfile.gettempdir())
    name = deployment_id(settings.redis.redis_url or "", settings.redis.key_prefix).hex()
    return base / f"revocast-{name}"


def _private_dir(path: Path) -> None:
    """Create ``path`` for this user only; SettingsError if someone else could write in it
    (a table another user wrote could hide revocations)."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SettingsError(
            f"{path} must be a directory of this user's only (mode 700): remove it, or set "
            "REVOCAST_SHARED_CACHE=0"
        )


class TableCache(RevocationCache):
    """The follower's cache: revocations go to the host's table, keys to its blob.

    An entry the table cannot take waits here, and the table says it is full (its readers
    answer stale) until every waiting entry is in.
    """

    __slots__ = ("jwks", "pending", "trim_due", "writer")

    def __init__(self, writer: TableWriter) -> None:
        super().__init__()
        self.writer = writer
        self.pending: list[tuple[bytes, str, int, int]] = []
        self.jwks: dict[str, str] = {}  # kid -> JWK text, for the blob
        self.trim_due = False

    def merge(self, snapshot: Snapshot) -> None:
        super().merge(snapshot)
        if not self.trim_due:  # after the snapshot's pages; during a long one, now and then
            self.trim_due = True
            asyncio.get_running_loop().call_later(TRIM_AFTER_S, self._trim)

    def _trim(self) -> None:
        self.trim_due = False
        give_back_memory()

    def __len__(self) -> int:
        return self.writer.entries + len(self.revoked_keys)

    @property
    def full(self) -> bool:
        return bool(self.pending)

    def _put(self, kind: bytes, key: str, a: int, until_ms: int) -> None:
        try:
            self.writer.put(kind, key, a, until_ms)
        except TableFull as exc:
            if not self.pending:
                log.error("%s: answering stale until entries expire", exc)
            self.pending.append((kind, key, a, until_ms))

    def _revoke_session(self, sid: str, until_ms: int) -> None:
        self._put(SESSION, sid, until_ms, until_ms)

    def _revoke_user(self, uid: str, not_before_ms: int, until_ms: int) -> None:
        self._put(USER, uid, not_before_ms, until_ms)

    def _change_roles(self, uid: str, changed_ms: int, until_ms: int) -> None:
        self._put(ROLES, uid, changed_ms, until_ms)

    def _revoke_key(self, kid: str, at_ms: int) -> None:
        if kid not in self.revoked_keys:
            super()._revoke_key(kid, at_ms)
            self._publish_keys()

    def _trust(self, jwk_text: str) -> None:
        try:
            key = PublicKey.from_jwk(jwk_text)
        except ValueError as exc:
            log.error("ignoring a published key: %s", exc)
            return
        if self.jwks.get(key.kid) != jwk_text:
            self.keys[key.kid] = key
            self.jwks[key.kid] = jwk_text
            self._publish_keys()

    def _publish_keys(self) -> None:
        try:
            self.writer.set_blob(Blob(dict(self.jwks), dict(self.revoked_keys)))
        except TableFull as exc:
            log.error("%s: answering stale", exc)
            self.pending.append((b"", "", 0, 0))  # keys cannot be published: stay stale

    def prune(self, now_ms: int) -> int:
        """Retry the waiting entries, and drop expired ones from the table."""
        waiting, self.pending = self.pending, []
        for kind, key, a, until_ms in waiting:
            if kind:
                self._put(kind, key, a, until_ms)
            else:
                self._publish_keys()
        try:
            return self.writer.prune()
        except OSError as exc:
            log.error("could not prune the host's table: %s", exc)
            return 0


def give_back_memory() -> None:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``; elsewhere
    nothing). A snapshot of 100,000 revocations passes through some 20 MB of Python objects
    on its way into the table; without this the follower keeps ~0.8 MiB of them as free heap."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not glibc
        ctypes.CDLL(None).malloc_trim(0)  # None: the libc this process runs on


class _PublishingFollowers(Followers):
    """Followers that write their proof to the table whenever it changes."""

    publish: Callable[[], None] = staticmethod(lambda: None)

    def recompute_freshness(self) -> None:
        super().recompute_freshness()
        self.publish()

    async def _prune(self) -> None:
        while self.state is Lifecycle.RUNNING:
            await asyncio.sleep(1.0)
            self.cache.prune(self.clocks.redis_now_ms())
            self.publish()


class _Member:
    """This process's file among the host's members, locked for as long as it lives."""

    def __init__(self, members: Path) -> None:
        members.mkdir(mode=0o700, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"  # several verifiers may share a pid
        self.path = members / name
        tmp = members / f".{name}"
        self.fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.rename(tmp, self.path)

    def leave(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)


def count_members(members: Path) -> int:
    """Live processes of the host: the files whose lock is held (a dead one's is removed)."""
    alive = 0
    with contextlib.suppress(OSError):
        for path in members.iterdir():
            if path.name.startswith("."):
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                alive += 1
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
            finally:
                os.close(fd)
    return alive


class HostFollower:
    """This process's part in its host's follower: it follows (holding the lock) or reads.

    It offers what the verifier, its metrics and the sidecar read of ``Followers``;
    ``fresh_at`` and the revocations come from the table in either role.
    """

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        cache: RevocationCache,
        clocks: Clocks,
        options: FollowOptions,
        *,
        name: str,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.cache = cache  # its keys and revoked_keys mirror the table's blob
        self.clocks = clocks
        self.options = options  # its on_applied is called here, after the table has the batch
        self.name = name
        self.dir = host_dir(settings)
        deployment = deployment_id(settings.redis.redis_url or "", settings.redis.key_prefix)
        self.view = TableView(self.dir / "table", deployment)
        self.state = Lifecycle.CREATED
        self.followers: Followers | None = None
        self.receipts: Receipts | None = None
        self.writer: TableWriter | None = None
        self.poll_s = min(0.5, max(0.01, settings.freshness.max_staleness_s / 8))
        self._lock_fd: int | None = None
        self._member: _Member | None = None
        self._task: asyncio.Task[None] | None = None
        self.rev = -1
        self._keys_rev = -1
        # The header's sequence word when settled_fresh_at was read (-1: read it again); the
        # verifier's hot path compares it with the word itself, with no call.
        self.settled_seq = -1
        self.settled_fresh_at = -math.inf
        self._seen_fresh = False
        self.verdicts: dict[str, tuple[int, str | None]] = {}
        self.verdicts_max = max(1024, settings.freshness.verify_memo_size)

    @property
    def leading(self) -> bool:
        return self.followers is not None

    async def start(self, wait_s: float) -> None:
        """Join the host; follow if nobody does; wait up to ``wait_s`` for a fresh table."""
        if self.state is not Lifecycle.CREATED:
            raise RuntimeError("Cannot start the follower, as it was already started.")
        self.state = Lifecycle.RUNNING
        _private_dir(self.dir)
        self._member = _Member(self.dir / "members")
        await self._turn(wait_s)
        step = min(0.01, self.poll_s)
        for _ in range(math.ceil(wait_s / step)):  # a reader: the follower may be starting
            if math.isfinite(self.fresh_at):
                break
            await asyncio.sleep(step)
        self._task = asyncio.create_task(self._run(), name="revocast-host")

    async def _run(self) -> None:
        while self.state is Lifecycle.RUNNING:
            await asyncio.sleep(self.poll_s)
            try:
                await self._turn(0.0)
            except Exception as exc:  # keep trying: the table says how fresh we are
                log.error("host follower: %s: %s", type(exc).__name__, exc)

    async def _turn(self, wait_s: float) -> None:
        """Take the lock if it is free, and follow; else read the table at the path."""
        if not self.leading and self._try_lock():
            try:
                await self._lead(wait_s)
            except (TableFull, OSError) as exc:
                # No table to write (/dev/shm full, say): stay a reader, answer stale, retry.
                log.error("cannot keep the host's revocation table: %s", exc)
                self.writer = None
                assert self._lock_fd is not None
                os.close(self._lock_fd)
                self._lock_fd = None
        if self.view.mm is None or self.view.replaced():
            self.settled_seq = -1  # another file: read its header before trusting it
            self.view.open()

    def _try_lock(self) -> bool:
        fd = os.open(self.dir / "leader.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    async def _lead(self, wait_s: float) -> None:
        log.info("following the streams for this host (%s)", self.dir)
        self.writer = TableWriter(
            self.view.path,
            self.view.deployment,
            max_entries=self.settings.verifier.shared_cache_max_entries,
            now_ms=self.clocks.redis_now_ms,
        )
        cache = TableCache(self.writer)
        followers = _PublishingFollowers(
            Follow(self.backend),
            cache,
            self.clocks,
            dataclasses.replace(self.options, on_applied=self._applied),
        )
        followers.publish = self._publisher(followers, cache)
        self.followers = followers
        if self.settings.verifier.receipt_interval_ms:
            self.receipts = Receipts(
                followers.follow,
                followers,
                self.clocks,
                name=self.name,
                interval_s=self.settings.verifier.receipt_interval_ms / 1000,
                max_staleness_s=self.settings.freshness.max_staleness_s
                if self.settings.freshness.fail_mode != "open"
                else self.settings.tokens.access_ttl_s,
                workers=lambda: count_members(self.dir / "members"),
            )
        await followers.start(wait_s=wait_s)
        if self.receipts is not None:
            self.receipts.start()

    def _publisher(self, followers: Followers, cache: TableCache) -> Callable[[], None]:
        def publish() -> None:
            writer = self.writer
            # Until this follower holds every stream, the last one's proof stands.
            if writer is None or followers.state is not Lifecycle.RUNNING:
                return
            if not followers.snapshotted:
                return
            epoch = followers.streams[0].epoch or ""
            writer.publish(followers.fresh_at, self.clocks.offset_s, full=cache.full, epoch=epoch)

        return publish

    def _applied(self, events: list[AnyEvent]) -> None:
        if self.receipts is not None:
            self.receipts.applied()
        on_applied = self.options.on_applied
        if on_applied is not None:
            on_applied(events)

    async def stop(self) -> None:
        """Stop following (another process takes over) and leave the host."""
        self.state = Lifecycle.STOPPED
        self.settled_seq = -1
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.receipts is not None:
            await self.receipts.stop()
        if self.followers is not None:
            await self.followers.stop()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        joined = self._member is not None
        if self._member is not None:
            self._member.leave()
            self._member = None
        self.view.close()
        if joined:
            self._leave_last()

    def _leave_last(self) -> None:
        """The last one out removes the table (a new first one snapshots anyway); the lock
        file stays, so that two processes can never hold locks on two files. A host folder
        removed by hand meanwhile leaves nothing to remove."""
        with contextlib.suppress(FileNotFoundError):
            if self._lock_fd is None and not self._try_lock():
                return
            if count_members(self.dir / "members") == 0:
                with contextlib.suppress(OSError):
                    self.view.path.unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def fresh_at(self) -> float:
        """When the host's follower last proved it missed nothing (-inf: no proof, a full
        table, or stopped); also brings this process's keys and clock offset up to date.

        Read on every verify: one read of the header's sequence word while nothing changed."""
        if self.view.words[SEQ_WORD] == self.settled_seq:
            return self.settled_fresh_at
        return self._fresh_at_settled()

    def _fresh_at_settled(self) -> float:
        """Read the header again; remember it (by its sequence word) when it is settled."""
        self.settled_seq = -1
        if self.state is not Lifecycle.RUNNING:
            return -math.inf
        seq, fresh_at, rev, keys_rev, flags, offset_s = self.view.hot()
        self.rev = rev
        self.clocks.offset_s = offset_s
        if keys_rev != self._keys_rev:
            self._load_keys(keys_rev)
        if math.isfinite(fresh_at):
            self._seen_fresh = True
        if seq and not flags and keys_rev == self._keys_rev:
            self.settled_seq, self.settled_fresh_at = seq, fresh_at
        return fresh_at

    def _load_keys(self, keys_rev: int) -> None:
        blob = self.view.blob()
        if blob is None:
            return
        keys: dict[str, PublicKey] = {}
        for text in blob.keys.values():
            with contextlib.suppress(ValueError):
                key = PublicKey.from_jwk(text)
                keys[key.kid] = key
        self.cache.keys = keys
        self.cache.revoked_keys = dict(blob.revoked)
        self._keys_rev = keys_rev

    def refusal(self, token: str, sid: str, sub: str, iat_ms: int) -> str | None:
        """The code a token is refused with by the table's revocations, or None; a verdict
        is kept (``verdicts``) while the table's revision (``rev``) holds. Read ``fresh_at``
        first."""
        rev = self.rev
        view = self.view
        for _ in range(1000):
            seq = view.seq()
            if seq & 1:
                continue
            code: str | None = None
            if view.lookup(SESSION, sid) is not None:
                code = "session_revoked"
            elif (user := view.lookup(USER, sub)) is not None and iat_ms <= user[0]:
                code = "user_revoked"
            elif (roles := view.lookup(ROLES, sub)) is not None and iat_ms <= roles[0]:
                code = "roles_changed"
            if view.seq() == seq:
                break
        else:
            raise VerifierStale("the host's revocation table is being rewritten: retry")
        if len(self.verdicts) >= self.verdicts_max:
            self.verdicts.clear()
        self.verdicts[token] = (rev, code)
        return code

    # What Followers offers, for metrics, readiness and the sidecar: the follower's figures
    # in the process that follows, none in the others.

    @property
    def snapshotted(self) -> bool:
        return self._seen_fresh or math.isfinite(self.fresh_at)

    @property
    def streams(self) -> list[StreamFollower]:
        return self.followers.streams if self.followers else []

    @property
    def clock_offset_s(self) -> float:
        return self.clocks.offset_s

    @property
    def snapshots(self) -> int:
        return self.followers.snapshots if self.followers else 0

    @property
    def events_applied(self) -> int:
        return self.followers.events_applied if self.followers else 0

    @property
    def events_by_type(self) -> Counter[str]:
        return self.followers.events_by_type if self.followers else Counter()

    @property
    def revocations_by_actor(self) -> Counter[str]:
        return self.followers.revocations_by_actor if self.followers else Counter()

    @property
    def read_errors(self) -> int:
        return self.followers.read_errors if self.followers else 0

    @property
    def lag_entries(self) -> int:
        return self.followers.lag_entries if self.followers else 0

    @property
    def replica_lag_ms(self) -> int:
        return self.followers.replica_lag_ms if self.followers else 0

    @property
    def propagation_counts(self) -> list[int]:
        if self.followers:
            return self.followers.propagation_counts
        return [0] * len(PROPAGATION_BUCKETS_S)

    @property
    def propagation_sum_s(self) -> float:
        return self.followers.propagation_sum_s if self.followers else 0.0

    @property
    def propagation_max_s(self) -> float:
        return self.followers.propagation_max_s if self.followers else 0.0

    @property
    def positions(self) -> dict[str, str]:
        return self.followers.positions if self.followers else {}

    @property
    def error(self) -> str | None:
        if self.followers:
            return self.followers.error
        return self.view.error


def host_name(settings: Settings, role: str) -> str:
    """The host's receipt names the host, not a process: ``sidecar host web-3``."""
    return settings.verifier.verifier_name or f"{role} host {socket.gethostname()}"
