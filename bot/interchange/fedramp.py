"""An item as a row of GSA's FedRAMP POA&M template (Rev 5, columns A–AE).

The CSV export writes these rows; the workbook export uses the same mapping,
so both say the same thing about an item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from bot.poam.actor import Rules
from bot.poam.fields import Source
from bot.poam.item_details import ChangeRow, ItemDetail, MilestoneRow, RequestRow
from bot.poam.lifecycle import Status
from bot.poam.milestones import ChangeKind
from bot.poam.review import Deviation, RequestKind, RequestStatus
from bot.poam.severity import Severity
from bot.store.models import Item
from bot.store.rows import Columns

#: The template's tabs of items (the export and the workbook import use both).
OPEN_TAB = "Open POA&M Items"
CLOSED_TAB = "Closed POA&M Items"

COLUMNS: tuple[str, ...] = (
    "POAM ID",
    "Controls",
    "Weakness Name",
    "Weakness Description",
    "Weakness Detector Source",
    "Weakness Source Identifier",
    "Asset Identifier",
    "Point of Contact",
    "Resources Required",
    "Overall Remediation Plan",
    "Original Detection Date",
    "Scheduled Completion Date",
    "Planned Milestones",
    "Milestone Changes",
    "Status Date",
    "Vendor Dependency",
    "Last Vendor Check-in Date",
    "Vendor Dependent Product Name",
    "Original Risk Rating",
    "Adjusted Risk Rating",
    "Risk Adjustment",
    "False Positive",
    "Operational Requirement",
    "Deviation Rationale",
    "Supporting Documents",
    "Comments",
    "Auto-Approve",
    "Binding Operational Directive 22-01 tracking",
    "Binding Operational Directive 22-01 Due Date",
    "CVE",
    "Service Name",
)


_CHANGE_WORDS = {ChangeKind.NEW: "New", ChangeKind.UPDATE: "Update", ChangeKind.COMPLETE: "Complete"}

Cell = str | date | None
#: People's names by (workspace, user id), as the bot learnt them from Slack (``Person.name``).
Names = Mapping[tuple[str, str], str]


def person(names: Names | None, team_id: str, user_id: str | None) -> str | None:
    """``Alice Smith (U0ALICE)``: a name an assessor can read, beside the id the
    imports read back; the bare id for someone the bot never heard of."""
    if user_id is None:
        return None
    name = (names or {}).get((team_id, user_id))
    return f"{name} ({user_id})" if name else user_id


def risk_rating(severity: str) -> str:
    """FedRAMP rates Low / Moderate / High; critical findings are rated High."""
    rating = Severity(severity)
    return "High" if rating is Severity.CRITICAL else rating.value.capitalize()


def detector_source(item: Item | Columns) -> str:
    """Weakness Detector Source: the scanner's name where the item's file gave
    one ("Nessus"), else the kind of source ("Penetration Test")."""
    return item.detector or Source(item.source).label


def planned_milestones(milestones: list[MilestoneRow], changes: list[ChangeRow]) -> str:
    """``(01) 2026-12-01: description`` per milestone of the plan as first
    approved (the later ones are "New" changes), blank line between, first
    planned dates."""
    added_later = {change.milestone_id for change in changes if change.kind == ChangeKind.NEW}
    return "\n\n".join(
        f"({m.number:02d}) {m.planned_due_on.isoformat()}: {m.description}" for m in milestones if m.id not in added_later
    )


def milestone_changes(changes: list[ChangeRow], milestones: list[MilestoneRow], *, rules: Rules) -> str:
    """``(01) Update 2026-12-05 : why`` per change, in the order they happened."""
    numbers = {m.id: m.number for m in milestones}
    lines = []
    for change in changes:
        number = numbers[change.milestone_id]
        when = (change.new_due_on or rules.day(change.changed_at)).isoformat()
        what = change.reason
        if change.kind == ChangeKind.UPDATE and change.old_due_on is not None:
            what = f"moved from {change.old_due_on.isoformat()}: {change.reason}"
        lines.append(f"({number:02d}) {_CHANGE_WORDS[ChangeKind(change.kind)]} {when} : {what}")
    return "\n\n".join(lines)


def deviation_status(detail: ItemDetail, deviation: Deviation) -> RequestStatus | None:
    """Where the item stands on one kind of deviation: approved, pending or
    withdrawn; None when never asked or only rejected. An operational
    requirement stands only while the item's risk is accepted (by an approved
    request or ``accept-risk``, as OSCAL's status says; see
    :func:`_accepted_as_operational_requirement`): once that lapses the item
    is back in work, and saying "Yes" would hide that it is due."""
    statuses = {r.status for r in detail.requests if r.kind == RequestKind.DEVIATION and r.deviation == deviation}
    if deviation is Deviation.OPERATIONAL_REQUIREMENT:
        if _accepted_as_operational_requirement(detail):
            return RequestStatus.APPROVED
        statuses.discard(RequestStatus.APPROVED)
    for status in (RequestStatus.APPROVED, RequestStatus.PENDING, RequestStatus.WITHDRAWN):
        if status in statuses:
            return status
    return None


def _accepted_as_operational_requirement(detail: ItemDetail) -> bool:
    """The item's risk is accepted, and at a rating an operational requirement
    may have: never High (DOMAIN.md), so the AO's ``accept-risk`` of a High
    item shows only in Comments and OSCAL's status, never as an OR."""
    item = detail.item
    return item.status == Status.RISK_ACCEPTED and risk_rating(item.adjusted_severity or item.severity) != "High"


