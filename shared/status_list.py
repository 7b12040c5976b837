"""Token Status Lists (draft-ietf-oauth-status-list-21): the format, shared by issuer and verifier.

Every session holds one index in its partition's list (drawn by ``lua/status_list.lua``), and
every access token of it names that index: ``status: {"status_list": {"idx": N, "uri": U}}``
with U the partition's list at ``REVOCAST_ISSUER/statuslists/K``. The revoking scripts set
the bit (1, INVALID) in the same step as their event. A list is one bit per index (``bits:
1``; 0 VALID, 1 INVALID), index i being bit i % 8 of byte i // 8, least significant first,
which is how Redis holds it (``PartitionKeys.status_bits``), compressed with DEFLATE in the
ZLIB format and base64url-encoded in ``lst``.
"""

from __future__ import annotations

import base64
import zlib
from typing import Annotated, Final

import msgspec

LIST_TYPE: Final = "statuslist+jwt"  # the Status List Token's typ
MEDIA_TYPE: Final = "application/statuslist+jwt"  # its HTTP Content-Type
PATH: Final = "/statuslists"  # under REVOCAST_ISSUER: /statuslists/<partition>
VALID, INVALID = 0, 1
MAX_INDEX: Final = 2**32 - 1  # a partition never holds more sessions than this
# Compressed lists a verifier takes at most (a list of 2^32 indexes, all revoked, is 4 MiB
# raw; random revocations of a million sessions compress to about 125 KiB).
MAX_LIST_BYTES: Final = 8 * 1024 * 1024
# The issuer reads a list from Redis at most this often per partition, so a list it serves
# says INVALID at most this long after the revocation's script (the goal: within 1 s).
REFRESH_S: Final = 0.5
SMALL_LIST_BYTES: Final = 64 * 1024  # lists up to this (raw) are compressed at level 9

Index = Annotated[int, msgspec.Meta(ge=0, le=MAX_INDEX)]


class StatusListRef(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Where a token's status is: index ``idx`` of the list at ``uri``."""

    idx: Index
    uri: str


class TokenStatus(msgspec.Struct, frozen=True):
    """A token's ``status`` claim: other mechanisms may sit beside ours."""

    status_list: StatusListRef


class StatusList(msgspec.Struct, frozen=True):
    """The ``status_list`` claim of a Status List Token."""

    bits: int
    lst: str


class StatusListClaims(msgspec.Struct, frozen=True):
    """A Status List Token's claims: ``sub`` is the list's uri; ``ttl`` how long
    (seconds) a reader may use it before fetching it again."""

    sub: str
    iat: int
    status_list: StatusList
    exp: int | None = None
    ttl: int | None = None


def base_url(issuer: str) -> str | None:
    """Where lists are served: REVOCAST_ISSUER when it is a URL (never a request's Host,
    which a token outlives and a shared cache would spread), else None: no lists."""
    if not issuer.startswith(("https://", "http://")):
        return None
    return issuer.rstrip("/") + PATH


def list_uri(issuer: str, partition: int) -> str | None:
    """The uri of a partition's list, which its tokens name; None without an issuer URL."""
    base = base_url(issuer)
    return None if base is None else f"{base}/{partition}"


def encode(raw: bytes) -> str:
    """``lst``: the bytes, ZLIB-compressed, base64url. The draft recommends the highest level;
    past ``SMALL_LIST_BYTES`` level 6 is taken instead: on a million sessions with 1 % to 10 %
    revoked, level 9 took 10 to 20 times as long (up to 0.7 s, more than the 0.5 s between
    two lists) for lists 5 to 15 % smaller (BENCHMARKS.md)."""
    level = 9 if len(raw) <= SMALL_LIST_BYTES else 6
    return base64.urlsafe_b64encode(zlib.compress(raw, level)).rstrip(b"=").decode("ascii")


def decode(lst: str, *, max_bytes: int = MAX_LIST_BYTES) -> bytes:
    """The bytes of ``lst``; ValueError if it is not base64url ZLIB data, or inflates past
    ``max_bytes`` (a small list must not cost a reader gigabytes)."""
    try:
        packed = base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4))
    except ValueError as exc:
        raise ValueError("lst is not base64url") from exc
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(packed, max_bytes)
    except zlib.error as exc:
        raise ValueError("lst is not ZLIB data") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError(f"lst is cut short, or inflates past {max_bytes} bytes")
    return raw


def status_at(raw: bytes, idx: int) -> int:
    """The status of index ``idx`` in a 1-bit list (past its end: VALID, never drawn yet)."""
    byte = idx // 8
    if byte >= len(raw):
        return VALID
    return (raw[byte] >> (idx % 8)) & 1
