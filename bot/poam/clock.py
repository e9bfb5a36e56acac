"""Where "now" comes from.

Everything that depends on the time takes a ``Clock`` so tests can pin it.
Times are always timezone-aware UTC; a user's calendar day is derived from a
clock and that user's IANA zone with ``local_today``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """A source of the current instant."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _require_aware_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"FixedClock needs a timezone-aware datetime, got naive {at.isoformat()}.")
    return at.astimezone(UTC)


class FixedClock:
    """A clock that only moves when told to (for tests)."""

    def __init__(self, at: datetime) -> None:
        self._now = _require_aware_utc(at)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        """Move forward by ``timedelta(**delta)``, e.g. ``advance(days=3)``."""
        self._now = self._now + timedelta(**delta)

    def set(self, at: datetime) -> None:
        self._now = _require_aware_utc(at)


def local_today(clock: Clock, tz: ZoneInfo) -> date:
    """The calendar date it is right now in ``tz``."""
    return clock.now().astimezone(tz).date()