def deviation_answer(detail: ItemDetail, deviation: Deviation) -> str:
    """The template's Yes / No / Pending for one kind of deviation request."""
    status = deviation_status(detail, deviation)
    return "Yes" if status == RequestStatus.APPROVED else "Pending" if status == RequestStatus.PENDING else "No"


def deviation_notes(detail: ItemDetail) -> tuple[str | None, str | None]:
    """Deviation Rationale, and a note for Comments (None each when there is nothing to say).

    The rationale is that of the deviation the columns beside it are about: a
    request pending the AO, else the newest in effect (an approved false
    positive or risk adjustment, an approved operational requirement or
    accepted risk while the risk stays accepted). A request pending of a kind
    already in effect (a second risk adjustment) leaves the rationale of the
    one in effect, which the Yes and the adjusted rating beside it are about:
    the note tells of the pending one."""
    pending, in_effect = _deviations(detail)
    if pending is not None and in_effect is not None and pending[0] is in_effect[0]:
        kind, request = pending
        to = f" to {risk_rating(request.adjusted_severity)}" if request.adjusted_severity else ""
        note = (f"{kind.label.capitalize()}{to} asked for again, pending the authorizing official: "
                f"{_sentence(request.text or '')}")
        return _rationale(in_effect), note
    shown = pending or in_effect
    return (None if shown is None else _rationale(shown)), None


def _rationale(deviation: tuple[Deviation, RequestRow]) -> str | None:
    """``Risk adjustment: why``; None when none was given (a decision a file recorded without one)."""
    kind, request = deviation
    return f"{kind.label.capitalize()}: {request.text}" if request.text else None


def _deviations(detail: ItemDetail) -> tuple[tuple[Deviation, RequestRow] | None, tuple[Deviation, RequestRow] | None]:
    """The item's deviation request pending the AO, and the newest in effect, each with its kind."""
    accepted = _accepted_as_operational_requirement(detail)
    pending = in_effect = None
    for request in reversed(detail.requests):
        if request.kind == RequestKind.DEVIATION and request.status == RequestStatus.PENDING:
            pending = pending or (Deviation.asked(request.deviation), request)
        elif request.status == RequestStatus.APPROVED and in_effect is None:
            if request.kind == RequestKind.DEVIATION and (
                accepted or Deviation.asked(request.deviation) is not Deviation.OPERATIONAL_REQUIREMENT
            ):
                in_effect = (Deviation.asked(request.deviation), request)
            elif request.kind == RequestKind.RISK_ACCEPTANCE and accepted:
                in_effect = (Deviation.OPERATIONAL_REQUIREMENT, request)
    return pending, in_effect


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _because(text: str | None) -> str:
    """The end of a decision's sentence: its reason, if it has one."""
    return f": {_sentence(text)}" if text else "."


def _decision_comments(detail: ItemDetail, names: Names | None, rules: Rules) -> list[str]:
    """Every approved decision, with who, when and why: the template's own
    columns say only Yes / No, and an assessor reading the workbook must see
    what closed an item and on what grounds (the newest deviation's rationale
    is in Deviation Rationale; every request's text is in the JSON export)."""
    notes = []
    for request in detail.requests:
        if request.status != RequestStatus.APPROVED or request.decided_at is None:
            continue
        on = rules.day(request.decided_at).isoformat()
        # Nobody named: a decision a POA&M the workspace imported recorded (``imports``).
        by = f"by {person(names, detail.item.team_id, request.decided_by)} on {on}" if request.decided_by \
            else f"(recorded in a POA&M imported on {on})"
        if request.kind == RequestKind.EXTENSION:
            notes.append(f"Extension to {request.new_due_on} approved {by}{_because(request.text)}")
        elif request.kind == RequestKind.RISK_ACCEPTANCE:
            notes.append(f"Risk accepted until {request.until_on} {by}{_because(request.text)}")
        elif request.kind == RequestKind.VERIFICATION:
            evidence = f" Evidence: {_sentence(request.text)}" if request.text else ""
            note = f" Verifier's note: {_sentence(request.decision_note)}" if request.decision_note else ""
            notes.append(f"Remediation verified {by}.{evidence}{note}")
        elif request.kind == RequestKind.DEVIATION:
            notes.append(_deviation_comment(request, by))
    return notes


