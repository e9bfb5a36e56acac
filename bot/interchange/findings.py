"""What every importer produces: findings, each knowing where in its file it came from."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from bot.poam.fields import MAX_CVES, cves_left_out
from bot.poam.imports import RecordedDeviation
from bot.poam.milestones import ChangeKind
from bot.poam.severity import Severity

#: A port's protocol as scanners name it (tcp, udp, icmp…).
PROTOCOL = re.compile(r"^[a-z0-9_-]{1,16}$", re.ASCII | re.IGNORECASE)


def port_number(text: str) -> str | None:
    """A port as scanners write it, without leading zeros (``0443`` → ``443``);
    None when it is not one of 0-65535 (read by length first: ``int()`` of
    thousands of digits is refused by Python itself)."""
    digits = text.lstrip("0") or "0"
    if not digits.isascii() or not digits.isdigit() or len(digits) > 5 or int(digits) > 65535:
        return None
    return digits


def kept_cves(found: Iterable[str]) -> tuple[tuple[str, ...], str | None]:
    """``found``, each once and upper-cased, as many as an item keeps, and a
    note for the description when some are left out: a rollup plugin (a
    kernel's, Windows's monthly one) lists hundreds, which refused the whole file."""
    unique = tuple(dict.fromkeys(cve.upper() for cve in found))
    if len(unique) <= MAX_CVES:
        return unique, None
    return unique[:MAX_CVES], cves_left_out(len(unique))


class ImportFormatError(Exception):
    """The file is malformed; ``where`` names the row or element (``row 12``,
    ``runs[0].results[3]``), so the user can find and fix it. Nothing is imported."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class Milestone:
    due_on: date
    description: str
    #: Its number in the file (a workbook's ``(03)``), which Milestone Changes name it by.
    number: int | None = None


@dataclass(frozen=True)
class MilestoneChange:
    """A workbook's Milestone Changes entry: ``(03) Update 2026-12-15 : moved from 2026-12-01: why``."""

    number: int
    kind: ChangeKind
    #: The day it gives: a New or moved milestone's due date, a Complete one's completion day.
    on: date
    #: Why (a New one's description; a Complete one's note).
    text: str
    #: An Update's earlier date, where it says ("moved from 2026-12-01: …").
    moved_from: date | None = None


