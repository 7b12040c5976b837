"""The sessions aggregate's key names (sessions, refresh tokens, the revocation budget and
the login throttle), in a partition (placement: ``revocast.keyspace``)."""

from __future__ import annotations

from revocast.keyspace import PartitionKeys


def user_sessions(p: PartitionKeys, uid: str) -> str:
    """SET of the user's live session ids."""
    return f"{p.prefix}:user:{uid}:sessions"


def session(p: PartitionKeys, sid: str) -> str:
    """HASH: uid, created_ms, refreshed_ms, user_agent, client; TTL = refresh TTL."""
    return f"{p.prefix}:session:{sid}"


def refresh_token(p: PartitionKeys, token_hash: str) -> str:
    """HASH: sid, uid, state (live|used), used_ms, sealed_next; TTL = refresh TTL."""
    return f"{p.prefix}:rt:{token_hash}"


def revocation_budget(p: PartitionKeys, actor: str) -> str:
    """STRING: revocations that wrote an event, by an actor (a user id), in this partition
    within a fixed minute; PTTL = the rest of it."""
    return f"{p.prefix}:rl:revoke:{actor}"


def throttle_client(p: PartitionKeys, client: str) -> str:
    """STRING: login attempts from one client address (an IPv6 /64); TTL = window."""
    return f"{p.prefix}:rl:client:{client}"


# A username's keys below are named by the first 32 hex digits of the SHA-256 of its
# normal form (no user text in keys); they live in the username's partition, beside it.


def login_failures(p: PartitionKeys, name_hash: str) -> str:
    """HASH: a username's login attempts not forgiven by a login (n), when the next from
    an address it has not logged in from may come (next_ms), its last unlock (reset_ms);
    TTL REVOCAST_LOGIN_USER_MEMORY_S from the last attempt."""
    return f"{p.prefix}:rl:name:{name_hash}"


def login_pair(p: PartitionKeys, pair_hash: str) -> str:
    """STRING: failed logins for one username from one address (hashed together);
    TTL = window from the first."""
    return f"{p.prefix}:rl:pair:{pair_hash}"


def login_known(p: PartitionKeys, name_hash: str) -> str:
    """ZSET address hash -> last login (ms): where a username logged in lately (at most
    32); TTL REVOCAST_LOGIN_KNOWN_ADDRESS_DAYS from the last."""
    return f"{p.prefix}:rl:known:{name_hash}"
