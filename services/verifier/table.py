"""The host's revocation table: one file in shared memory, written by the host's follower,
read by every verifier process of the host without a lock.

Layout (little-endian): a 256-byte header, a 64 KiB blob (JSON: the trusted keys' JWKs and
the revoked key ids), then an open-addressing table of 16-byte slots (linear probing), each
a 64-bit fingerprint of (kind, id) and one 64-bit time word: ``a`` (ms, 43 bits: a session's
end, a user's not-before) and how many seconds past ``a`` the entry is still needed (21 bits),
which gives ``b`` (seconds: when every token the entry covers has expired).

The fingerprint is a keyed hash (BLAKE2b with a random key drawn for each table and kept in
its header, in a folder only this user reads), so nobody can aim two ids at one fingerprint
or one probe chain. Two ids share one by chance with odds of about 1 in 2^64 / entries per
lookup (1 in 2 * 10^13 at a million entries); the table then holds both under one slot with
the later of each time: the id that was not revoked is refused (a false refusal), and an id
that was revoked is never accepted.

Writes are seqlocked: the writer makes ``seq`` odd, writes, makes it even again; a reader
reads ``seq`` before and after and retries when they differ or are odd. ``rev`` counts
revocation writes, so a reader may reuse a verdict while it holds. Growing (or dropping
expired entries) writes a new file and renames it over the old one, then marks the old one
retired: readers see the flag and open the path again. A table that cannot take an entry is
marked full, and its readers answer stale until the entry fits (nothing is dropped).

The header names the layout version and the deployment (a hash of the Redis URL and key
prefix): a table of another layout or for another deployment is never read.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import secrets
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"REVOCAST"
LAYOUT = 2  # 1: 24-byte slots with an unkeyed 96-bit fingerprint
HEADER_BYTES = 256
BLOB_BYTES = 64 * 1024
SLOTS_AT = HEADER_BYTES + BLOB_BYTES
MIN_SLOTS = 1024
ENDS_S = 16  # the period prune() counts expiring entries by
GROW_AT = 0.75  # load past which the table doubles: 21 to 43 bytes of table per entry
SEQ_AT = 32  # the seqlock word; the fields read on every verify follow it

_HEAD = struct.Struct("<8sII16s")  # magic, layout, 0, deployment
# seq, fresh_at (monotonic s), rev, keys_rev, flags, clock offset (s), slots, entries, blob
# length, epoch
_STATE = struct.Struct("<QdQQQdQQQ40s")
_HOT = struct.Struct("<QdQQQd")  # what a header read takes: up to the clock offset
_SEQ = struct.Struct("<Q")
SEQ_WORD = SEQ_AT // 8
NO_WORDS = memoryview(bytes(HEADER_BYTES)).cast("Q")
_SLOT = struct.Struct("<QQ")  # fingerprint, time word
SLOT_BYTES = _SLOT.size
EMPTY = 0
KEY_AT = SEQ_AT + _STATE.size  # the fingerprint key: 16 bytes, fixed for the file's life
KEY_BYTES = 16
LIFE_BITS = 21  # seconds past ``a``: up to 24 days, where a revocation needs a day and 2 min
LIFE_MAX = (1 << LIFE_BITS) - 1
A_MAX = (1 << (64 - LIFE_BITS)) - 1  # ms: the year 2248

RETIRED, FULL = 1, 2  # flags
SESSION, USER, ROLES = b"s", b"u", b"r"  # kinds


class TableInvalid(Exception):
    """The file is not a table this process may read (another layout or deployment)."""


def deployment_id(redis_url: str, key_prefix: str) -> bytes:
    """16 bytes naming the deployment, and the table's directory with it."""
    text = f"{LAYOUT}\0{redis_url}\0{key_prefix}".encode()
    return hashlib.sha256(text).digest()[:16]