@dataclass(frozen=True)
class Finding:
    """One weakness read from a file.

    ``severity`` None means informational: counted as skipped, not imported.
    The optional fields after ``detected_on`` up to ``closed`` are filled by
    the FedRAMP workbook importer, which carries a whole POA&M, not just scan
    results; ``detector`` and ``port`` by the scanners' importers too.
    """

    #: What the fingerprint names the tool by (a SARIF driver, "Nessus", a workbook's Detector Source).
    tool: str
    #: The plugin or rule id, without a port: the workbook's Weakness Source Identifier.
    rule_id: str
    asset: str
    title: str
    severity: Severity | None
    where: str
    description: str | None = None
    cves: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    detected_on: date | None = None
    due_on: date | None = None
    scheduled_completion_on: date | None = None
    owner_id: str | None = None
    #: A Point of Contact that names no Slack user (``Bob Jones``): imported without an owner, and said so.
    unknown_contact: str | None = None
    remediation_plan: str | None = None
    resources_required: str | None = None
    milestones: tuple[Milestone, ...] = field(default=())
    #: A workbook's Milestone Changes, in the file's order (after the plan as first approved).
    milestone_changes: tuple[MilestoneChange, ...] = field(default=())
    vendor_product: str | None = None
    #: A workbook's Vendor Dependency (Yes or No); None when it says neither
    #: (then a product named is taken as a dependency). A fix shipped keeps
    #: its product's name with No; a dependency may name no product.
    vendor_dependency: bool | None = None
    closed: bool = False
    #: The scanner's or tool's name for the workbook's Weakness Detector Source;
    #: None when the file names none (or only a kind of source, "Penetration Test").
    detector: str | None = None
    #: ``443/tcp`` when the scanner found the weakness on a port of ``asset``.
    port: str | None = None
    #: When a closed item closed: a workbook's Status Date on its closed tab.
    closed_on: date | None = None
    #: (rule, asset) pairs an earlier version of the importer fingerprinted
    #: this finding by (same tool): a workbook row's Weakness Source
    #: Identifier and Asset Identifier as written, or its assets joined by
    #: ", " (our export's old separator) or by lines.
    earlier_keys: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    #: The assets of a workbook row's Asset Identifier as written (to tell our own export's rows).
    listed_assets: tuple[str, ...] = field(default=(), compare=False)
    #: A workbook row's POAM ID (``POAM-12``): the item it is, when the workbook is this workspace's own export.
    poam_id: str | None = None
    #: The day the scan ran, where the file says (a .nessus host's start, a
    #: SARIF run's): a scan from before an item closed found nothing new. Not
    #: a CSV's "First Seen", which a scanner keeps when a weakness comes back.
    scanned_on: date | None = None
    #: The tool an earlier version fingerprinted this finding by (Nessus's
    #: CSV was "CSV"), with the same rule and asset.
    earlier_tool: str | None = field(default=None, compare=False)
    #: The asset an earlier version took for this finding and others with it
    #: (a SARIF result whose first location names no file: "(no location)"):
    #: the item it made is one of theirs, not a sign they are one weakness.
    earlier_shared_asset: str | None = field(default=None, compare=False)
    #: The row's Weakness Source Identifier is blank and ``rule_id`` is its
    #: POAM ID: the fingerprint's, not a source identifier to store.
    rule_is_poam_id: bool = False
    #: A workbook's Last Vendor Check-in Date.
    vendor_checkin_on: date | None = None
    #: The deviations a workbook row says Yes to (approved).
    deviations: tuple[RecordedDeviation, ...] = ()
    #: How many it says are Pending, or gives too little to restore (the AO is not asked again by an import).
    unrestored_deviations: int = 0
    #: The system a row of our CSV names (its System column): the one it goes into.
    system_name: str | None = None
    #: The asset the fingerprint names where ``asset`` is shortened to be
    #: stored (a SARIF artifact URI longer than an asset id may be): two
    #: files alike at their end stay two weaknesses.
    fingerprint_asset: str | None = None

    @property
    def asset_identifier(self) -> str:
        """The asset as the template's Asset Identifier writes it: ``10.0.0.5 (443/TCP)``."""
        if not self.port:
            return self.asset
        number, _, protocol = self.port.partition("/")
        return f"{self.asset} ({number}/{protocol.upper()})"

    @property
    def fingerprint(self) -> str:
        """Same tool, rule (with its port) and asset → same weakness (re-imports
        update, never duplicate). The rule and port join as ``19506/443/tcp``,
        as they did before the port had a field of its own."""
        return _fingerprint(self.tool, self._rule_with_port, self.fingerprint_asset or self.asset)

    @property
    def _rule_with_port(self) -> str:
        return f"{self.rule_id}/{self.port}" if self.port else self.rule_id

    @property
    def own_fingerprints(self) -> tuple[str, ...]:
        """:attr:`fingerprint`, then any other an item imported by an earlier
        version carries for this weakness alone (:attr:`earlier_keys`,
        :attr:`earlier_tool`): two findings that share one are one weakness."""
        earlier = [_fingerprint(self.tool, rule, asset) for rule, asset in self.earlier_keys]
        if self.earlier_tool is not None:
            earlier.append(_fingerprint(self.earlier_tool, self._rule_with_port, self.fingerprint_asset or self.asset))
        return tuple(dict.fromkeys((self.fingerprint, *earlier)))

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """:attr:`own_fingerprints`, then the one of an item an earlier version
        made of this and other weaknesses (:attr:`earlier_shared_asset`)."""
        if self.earlier_shared_asset is None:
            return self.own_fingerprints
        shared = _fingerprint(self.tool, self._rule_with_port, self.earlier_shared_asset)
        return tuple(dict.fromkeys((*self.own_fingerprints, shared)))


def _fingerprint(tool: str, rule: str, asset: str) -> str:
    key = "\x1f".join(part.strip().lower() for part in (tool, rule, asset))
    return hashlib.sha256(key.encode()).hexdigest()
