"""Checks on free text typed by users: trimmed, within limits, never empty when required."""

from __future__ import annotations

import unicodedata
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
    if not text or not _shows_anything(text):
        if required:
            raise InvalidInput(f"{field} is missing.")
        return None
    if len(text) > limit:
        raise InvalidInput(f"{field} is {len(text):,} characters long; the limit is {limit:,}.")
    return text


#: Characters that show nothing, beside Unicode's controls, formats and
#: spaces: the Braille blank, the Hangul fillers, the combining grapheme
#: joiner, and the variation selectors (Mongolian, standard, supplementary).
_BLANKS = frozenset("\u2800\u115f\u1160\u3164\uffa0\u034f" + "".join(map(chr, [
    *range(0x180B, 0x1810), *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])))
_UNSEEN = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _shows_anything(text: str) -> bool:
    """Whether ``text`` has a character one can see: a title of zero-width
    spaces, a byte-order mark or a lone right-to-left mark showed as nothing
    on every card, list, DM and export."""
    return any(char not in _BLANKS and unicodedata.category(char) not in _UNSEEN for char in text)


def require_storable(text: str, *, field: str) -> None:
    """Refuse text a database or a hash cannot take: NUL characters and lone
    UTF-16 surrogates (which a JSON payload can smuggle in as ``\\ud800``)."""
    if "\x00" in text:
        raise InvalidInput(f"{field} contains a NUL character; remove it and try again.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} contains characters that are not valid text; retype it.") from None
