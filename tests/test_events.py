from __future__ import annotations

import pytest

from revocast.events import SessionRevoked, UnknownEvent, UserRevoked, decode_entry


def test_stream_fields_decode_to_structs() -> None:
    event = decode_entry(
        {"type": "session_revoked", "v": "1", "ts_ms": "10", "sid": "s", "uid": "u",
         "at_ms": "10", "until_ms": "99", "reason": "logout"}
    )  # fmt: skip
    assert event == SessionRevoked(
        ts_ms=10, sid="s", uid="u", at_ms=10, until_ms=99, reason="logout"
    )
    user = decode_entry(
        {"type": "user_revoked", "v": "1", "ts_ms": "1", "uid": "u", "not_before_ms": "5",
         "until_ms": "9"}
    )  # fmt: skip
    assert isinstance(user, UserRevoked)
    assert user.not_before_ms == 5


def test_new_fields_are_tolerated() -> None:
    """Schema evolution: a newer issuer may add fields with defaults."""
    event = decode_entry(
        {"type": "session_revoked", "v": "1", "ts_ms": "1", "sid": "s", "uid": "u",
         "at_ms": "1", "until_ms": "2", "added_later": "x"}
    )  # fmt: skip
    assert isinstance(event, SessionRevoked)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"type": "user_deleted", "v": "1", "ts_ms": "1"}, id="unknown-type"),
        pytest.param({"type": "session_revoked", "v": "1", "ts_ms": "1"}, id="missing-fields"),
        pytest.param(
            {"type": "session_revoked", "v": "2", "ts_ms": "1", "sid": "s", "uid": "u",
             "at_ms": "1", "until_ms": "2"},
            id="newer-schema",
        ),
        pytest.param({"v": "1"}, id="no-type"),
    ],
)  # fmt: skip
def test_entries_it_cannot_understand_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(UnknownEvent):
        decode_entry(fields)
