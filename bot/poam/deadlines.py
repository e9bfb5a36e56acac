"""The deadline policy: how long a weakness of a given severity may stay open.

Programs differ (FedRAMP, DoD CAT levels, ...), so the rule is a replaceable
``DeadlinePolicy`` chosen by configuration, never constants spread in the code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Protocol

from bot.poam.errors import InvalidInput
from bot.poam.severity import Severity

MAX_DAYS = 3650
"""Upper bound for a deadline (ten years); anything longer is a typo."""


class DeadlinePolicy(Protocol):
    @property
    def name(self) -> str:
        """How configuration and exports name the policy (read-only)."""
        ...

    def due_date(self, *, severity: Severity, detected_on: date) -> date:
        """The scheduled completion date for a weakness detected on ``detected_on``."""
        ...

    def days_for(self, severity: Severity) -> int:
        """Days allowed, counted from detection."""
        ...


@dataclass(frozen=True)
class DaysBySeverity:
    """A fixed number of days per severity, counted from the detection date."""

    name: str
    days: Mapping[Severity, int] = field(hash=False)

    def __post_init__(self) -> None:
        missing = [severity.value for severity in Severity if severity not in self.days]
        if missing:
            raise ValueError(f"deadline policy {self.name!r} has no days for {', '.join(missing)}")
        extra = [str(key) for key in self.days if key not in set(Severity)]
        if extra:
            raise ValueError(f"deadline policy {self.name!r} has unknown severities {extra}")
        for severity in Severity:
            value = self.days[severity]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
                raise ValueError(
                    f"deadline policy {self.name!r}: days for {severity.value} must be a whole "
                    f"number from 1 to {MAX_DAYS}, got {value!r}"
                )
        # Own an immutable copy keyed by the enum, whatever mapping was passed in.
        frozen = MappingProxyType({severity: self.days[severity] for severity in Severity})
        object.__setattr__(self, "days", frozen)

    def days_for(self, severity: Severity) -> int:
        return self.days[severity]

    def due_date(self, *, severity: Severity, detected_on: date) -> date:
        return detected_on + timedelta(days=self.days_for(severity))


FEDRAMP = DaysBySeverity(
    "fedramp",
    {Severity.CRITICAL: 30, Severity.HIGH: 30, Severity.MODERATE: 90, Severity.LOW: 180},
)
# CAT I (critical and high), CAT II (moderate), CAT III (low).
DOD_CAT = DaysBySeverity(
    "dod-cat",
    {Severity.CRITICAL: 30, Severity.HIGH: 30, Severity.MODERATE: 180, Severity.LOW: 365},
)
PRESETS: Mapping[str, DeadlinePolicy] = MappingProxyType(
    {FEDRAMP.name: FEDRAMP, DOD_CAT.name: DOD_CAT}
)


def parse_policy(text: str | None) -> DeadlinePolicy:
    """Read ``POAM_DEADLINES``: empty, a preset name, or ``severity=days,...``.

    A list overrides the FedRAMP table for the severities it names. Errors are
    ``ValueError`` with one short line; the config layer adds the variable name.
    """
    cleaned = (text or "").strip()
    if not cleaned:
        return FEDRAMP
    preset = PRESETS.get(cleaned.lower())
    if preset is not None:
        return preset
    overrides: dict[Severity, int] = {}
    for raw_entry in cleaned.split(","):
        entry = raw_entry.strip()
        if not entry:
            raise ValueError(f'"{cleaned}": an entry between commas is empty')
        key, equals, value = (part.strip() for part in entry.partition("="))
        if not equals:
            raise ValueError(
                f'"{entry}": expected a preset ({", ".join(PRESETS)}) '
                "or severity=days entries such as critical=15,high=30"
            )
        try:
            severity = Severity.parse(key)
        except InvalidInput:
            raise ValueError(
                f'"{entry}": unknown severity; use critical, high, moderate (or medium) or low'
            ) from None
        if not re.fullmatch(r"[0-9]+", value, re.ASCII) or int(value) < 1:
            raise ValueError(f'"{entry}": days must be a whole number of days greater than 0')
        if int(value) > MAX_DAYS:
            raise ValueError(f'"{entry}": days must be at most {MAX_DAYS}')
        if severity in overrides:
            raise ValueError(f'"{entry}": {severity.value} is given more than once')
        overrides[severity] = int(value)
    return DaysBySeverity("custom", {**FEDRAMP.days, **overrides})
