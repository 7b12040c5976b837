"""revocast.strict_json: one reading of JSON, with nothing two parsers could disagree on."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import pytest

from revocast.strict_json import MAX_DEPTH, StrictJsonError, decode, depth

ANY = dict[str, Any]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"{}", 1),
        (b"1", 0),
        (b'{"a": [[1], {"b": []}]}', 4),
        (b'{"a": "[[[[[[[[[["}', 1),  # brackets in a string are text
        (b'{"a": "x\\"[[[["}', 1),  # an escaped quote does not end the string
        (b'{"a": "x\\\\", "b": [[1]]}', 3),  # an escaped backslash does
        (b'["\\u005b"]', 1),
        (b"[" * 100, 100),  # unclosed: still counted
        (b'"unterminated [[[[', 0),
    ],
)
def test_depth_counts_structure_not_text(text: bytes, expected: int) -> None:
    assert depth(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        b'"' + b'\\"' * 8000 + b"\\",  # a naive string pattern backtracks: 1 s here
        (b'"' + b"a" * 10 + b"\\") * 1400,
        b'"' * 16_000,
        b"[" * 16_000,
        b"[]" * 8000,
    ],
    ids=["escaped-quotes", "trailing-backslashes", "quotes", "open", "pairs"],
)
def test_depth_is_linear_on_hostile_text(text: bytes) -> None:
    """16 KiB (the body limit) of the worst inputs for a string-skipping pattern."""
    start = time.perf_counter()
    depth(text)
    assert time.perf_counter() - start < 0.05


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"username": "nobody", "username": "alice"}', "'username' appears twice"),
        (b'{"a": {"b": 1, "b": 1}}', "'b' appears twice"),
        (b'[{"x": 1}, {"y": 1, "y": 2}]', "'y' appears twice"),
        (b'{"a": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}", "deeper than 32"),
        (b"[" * 100_000, "deeper than 32"),
        (b'{"a": NaN}', "not JSON"),
        (b'{"a": Infinity}', "not JSON"),
        (b'{"a": "\\ud800"}', "not JSON"),  # a lone surrogate: no UTF-8 can carry it
        (b'{"a": "\xff"}', "not JSON in UTF-8"),
        (b'{"a": 1', "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_what_readers_could_disagree_on_is_refused(text: bytes, reason: str) -> None:
    with pytest.raises(StrictJsonError, match=reason):
        decode(text, Any)


def test_numbers_out_of_range_are_refused() -> None:
    """``1e400`` is infinity to Python's json module, and an error to msgspec: refused."""
    assert json.loads('{"exp": 1e400}')["exp"] == float("inf")
    with pytest.raises(msgspec.ValidationError, match="out of range"):
        decode(b'{"exp": 1e400}', ANY)


def test_the_bound_itself_is_accepted_and_shapes_are_msgspecs() -> None:
    at_bound = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert json.dumps(decode(at_bound, list[Any]), separators=(",", ":")) == at_bound.decode()
    assert decode(b'{"a": [1, "x"]}', ANY) == {"a": [1, "x"]}

    class Body(msgspec.Struct, forbid_unknown_fields=True):
        name: str

    assert decode(b'{"name": "alice"}', Body) == Body("alice")
    with pytest.raises(msgspec.ValidationError):
        decode(b'{"name": 1}', Body)
