from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.poam.dates import parse_date
from bot.poam.errors import InvalidInput

# A Friday.
TODAY = date(2026, 3, 13)


def parse(text: str, today: date = TODAY, prefer: str = "future") -> date:
    return parse_date(text, today=today, prefer=prefer)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        ("2024-02-29", date(2024, 2, 29)),
        ("2026-1-5", date(2026, 1, 5)),
        (" 2027-06-01 ", date(2027, 6, 1)),
        ("today", TODAY),
        ("TODAY", TODAY),
        ("tomorrow", date(2026, 3, 14)),
        ("yesterday", date(2026, 3, 12)),
        ("+10d", date(2026, 3, 23)),
        ("+0d", TODAY),
        ("+2w", date(2026, 3, 27)),
        ("+3m", date(2026, 6, 13)),
        ("+12m", date(2027, 3, 13)),
        ("+10D", date(2026, 3, 23)),
        ("-5d", date(2026, 3, 8)),
        ("-1w", date(2026, 3, 6)),
        ("-2m", date(2026, 1, 13)),
        ("31 Dec 2026", date(2026, 12, 31)),
        ("Dec 31 2026", date(2026, 12, 31)),
        ("December 31, 2026", date(2026, 12, 31)),
        ("december 31 2026", date(2026, 12, 31)),
        ("31 dec, 2026", date(2026, 12, 31)),
        ("Dec 31st, 2026", date(2026, 12, 31)),
        ("Sept 3 2027", date(2027, 9, 3)),
        ("1 Jan 1990", date(1990, 1, 1)),
        ("31 Dec 2200", date(2200, 12, 31)),
        ("Dec.  31   2026", date(2026, 12, 31)),
    ],
)
def test_absolute_and_relative_forms(text: str, expected: date) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("today", "text", "expected"),
    [
        (date(2026, 1, 31), "+1m", date(2026, 2, 28)),
        (date(2028, 1, 31), "+1m", date(2028, 2, 29)),
        (date(2026, 3, 31), "-1m", date(2026, 2, 28)),
        (date(2026, 8, 31), "+1m", date(2026, 9, 30)),
        (date(2026, 12, 25), "+10d", date(2027, 1, 4)),
        (date(2026, 11, 30), "+3m", date(2027, 2, 28)),
    ],
)
def test_offsets_at_month_ends(today: date, text: str, expected: date) -> None:
    assert parse(text, today) == expected


@pytest.mark.parametrize(
    ("text", "future", "past"),
    [
        ("saturday", date(2026, 3, 14), date(2026, 3, 7)),
        ("sat", date(2026, 3, 14), date(2026, 3, 7)),
        ("Monday", date(2026, 3, 16), date(2026, 3, 9)),
        ("thu", date(2026, 3, 19), date(2026, 3, 12)),
        # Today is a Friday: "friday" is never today.
        ("friday", date(2026, 3, 20), date(2026, 3, 6)),
        ("FRI", date(2026, 3, 20), date(2026, 3, 6)),
    ],
)
def test_weekdays(text: str, future: date, past: date) -> None:
    assert parse(text, prefer="future") == future
    assert parse(text, prefer="past") == past


def test_weekday_across_year_end() -> None:
    # 2026-12-31 is a Thursday.
    assert parse("mon", date(2026, 12, 31)) == date(2027, 1, 4)
    assert parse("thursday", date(2026, 12, 31)) == date(2027, 1, 7)
    assert parse("fri", date(2027, 1, 1), prefer="past") == date(2026, 12, 25)


@pytest.mark.parametrize(
    ("today", "text", "future", "past"),
    [
        (TODAY, "Dec 31", date(2026, 12, 31), date(2025, 12, 31)),
        (TODAY, "31 Dec", date(2026, 12, 31), date(2025, 12, 31)),
        (TODAY, "December 31", date(2026, 12, 31), date(2025, 12, 31)),
        (TODAY, "Mar 13", TODAY, TODAY),
        (TODAY, "Mar 12", date(2027, 3, 12), date(2026, 3, 12)),
        (TODAY, "14 mar", date(2026, 3, 14), date(2025, 3, 14)),
        # Year wrap: in December, "Jan 5" is next year's.
        (date(2026, 12, 20), "Jan 5", date(2027, 1, 5), date(2026, 1, 5)),
        (date(2027, 1, 2), "Dec 30", date(2027, 12, 30), date(2026, 12, 30)),
    ],
)
def test_day_and_month_without_year(today: date, text: str, future: date, past: date) -> None:
    assert parse(text, today, "future") == future
    assert parse(text, today, "past") == past


