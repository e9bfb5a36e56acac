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
    require_storable(text, field=field)
    if not text:
        if required:
            raise InvalidInput(f"{field} is missing.")
        return None
    if len(text) > limit:
        raise InvalidInput(f"{field} is {len(text):,} characters long; the limit is {limit:,}.")
    return text


def require_storable(text: str, *, field: str) -> None:
    """Refuse text a database or a hash cannot take: NUL characters and lone
    UTF-16 surrogates (which a JSON payload can smuggle in as ``\\ud800``)."""
    if "\x00" in text:
        raise InvalidInput(f"{field} contains a NUL character; remove it and try again.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} contains characters that are not valid text; retype it.") from None
