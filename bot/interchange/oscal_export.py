"""The POA&M as an OSCAL 1.1 ``plan-of-action-and-milestones`` JSON document.

NIST's model splits an item three ways, and FedRAMP's guide to OSCAL POA&Ms
says where each workbook column goes:

- an **observation**: how and when the weakness was found (``collected`` is
  the detection date), by whom, on which assets (``subjects`` pointing at
  ``local-definitions`` inventory items);
- a **risk**: title, description, statement, status (mapped from our
  lifecycle by :func:`risk_status`), the risk ratings as FedRAMP ``risk``
  facets (initial, and adjusted after an approved risk adjustment), CVEs as
  ``cve-id`` facets, FedRAMP props (``impacted-control-id``,
  ``vendor-dependency``, ``false-positive``, ``risk-adjustment``,
  ``operational-requirement``), the current due date as ``deadline``, the
  plan as a ``planned`` (``completed`` once verified) remediation whose
  ``tasks`` are the milestones, and the ``risk-log`` replayed from the item's
  audit trail with every status change marked;
- a **poam-item** linking the two, with FedRAMP's ``POAM-ID`` prop.

Every uuid but the document's is derived with :func:`stable_uuid` from the
workspace, the item number and what the uuid names, so the same item keeps
its uuids from one export to the next (OSCAL asks for that), and a receiving
tool can tell a changed item from a new one.

OSCAL arrays may not be empty: an empty array is left out, and a document
without items (``poam-items`` is required and non-empty) carries one
placeholder poam-item that says so, without a ``POAM-ID``.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from itertools import islice
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from bot.interchange.fedramp import Names, deviation_status, person, risk_rating
from bot.poam.actor import SYSTEM_ACTOR, Rules
from bot.poam.fields import Source
from bot.poam.item_details import ItemDetail, MilestoneRow
from bot.poam.lifecycle import Status
from bot.poam.review import Closure, Deviation, RequestKind, RequestStatus
from bot.poam.severity import Severity
from bot.store.models import AuditEvent, Item, Workspace
from bot.store.rows import Columns, rows_of

#: The OSCAL release the document is written against (``metadata.oscal-version``).
OSCAL_VERSION = "1.1.2"
FEDRAMP_NS = "https://fedramp.gov/ns/oscal"
#: FedRAMP's naming system for its own risk facets.
FEDRAMP_SYSTEM = "https://fedramp.gov"
CVE_SYSTEM = "http://cve.mitre.org"
#: ``system-id`` is a uuid of ours, so its identifier type is RFC 4122, or,
#: where the system has one, its FedRAMP package ID (FedRAMP's type; OSCAL
#: deprecated its older ``https://fedramp.gov`` for this one).
UUID_IDENTIFIER_TYPE = "http://ietf.org/rfc/rfc4122"
FEDRAMP_IDENTIFIER_TYPE = "http://fedramp.gov/ns/oscal"
#: Never change this: every stable uuid in every export derives from it.
UUID_NAMESPACE = uuid.UUID("3096f856-e581-4c4c-87de-805eda0a64b0")
AO_ROLE = "authorizing-official"
#: FedRAMP's role of the organization whose system it is.
CSP_ROLE = "cloud-service-provider"

_CHUNK = 200
_SPOOL_BYTES = 8 * 1024 * 1024


class RiskStatus(StrEnum):
    """OSCAL's ``risk-status`` values."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    REMEDIATING = "remediating"
    DEVIATION_REQUESTED = "deviation-requested"
    DEVIATION_APPROVED = "deviation-approved"
    CLOSED = "closed"


#: How the weakness was found (FedRAMP: TEST for scans, else as appropriate).
_METHODS = {
    Source.SCAN: "TEST",
    Source.PENTEST: "TEST",
    Source.CONMON: "TEST",
    Source.ASSESSMENT: "EXAMINE",
    Source.AUDIT: "EXAMINE",
    Source.SELF: "EXAMINE",
}


def _source(value: str) -> Source | None:
    try:
        return Source(value)
    except ValueError:
        return None


def stable_uuid(team_id: str, *parts: object) -> str:
    """A version-5 uuid for what ``parts`` name in workspace ``team_id``:
    ``stable_uuid("T1", "item", 12, "risk")`` is the same in every export."""
    return str(uuid.uuid5(UUID_NAMESPACE, "/".join([team_id, *(str(part) for part in parts)])))


