"""Risk ratings of a weakness."""

from __future__ import annotations

from enum import StrEnum

from bot.poam.errors import InvalidInput

_ACCEPTED = "critical, high, moderate (or medium) or low"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Read a severity typed by a user; ``medium`` means moderate."""
        word = text.strip().lower()
        if word == "medium":
            return cls.MODERATE
        try:
            return cls(word)
        except ValueError:
            if not word:
                raise InvalidInput(f"A severity is required; use {_ACCEPTED}.") from None
            raise InvalidInput(f"`{text.strip()}` is not a severity; use {_ACCEPTED}.") from None

    @property
    def rank(self) -> int:
        """0 for critical up to 3 for low, so sorting by rank puts the most severe first."""
        return _RANKS[self]


_RANKS: dict[Severity, int] = {severity: index for index, severity in enumerate(Severity)}
