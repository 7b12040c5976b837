"""The host's table (revocast.verifier.table) on its own: keyed fingerprints, the time word,
and what a fingerprint collision may and may not do."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from revocast.setting_groups import DAY_S
from revocast.verifier import table
from revocast.verifier.table import (
    GROW_AT,
    KEY_AT,
    KEY_BYTES,
    SESSION,
    SLOT_BYTES,
    USER,
    TableView,
    TableWriter,
    deployment_id,
    pack_times,
    unpack_times,
)

DEPLOYMENT = deployment_id("redis://x", "p")
NOW_MS = int(time.time() * 1000)


def writer_at(path: Path, max_entries: int = 100_000) -> TableWriter:
    return TableWriter(path, DEPLOYMENT, max_entries=max_entries, now_ms=lambda: NOW_MS)


def test_each_table_draws_its_own_fingerprint_key(tmp_path: Path) -> None:
    one, two = writer_at(tmp_path / "one"), writer_at(tmp_path / "two")
    keys = [bytes(w.mm[KEY_AT : KEY_AT + KEY_BYTES]) for w in (one, two)]
    assert keys[0] != keys[1]
    assert bytes(KEY_BYTES) not in keys
    assert one.fingerprint(SESSION, "s1") != two.fingerprint(SESSION, "s1")
    # The kind is part of what is hashed: a user and a session of one id are two entries.
    assert one.fingerprint(SESSION, "x") != one.fingerprint(USER, "x")


def test_growth_keeps_the_key_and_every_entry(tmp_path: Path) -> None:
    writer = writer_at(tmp_path / "t")
    key = bytes(writer.mm[KEY_AT : KEY_AT + KEY_BYTES])
    for i in range(5000):  # from 1024 slots to 8192: three doublings
        writer.put(SESSION, f"s{i}", NOW_MS + 60_000, NOW_MS + 60_000)
    assert writer.slots == 8192
    view = TableView(tmp_path / "t", DEPLOYMENT)
    assert view.open()
    assert bytes(view.mm[KEY_AT : KEY_AT + KEY_BYTES]) == key  # type: ignore[index]
    assert all(view.lookup(SESSION, f"s{i}") is not None for i in range(5000))
    assert view.lookup(SESSION, "never") is None


def test_a_table_takes_at_most_43_bytes_an_entry(tmp_path: Path) -> None:
    """The worst case is just past a doubling: GROW_AT / 2 of the slots in use."""
    assert SLOT_BYTES == 16
    writer = writer_at(tmp_path / "t")
    entries = int(4096 * GROW_AT) + 1  # one past the load that doubles 4096 slots
    for i in range(entries):
        writer.put(SESSION, f"s{i}", NOW_MS + 60_000, NOW_MS + 60_000)
    assert writer.slots == 8192
    assert writer.slots * SLOT_BYTES / entries <= 43


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(NOW_MS, -(-NOW_MS // 1000), id="session"),
        pytest.param(NOW_MS - 3_600_000, NOW_MS // 1000 + 86_400 + 121, id="user-an-hour-ago"),
        pytest.param(NOW_MS + 5_000, NOW_MS // 1000, id="ends-before-a"),
        pytest.param(0, 0, id="zero"),
    ],
)
def test_the_time_word_keeps_a_exact_and_b_no_earlier(a: int, b: int) -> None:
    got_a, got_b = unpack_times(pack_times(a, b))
    assert got_a == a
    assert got_b >= b
    assert got_b <= max(b, a // 1000)


def test_b_past_24_days_is_cut_but_outlives_every_token_it_covers() -> None:
    a = NOW_MS - 60 * DAY_S * 1000  # a not-before two months old, revoked again now
    b = NOW_MS // 1000 + DAY_S
    got_a, got_b = unpack_times(pack_times(a, b))
    assert got_a == a
    assert got_b < b
    # Tokens issued by ``a`` are dead a revocation lifetime after it (a day and 2 min at most).
    assert got_b >= a // 1000 + DAY_S + 2 * 60 + 1


def test_a_fingerprint_collision_refuses_and_never_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With fingerprints cut to 3 bits, ids collide by the dozen: every revoked id is still
    found with at least its own times, and the others are refused (a false refusal)."""
    keyed = table.Fingerprints.__call__
    monkeypatch.setattr(
        table.Fingerprints, "__call__", lambda self, kind, ident: keyed(self, kind, ident) % 8 + 1
    )
    writer = writer_at(tmp_path / "t")
    view = TableView(tmp_path / "t", DEPLOYMENT)
    revoked = {f"u{i}": NOW_MS - i * 1000 for i in range(50)}
    for uid, not_before in revoked.items():
        writer.put(USER, uid, not_before, NOW_MS + 60_000)
    assert view.open()
    assert view.counts()[1] <= 8
    for uid, not_before in revoked.items():
        found = view.lookup(USER, uid)
        assert found is not None
        assert found[0] >= not_before  # a token issued by then is refused
    # Another id whose fingerprint a revoked id holds is refused too (never wrongly
    # accepted); one whose fingerprint none holds (the 50 may leave one of the 8 free, about
    # 1 run in 100) is simply not there.
    taken = {view.fingerprint(USER, uid) for uid in revoked}
    others = [f"other{i}" for i in range(20)]
    colliding = [uid for uid in others if view.fingerprint(USER, uid) in taken]
    assert len(colliding) >= 10
    assert all(view.lookup(USER, uid) is not None for uid in colliding)
    assert all(view.lookup(USER, uid) is None for uid in others if uid not in colliding)


def test_a_lookup_hashes_with_the_key_of_the_table_it_reads(tmp_path: Path) -> None:
    """A verify on another thread may hold a mapping while the view maps a newer table: the
    fingerprint follows the mapping read, never a key of another table."""
    writer = writer_at(tmp_path / "t")
    writer.put(SESSION, "s1", NOW_MS + 60_000, NOW_MS + 60_000)
    view = TableView(tmp_path / "t", DEPLOYMENT)
    assert view.open()
    view.fingerprint = table.Fingerprints(b"k" * KEY_BYTES)  # as if another table's
    assert view.lookup(SESSION, "s1") is not None
