from __future__ import annotations

import pytest

from bot.poam.errors import InvalidInput
from bot.poam.refs import format_item_id, labelled_number, parse_item_number, parse_milestone_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POAM-12", 12),
        ("poam-12", 12),
        ("Poam-7", 7),
        ("12", 12),
        ("#12", 12),
        ("  POAM-3  ", 3),
        ("POAM-007", 7),
        ("1", 1),
        (str(2**31 - 1), 2**31 - 1),
    ],
)
def test_parse_item_number_accepts(text: str, expected: int) -> None:
    assert parse_item_number(text, prefix="POAM") == expected


def test_parse_item_number_uses_configured_prefix() -> None:
    assert parse_item_number("SEC-4", prefix="SEC") == 4
    assert parse_item_number("sec-4", prefix="SEC") == 4
    with pytest.raises(InvalidInput, match=r"^`POAM-4` is not an item id; use SEC-12 or 12\.$"):
        parse_item_number("POAM-4", prefix="SEC")


@pytest.mark.parametrize(("text", "expected"), [
    ("POAM-12", 12), (" poam-007 ", 7), ("12", None), ("#12", None), ("V-12", None), ("POAM-0", None),
    ("POAM-2147483648", None), ("POAM-12a", None), ("", None),
])
def test_labelled_number_needs_the_prefix(text: str, expected: int | None) -> None:
    """An imported row's POAM ID names one of our items only in our own form."""
    assert labelled_number(text, prefix="POAM") == expected


def test_prefix_is_literal_not_a_pattern() -> None:
    assert parse_item_number("A.B-2", prefix="A.B") == 2
    with pytest.raises(InvalidInput):
        parse_item_number("AXB-2", prefix="A.B")


@pytest.mark.parametrize(
    "text",
    [
        "FOO-12",
        "POAM-0",
        "0",
        "-3",
        "POAM--3",
        "POAM-",
        "POAM",
        "#",
        str(2**31),
        "99999999999999999999",
        "12a",
        "POAM 12",
        "POAM12",
        "1.5",
        "١٢",  # Arabic-Indic digits are not accepted
        "M1",
    ],
)
def test_parse_item_number_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_item_number(text, prefix="POAM")
    assert error.value.message == f"`{text}` is not an item id; use POAM-12 or 12."


def test_parse_item_number_empty() -> None:
    with pytest.raises(InvalidInput, match=r"^An item id is required; use POAM-12 or 12\.$"):
        parse_item_number("   ", prefix="POAM")


def test_format_item_id() -> None:
    assert format_item_id(12, prefix="POAM") == "POAM-12"
    assert format_item_id(1, prefix="SEC") == "SEC-1"
    with pytest.raises(ValueError):
        format_item_id(0, prefix="POAM")


def test_format_and_parse_round_trip() -> None:
    for number in (1, 42, 2**31 - 1):
        assert parse_item_number(format_item_id(number, prefix="POAM"), prefix="POAM") == number


@pytest.mark.parametrize(
    ("text", "expected"),
    [("M1", 1), ("m2", 2), ("2", 2), (" M10 ", 10), ("m03", 3)],
)
def test_parse_milestone_number_accepts(text: str, expected: int) -> None:
    assert parse_milestone_number(text) == expected


@pytest.mark.parametrize("text", ["M0", "0", "-1", "M", "MM1", "M-1", "milestone 1", "x", "1.0"])
def test_parse_milestone_number_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_milestone_number(text)
    assert error.value.message == f"`{text}` is not a milestone; use M1 or 1."


def test_parse_milestone_number_empty() -> None:
    with pytest.raises(InvalidInput, match=r"^A milestone is required; use M1 or 1\.$"):
        parse_milestone_number("")
