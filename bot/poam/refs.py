"""Item and milestone references as users type them."""

from __future__ import annotations

import re

from bot.poam.errors import InvalidInput

MAX_NUMBER = 2**31 - 1
_DIGITS = "[0-9]{1,10}"


def format_item_id(number: int, *, prefix: str) -> str:
    """``12`` -> ``POAM-12`` (with the workspace's configured prefix)."""
    if number < 1:
        raise ValueError(f"item numbers start at 1, got {number}")
    return f"{prefix}-{number}"


def parse_item_number(text: str, *, prefix: str) -> int:
    """Accept ``POAM-12``, ``poam-12``, ``#12`` or ``12`` and return 12."""
    cleaned = text.strip()
    example = f"use {format_item_id(12, prefix=prefix)} or 12."
    if not cleaned:
        raise InvalidInput(f"An item id is required; {example}")
    match = re.fullmatch(
        rf"(?:#|{re.escape(prefix)}-)?({_DIGITS})", cleaned, re.IGNORECASE | re.ASCII
    )
    number = int(match.group(1)) if match else 0
    if not 1 <= number <= MAX_NUMBER:
        raise InvalidInput(f"`{cleaned}` is not an item id; {example}")
    return number


def labelled_number(text: str, *, prefix: str) -> int | None:
    """``POAM-12`` (the prefix required, any case) → 12; None for anything else,
    such as another tool's ids in an imported file (``12``, ``V-1``)."""
    match = re.fullmatch(rf"{re.escape(prefix)}-({_DIGITS})", text.strip(), re.IGNORECASE | re.ASCII)
    number = int(match.group(1)) if match else 0
    return number if 1 <= number <= MAX_NUMBER else None


def parse_milestone_number(text: str) -> int:
    """Accept ``M2``, ``m2`` or ``2`` and return 2."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput("A milestone is required; use M1 or 1.")
    match = re.fullmatch(rf"m?({_DIGITS})", cleaned, re.IGNORECASE | re.ASCII)
    number = int(match.group(1)) if match else 0
    if not 1 <= number <= MAX_NUMBER:
        raise InvalidInput(f"`{cleaned}` is not a milestone; use M1 or 1.")
    return number
