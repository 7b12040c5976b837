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


def new_user_id(keys: Keyspace, username: str) -> str:
    """A user id in its username's partition, so that sign-up is one atomic step."""
    return keys.draw_in(keys.of(username), lambda: secrets.token_hex(16))


def new_session_id(keys: Keyspace, uid: str) -> str:
    return keys.draw_in(keys.of(uid), lambda: secrets.token_urlsafe(20))


def new_refresh_token(keys: Keyspace, owner: str) -> str:
    """A refresh token in the partition of ``owner`` (its user, or the token it replaces)."""
    return keys.draw_in(keys.of(owner), lambda: secrets.token_urlsafe(34))


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
