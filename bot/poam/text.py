"""Checks on free text typed by users: trimmed, within limits, never empty when required."""

from __future__ import annotations

from typing import Literal, overload

from bot.poam.errors import InvalidInput


@overload
def clean_text(value: str, *, field: str, limit: int, required: Literal[True] = True) -> str: ...
@overload
def clean_text(value: str | None, *, field: str, limit: int, required: Literal[False]) -> str | None: ...
def clean_text(value: str | None, *, field: str, limit: int, required: bool = True) -> str | None:
    """``value`` trimmed; :class:`InvalidInput` when too long or missing.

    ``field`` names the text the way the user knows it ("The title"), so the
    refusal reads as a sentence.
    """
    text = (value or "").strip()
    if "\x00" in text:
        raise InvalidInput(f"{field} contains a NUL character; remove it and try again.")
    if not text:
        if required:
            raise InvalidInput(f"{field} is missing.")
        return None
    if len(text) > limit:
        raise InvalidInput(f"{field} is {len(text):,} characters long; the limit is {limit:,}.")
    return text
