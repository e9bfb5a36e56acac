"""Normalising the list-valued fields of a finding: controls, assets, CVEs, source."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from bot.poam.errors import InvalidInput
from bot.poam.text import require_storable

MAX_CONTROLS = 50
MAX_ASSETS = 100
MAX_CVES = 100


def cves_left_out(listed: int) -> str:
    """The description's note for an item given ``listed`` CVEs, more than it keeps."""
    return f"CVEs: {listed:,} listed; the item keeps the first {MAX_CVES} ({listed - MAX_CVES:,} left out)."

MAX_ASSET_LENGTH = 200

#: What separates the assets of one Asset Identifier cell (the template's new lines, or commas).
ASSET_SEPARATOR = re.compile(r"[,\n]")

_CONTROL = re.compile(r"^[A-Z0-9][A-Z0-9.()-]{0,31}$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$")


def split_assets(cell: str) -> list[str]:
    """The assets one Asset Identifier cell lists (one per line, or comma-separated), trimmed."""
    return [part.strip() for part in ASSET_SEPARATOR.split(cell) if part.strip()]


class Source(StrEnum):
    """FedRAMP "Weakness Detector Source": how the weakness was found."""

    SCAN = "scan"
    ASSESSMENT = "assessment"
    PENTEST = "pentest"
    AUDIT = "audit"
    CONMON = "conmon"
    SELF = "self"

    @property
    def label(self) -> str:
        """The name FedRAMP's workbook shows in "Weakness Detector Source"."""
        return _SOURCE_LABELS[self]

    @classmethod
    def named(cls, text: str) -> Source | None:
        """The source ``text`` names by its value or its label; None for anything else."""
        word = text.strip().lower()
        for source in cls:
            if word in (source.value, source.label.lower()):
                return source
        return None

    @classmethod
    def from_label(cls, text: str) -> Source:
        """A source from its value or its label; anything else is a scanner's name (scan)."""
        return cls.named(text) or cls.SCAN

    @classmethod
    def parse(cls, text: str) -> Source:
        try:
            return cls(text.strip().lower())
        except ValueError:
            accepted = ", ".join(source.value for source in cls)
            raise InvalidInput(f"`{text}` is not a source; use one of {accepted}.") from None


_SOURCE_LABELS = {
    Source.SCAN: "Vulnerability Scan",
    Source.ASSESSMENT: "Security Assessment Report",
    Source.PENTEST: "Penetration Test",
    Source.AUDIT: "Audit",
    Source.CONMON: "Continuous Monitoring",
    Source.SELF: "Self-Identified",
}


#: An enhancement written with spaces (``SI-2 (2)``, ``SI-2 ( a )``): its
#: parentheses hold a number or a letter, where a name's hold words.
_ENHANCEMENT = re.compile(r"\s*\(\s*([0-9]{1,3}|[A-Za-z])\s*\)")
#: Numbers beside control ids that are none: a document's (``800-53``), a
#: revision's or a year (``5``, ``2023``).
_PLAIN_NUMBER = re.compile(r"^\d+(?:-\d+)?$")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def controls(values: Iterable[str]) -> list[str]:
    """Security control ids, upper-cased, e.g. ``AC-2``, ``SI-2(2)``, ``3.12.2``:
    spaces around an enhancement's parentheses go (``SI-2 (2)``), and any
    other space separates words (``AC-2 SI-2`` were run together). Of several
    words, those with a number are the controls (of any framework: ``CC6.1``,
    ``PR.AC-1``), but for plain numbers (``800-53``, ``5``); the rest are
    their names (``AC-2 (Account Management)``, a workbook's habit), left
    out; several words and no id is no control. One word is taken as the id
    it is meant as."""
    cleaned = _unique(control for value in values for control in _control_ids(value))
    for control in cleaned:
        if not _CONTROL.match(control):
            raise InvalidInput(f"`{control}` is not a control id; write it like AC-2 or SI-2(2).")
    if len(cleaned) > MAX_CONTROLS:
        raise InvalidInput(f"{len(cleaned)} controls given; the limit is {MAX_CONTROLS}.")
    return cleaned


def _control_ids(value: str) -> list[str]:
    words = _ENHANCEMENT.sub(r"(\1)", value).upper().split()
    if len(words) <= 1:
        return words
    ids = [word for word in words
           if any(char.isdigit() for char in word) and not _PLAIN_NUMBER.match(word) and word[0] != "("]
    if not ids:
        raise InvalidInput(f"`{value.strip()}` is not a control id; write it like AC-2 or SI-2(2).")
    return ids


def assets(values: Iterable[str]) -> list[str]:
    """Asset identifiers (host names, IPs, image ids…) as given, trimmed."""
    cleaned = _unique(value.strip() for value in values)
    for asset in cleaned:
        require_storable(asset, field="An asset id")
        if len(asset) > MAX_ASSET_LENGTH:
            raise InvalidInput(
                f"An asset id is {len(asset):,} characters long; the limit is {MAX_ASSET_LENGTH}."
            )
    if len(cleaned) > MAX_ASSETS:
        raise InvalidInput(f"{len(cleaned)} assets given; the limit is {MAX_ASSETS}.")
    return cleaned


def cves(values: Iterable[str]) -> list[str]:
    """CVE ids, upper-cased, e.g. ``CVE-2024-3094``."""
    cleaned = _unique(value.strip().upper() for value in values)
    for cve in cleaned:
        if not _CVE.match(cve):
            raise InvalidInput(f"`{cve}` is not a CVE id; write it like CVE-2024-3094.")
    if len(cleaned) > MAX_CVES:
        raise InvalidInput(f"{len(cleaned)} CVEs given; the limit is {MAX_CVES}.")
    return cleaned
