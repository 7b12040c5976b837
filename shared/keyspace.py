"""Where every Redis key revocast uses is placed: slots, partitions, streams, fixed keys.

Users and everything about them (name, sessions, refresh tokens, their
revocations and their events) live in one of N *partitions*, picked by
``partition_of`` from the user id. A partition's keys share a hash tag, so each
atomic step touches one cluster slot, while the partitions spread over the
cluster's shards. Signing keys, the epoch and the partition count live in the
*global* slot, with a small stream of their own.

Ids are drawn so that they name their partition: a user id falls in its
username's partition, a session id and a refresh token in their user's (a few
extra random bits pay for the draw). So a session id, a refresh token or a
username alone find their keys, and no script ever builds a key name: every key
reaches Lua in ``KEYS`` (DESIGN.md invariant 10).

This module holds the placement: the slots (a partition, the global slot), their
streams, and the fixed keys every revoking or signing script gets first (``fixed()``). Every
other name lives in the aggregate of ``revocast.store`` that owns it, in its
``keys.py``, built from the slot's ``prefix``:

- users: ``username``, ``user`` (here: the scripts of sessions and authority read them too,
  and neither may import users);
- sessions: ``user_sessions``, ``session``, ``refresh_token``, ``revocation_budget``,
  ``throttle_client``, ``login_*`` (``store/sessions/keys.py``); the revocations
  (``revoked_*`` of a partition) and the status list (``status_*``) are fixed keys, here;
- authority: ``authority`` (a fixed key, here);
- signing: ``jwks``, ``revoked_keys``, ``revoked_key_events``, ``signing_kid``,
  ``sealed_keys``, and each stream's ``epoch`` and ``heartbeat`` (fixed keys, here);
- clients: ``clients`` (``store/clients/keys.py``);
- presence: ``issuers``, ``issuer``, ``verifiers``, ``verifier`` (``store/presence/keys.py``);
- signals: ``upstream_*``, ``ssf_*`` (``store/signals/keys.py``);
- streams: each stream's ``events`` and ``chain``, and the ``audit`` trails (which the
  scripts of every aggregate append to), here.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

MAX_PARTITIONS = 1024
GLOBAL = "global"
_GLOB = re.compile(r"([*?\[\]\\])")


def starting_with(prefix: str) -> str:
    """A SCAN MATCH pattern for the keys that start with ``prefix`` (which may hold
    ``*?[]\\``: escaped, so it matches only itself)."""
    return _GLOB.sub(r"\\\1", prefix) + "*"


def partition_of(text: str, partitions: int) -> int:
    """The partition an id (or a username, or a client address) belongs to."""
    return zlib.crc32(text.encode()) % partitions


@functools.cache
def partition_tag(index: int, partitions: int) -> str:
    """A hash tag whose slot lies in the index-th of ``partitions`` equal slot ranges.

    Clusters split the slots into equal ranges per shard, so evenly placed tags
    give every shard an equal share of the partitions.
    """
    low = index * REDIS_CLUSTER_HASH_SLOTS // partitions
    high = (index + 1) * REDIS_CLUSTER_HASH_SLOTS // partitions
    for suffix in range(1_000_000):
        tag = f"p{index}" if suffix == 0 else f"p{index}.{suffix}"
        if low <= key_slot(tag.encode()) < high:
            return tag
    raise AssertionError("unreachable: CRC16 covers every slot range")


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """What a verifier follows: a stream, the epoch beside it, the primary's heartbeat."""

    name: str  # "global" or "p<index>"
    events: str
    chain: str  # STRING: the last entry's link (each entry names the one before: no gaps)
    epoch: str  # random id; if it vanishes, this slot lost its data
    heartbeat: str  # the primary's TIME (ms), written by issuers; proves a replica is current


