"""Importing findings (scanner results, a FedRAMP workbook) into a workspace.

All or nothing: every finding is checked first, and any bad one names where
it came from and imports nothing (the caller's transaction rolls back). A
fingerprint (tool, rule or plugin id, asset) recognises a weakness seen before:
re-importing the same scan updates ``last_seen_at`` of the open item instead of
duplicating it. A closed item never reopens: the same weakness found open
again is a new item (a closed one in a re-imported workbook changes nothing). Imported dates are taken from the file (a workbook's items may
carry approved extensions), not from the deadline policy, except when the
file has none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlmodel import Session, col, select

from bot.poam import audit, fields
from bot.poam.actor import Actor, check_user_id
from bot.poam.errors import InvalidInput
from bot.poam.items import MAX_DESCRIPTION, MAX_PLAN, MAX_RESOURCES, MAX_TITLE
from bot.poam.lifecycle import Status
from bot.poam.milestones import MAX_DESCRIPTION as MAX_MILESTONE
from bot.poam.permissions import require_admin
from bot.poam.review import Closure
from bot.poam.severity import Severity
from bot.poam.systems import find_system
from bot.poam.text import clean_text
from bot.store import counters
from bot.store.models import Item, ItemControl, Milestone


class PlannedMilestone(Protocol):
    due_on: date
    description: str


class ImportedWeakness(Protocol):
    """What an importer hands over (``bot.interchange.findings.Finding``)."""

    tool: str
    rule_id: str
    asset: str
    title: str
    severity: Severity | None
    where: str
    description: str | None
    cves: tuple[str, ...]
    controls: tuple[str, ...]
    detected_on: date | None
    due_on: date | None
    scheduled_completion_on: date | None
    owner_id: str | None
    remediation_plan: str | None
    resources_required: str | None
    milestones: tuple[PlannedMilestone, ...]
    vendor_product: str | None
    closed: bool

    @property
    def fingerprint(self) -> str: ...


@dataclass
class ImportSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    numbers: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped"


def _checked(finding: ImportedWeakness, today: date) -> dict[str, object]:
    """The finding's fields, cleaned; InvalidInput names the finding's place in its file."""
    try:
        values: dict[str, object] = {
            "title": clean_text(finding.title, field="The title", limit=MAX_TITLE),
            "description": clean_text(finding.description, field="The description", limit=MAX_DESCRIPTION, required=False),
            "source_identifier": clean_text(finding.rule_id, field="The rule id", limit=200, required=False),
            # A workbook's Asset Identifier cell lists several, one per line or comma-separated.
            "assets": fields.assets(re.split(r"[,\n]", finding.asset)) if finding.asset else [],
            "cves": fields.cves(finding.cves),
            "controls": fields.controls(finding.controls),
            "remediation_plan": clean_text(finding.remediation_plan, field="The plan", limit=MAX_PLAN, required=False),
            "resources_required": clean_text(
                finding.resources_required, field="The resources", limit=MAX_RESOURCES, required=False
            ),
            "vendor_product": clean_text(finding.vendor_product, field="The vendor product", limit=200, required=False),
            "milestones": [
                (m.due_on, clean_text(m.description, field="A milestone", limit=MAX_MILESTONE)) for m in finding.milestones
            ],
        }
        if finding.owner_id is not None:
            check_user_id(finding.owner_id, what="user (point of contact)")
        if finding.detected_on is not None and finding.detected_on > today:
            raise InvalidInput(f"the detection date {finding.detected_on} is in the future")
    except InvalidInput as error:
        raise InvalidInput(f"{finding.where}: {error.message}") from None
    return values


def import_findings(
    session: Session,
    actor: Actor,
    *,
    findings: Sequence[ImportedWeakness],
    source_name: str,
    system_name: str | None = None,
) -> ImportSummary:
    """Import ``findings`` (admins only); see the module docstring for the rules."""
    require_admin(actor, "import findings")
    today, now = actor.today(), actor.now()
    checked = [(finding, _checked(finding, today)) for finding in findings if finding.severity is not None]
    summary = ImportSummary(skipped=len(findings) - len(checked))
    system = find_system(session, actor, name=system_name)
    prints = {finding.fingerprint for finding, _ in checked}
    open_by_print: dict[str | None, Item] = {}
    closed_prints: set[str | None] = set()
    for item in session.exec(select(Item).where(Item.team_id == actor.team_id, col(Item.fingerprint).in_(prints))):
        if item.status == Status.CLOSED:
            closed_prints.add(item.fingerprint)
        else:
            open_by_print[item.fingerprint] = item
    fresh: list[tuple[ImportedWeakness, dict[str, object]]] = []
    seen: set[str] = set()
    for finding, values in checked:
        fingerprint = finding.fingerprint
        if fingerprint in seen:
            summary.unchanged += 1
            continue
        seen.add(fingerprint)
        existing = open_by_print.get(fingerprint)
        if existing is None and finding.closed and fingerprint in closed_prints:
            summary.unchanged += 1  # a closed item of a workbook imported before
        elif existing is None:
            fresh.append((finding, values))
        elif existing.last_seen_at == now:
            summary.unchanged += 1
        else:
            existing.last_seen_at = now
            summary.updated += 1
    items = [
        _new_item(actor, number, finding, values, system_id=system.id, today=today)  # type: ignore[arg-type]
        for number, (finding, values) in zip(
            counters.reserve_item_numbers(session, team_id=actor.team_id, count=len(fresh)), fresh, strict=True
        )
    ] if fresh else []
    session.add_all(items)
    session.flush()
    for item, (_, values) in zip(items, fresh, strict=True):
        session.add_all(
            ItemControl(item_id=item.id, control=control, team_id=actor.team_id, position=position)  # type: ignore[arg-type]
            for position, control in enumerate(values["controls"])  # type: ignore[arg-type]
        )
        session.add_all(
            Milestone(
                team_id=actor.team_id, item_id=item.id, number=number, description=text,  # type: ignore[arg-type]
                planned_due_on=due_on, due_on=due_on, created_by=actor.user_id, created_at=now,
            )
            for number, (due_on, text) in enumerate(values["milestones"], start=1)  # type: ignore[arg-type]
        )
    summary.new = len(items)
    summary.numbers = [item.number for item in items]
    audit.record_many(
        session,
        actor,
        [
            *(("item.imported", item.id, {"number": item.number, "title": item.title, "fingerprint": item.fingerprint,
                                           "source": source_name, "status": item.status}) for item in items),
            ("import.completed", None, {"source": source_name, "new": summary.new, "updated": summary.updated,
                                        "unchanged": summary.unchanged, "skipped": summary.skipped}),
        ],
    )
    return summary


def _new_item(
    actor: Actor, number: int, finding: ImportedWeakness, values: dict[str, object], *, system_id: int, today: date
) -> Item:
    severity = finding.severity
    assert severity is not None
    detected = finding.detected_on or today
    scheduled = finding.scheduled_completion_on or finding.due_on or actor.rules.deadlines.due_date(
        severity=severity, detected_on=detected
    )
    status = Status.CLOSED if finding.closed else Status.IN_PROGRESS if finding.owner_id else Status.OPEN
    now = actor.now()
    return Item(
        team_id=actor.team_id,
        number=number,
        system_id=system_id,
        title=values["title"],
        description=values["description"],
        source=fields.Source.from_label(finding.tool),
        source_identifier=values["source_identifier"],
        assets=values["assets"],
        cves=values["cves"],
        severity=severity,
        status=status,
        owner_id=finding.owner_id,
        detected_on=detected,
        scheduled_completion_on=scheduled,
        due_on=finding.due_on or scheduled,
        remediation_plan=values["remediation_plan"],
        resources_required=values["resources_required"],
        vendor_dependency=bool(values["vendor_product"]),
        vendor_product=values["vendor_product"],
        fingerprint=finding.fingerprint,
        last_seen_at=now,
        closure=Closure.IMPORTED if finding.closed else None,
        closed_at=now if finding.closed else None,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
