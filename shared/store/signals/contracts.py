"""The shared signals' scripts, declared: upstream IdP links and tokens, SSF leases."""

from __future__ import annotations

from revocast.store.contracts import Contract

UPSTREAM_LINK = Contract(
    "upstream_link", "none", str,
    keys=("NONCE", "LINK", "LINKS", "AUDIT"),
    optional=("UPSTREAM_SESSIONS",),  # the IdP session's local sessions, when it named one
    args=(("uid", str), ("link_id", str), ("iss", str), ("sub", str), ("nonce_ttl_s", int),
          ("member", str), ("session_ttl_s", int)),
)  # fmt: skip

UPSTREAM_UNLINK = Contract(
    "upstream_unlink", "none", str,
    keys=("LINK", "LINKS", "AUDIT"),
    args=(("uid", str), ("link_id", str), ("actor", str), ("reason", str)),
)  # fmt: skip

UPSTREAM_TOKEN = Contract(
    "upstream_token", "none", str,
    keys=("TOKEN",),
    args=(("action", str), ("owner", str), ("ttl_s", int)),
)  # fmt: skip

SSF_LEASE = Contract(
    "ssf_lease", "none", int, keys=("LEASE",), args=(("owner", str), ("ttl_ms", int))
)  # fmt: skip