@dataclass(frozen=True, slots=True)
class GlobalKeys:
    """Signing keys, the deployment's epoch and shape: one slot, one small stream."""

    stream: StreamKeys
    partitions: str  # STRING: N, set once when the deployment first starts
    jwks: str  # HASH kid -> public JWK (JSON)
    revoked_keys: str  # ZSET kid -> revocation time (ms); never pruned
    revoked_key_events: str  # HASH kid -> id of the event that revoked it; never pruned
    signing_kid: str  # STRING: the kid issuers sign with; absent when none may be used
    sealed_keys: str  # HASH kid -> private key sealed under the key-encryption key
    audit: str  # STREAM of operator actions on keys, and state losses
    prefix: str  # "<prefix>:{g}", the start of every key here

    def fixed(self) -> list[str]:
        """The keys every signing script gets first, in the order ``contracts.FIXED_KEYS``
        names them."""
        s = self.stream
        return [s.events, s.chain, s.epoch, self.jwks, self.revoked_keys, self.signing_kid,
                self.audit, self.sealed_keys, self.revoked_key_events, s.heartbeat]  # fmt: skip


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """Users, sessions, refresh tokens and their revocations for one partition."""

    index: int
    stream: StreamKeys
    revoked_sessions: str  # ZSET sid -> forget-after time (ms)
    revoked_users: str  # HASH uid -> not-before time (ms)
    revoked_users_until: str  # ZSET uid -> forget-after time (ms), to prune revoked_users
    revoked_roles: str  # HASH uid -> time (ms) up to which tokens carry stale roles
    revoked_roles_until: str  # ZSET uid -> forget-after time (ms), to prune revoked_roles
    # HASH sid -> "<event id> <uid>": the event that revoked the session; pruned with it, so a
    # repeat finds it and writes nothing (DESIGN.md invariant 13)
    revoked_session_events: str
    revoked_user_events: str  # HASH uid -> id of the event of its cut-off; pruned with it
    authority: str  # HASH uid -> "level:version" of every admin and moderator (a replica)
    audit: str  # STREAM of moderator and operator actions on this partition's users
    # The partition's Token Status List (revocast.status_list): STRING, the list's bytes in
    # the draft's order (index idx is bit idx % 8 of byte idx // 8, least significant first);
    # 1 when the tokens holding idx are INVALID
    status_bits: str
    # ZSET idx -> the time (ms) after which no token holding idx can be valid: every index
    # ever drawn is a member (ZCARD is the next new one); one past its time may be drawn again
    status_leases: str
    prefix: str  # "<prefix>:{<tag>}", the start of every key here

    def fixed(self) -> list[str]:
        """The keys every revoking script gets first, in the order the Lua prelude names them."""
        return [
            self.stream.events,
            self.stream.chain,
            self.revoked_sessions,
            self.revoked_users,
            self.revoked_users_until,
            self.revoked_roles,
            self.revoked_roles_until,
            self.audit,
            self.authority,
            self.revoked_session_events,
            self.revoked_user_events,
            self.stream.heartbeat,
            self.status_bits,
            self.status_leases,
        ]

    # The user's own keys are read by the scripts of three aggregates (users, sessions'
    # login and throttle, authority's moderation): they stay here, below all three.

    def username(self, name: str) -> str:
        """STRING -> user id."""
        return f"{self.prefix}:username:{name}"

    def user(self, uid: str) -> str:
        """HASH: username, password_hash, roles (JSON), created_ms, blocked, authority_v."""
        return f"{self.prefix}:user:{uid}"


def _stream(prefix: str, name: str) -> StreamKeys:
    return StreamKeys(
        name, f"{prefix}:events", f"{prefix}:chain", f"{prefix}:epoch", f"{prefix}:heartbeat"
    )


class Keyspace:
    """Key names for one deployment: ``prefix`` isolates deployments (and tests)."""

    def __init__(self, prefix: str = "revocast", partitions: int = 1) -> None:
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be 1 to {MAX_PARTITIONS}")
        self.prefix = prefix
        self.partitions = partitions
        base = f"{prefix}:{{g}}"
        self.global_ = GlobalKeys(
            stream=_stream(base, GLOBAL),
            partitions=f"{base}:partitions",
            jwks=f"{base}:jwks",
            revoked_keys=f"{base}:revoked:keys",
            revoked_key_events=f"{base}:revoked:keys:events",
            signing_kid=f"{base}:signing_kid",
            sealed_keys=f"{base}:sealed_keys",
            audit=f"{base}:audit",
            prefix=base,
        )
        self._partitions = tuple(self._partition(i) for i in range(partitions))

    def _partition(self, index: int) -> PartitionKeys:
        base = f"{self.prefix}:{{{partition_tag(index, self.partitions)}}}"
        return PartitionKeys(
            index=index,
            stream=_stream(base, f"p{index}"),
            revoked_sessions=f"{base}:revoked:sessions",
            revoked_users=f"{base}:revoked:users",
            revoked_users_until=f"{base}:revoked:users:until",
            revoked_roles=f"{base}:revoked:roles",
            revoked_roles_until=f"{base}:revoked:roles:until",
            revoked_session_events=f"{base}:revoked:sessions:events",
            revoked_user_events=f"{base}:revoked:users:events",
            authority=f"{base}:authority",
            audit=f"{base}:audit",
            status_bits=f"{base}:status:bits",
            status_leases=f"{base}:status:leases",
            prefix=base,
        )

    def __repr__(self) -> str:
        return f"Keyspace({self.prefix!r}, partitions={self.partitions})"

    @property
    def all_partitions(self) -> tuple[PartitionKeys, ...]:
        return self._partitions

    def streams(self) -> list[StreamKeys]:
        """Every stream a verifier follows: the global one, then each partition's."""
        return [self.global_.stream, *(p.stream for p in self._partitions)]

    def partition(self, index: int) -> PartitionKeys:
        return self._partitions[index]

    def of(self, text: str) -> PartitionKeys:
        """The partition of a user id, session id, refresh token, username or client address."""
        return self._partitions[partition_of(text, self.partitions)]

    def draw_in(self, partition: PartitionKeys, make: Callable[[], str]) -> str:
        """Draw ids with ``make`` until one falls in ``partition`` (about N draws)."""
        while True:
            candidate = make()
            if partition_of(candidate, self.partitions) == partition.index:
                return candidate


def upstream_digest(issuer: str, value: str) -> str:
    """Upstream identifiers in key names: hashed (no IdP text in keys), per issuer."""
    return hashlib.sha256(f"{issuer}\x00{value}".encode()).hexdigest()[:40]
