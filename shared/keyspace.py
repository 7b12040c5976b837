"""Every Redis key revocast uses: the one module that builds key names.

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

The names stay here, beside their placement (slot and partition), and each belongs to one
aggregate of ``revocast.store``, which alone reads and writes it:

- users: ``username``, ``user``;
- sessions: ``user_sessions``, ``session``, ``refresh_token``, ``revocation_budget``,
  ``throttle_client``, ``login_*``, the revocations (``revoked_*`` of a partition) and the
  status list (``status_*``);
- authority: ``authority``;
- signing: ``jwks``, ``revoked_keys``, ``revoked_key_events``, ``signing_kid``,
  ``sealed_keys``, and each stream's ``epoch`` and ``heartbeat``;
- clients: ``clients``;
- presence: ``issuers``, ``issuer``, ``verifiers``, ``verifier``;
- signals: ``upstream_*``, ``ssf_*``;
- streams: each stream's ``events`` and ``chain``, and the ``audit`` trails (which the
  scripts of every aggregate append to).
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
    issuers: str  # ZSET issuer id -> last seen (ms): the live issuers
    clients: str  # HASH client_id -> client record (JSON; a confidential one's secret hashed)
    verifiers: str  # ZSET verifier instance id -> its receipt's last renewal (ms)
    ssf_streams: str  # HASH SSF stream id -> its configuration (JSON)
    upstream_links: str  # HASH upstream link id -> {user_id, iss, sub, linked_ms} (JSON)
    upstream_nonce_key: str  # STRING: the key (base64url) upstream login nonces are MACed with
    prefix: str

    def fixed(self) -> list[str]:
        """The keys every signing script gets first, in the order ``contracts.FIXED_KEYS``
        names them."""
        s = self.stream
        return [s.events, s.chain, s.epoch, self.jwks, self.revoked_keys, self.signing_kid,
                self.audit, self.sealed_keys, self.revoked_key_events, s.heartbeat]  # fmt: skip

    def issuer(self, issuer_id: str) -> str:
        """HASH: host, pid, started_ms, kids (JSON list of loaded keys); expires if it dies."""
        return f"{self.prefix}:issuer:{issuer_id}"

    def upstream_user(self, digest: str) -> str:
        """STRING -> the local user id an upstream IdP's (iss, sub) is linked to (at the
        first login with its ID token and that login's nonce; it never moves, an operator
        may remove it). ``digest`` is the link id."""
        return f"{self.prefix}:upstream:sub:{digest}"

    def upstream_nonce(self, digest: str) -> str:
        """STRING: an upstream login nonce already spent; TTL = what was left of its life."""
        return f"{self.prefix}:upstream:nonce:{digest}"

    def upstream_session(self, digest: str) -> str:
        """SET of "uid sid": the local sessions an upstream (iss, sid) is linked to; TTL 90
        days from the last login that linked one."""
        return f"{self.prefix}:upstream:sid:{digest}"

    def upstream_token(self, digest: str) -> str:
        """STRING: an upstream (iss, jti) already acted on (replay guard); TTL 1 day."""
        return f"{self.prefix}:upstream:jti:{digest}"

    def ssf_cursor(self, stream_id: str) -> str:
        """HASH revocation stream name -> "<entry id> <link>" of the last entry copied into the
        SSF stream's queue (the next one must name that link: nothing was skipped)."""
        return f"{self.prefix}:ssf:cursor:{stream_id}"

    def ssf_status(self, stream_id: str) -> str:
        """HASH: paused_ms (copying paused, the queue full), lost (gaps so far), reason (the
        last gap's, for the stream status), lost_ms."""
        return f"{self.prefix}:ssf:status:{stream_id}"

    def ssf_lease(self, stream_id: str) -> str:
        """STRING, PX: the issuer that pushes this SSF stream's SETs now (one at a time)."""
        return f"{self.prefix}:ssf:lease:{stream_id}"

    def ssf_queue(self, stream_id: str) -> str:
        """LIST of the events (JSON) an SSF stream's receiver has not yet acknowledged, in
        order: copied from the revocation streams, which are trimmed, so nothing is lost."""
        return f"{self.prefix}:ssf:queue:{stream_id}"

    def verifier(self, instance_id: str) -> str:
        """STRING: the verifier's receipt (``revocast.proof.Receipt``, JSON); expires if it dies."""
        return f"{self.prefix}:verifier:{instance_id}"


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

    def username(self, name: str) -> str:
        """STRING -> user id."""
        return f"{self.prefix}:username:{name}"

    def user(self, uid: str) -> str:
        """HASH: username, password_hash, roles (JSON), created_ms, blocked, authority_v."""
        return f"{self.prefix}:user:{uid}"

    def user_sessions(self, uid: str) -> str:
        """SET of the user's live session ids."""
        return f"{self.prefix}:user:{uid}:sessions"

    def session(self, sid: str) -> str:
        """HASH: uid, created_ms, refreshed_ms, user_agent, client; TTL = refresh TTL."""
        return f"{self.prefix}:session:{sid}"

    def refresh_token(self, token_hash: str) -> str:
        """HASH: sid, uid, state (live|used), used_ms, sealed_next; TTL = refresh TTL."""
        return f"{self.prefix}:rt:{token_hash}"

    def revocation_budget(self, actor: str) -> str:
        """STRING: revocations that wrote an event, by an actor (a user id), in this partition
        within a fixed minute; PTTL = the rest of it."""
        return f"{self.prefix}:rl:revoke:{actor}"

    def throttle_client(self, client: str) -> str:
        """STRING: login attempts from one client address (an IPv6 /64); TTL = window."""
        return f"{self.prefix}:rl:client:{client}"

    # A username's keys below are named by the first 32 hex digits of the SHA-256 of its
    # normal form (no user text in keys); they live in the username's partition, beside it.

    def login_failures(self, name_hash: str) -> str:
        """HASH: a username's login attempts not forgiven by a login (n), when the next from
        an address it has not logged in from may come (next_ms), its last unlock (reset_ms);
        TTL REVOCAST_LOGIN_USER_MEMORY_S from the last attempt."""
        return f"{self.prefix}:rl:name:{name_hash}"

    def login_pair(self, pair_hash: str) -> str:
        """STRING: failed logins for one username from one address (hashed together);
        TTL = window from the first."""
        return f"{self.prefix}:rl:pair:{pair_hash}"

    def login_known(self, name_hash: str) -> str:
        """ZSET address hash -> last login (ms): where a username logged in lately (at most
        32); TTL REVOCAST_LOGIN_KNOWN_ADDRESS_DAYS from the last."""
        return f"{self.prefix}:rl:known:{name_hash}"


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
            issuers=f"{base}:issuers",
            clients=f"{base}:clients",
            verifiers=f"{base}:verifiers",
            ssf_streams=f"{base}:ssf:streams",
            upstream_links=f"{base}:upstream:links",
            upstream_nonce_key=f"{base}:upstream:nonce_key",
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