def item_uuid(team_id: str, number: int, kind: str) -> str:
    """The uuid of one part (``observation``, ``risk``, ``poam-item``…) of item ``number``."""
    return stable_uuid(team_id, "item", number, kind)


# ---------------------------------------------------------------- status


@dataclass
class _Standing:
    """What an item's risk status depends on, now or at a point of its history."""

    status: Status
    has_plan: bool = False
    pending_deviation: bool = False
    risk_adjusted: bool = False


def _status_of(standing: _Standing) -> RiskStatus:
    if standing.status is Status.CLOSED:
        return RiskStatus.CLOSED
    if standing.pending_deviation:
        return RiskStatus.DEVIATION_REQUESTED
    if standing.status is Status.RISK_ACCEPTED:
        return RiskStatus.DEVIATION_APPROVED
    if standing.status is Status.PENDING_VERIFICATION:
        return RiskStatus.REMEDIATING
    if standing.risk_adjusted:
        return RiskStatus.DEVIATION_APPROVED
    if standing.status is Status.IN_PROGRESS:
        return RiskStatus.REMEDIATING if standing.has_plan else RiskStatus.INVESTIGATING
    return RiskStatus.OPEN


def risk_status(detail: ItemDetail) -> RiskStatus:
    """The OSCAL risk status of an item.

    closed → closed; a pending deviation request (FP, RA, OR) →
    deviation-requested; risk accepted (an approved OR, or the AO's
    acceptance) → deviation-approved; pending verification → remediating; an
    approved risk adjustment still in effect → deviation-approved; in progress
    → remediating with a plan (text or milestones), investigating without;
    open → open. A pending extension is not a deviation: the item keeps the
    status its work gives it.
    """
    item = detail.item
    return _status_of(
        _Standing(
            status=Status(item.status),
            has_plan=bool(item.remediation_plan) or bool(detail.milestones),
            pending_deviation=any(
                r.kind == RequestKind.DEVIATION and r.status == RequestStatus.PENDING for r in detail.requests
            ),
            risk_adjusted=item.adjusted_severity is not None,
        )
    )


# ---------------------------------------------------------------- small formats


