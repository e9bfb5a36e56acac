"""The date grammar of ``due:``, ``detected:`` and ``until:``.

Relative forms are resolved against ``today``, which the caller passes in as the
acting user's local day; nothing here reads the wall clock.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from dateutil import parser as dateutil_parser
from dateutil.relativedelta import relativedelta

from bot.poam.errors import InvalidInput

MIN_YEAR = 1990
MAX_YEAR = 2200

ACCEPTED_FORMS = (
    "2026-12-31, today, tomorrow, yesterday, +10d, +2w, +3m, -5d, "
    "a weekday like friday or fri, Dec 31, 31 Dec 2026 or December 31, 2026"
)

_FLAGS = re.IGNORECASE | re.ASCII
_ISO = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", _FLAGS)
_OFFSET = re.compile(r"([+-])\s*([0-9]{1,5})\s*([dwm])", _FLAGS)
_NAMED_DAYS = {"yesterday": -1, "today": 0, "tomorrow": 1}
# The only month-name shapes handed to dateutil, so its guessing never sees junk.
_DAY = r"(?P<day>[0-9]{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[a-z]+)\.?"
_YEAR = r"(?:,?\s*(?P<year>[0-9]{4}))?"
_MONTH_NAME_FORMS = (
    re.compile(rf"{_MONTH}\s+{_DAY}{_YEAR}", _FLAGS),
    re.compile(rf"{_DAY}\s+{_MONTH}{_YEAR}", _FLAGS),
)
_NAMES = dateutil_parser.parserinfo()
# A leap year, so that a year-less Feb 29 parses; the real year is chosen later.
_YEARLESS_DEFAULT = datetime(2000, 1, 1)
# Feb 29 recurs at most 8 years apart (e.g. 2096 -> 2104).
_YEAR_SEARCH = 9


def parse_date(
    text: str, *, today: date, prefer: Literal["future", "past"] = "future"
) -> date:
    """Read a user-typed date.

    ``prefer`` decides which way the forms without a year or a direction go: a
    weekday is the next one strictly after ``today`` (or the last one strictly
    before it), a day-and-month the next on or after ``today`` (or the latest on
    or before it).
    """
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidInput(f"A date is required. Use {ACCEPTED_FORMS}.")
    result = _parse(cleaned, today=today, prefer=prefer)
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        raise _out_of_range(cleaned)
    return result


def _not_understood(text: str) -> InvalidInput:
    return InvalidInput(f"`{text}` is not a date I understand. Use {ACCEPTED_FORMS}.")


def _not_on_calendar(text: str) -> InvalidInput:
    return InvalidInput(f"`{text}` is not a real calendar date. Use {ACCEPTED_FORMS}.")


def _out_of_range(text: str) -> InvalidInput:
    return InvalidInput(
        f"`{text}` is outside the supported range; "
        f"dates must fall between {MIN_YEAR} and {MAX_YEAR}."
    )


def _parse(text: str, *, today: date, prefer: Literal["future", "past"]) -> date:
    """The date ``text`` names; raises InvalidInput if it is outside the grammar."""
    if (shift := _NAMED_DAYS.get(text.lower())) is not None:
        return today + timedelta(days=shift)
    if match := _ISO.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            raise _not_on_calendar(text) from None
    if match := _OFFSET.fullmatch(text):
        sign, amount, unit = match.groups()
        signed = -int(amount) if sign == "-" else int(amount)
        step = {
            "d": relativedelta(days=signed),
            "w": relativedelta(weeks=signed),
            "m": relativedelta(months=signed),
        }[unit.lower()]
        try:
            return today + step
        except (OverflowError, ValueError):
            raise _out_of_range(text) from None
    if (weekday := _NAMES.weekday(text)) is not None:
        return _weekday(weekday, today=today, prefer=prefer)
    return _month_name_form(text, today=today, prefer=prefer)


def _weekday(target: int, *, today: date, prefer: Literal["future", "past"]) -> date:
    """The ``target`` weekday (0 = Monday) strictly after (or before) ``today``."""
    if prefer == "future":
        return today + timedelta(days=(target - today.weekday() - 1) % 7 + 1)
    return today - timedelta(days=(today.weekday() - target - 1) % 7 + 1)


def _month_name_form(text: str, *, today: date, prefer: Literal["future", "past"]) -> date:
    match = next((m for p in _MONTH_NAME_FORMS if (m := p.fullmatch(text))), None)
    if match is None or _NAMES.month(match.group("month")) is None:
        raise _not_understood(text)
    try:
        parsed = dateutil_parser.parse(text, default=_YEARLESS_DEFAULT).date()
    except (ValueError, OverflowError):
        raise _not_on_calendar(text) from None
    year = match.group("year")
    # Belt and braces: dateutil must have read the day and year we matched.
    if parsed.day != int(match.group("day")) or (year is not None and parsed.year != int(year)):
        raise _not_on_calendar(text)
    if year is not None:
        return parsed
    return _nearest_occurrence(parsed.month, parsed.day, today=today, prefer=prefer)


def _nearest_occurrence(
    month: int, day: int, *, today: date, prefer: Literal["future", "past"]
) -> date:
    """The first ``month``/``day`` on or after ``today`` (or last on or before it)."""
    direction = 1 if prefer == "future" else -1
    for step in range(_YEAR_SEARCH):
        try:
            candidate = date(today.year + direction * step, month, day)
        except ValueError:
            continue
        if (candidate >= today) if prefer == "future" else (candidate <= today):
            return candidate
    raise AssertionError(f"no {month}/{day} within {_YEAR_SEARCH} years of {today}")
