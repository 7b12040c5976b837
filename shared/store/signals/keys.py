"""The signals aggregate's key names: SSF streams and upstream links, in the global slot
(placement: ``revocast.keyspace``). A ``digest`` is ``keyspace.upstream_digest``'s."""

from __future__ import annotations

from revocast.keyspace import GlobalKeys


def ssf_streams(g: GlobalKeys) -> str:
    """HASH SSF stream id -> its configuration (JSON)."""
    return f"{g.prefix}:ssf:streams"


def ssf_cursor(g: GlobalKeys, stream_id: str) -> str:
    """HASH revocation stream name -> "<entry id> <link>" of the last entry copied into the
    SSF stream's queue (the next one must name that link: nothing was skipped)."""
    return f"{g.prefix}:ssf:cursor:{stream_id}"


def ssf_status(g: GlobalKeys, stream_id: str) -> str:
    """HASH: paused_ms (copying paused, the queue full), lost (gaps so far), reason (the
    last gap's, for the stream status), lost_ms."""
    return f"{g.prefix}:ssf:status:{stream_id}"


def ssf_lease(g: GlobalKeys, stream_id: str) -> str:
    """STRING, PX: the issuer that pushes this SSF stream's SETs now (one at a time)."""
    return f"{g.prefix}:ssf:lease:{stream_id}"


def ssf_queue(g: GlobalKeys, stream_id: str) -> str:
    """LIST of the events (JSON) an SSF stream's receiver has not yet acknowledged, in
    order: copied from the revocation streams, which are trimmed, so nothing is lost."""
    return f"{g.prefix}:ssf:queue:{stream_id}"


def upstream_links(g: GlobalKeys) -> str:
    """HASH upstream link id -> {user_id, iss, sub, linked_ms} (JSON)."""
    return f"{g.prefix}:upstream:links"


def upstream_nonce_key(g: GlobalKeys) -> str:
    """STRING: the key (base64url) upstream login nonces are MACed with."""
    return f"{g.prefix}:upstream:nonce_key"


def upstream_user(g: GlobalKeys, digest: str) -> str:
    """STRING -> the local user id an upstream IdP's (iss, sub) is linked to (at the
    first login with its ID token and that login's nonce; it never moves, an operator
    may remove it). ``digest`` is the link id."""
    return f"{g.prefix}:upstream:sub:{digest}"


def upstream_nonce(g: GlobalKeys, digest: str) -> str:
    """STRING: an upstream login nonce already spent; TTL = what was left of its life."""
    return f"{g.prefix}:upstream:nonce:{digest}"


def upstream_session(g: GlobalKeys, digest: str) -> str:
    """SET of "uid sid": the local sessions an upstream (iss, sid) is linked to; TTL 90
    days from the last login that linked one."""
    return f"{g.prefix}:upstream:sid:{digest}"


def upstream_token(g: GlobalKeys, digest: str) -> str:
    """STRING: an upstream (iss, jti) already acted on (replay guard); TTL 1 day."""
    return f"{g.prefix}:upstream:jti:{digest}"