def _timestamp(value: datetime) -> str:
    """An OSCAL date-time-with-timezone, in UTC with ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _day(value: date) -> str:
    """A calendar date as OSCAL's date-time: midnight UTC (FedRAMP's convention)."""
    return _timestamp(datetime.combine(value, time(0, 0), tzinfo=UTC))


def _line(text: str) -> str:
    """One line, for markup-line fields and prop values (no leading or trailing space)."""
    return " ".join(text.split())


def _prop(name: str, value: str, *, ns: str | None = FEDRAMP_NS) -> dict[str, str]:
    prop = {"name": name, "value": _line(value)}
    if ns is not None:
        prop["ns"] = ns
    return prop


def _control_id(control: str) -> str:
    """``AC-2`` → ``ac-2``, ``SI-2(2)`` → ``si-2.2`` (OSCAL catalog ids); others lower-cased."""
    match = re.fullmatch(r"([A-Z]{2})-(\d+)((?:\(\d+\))*)", control)
    if match is None:
        return control.lower()
    family, number, enhancements = match.groups()
    return ".".join([f"{family.lower()}-{number}", *re.findall(r"\d+", enhancements)])


def _compact(document: dict[str, Any]) -> dict[str, Any]:
    """Without the keys OSCAL would refuse: None values and empty arrays."""
    return {key: value for key, value in document.items() if value is not None and value != []}


def _fedramp_rating(severity: str) -> str:
    return risk_rating(severity).lower()


# ---------------------------------------------------------------- the audit trail


@dataclass(frozen=True)
class _Event:
    seq: int
    actor_id: str
    action: str
    at: datetime
    details: Mapping[str, Any]


def _events(session: Session, details: Sequence[ItemDetail]) -> dict[int, list[_Event]]:
    """The audit events of these items, by item id, oldest first (plain rows: the
    session's identity map stays as it was)."""
    found: dict[int, list[_Event]] = {}
    by_team: dict[str, list[int]] = {}
    for detail in details:
        by_team.setdefault(detail.item.team_id, []).append(detail.item.id)  # type: ignore[arg-type]
    for team_id, ids in by_team.items():
        rows = rows_of(session).execute(
            sa_select(
                col(AuditEvent.item_id), col(AuditEvent.seq), col(AuditEvent.actor_id), col(AuditEvent.action),
                col(AuditEvent.at), col(AuditEvent.details),
            )
            .where(col(AuditEvent.team_id) == team_id, col(AuditEvent.item_id).in_(ids))
            .order_by(col(AuditEvent.seq))
        )
        for item_id, seq, actor_id, action, at, event_details in rows:
            found.setdefault(item_id, []).append(_Event(seq, actor_id, action, at, event_details or {}))
    return found


def _to(details: Mapping[str, Any], key: str) -> Any:
    """The new value of a ``{"from": …, "to": …}`` change in audit details."""
    change = details.get(key)
    return change.get("to") if isinstance(change, Mapping) else None


_STATUSES = frozenset(status.value for status in Status)


def _replay(standing: _Standing, event: _Event, detail: ItemDetail) -> None:
    """Move ``standing`` past one audit event (the vocabulary of ``bot.poam``)."""
    details = event.details
    status = _to(details, "status")
    match event.action:
        case "item.imported":  # arrives whole: its status, the plan and milestones and decisions it came with
            status = details.get("status")
            standing.risk_adjusted = any(isinstance(decided, Mapping) and decided.get("deviation") == Deviation.RISK_ADJUSTMENT
                                         for decided in details.get("deviations") or ())
            standing.has_plan = bool(detail.item.remediation_plan) or any(
                m.created_at <= event.at for m in detail.milestones
            )
        case "item.logged":
            standing.status = Status.IN_PROGRESS if details.get("owner") else Status.OPEN
        case "item.claimed":
            standing.status = Status.IN_PROGRESS
        case "item.released":
            standing.status = Status.OPEN
        case "item.assigned" if standing.status is Status.OPEN:
            standing.status = Status.IN_PROGRESS
        case "item.plan_set" | "milestone.added":
            standing.has_plan = True
        case "risk.accepted":
            standing.status = Status.RISK_ACCEPTED
        case "deviation.requested":
            standing.pending_deviation = True
        case "request.approved" | "request.rejected" | "request.withdrawn":
            standing.pending_deviation = False
            if event.action == "request.approved" and details.get("deviation") == Deviation.RISK_ADJUSTMENT:
                standing.risk_adjusted = True
    if isinstance(status, str) and status in _STATUSES:
        standing.status = Status(status)


def _request_name(kind: Any, deviation: Any) -> str:
    if kind == RequestKind.DEVIATION and deviation in {d.value for d in Deviation}:
        return Deviation(deviation).label.capitalize()
    return {"extension": "Extension", "verification": "Verification"}.get(str(kind), "Request")


def _entry_text(event: _Event, who: Callable[[Any], str | None]) -> tuple[str, str] | None:
    """The risk-log title and description of one audit event; None to leave
    it out. ``who``: a person as the text names them (``Name (U0…)``)."""
    d = event.details
    milestone = f"M{d.get('milestone')}"
    match event.action:
        case "item.logged":
            return "Weakness logged", f"Logged as {d.get('severity')}, due {d.get('due_on')}."
        case "item.imported":
            return "Weakness imported", f"Imported from {d.get('source')}."
        case "item.claimed":
            return "Claimed", f"Claimed by {who(_to(d, 'owner'))}."
        case "item.released":
            owner = (d.get("owner") or {}).get("from")
            if owner and owner != event.actor_id:  # an admin took it back (the actor: logged-by)
                return "Released", f"Taken back from its owner {who(owner)}; it is unowned again."
            return "Released", "The owner gave the item up; it is unowned again."
        case "item.assigned":
            return "Owner assigned", f"Assigned to {who(_to(d, 'owner'))}."
        case "item.plan_set":
            return "Remediation plan set", str(_to(d, "plan") or "The plan changed.")
        case "plan.approved":
            return "Plan approved", "The authorizing official approved the remediation plan."
        case "milestone.added":
            return f"Milestone {milestone} added", f"{milestone} due {d.get('due_on')}: {d.get('description')}"
        case "milestone.completed":
            note = f" {d['note']}" if d.get("note") else ""
            done = f"{milestone} completed on {d.get('completed_on')} (due {d.get('due_on')}).{note}"
            return f"Milestone {milestone} completed", done
        case "milestone.moved":
            change = d.get("due_on") or {}
            return (
                f"Milestone {milestone} moved",
                f"{milestone} moved from {change.get('from')} to {change.get('to')}: {d.get('reason')}",
            )
        case "vendor.updated":
            if d.get("checkin"):
                return "Vendor Check-in", f"Vendor check-in on {_to(d, 'checkin')}."
            product = _to(d, "product")
            return "Vendor dependency", "Waiting on the vendor" + (f" of {product}." if product else ".")
        case "vendor.shipped":
            return "Vendor fix shipped", (
                f"The vendor's fix shipped on {d.get('shipped_on')}: the remediation clock restarts "
                f"(due {d.get('restarted_due_on')} by the deadline policy)."
            )
        case "extension.requested":
            return "Extension requested", f"Extension to {_to(d, 'due_on')} requested: {d.get('reason')}"
        case "deviation.requested":
            name = _request_name(RequestKind.DEVIATION, d.get("deviation"))
            return f"{name} requested", str(d.get("rationale") or f"{name} requested.")
        case "request.approved" | "request.rejected":
            name = _request_name(d.get("kind"), d.get("deviation"))
            verdict = "approved" if event.action == "request.approved" else "rejected"
            reason = f": {d['reason']}" if d.get("reason") else "."
            return f"{name} {verdict}", f"The authorizing official {verdict} the request{reason}"
        case "request.withdrawn":
            name = _request_name(d.get("kind"), d.get("deviation"))
            return f"{name} withdrawn", "The owner withdrew the pending request."
        case "fix.submitted":
            evidence = f": {d['evidence']}" if d.get("evidence") else "."
            return "Fix submitted", f"Fix submitted for verification{evidence}"
        case "fix.verified":
            note = f": {d['note']}" if d.get("note") else "."
            return "Fix verified; risk closed", f"A separate verifier confirmed the fix{note}"
        case "fix.rejected":
            return "Fix sent back", f"The verifier sent the fix back: {d.get('reason')}"
        case "risk.accepted":
            return "Risk accepted", f"The AO accepted the risk until {d.get('until')}: {d.get('rationale')}"
        case "risk.renewed":
            until = d.get("until") or {}
            return "Risk acceptance renewed", (f"The AO renewed the risk acceptance, from {until.get('from')} "
                                               f"to {until.get('to')}: {d.get('rationale')}")
        case "risk.expired":
            return "Risk acceptance ended", f"The risk acceptance until {d.get('until')} ran out; back to work."
        case "risk.ended":
            until = (d.get("until") or {}).get("from")
            return "Risk acceptance ended", (f"On re-review the AO ended the risk acceptance (until {until}); "
                                             f"back to work: {d.get('rationale')}")
        case "item.snoozed":
            return None  # reminders only: nothing happened to the weakness
        case _:
            text = json.dumps(dict(d), ensure_ascii=False, sort_keys=True) if d else event.action
            return event.action, text


# ---------------------------------------------------------------- the document


class _Builder:
    """Turns items into OSCAL parts, collecting the parties and assets they cite."""

    def __init__(self, *, rules: Rules, exported_at: datetime, names: Names) -> None:
        self.rules = rules
        self.exported_at = exported_at
        self.names = names
        self.parties: dict[tuple[str, str], str] = {}
        self.assets: dict[tuple[str, str], str] = {}
        self.tools: dict[tuple[str, str], str] = {}

    def who(self, team_id: str, user_id: str | None) -> str | None:
        """A person as a remark names them: ``Alice Smith (U0ALICE)`` where the name is known."""
        named = person(self.names, team_id, user_id)
        return None if named is None else _line(named)

    def party(self, team_id: str, user_id: str) -> str:
        key = (team_id, user_id)
        if key not in self.parties:
            self.parties[key] = stable_uuid(team_id, "party", user_id)
        return self.parties[key]

    def asset(self, team_id: str, asset: str) -> str:
        key = (team_id, asset)
        if key not in self.assets:
            self.assets[key] = stable_uuid(team_id, "asset", asset)
        return self.assets[key]

    def tool(self, team_id: str, name: str) -> str:
        """The uuid of the component that stands for a scanner (FedRAMP: one per tool)."""
        key = (team_id, name)
        if key not in self.tools:
            self.tools[key] = stable_uuid(team_id, "tool", name)
        return self.tools[key]

    def _actor(self, team_id: str, user_id: str) -> dict[str, Any]:
        return {"actors": [{"type": "party", "actor-uuid": self.party(team_id, user_id)}]}

    def _origin(self, item: Item | Columns) -> dict[str, Any]:
        """Who logged or imported the item and, when known, the tool that found it."""
        origin = self._actor(item.team_id, item.created_by)
        if item.detector:
            origin["actors"].append({"type": "tool", "actor-uuid": self.tool(item.team_id, item.detector)})
        return origin

    # ------------------------------------------------------------ observation

    def observation(self, detail: ItemDetail) -> dict[str, Any]:
        item = detail.item
        team, number = item.team_id, item.number
        source = _source(item.source)
        found_by = item.detector or (source.label if source else item.source)
        remarks = f"Weakness Detector Source: {found_by}."
        if item.source_identifier:
            remarks += f" Weakness Source Identifier: {item.source_identifier}."
        return _compact({
            "uuid": item_uuid(team, number, "observation"),
            "title": _line(item.title),
            "description": item.description or item.title,
            "methods": [_METHODS[source] if source else "UNKNOWN"],
            "types": ["finding"],
            "origins": [self._origin(item)],
            "subjects": [
                {"subject-uuid": self.asset(team, asset), "type": "inventory-item", "title": _line(asset)}
                for asset in item.assets
            ],
            "relevant-evidence": (
                [{"href": item.source_message_url, "description": "The Slack message the finding was reported in."}]
                if item.source_message_url
                else None
            ),
            "collected": _day(item.detected_on),
            "remarks": remarks,
        })

    # ------------------------------------------------------------ risk

    def risk(self, detail: ItemDetail, events: Sequence[_Event]) -> dict[str, Any]:
        item = detail.item
        team, number = item.team_id, item.number
        remediation = self._remediation(detail)
        return _compact({
            "uuid": item_uuid(team, number, "risk"),
            "title": _line(item.title),
            "description": item.description or item.title,
            "statement": self._statement(detail),
            "props": self._risk_props(detail),
            "status": str(risk_status(detail)),
            "characterizations": self._characterizations(detail),
            "mitigating-factors": [
                {"uuid": item_uuid(team, number, f"mitigating-factor/{request.id}"), "description": request.text}
                for request in detail.requests
                if request.kind == RequestKind.DEVIATION
                and request.deviation == Deviation.RISK_ADJUSTMENT
                and request.status in (RequestStatus.PENDING, RequestStatus.APPROVED)
                and request.text
            ],
            "deadline": _day(item.due_on),
            "remediations": [remediation] if remediation else None,
            "risk-log": self._risk_log(detail, events, remediation),
            "related-observations": [{"observation-uuid": item_uuid(team, number, "observation")}],
        })

    def _statement(self, detail: ItemDetail) -> str:
        item = detail.item
        severity = item.adjusted_severity or item.severity
        parts = [f"{str(severity).capitalize()} risk"]
        if item.adjusted_severity:
            parts[0] += f" (adjusted from {item.severity})"
        parts[0] += " to " + (", ".join(item.assets) if item.assets else "the system") + "."
        parts.append(
            f"Detected {item.detected_on.isoformat()}; "
            f"scheduled completion {item.scheduled_completion_on.isoformat()}; due {item.due_on.isoformat()}."
        )
        if item.vendor_dependency:
            parts.append("Waiting on the vendor" + (f" of {item.vendor_product}." if item.vendor_product else "."))
        if item.risk_accepted_until:
            parts.append(f"Risk accepted until {item.risk_accepted_until.isoformat()}.")
        if item.closure == Closure.FALSE_POSITIVE:
            parts.append("Closed as a false positive.")
        elif item.closure == Closure.REMEDIATED:
            parts.append("Closed: remediated and verified.")
        elif item.status == Status.CLOSED:
            closed = f" on {self.rules.day(item.closed_at).isoformat()}" if item.closed_at else ""
            parts.append(f"Closed{closed}, before it was imported.")
        return " ".join(parts)

    def _risk_props(self, detail: ItemDetail) -> list[dict[str, str]]:
        item = detail.item
        props = [_prop("impacted-control-id", _control_id(control)) for control in detail.controls]
        if item.vendor_dependency:
            props.append(_prop("vendor-dependency", "tracking"))
        for deviation, name in (
            (Deviation.FALSE_POSITIVE, "false-positive"),
            (Deviation.RISK_ADJUSTMENT, "risk-adjustment"),
            (Deviation.OPERATIONAL_REQUIREMENT, "operational-requirement"),
        ):
            status = deviation_status(detail, deviation)
            if status is not None:
                props.append(_prop(name, str(status)))
        return props

    def _characterizations(self, detail: ItemDetail) -> list[dict[str, Any]]:
        item = detail.item
        team = item.team_id
        initial: dict[str, Any] = {
            "name": "risk",
            "system": FEDRAMP_SYSTEM,
            "value": _fedramp_rating(item.severity),
            "props": [_prop("state", "initial", ns=None)],
        }
        if item.severity == Severity.CRITICAL:
            initial["remarks"] = "Rated critical; FedRAMP rates it high."
        found = {
            "origin": self._actor(team, item.created_by),
            "facets": [initial, *({"name": "cve-id", "system": CVE_SYSTEM, "value": cve} for cve in item.cves)],
        }
        characterizations = [found]
        if item.adjusted_severity:
            approved = next(
                (
                    r for r in reversed(detail.requests)
                    if r.kind == RequestKind.DEVIATION and r.deviation == Deviation.RISK_ADJUSTMENT
                    and r.status == RequestStatus.APPROVED
                ),
                None,
            )
            adjusted = {
                "name": "risk",
                "system": FEDRAMP_SYSTEM,
                "value": _fedramp_rating(item.adjusted_severity),
                "props": [_prop("state", "adjusted", ns=None)],
            }
            if approved is not None and approved.text:
                adjusted["remarks"] = approved.text
            by = approved.decided_by if approved is not None and approved.decided_by else item.created_by
            characterizations.append({"origin": self._actor(team, by), "facets": [adjusted]})
        return characterizations

    def _remediation(self, detail: ItemDetail) -> dict[str, Any] | None:
        item = detail.item
        if not item.remediation_plan and not detail.milestones:
            return None
        team, number = item.team_id, item.number
        remarks = []
        if item.plan_approved_at is not None:
            remarks.append(f"Plan approved by {self.who(team, item.plan_approved_by)} "
                           f"on {self.rules.day(item.plan_approved_at).isoformat()}.")
        return _compact({
            "uuid": item_uuid(team, number, "remediation"),
            "lifecycle": "completed" if item.closure == Closure.REMEDIATED else "planned",
            "title": "Remediation plan",
            "description": item.remediation_plan or "No overall plan written yet; see the milestones.",
            "origins": [self._actor(team, item.owner_id)] if item.owner_id else None,
            "required-assets": (
                [{"uuid": item_uuid(team, number, "required-assets"), "description": item.resources_required}]
                if item.resources_required
                else None
            ),
            "tasks": [self._task(team, number, milestone) for milestone in detail.milestones],
            "remarks": " ".join(remarks) or None,
        })

    def _task(self, team: str, number: int, milestone: MilestoneRow) -> dict[str, Any]:
        remarks = []
        if milestone.due_on != milestone.planned_due_on:
            remarks.append(f"First planned for {milestone.planned_due_on.isoformat()}.")
        if milestone.completed_at is not None:
            # An imported milestone's completer is not known (the workbook gives only the day).
            by = self.who(team, milestone.completed_by)
            remarks.append(f"Completed on {self.rules.day(milestone.completed_at).isoformat()}"
                           + (f" by {by}." if by else "."))
        return _compact({
            "uuid": item_uuid(team, number, f"milestone/{milestone.number}"),
            "type": "milestone",
            "title": _line(f"M{milestone.number}: {milestone.description}"),
            "description": milestone.description,
            "timing": {"on-date": {"date": _day(milestone.due_on)}},
            "remarks": " ".join(remarks) or None,
        })

    def _risk_log(
        self, detail: ItemDetail, events: Sequence[_Event], remediation: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        item = detail.item
        team, number = item.team_id, item.number
        standing = _Standing(status=Status.OPEN)
        previous: RiskStatus | None = None
        entries = []
        for event in events:
            _replay(standing, event, detail)
            now = _status_of(standing)
            text = _entry_text(event, lambda user_id: self.who(team, user_id))
            if text is None:
                continue
            title, description = text
            entry: dict[str, Any] = {
                "uuid": item_uuid(team, number, f"risk-log/{event.seq}"),
                "title": _line(title),
                "description": description or title,
                "start": _timestamp(event.at),
            }
            if event.action == "vendor.updated" and event.details.get("checkin"):
                entry["props"] = [_prop("vendor-dependency", "vendor-check-in")]
            if event.actor_id != SYSTEM_ACTOR:
                entry["logged-by"] = [{"party-uuid": self.party(team, event.actor_id)}]
            else:
                entry["remarks"] = "Done by the bot (automatic)."
            if now is not previous:
                entry["status-change"] = str(now)
                previous = now
            related = self._related_response(event, remediation, team, number)
            if related:
                entry["related-responses"] = [related]
            entries.append(entry)
        current = risk_status(detail)
        if current is not previous:  # the trail says less than the item does (e.g. data loaded by hand)
            entries.append({
                "uuid": item_uuid(team, number, "risk-log/export"),
                "title": "Status at export",
                "description": f"The item's status when this document was exported: {Status(item.status).label}.",
                "start": _timestamp(self.exported_at),
                "status-change": str(current),
            })
        return {"entries": entries} if entries else None

    @staticmethod
    def _related_response(
        event: _Event, remediation: dict[str, Any] | None, team: str, number: int
    ) -> dict[str, Any] | None:
        if remediation is None:
            return None
        if event.action in ("item.plan_set", "plan.approved"):
            return {"response-uuid": remediation["uuid"]}
        if event.action.startswith("milestone.") and isinstance(event.details.get("milestone"), int):
            task = item_uuid(team, number, f"milestone/{event.details['milestone']}")
            if any(t["uuid"] == task for t in remediation.get("tasks", [])):
                return {"response-uuid": remediation["uuid"], "related-tasks": [{"task-uuid": task}]}
        return None

    # ------------------------------------------------------------ poam-item

    def poam_item(self, detail: ItemDetail) -> dict[str, Any]:
        item = detail.item
        team, number = item.team_id, item.number
        return {
            "uuid": item_uuid(team, number, "poam-item"),
            "title": _line(item.title),
            "description": item.description or item.title,
            "props": [_prop("POAM-ID", self.rules.label(number))],
            "related-observations": [{"observation-uuid": item_uuid(team, number, "observation")}],
            "related-risks": [{"risk-uuid": item_uuid(team, number, "risk")}],
        }


def _chunks(details: Iterable[ItemDetail], size: int) -> Iterator[list[ItemDetail]]:
    iterator = iter(details)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Array:
    """One JSON array written element by element into a spool (memory, then disk)."""

    def __init__(self) -> None:
        self.file: IO[str] = SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8")
        self.count = 0

    def add(self, element: dict[str, Any]) -> None:
        self.file.write(("," if self.count else "") + "\n      " + json.dumps(element, ensure_ascii=False))
        self.count += 1

    def write_to(self, out: IO[str], key: str) -> None:
        out.write(f',\n    "{key}": [')
        self.file.seek(0)
        shutil.copyfileobj(self.file, out)
        out.write("\n    ]")

    def close(self) -> None:
        self.file.close()


def _audit_version(session: Session, team_id: str) -> int:
    workspace = session.get(Workspace, team_id)
    return workspace.audit_seq if workspace is not None else 0


def write_oscal(
    details: Iterable[ItemDetail],
    out: IO[str],
    *,
    session: Session,
    rules: Rules,
    exported_at: datetime,
    team_id: str,
    system: Columns | None,
    title: str,
    csp: str = "",
    document_uuid: uuid.UUID | None = None,
    names: Names | None = None,
) -> int:
    """Write workspace ``team_id``'s items as one OSCAL POA&M; returns how many items.

    ``details`` are the items to export (``iter_item_details``), all of
    ``team_id``; ``session`` reads their audit trails (for the risk logs) in
    batches. ``system`` is the information system the POA&M is about: its
    FedRAMP package ID, else a uuid of its name key, is the ``system-id`` and
    its AO the ``authorizing-official`` party; None (a whole workspace)
    derives the ``system-id`` from the workspace. ``csp`` names the
    ``cloud-service-provider`` party (none when empty). ``title`` is ``metadata.title``. ``metadata.version`` is the
    export date and the workspace's audit sequence number, so it changes
    exactly when something was recorded. ``document_uuid`` defaults to a
    fresh uuid4 (the one uuid that is new each export). A party is named by
    ``names`` where it has the person, else by their Slack user id.

    Observations, risks and poam-items are spooled (to disk past a few MB)
    while the items stream by, then written after the metadata, which needs
    every party they cite.
    """
    builder = _Builder(rules=rules, exported_at=exported_at, names=names or {})
    arrays = {"observations": _Array(), "risks": _Array(), "poam-items": _Array()}
    try:
        count = 0
        for chunk in _chunks(details, _CHUNK):
            events = _events(session, chunk)
            for detail in chunk:
                arrays["observations"].add(builder.observation(detail))
                arrays["risks"].add(builder.risk(detail, events.get(detail.item.id, [])))  # type: ignore[arg-type]
                arrays["poam-items"].add(builder.poam_item(detail))
                count += 1
        if count == 0:
            arrays["poam-items"].add(_no_items(team_id, exported_at))
        head = _head(
            builder, session=session, team_id=team_id, system=system, title=title, csp=csp,
            exported_at=exported_at, document_uuid=document_uuid or uuid.uuid4(), names=names or {},
        )
        out.write('{\n  "plan-of-action-and-milestones": ')
        text = json.dumps(head, indent=2, ensure_ascii=False)
        out.write(text[:-2].replace("\n", "\n  "))  # without the closing brace, indented one level
        for key, array in arrays.items():
            if array.count:  # an OSCAL array is never empty
                array.write_to(out, key)
        out.write("\n  }\n}\n")
    finally:
        for array in arrays.values():
            array.close()
    return count


def _no_items(team_id: str, exported_at: datetime) -> dict[str, Any]:
    """OSCAL needs one poam-item at least: this one says there are none (and has no POAM-ID)."""
    return {
        "uuid": stable_uuid(team_id, "no-items"),
        "title": "No POA&M items",
        "description": f"There were no POA&M items to report when this was exported ({_timestamp(exported_at)}).",
    }


def _head(
    builder: _Builder,
    *,
    session: Session,
    team_id: str,
    system: Columns | None,
    title: str,
    csp: str,
    exported_at: datetime,
    document_uuid: uuid.UUID,
    names: Names,
) -> dict[str, Any]:
    roles, responsible = [], []
    if system is not None and system.ao_user_id:
        roles.append({"id": AO_ROLE, "title": "Authorizing Official"})
        responsible.append({"role-id": AO_ROLE, "party-uuids": [builder.party(team_id, system.ao_user_id)]})
    parties = [
        {"uuid": party_uuid, "type": "person", "name": _line(names.get((team, user_id), "")) or user_id,
         "remarks": f"Slack user ID {user_id}." if (team, user_id) in names else "Slack user ID."}
        for (team, user_id), party_uuid in sorted(builder.parties.items())
    ]
    if _line(csp):
        provider = stable_uuid(team_id, "organization", _line(csp))
        parties.insert(0, {"uuid": provider, "type": "organization", "name": _line(csp)})
        roles.insert(0, {"id": CSP_ROLE, "title": "Cloud Service Provider"})
        responsible.insert(0, {"role-id": CSP_ROLE, "party-uuids": [provider]})
    metadata = _compact({
        "title": _line(title) or "Plan of Action and Milestones",
        "last-modified": _timestamp(exported_at),
        "version": f"{exported_at.astimezone(UTC).date().isoformat()}.{_audit_version(session, team_id)}",
        "oscal-version": OSCAL_VERSION,
        "roles": roles,
        "parties": parties,
        "responsible-parties": responsible,
    })
    subject = f"system/{system.name_key}" if system is not None else "workspace"
    head: dict[str, Any] = {
        "uuid": str(document_uuid),
        "metadata": metadata,
        "system-id": (
            {"identifier-type": FEDRAMP_IDENTIFIER_TYPE, "id": system.fedramp_id}
            if system is not None and system.fedramp_id
            else {"identifier-type": UUID_IDENTIFIER_TYPE, "id": stable_uuid(team_id, subject)}
        ),
    }
    definitions = _compact({
        "components": [
            {
                "uuid": tool_uuid,
                "type": "software",
                "title": _line(name),
                "description": f"The tool that found the weaknesses whose observations name it: {name}.",
                "props": [_prop("name", _line(name))],
                "status": {"state": "operational"},
            }
            for (_, name), tool_uuid in sorted(builder.tools.items())
        ],
        "inventory-items": [
            {
                "uuid": asset_uuid,
                "description": f"Asset {asset}",
                "props": [_prop("asset-id", asset, ns=None)],
            }
            for (_, asset), asset_uuid in sorted(builder.assets.items())
        ],
    })
    if definitions:
        head["local-definitions"] = definitions
    return head