def _pending_comments(detail: ItemDetail, names: Names | None, rules: Rules) -> list[str]:
    """What the item waits on, which no column says: a fix submitted for
    verification, an extension asked of the AO (a pending deviation is the
    Pending of its own column)."""
    notes = []
    for request in detail.requests:
        if request.status != RequestStatus.PENDING:
            continue
        by = f"by {person(names, detail.item.team_id, request.requested_by)} on {rules.day(request.requested_at)}"
        if request.kind == RequestKind.VERIFICATION:
            notes.append(f"Remediation submitted for verification {by}; awaiting an independent verifier.")
        elif request.kind == RequestKind.EXTENSION:
            notes.append(f"Extension to {request.new_due_on} requested {by}; awaiting the authorizing official.")
    return notes


def _deviation_comment(request: RequestRow, by: str) -> str:
    """An approved deviation with its rationale: Deviation Rationale holds one
    deviation's, and a risk adjustment followed by another would keep its
    Yes and adjusted rating with no reason anywhere in the row."""
    match Deviation.asked(request.deviation):
        case Deviation.RISK_ADJUSTMENT:
            assert request.adjusted_severity is not None
            return f"Risk adjusted to {risk_rating(request.adjusted_severity)} {by}{_because(request.text)}"
        case Deviation.FALSE_POSITIVE:
            return f"False positive approved {by}{_because(request.text)}"
        case Deviation.OPERATIONAL_REQUIREMENT:
            return (f"Operational requirement approved {by}, to be reviewed again by {request.until_on}"
                    f"{_because(request.text)}")


def row(detail: ItemDetail, *, rules: Rules, names: Names | None = None) -> list[Cell]:
    """The 31 template cells of one item; dates stay dates for the caller to
    format; people by name where ``names`` has them."""
    item = detail.item
    comments = []
    if item.severity == Severity.CRITICAL:
        comments.append("Original severity: Critical.")
    if item.recurs_number is not None:
        comments.append(f"Found again after {rules.label(item.recurs_number)} was closed.")
    if item.status != Status.CLOSED and item.due_on != item.scheduled_completion_on:
        comments.append(f"Current due date: {item.due_on.isoformat()}.")
    if item.plan_approved_at is not None:  # the AO's agreement with the plan (DOMAIN.md), as it stands now
        comments.append(f"Remediation plan approved by {person(names, item.team_id, item.plan_approved_by)} "
                        f"on {rules.day(item.plan_approved_at).isoformat()}.")
    comments += _decision_comments(detail, names, rules)
    comments += _pending_comments(detail, names, rules)
    rationale, asked_again = deviation_notes(detail)
    if asked_again is not None:
        comments.append(asked_again)
    return [
        rules.label(item.number),
        ", ".join(detail.controls),
        item.title,
        item.description,
        detector_source(item),
        item.source_identifier,
        "\n".join(item.assets),
        person(names, item.team_id, item.owner_id),
        item.resources_required,
        item.remediation_plan,
        item.detected_on,
        item.scheduled_completion_on,
        planned_milestones(detail.milestones, detail.changes),
        milestone_changes(detail.changes, detail.milestones, rules=rules),
        rules.day(item.closed_at or item.updated_at),  # Status Date: when it last changed or closed
        "Yes" if item.vendor_dependency else "No",
        item.last_vendor_checkin_on,
        item.vendor_product,
        risk_rating(item.severity),
        risk_rating(item.adjusted_severity) if item.adjusted_severity else "N/A",
        deviation_answer(detail, Deviation.RISK_ADJUSTMENT),
        deviation_answer(detail, Deviation.FALSE_POSITIVE),
        deviation_answer(detail, Deviation.OPERATIONAL_REQUIREMENT),
        rationale,
        item.source_message_url,
        " ".join(comments) or None,
        "No",
        None,
        None,
        ", ".join(item.cves),
        None,
    ]
