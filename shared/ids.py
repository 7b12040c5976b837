"""Every id and secret revocast draws, each in the partition it must live in.

Session ids carry 160 random bits and refresh tokens 272, so that at least 150
and 262 remain after the draw that picks their partition (up to 10 bits for
1,024 partitions); both come from ``secrets``. Refresh tokens are stored only as
SHA-256 hashes (DESIGN.md invariant 7).
"""

from __future__ import annotations

import hashlib
import re
import secrets

from revocast.keyspace import Keyspace

# What new_user_id draws: 32 lowercase hex digits.
USER_ID = re.compile(r"[0-9a-f]{32}")


def new_user_id(keyspace: Keyspace, username: str) -> str:
    """A user id in its username's partition, so that sign-up is one atomic step."""
    return keyspace.draw_in(keyspace.of(username), lambda: secrets.token_hex(16))


def new_session_id(keyspace: Keyspace, uid: str) -> str:
    return keyspace.draw_in(keyspace.of(uid), lambda: secrets.token_urlsafe(20))


def new_refresh_token(keyspace: Keyspace, owner: str) -> str:
    """A refresh token in the partition of ``owner`` (its user, or the token it replaces)."""
    return keyspace.draw_in(keyspace.of(owner), lambda: secrets.token_urlsafe(34))


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
