"""The outage log: a line a change, a reminder every few seconds, one line when it is back."""

from __future__ import annotations

import logging

import pytest

from revocast.outage import Outage


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_outage_is_a_line_a_change_and_a_reminder_every_few_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    outage = Outage(
        logging.getLogger("test.outage"), "reading stream p0", remind_every_s=10, clock=clock
    )
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(32 * 25):  # 25 s of attempts, 32 a second (exact in binary)
            outage.failed("Redis did not answer")
            clock.now += 1 / 32
        outage.failed("LOADING: Redis is loading its data")  # another failure: said at once
        clock.now += 0.5
        outage.recovered()
        outage.recovered()  # all well already: nothing more to say
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "reading stream p0 failed: Redis did not answer",
        "reading stream p0 still failing after 10 s (321 attempts): Redis did not answer",
        "reading stream p0 still failing after 20 s (641 attempts): Redis did not answer",
        "reading stream p0 failed: LOADING: Redis is loading its data",
        "reading stream p0 works again after 25.5 s (801 failed attempts)",
    ]
    assert not outage.failing


def test_a_new_outage_after_recovery_is_said_at_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    outage = Outage(logging.getLogger("test.outage"), "upkeep", clock=clock)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.failed("down")
        outage.recovered()
        clock.now += 1
        outage.failed("down")
    assert [r.getMessage() for r in caplog.records][-1] == "upkeep failed: down"