class Fingerprints:
    """The keyed 64-bit fingerprint of (kind, id) under one table's key; it also picks the
    first slot (its low bits)."""

    __slots__ = ("_keyed", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._keyed = hashlib.blake2b(digest_size=8, key=key)  # copied: the key is hashed once

    def __call__(self, kind: bytes, ident: str) -> int:
        hasher = self._keyed.copy()
        hasher.update(kind + ident.encode())
        return int.from_bytes(hasher.digest(), "little") or 1  # 0 marks an empty slot


def pack_times(a: int, b: int) -> int:
    """The time word of ``a`` (ms) and ``b`` (s). Past 24 days after ``a``, ``b`` is cut to
    ``a`` + 24 days: every token an entry covers has expired a day and 2 min after ``a``
    (``Settings.revocation_lifetime_ms`` at its largest), so nothing is forgotten early."""
    a = min(max(a, 0), A_MAX)
    return a << LIFE_BITS | min(max(b - a // 1000, 0), LIFE_MAX)


def unpack_times(word: int) -> tuple[int, int]:
    """(a in ms, b in s) of a time word."""
    a = word >> LIFE_BITS
    return a, a // 1000 + (word & LIFE_MAX)


def slots_for(entries: int) -> int:
    """The smallest power of two that holds ``entries`` under the growth load."""
    slots = MIN_SLOTS
    while entries > slots * GROW_AT:
        slots *= 2
    return slots


@dataclass(frozen=True, slots=True)
class Blob:
    """What the blob holds: trusted keys (kid -> JWK text) and revoked keys (kid -> at ms)."""

    keys: dict[str, str]
    revoked: dict[str, int]

    def encode(self) -> bytes:
        return json.dumps({"keys": self.keys, "revoked": self.revoked}).encode()

    @staticmethod
    def decode(raw: bytes) -> Blob:
        if not raw:
            return Blob({}, {})
        data = json.loads(raw)
        return Blob(dict(data["keys"]), {k: int(v) for k, v in data["revoked"].items()})


def _map(path: Path, deployment: bytes, *, write: bool) -> mmap.mmap:
    """Map ``path``, checking that it is a table of this layout for this deployment."""
    fd = os.open(path, os.O_RDWR if write else os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < SLOTS_AT:
            raise TableInvalid(f"{path} is too short for a table")
        access = mmap.ACCESS_WRITE if write else mmap.ACCESS_READ
        mm = mmap.mmap(fd, size, access=access)
    finally:
        os.close(fd)
    magic, layout, _, owner = _HEAD.unpack_from(mm, 0)
    slots = _STATE.unpack_from(mm, SEQ_AT)[6]
    if magic != MAGIC or layout != LAYOUT:
        mm.close()
        raise TableInvalid(f"{path} is not a table of layout {LAYOUT}")
    if owner != deployment:
        mm.close()
        raise TableInvalid(f"{path} is another deployment's table")
    if size != SLOTS_AT + slots * SLOT_BYTES or slots & (slots - 1):
        mm.close()
        raise TableInvalid(f"{path} has a size its header does not give")
    return mm


class TableView:
    """A reader's mapping of the table; it follows the path when the table is replaced."""

    def __init__(self, path: Path, deployment: bytes) -> None:
        self.path = path
        self.deployment = deployment
        self.mm: mmap.mmap | None = None
        # The mapping as 64-bit words: words[SEQ_WORD] is the cheapest read of the seqlock
        # word (a verify's one read while nothing changed); all zeros without a table.
        self.words = NO_WORDS
        self.inode = -1
        self.error: str | None = None
        self.fingerprint = Fingerprints(bytes(KEY_BYTES))  # the mapped table's, once mapped

    def open(self) -> bool:
        """(Re)map the file at ``path``; False (and ``error``) when there is none to read."""
        try:
            inode = os.stat(self.path).st_ino
            mm = _map(self.path, self.deployment, write=False)
        except (OSError, TableInvalid, ValueError) as exc:
            self.error = str(exc) if isinstance(exc, TableInvalid) else f"no table: {exc}"
            return False
        # The old mapping is not closed: a verify on another thread may still hold it. It
        # goes when the last reference does.
        self.fingerprint = Fingerprints(mm[KEY_AT : KEY_AT + KEY_BYTES])
        self.mm, self.words = mm, memoryview(mm).cast("Q")
        self.inode, self.error = inode, None
        return True

    def replaced(self) -> bool:
        """Whether the path now names another file than the one mapped."""
        try:
            return os.stat(self.path).st_ino != self.inode
        except OSError:
            return False

    def close(self) -> None:
        """Forget the mapping (unmapped once no verify holds it any more)."""
        self.mm, self.words = None, NO_WORDS

    def hot(self) -> tuple[int, float, int, int, int, float]:
        """(seq, fresh_at, rev, keys_rev, flags, clock offset), consistent, following a
        replaced table; fresh_at is -inf without a table, or when it is full."""
        mm = self.mm
        if mm is not None:  # the common case, on every verify: two reads of the header
            state = _HOT.unpack_from(mm, SEQ_AT)
            if not state[0] & 1 and not state[4] and _SEQ.unpack_from(mm, SEQ_AT)[0] == state[0]:
                return state
        return self._settled()

    def _settled(self) -> tuple[int, float, int, int, int, float]:
        for _ in range(1000):
            mm = self.mm
            if mm is None:
                return 0, -math.inf, 0, 0, 0, 0.0
            state = _HOT.unpack_from(mm, SEQ_AT)
            seq, flags = state[0], state[4]
            if seq & 1 or _SEQ.unpack_from(mm, SEQ_AT)[0] != seq:
                continue
            if flags & RETIRED:
                if not self.open():
                    self.close()
                continue
            if flags & FULL:
                return seq, -math.inf, state[2], state[3], flags, state[5]
            return state
        return 0, -math.inf, 0, 0, 0, 0.0  # a writer died mid-write: no proof

    def lookup(self, kind: bytes, key: str) -> tuple[int, int] | None:
        """(a, b) of the entry, or None; the caller checks ``seq`` around it."""
        mm = self.mm
        if mm is None:
            return None
        fingerprint = self.fingerprint
        if mm[KEY_AT : KEY_AT + KEY_BYTES] != fingerprint.key:  # another thread reopened it
            fingerprint = Fingerprints(mm[KEY_AT : KEY_AT + KEY_BYTES])
        mark = fingerprint(kind, key)
        slots = _STATE.unpack_from(mm, SEQ_AT)[6]
        mask = slots - 1
        i = mark & mask
        for _ in range(slots):
            found, times = _SLOT.unpack_from(mm, SLOTS_AT + i * SLOT_BYTES)
            if found == mark:
                return unpack_times(times)
            if found == EMPTY:
                return None
            i = (i + 1) & mask
        return None

    def blob(self) -> Blob | None:
        """The keys blob, read consistently; None if it could not be."""
        for _ in range(1000):
            mm = self.mm
            if mm is None:
                return None
            seq = _SEQ.unpack_from(mm, SEQ_AT)[0]
            length = _STATE.unpack_from(mm, SEQ_AT)[8]
            raw = mm[HEADER_BYTES : HEADER_BYTES + min(length, BLOB_BYTES)]
            if seq & 1 or _SEQ.unpack_from(mm, SEQ_AT)[0] != seq:
                continue
            return Blob.decode(raw)
        return None

    def seq(self) -> int:
        return 0 if self.mm is None else int(_SEQ.unpack_from(self.mm, SEQ_AT)[0])

    def counts(self) -> tuple[int, int]:
        """(slots, entries)."""
        if self.mm is None:
            return 0, 0
        return _u64(self.mm, SLOTS_AT_FIELD), _u64(self.mm, ENTRIES_AT)

    def epoch(self) -> str:
        if self.mm is None:
            return ""
        return bytes(_STATE.unpack_from(self.mm, SEQ_AT)[9]).rstrip(b"\0").decode()


class TableFull(Exception):
    """The table holds its maximum: the entry was not written."""


class TableWriter:
    """The follower's side: the only process that writes, chosen by the host's lock."""

    def __init__(
        self, path: Path, deployment: bytes, *, max_entries: int, now_ms: Callable[[], int]
    ) -> None:
        self.path = path
        self.deployment = deployment
        self.max_entries = max_entries
        self.now_ms = now_ms  # Redis time: entries' ends are on its clock
        self.mm = self._adopt() or self._create(MIN_SLOTS, None)
        self.fingerprint = Fingerprints(self.mm[KEY_AT : KEY_AT + KEY_BYTES])
        # How many entries end in each ENDS_S-second period: prune() knows how many expired
        # without reading the table (a scan of 100,000 entries costs a loaded core ~0.3 s).
        self.ends: Counter[int] = Counter()
        self._count_ends()

    def _count_ends(self) -> None:
        mm = self.mm
        self.ends = Counter(
            unpack_times(slot[1])[1] // ENDS_S
            for i in range(self.slots)
            if (slot := _SLOT.unpack_from(mm, SLOTS_AT + i * SLOT_BYTES))[0] != EMPTY
        )

    def _adopt(self) -> mmap.mmap | None:
        """The table a former follower left, if it is ours: its revocations are kept."""
        try:
            mm = _map(self.path, self.deployment, write=True)
        except (OSError, TableInvalid, ValueError):
            return None
        seq = _u64(mm, SEQ_AT)
        if seq & 1:  # it died mid-write: the slot it wrote is whole or empty; go on
            _set(mm, SEQ_AT, seq + 1)
        return mm

    @property
    def slots(self) -> int:
        return _u64(self.mm, SLOTS_AT_FIELD)

    @property
    def entries(self) -> int:
        return _u64(self.mm, ENTRIES_AT)

    def _create(self, slots: int, old: mmap.mmap | None) -> mmap.mmap:
        """A new file of ``slots`` with the live entries and header of ``old``, renamed into
        place; ``old`` is then marked retired."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Allocated now, not on first write: a full /dev/shm is an error here, where a
            # write to a page it cannot back would kill the process (SIGBUS).
            os.posix_fallocate(fd, 0, SLOTS_AT + slots * SLOT_BYTES)
            mm = mmap.mmap(fd, SLOTS_AT + slots * SLOT_BYTES, access=mmap.ACCESS_WRITE)
        except OSError as exc:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise TableFull(f"no room for the host's table in {self.path.parent}: {exc}") from exc
        os.close(fd)
        _HEAD.pack_into(mm, 0, MAGIC, LAYOUT, 0, self.deployment)
        if old is None:
            _STATE.pack_into(mm, SEQ_AT, 0, -math.inf, 0, 0, 0, 0.0, slots, 0, 0, b"")
            mm[KEY_AT : KEY_AT + KEY_BYTES] = secrets.token_bytes(KEY_BYTES)
        else:
            # The header's state, the fingerprint key (the marks stay valid) and the blob.
            mm[SEQ_AT:SLOTS_AT] = old[SEQ_AT:SLOTS_AT]
            _set(mm, SEQ_AT, (_u64(old, SEQ_AT) | 1) + 1)  # even, and past the old file's
            _set(mm, FLAGS_AT, _u64(old, FLAGS_AT) & ~RETIRED)
            _set(mm, REV_AT, _u64(old, REV_AT) + 1)  # readers drop the verdicts they kept
            _set(mm, SLOTS_AT_FIELD, slots)
            now_s, entries = self.now_ms() // 1000, 0
            for i in range(_u64(old, SLOTS_AT_FIELD)):
                slot = _SLOT.unpack_from(old, SLOTS_AT + i * SLOT_BYTES)
                if _live(slot, now_s):
                    _SLOT.pack_into(mm, _find(mm, slots, slot[0]), *slot)
                    entries += 1
            _set(mm, ENTRIES_AT, entries)
        os.rename(tmp, self.path)
        if old is not None:
            _begin(old)
            _set(old, FLAGS_AT, _u64(old, FLAGS_AT) | RETIRED)
            _end(old)
            old.close()
        return mm

    def put(self, kind: bytes, key: str, a: int, until_ms: int) -> None:
        """Record (kind, key), keeping the later of each time; TableFull if it cannot."""
        mark = self.fingerprint(kind, key)
        b = -(-until_ms // 1000)
        at = _find(self.mm, self.slots, mark)
        if _SLOT.unpack_from(self.mm, at)[0] == EMPTY:
            entries = self.entries
            if entries + 1 > self.slots * GROW_AT or entries + 1 > self.max_entries:
                self._resize()
                at = _find(self.mm, self.slots, mark)
        mm = self.mm
        old_mark, old_times = _SLOT.unpack_from(mm, at)
        new = old_mark == EMPTY
        old_a, old_b = unpack_times(old_times)
        times = pack_times(max(a, old_a), max(b, old_b))
        if not new and times == old_times:
            return  # already known
        _begin(mm)
        _SLOT.pack_into(mm, at, mark, times)
        _set(mm, REV_AT, _u64(mm, REV_AT) + 1)
        if new:
            _set(mm, ENTRIES_AT, _u64(mm, ENTRIES_AT) + 1)
        _end(mm)
        b = unpack_times(times)[1]  # what prune() reads back
        if new or b != old_b:
            if not new:
                self.ends[old_b // ENDS_S] -= 1
            self.ends[b // ENDS_S] += 1

    def _resize(self) -> None:
        """A new table for the live entries and one more, dropping the expired; TableFull
        if even without them it would pass the maximum."""
        wanted = self._live() + 1
        if wanted > self.max_entries:
            raise TableFull(
                f"the host's table holds its maximum ({self.max_entries} entries, "
                "REVOCAST_SHARED_CACHE_MAX_ENTRIES)"
            )
        self.mm = self._create(slots_for(wanted), self.mm)
        self._count_ends()

    def prune(self) -> int:
        """Drop expired entries when they are at least a quarter of the table; how many went."""
        entries = self.entries
        now_s = self.now_ms() // 1000
        # Periods wholly past: their entries' ends are before now (a few more may be).
        expired = sum(
            count for period, count in self.ends.items() if (period + 1) * ENDS_S <= now_s
        )
        if entries < MIN_SLOTS // 4 or expired < entries / 4:
            return 0
        self.mm = self._create(slots_for(self._live()), self.mm)
        self._count_ends()
        return entries - self.entries

    def _live(self) -> int:
        """Entries some unexpired token may still need."""
        now_s, mm = self.now_ms() // 1000, self.mm
        return sum(
            1
            for i in range(self.slots)
            if _live(_SLOT.unpack_from(mm, SLOTS_AT + i * SLOT_BYTES), now_s)
        )

    def set_blob(self, blob: Blob) -> None:
        raw = blob.encode()
        if len(raw) > BLOB_BYTES:
            raise TableFull(f"the keys take {len(raw)} bytes, over {BLOB_BYTES}")
        mm = self.mm
        _begin(mm)
        mm[HEADER_BYTES : HEADER_BYTES + len(raw)] = raw
        _set(mm, KEYS_AT, _u64(mm, KEYS_AT) + 1)
        _set(mm, BLOB_LEN_AT, len(raw))
        _end(mm)

    def publish(self, fresh_at: float, offset_s: float, *, full: bool, epoch: str) -> None:
        """The follower's proof (monotonic seconds) and Redis' clock offset."""
        mm = self.mm
        flags = _u64(mm, FLAGS_AT)
        _begin(mm)
        _F64.pack_into(mm, FRESH_AT, fresh_at)
        _set(mm, FLAGS_AT, (flags | FULL) if full else (flags & ~FULL))
        _F64.pack_into(mm, OFFSET_AT, offset_s)
        _EPOCH.pack_into(mm, EPOCH_AT, epoch.encode()[:40])
        _end(mm)

    def close(self) -> None:
        self.mm.close()


# Where each header field is (see _STATE).
FRESH_AT, REV_AT, KEYS_AT, FLAGS_AT, OFFSET_AT = 40, 48, 56, 64, 72
SLOTS_AT_FIELD, ENTRIES_AT, BLOB_LEN_AT, EPOCH_AT = 80, 88, 96, 104
_F64 = struct.Struct("<d")
_U64 = _SEQ
_EPOCH = struct.Struct("<40s")


def _u64(mm: mmap.mmap, at: int) -> int:
    return int(_SEQ.unpack_from(mm, at)[0])


def _set(mm: mmap.mmap, at: int, value: int) -> None:
    _SEQ.pack_into(mm, at, value)


def _begin(mm: mmap.mmap) -> None:
    """Readers retry until ``_end``."""
    _set(mm, SEQ_AT, _u64(mm, SEQ_AT) + 1)


_end = _begin


def _live(slot: tuple[int, int], now_s: int) -> bool:
    return slot[0] != EMPTY and unpack_times(slot[1])[1] >= now_s


def _find(mm: mmap.mmap, slots: int, mark: int) -> int:
    """The offset of ``mark``'s slot, or of the empty one where it would go."""
    mask = slots - 1
    i = mark & mask
    while True:
        at = SLOTS_AT + i * SLOT_BYTES
        found = _U64.unpack_from(mm, at)[0]
        if found in (mark, EMPTY):
            return at
        i = (i + 1) & mask
