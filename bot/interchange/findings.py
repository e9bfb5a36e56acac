"""What every importer produces: findings, each knowing where in its file it came from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date

from bot.poam.severity import Severity


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


@dataclass(frozen=True)
class Finding:
    """One weakness read from a file.

    ``severity`` None means informational: counted as skipped, not imported.
    The optional fields after ``detected_on`` are filled by the FedRAMP
    workbook importer, which carries a whole POA&M, not just scan results.
    """

    tool: str
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
    vendor_product: str | None = None
    closed: bool = False

    @property
    def fingerprint(self) -> str:
        """Same tool, rule and asset → same weakness (re-imports update, never duplicate)."""
        key = "\x1f".join(part.strip().lower() for part in (self.tool, self.rule_id, self.asset))
        return hashlib.sha256(key.encode()).hexdigest()