@pytest.mark.parametrize(
    ("today", "future", "past"),
    [
        (date(2026, 3, 13), date(2028, 2, 29), date(2024, 2, 29)),
        (date(2028, 2, 29), date(2028, 2, 29), date(2028, 2, 29)),
        (date(2028, 3, 1), date(2032, 2, 29), date(2028, 2, 29)),
        (date(2028, 2, 28), date(2028, 2, 29), date(2024, 2, 29)),
        # 2100 is not a leap year: the next Feb 29 after 2096 is in 2104.
        (date(2097, 1, 1), date(2104, 2, 29), date(2096, 2, 29)),
    ],
)
def test_feb_29_without_year(today: date, future: date, past: date) -> None:
    assert parse("Feb 29", today, "future") == future
    assert parse("29 feb", today, "past") == past


NOT_UNDERSTOOD = [
    "nonsense",
    "12",
    "next week",
    "+0x",
    "+10",
    "10d",
    "+d",
    "+1y",
    "fri day",
    "friday 13",
    "december",
    "jan 2026",
    "31/12/2026",
    "12/31/2026",
    "2026/12/31",
    "20261231",
    "2026-W01-1",
    "Dec 31 26",
    "Dec 31 2026 10:00",
    "on Dec 31",
    "31 December 2026 please",
    "Foo 31",
    "tues",
    "١٢ dec",
]


@pytest.mark.parametrize("text", NOT_UNDERSTOOD)
def test_junk_is_rejected(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse(text)
    message = error.value.message
    assert message.startswith(f"`{text}` is not a date I understand. Use 2026-12-31, today,")
    for form in ("+10d", "+2w", "+3m", "friday", "Dec 31", "31 Dec 2026"):
        assert form in message


@pytest.mark.parametrize(
    "text",
    ["32 Dec 2026", "2026-13-01", "2026-02-30", "2027-02-29", "Feb 29 2027", "Dec 0", "Apr 31"],
)
def test_impossible_dates_are_rejected(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse(text)
    assert error.value.message.startswith(f"`{text}` is not a real calendar date. Use 2026-12-31")


@pytest.mark.parametrize(
    "text",
    ["1989-12-31", "2201-01-01", "31 Dec 2999", "+99999d", "-99999m", "+99999m", "0099-01-01"],
)
def test_absurd_years_are_rejected(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse(text)
    assert error.value.message == (
        f"`{text}` is outside the supported range; dates must fall between 1990 and 2200."
    )


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_is_rejected(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^A date is required\. Use 2026-12-31, today"):
        parse(text)


def test_message_quotes_text_with_whitespace_collapsed() -> None:
    with pytest.raises(InvalidInput) as error:
        parse("  next\t\tweek ")
    assert error.value.message.startswith("`next week` is not a date")


# Pieces of real dates, so the generator also reaches the month-name paths.
TOKENS = [
    "Dec", "feb", "September", "31", "29", "0", "2026", "0099", "9999", ",", "+3m", "fri", "st",
]


@given(
    text=st.one_of(
        st.text(max_size=40),
        st.from_regex(r"[+-]?[0-9a-z ,.\-]{0,20}", fullmatch=True),
        st.lists(st.sampled_from(TOKENS), max_size=4).map(" ".join),
    ),
    today=st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31)),
    prefer=st.sampled_from(["future", "past"]),
)
def test_any_text_gives_a_date_or_invalid_input(text: str, today: date, prefer: str) -> None:
    try:
        result = parse_date(text, today=today, prefer=prefer)  # type: ignore[arg-type]
    except InvalidInput as error:
        assert error.message
    else:
        assert isinstance(result, date)
        assert 1990 <= result.year <= 2200
