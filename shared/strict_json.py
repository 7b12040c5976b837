"""JSON read one way everywhere: request bodies and token segments alike.

RFC 8259 leaves duplicate member names, nesting depth and number range to each parser,
and parsers disagree: on ``{"username": "nobody", "username": "alice"}`` one reads nobody,
another alice. Whatever two readers could understand differently is refused here, before
anything acts on it: a repeated name, nesting past ``MAX_DEPTH``, a number out of range
(``1e400``), a lone surrogate, anything but UTF-8.
"""

from __future__ import annotations

import functools
import json
import re
from itertools import accumulate
from typing import Any, TypeVar, cast

import msgspec

# Deeper than any document revocast reads (3 levels at most), far below the ~1000 levels at
# which parsers recurse out of stack: the bound is checked before any parser recurses.
MAX_DEPTH = 32

T = TypeVar("T")

# A JSON string, or an unterminated one up to the end: what lies inside it is not structure.
# From any quote this always matches (a backslash at the very end included), and the
# possessive quantifiers never give back: linear time whatever the input.
_STRING = re.compile(rb'"[^"\\]*+(?:\\(?:.|\Z)[^"\\]*+)*+(?:"|\Z)', re.DOTALL)
# After the strings are gone, keep only brackets: each opening one as +1, each closing as -1.
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class StrictJsonError(ValueError):
    """The text is not JSON, or not JSON that every reader understands alike; the message
    says which, for the caller's error detail."""


def depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw``, counted without parsing it."""
    steps = _STRING.sub(b"", raw).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)  # signed: 0xff is -1


@functools.lru_cache(maxsize=64)  # the few body and token types revocast reads
def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    """One decoder per type, built once (three times faster than ``decode(type=...)``)."""
    return msgspec.json.Decoder(kind)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> None:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise StrictJsonError(f"the member name {repeated[:64]!r} appears twice in one object")


def decode(raw: bytes, kind: type[T], *, max_depth: int = MAX_DEPTH) -> T:
    """``raw`` decoded as ``kind`` (msgspec's rules); StrictJsonError if it is not JSON, nests
    deeper than ``max_depth``, or repeats a member name; msgspec.ValidationError if it is
    JSON of another shape."""
    # Fewer opening brackets than the bound cannot nest past it: most documents stop here.
    if raw.count(b"[") + raw.count(b"{") > max_depth and depth(raw) > max_depth:
        raise StrictJsonError(f"arrays and objects nest deeper than {max_depth} levels")
    try:
        # Only for the names msgspec would silently merge (the last one wins there).
        json.loads(raw, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise StrictJsonError("it is not JSON in UTF-8") from None
    except StrictJsonError:
        raise
    except ValueError:
        raise StrictJsonError("it is not JSON") from None
    try:
        return cast(T, _decoder(cast(Any, kind)).decode(raw))
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError as exc:
        raise StrictJsonError(f"it is not JSON ({exc})") from None
    except UnicodeDecodeError:
        raise StrictJsonError("it is not JSON in UTF-8") from None
