from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.poam.clock import Clock, FixedClock, SystemClock, local_today


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_fixed_clock_converts_to_utc() -> None:
    eastern = datetime(2026, 3, 1, 20, 30, tzinfo=ZoneInfo("America/New_York"))
    clock = FixedClock(eastern)
    assert clock.now() == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_fixed_clock_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 3, 1, 12, 0))


def test_fixed_clock_advance_and_set() -> None:
    clock = FixedClock(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    clock.advance(hours=2)
    assert clock.now() == datetime(2026, 2, 1, 1, 0, tzinfo=UTC)
    clock.advance(days=1, minutes=30)
    assert clock.now() == datetime(2026, 2, 2, 1, 30, tzinfo=UTC)
    clock.set(datetime(2027, 6, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2027, 6, 1, 7, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.set(datetime(2027, 6, 1))


def test_fixed_clock_does_not_move_by_itself() -> None:
    clock = FixedClock(datetime(2026, 5, 5, 5, 5, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 5, 5, 5, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # 02:00 UTC on the 2nd is still the evening of the 1st in Los Angeles.
        (datetime(2026, 3, 2, 2, 0, tzinfo=UTC), "America/Los_Angeles", date(2026, 3, 1)),
        # 20:00 UTC on the 1st is already the 2nd in Tokyo.
        (datetime(2026, 3, 1, 20, 0, tzinfo=UTC), "Asia/Tokyo", date(2026, 3, 2)),
        (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), "UTC", date(2026, 3, 1)),
        # Year boundary in a half-hour zone.
        (datetime(2026, 12, 31, 19, 0, tzinfo=UTC), "Asia/Kolkata", date(2027, 1, 1)),
    ],
)
def test_local_today(instant: datetime, zone: str, expected: date) -> None:
    assert local_today(FixedClock(instant), ZoneInfo(zone)) == expected


def test_clocks_satisfy_protocol() -> None:
    clocks: list[Clock] = [SystemClock(), FixedClock(datetime(2026, 1, 1, tzinfo=UTC))]
    for clock in clocks:
        assert clock.now().tzinfo is not None
