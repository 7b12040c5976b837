"""How long revocast's Redis state lives, when it is forgotten and how much is kept: every
fixed TTL, prune horizon and cap, beside the key placement (``keyspace.py``; the names are
there and in each aggregate's ``store/<aggregate>/keys.py``).

What a deployment chooses (token and refresh-token lifetimes, stream retention, the login
windows) is a setting (``settings.py``); what is here is fixed. The Lua scripts get what they
use as constants at the top of each script (``lua_constants``), so no script carries a bare
number of milliseconds (``tests/test_lifetimes.py``). Names end in their unit.
"""

from __future__ import annotations

from typing import Final

SECOND_MS: Final = 1000  # also microseconds per millisecond: Redis TIME is (s, µs)
MINUTE_MS: Final = 60 * SECOND_MS
HOUR_MS: Final = 60 * MINUTE_MS
HOUR_S: Final = 3600
DAY_S: Final = 24 * HOUR_S

# Presence: live issuers (P:{g}:issuers, P:{g}:issuer:ID) and verifiers' receipts
# (P:{g}:verifiers, P:{g}:verifier:ID).
ISSUER_TTL_S: Final = 5  # an issuer silent this long is no longer live
ISSUERS_HORIZON_MS: Final = HOUR_MS  # issuer ids silent this long leave the registry
RECEIPT_MIN_TTL_MS: Final = 2 * SECOND_MS  # a receipt's TTL at least (renewed 4 times a TTL)
VERIFIERS_HORIZON_MS: Final = MINUTE_MS  # verifier ids lapsed this long leave the registry

# Identity providers: the links' sessions, and the replay memory of what they sent.
UPSTREAM_SESSION_TTL_S: Final = 90 * DAY_S  # P:{g}:upstream:sid:H, outlives a refresh token
UPSTREAM_REPLAY_TTL_S: Final = DAY_S  # P:{g}:upstream:jti:H once acted on ('done')
UPSTREAM_CLAIM_TTL_S: Final = 60  # the jti held while a request acts on it (a crash frees it)
UPSTREAM_NONCE_TTL_S: Final = 600  # P:{g}:upstream:nonce:H: a sign-in at the IdP takes minutes

# SSF push: the stream's lease (P:{g}:ssf:lease:ID), above one post's 5 s deadline.
SSF_LEASE_MS: Final = 15 * SECOND_MS

# Streams and what the scripts keep.
AUDIT_MAXLEN: Final = 1_000_000  # entries per audit stream (P:{g}:audit, P:{pK}:audit), ~
PRUNE_BATCH: Final = 1000  # revocations forgotten per script call at most: no call is slow
REVOCATION_WINDOW_MS: Final = MINUTE_MS  # P:{pK}:rl:revoke:UID counts per this window

# The login throttle (P:{pK}:rl:*): what the settings do not choose.
LOGIN_FIRST_DELAY_MS: Final = SECOND_MS  # past the user limit; doubles with each failure
KNOWN_ADDRESSES_MAX: Final = 32  # P:{pK}:rl:known:H: the latest logins' addresses

# Token Status Lists (lua/status_list.lua, docs/status-lists.md).
STATUS_LIST_TTL_MAX_S: Final = 300  # REVOCAST_STATUS_LIST_TTL_S at most: how long a list is used
# A freed index rests this long before it is drawn again, so that no list still cached
# (for its ttl, plus the issuer's 0.5 s between makes) shows its old holder's INVALID.
STATUS_INDEX_REST_MS: Final = (STATUS_LIST_TTL_MAX_S + 1) * SECOND_MS

# What the scripts read, under the same names (``lua_constants``).
LUA: Final = (
    "SECOND_MS",
    "AUDIT_MAXLEN",
    "PRUNE_BATCH",
    "REVOCATION_WINDOW_MS",
    "LOGIN_FIRST_DELAY_MS",
    "KNOWN_ADDRESSES_MAX",
    "STATUS_INDEX_REST_MS",
)


def lua_constants() -> str:
    """The constants the scripts use, as Lua locals: this module's values, never copies."""
    values = globals()
    return "\n".join(f"local {name} = {values[name]}  -- revocast.lifetimes" for name in LUA)
