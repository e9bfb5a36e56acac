"""The POA&M as JSON: every item with its milestones and milestone changes.

The shape is documented in ``docs/export-json.md`` and versioned by
``"version"``; fields are only ever added within a version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import IO, Any

from bot.poam.actor import Rules
from bot.poam.item_details import ItemDetail
from bot.poam.item_lists import is_overdue

FORMAT = "poam-bot/export"
VERSION = 1


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def item_document(detail: ItemDetail, *, rules: Rules, today: date) -> dict[str, Any]:
    item, system = detail.item, detail.system
    milestone_numbers = {m.id: m.number for m in detail.milestones}
    return {
        "id": rules.label(item.number),
        "team_id": item.team_id,
        "number": item.number,
        "system": {
            "name": system.name,
            "impact": system.impact,
            "organization": system.organization,
            "ao": system.ao_user_id,
            "fedramp_id": system.fedramp_id,
        },
        "title": item.title,
        "description": item.description,
        "status": item.status,
        "overdue": is_overdue(item, today=today),
        "severity": item.severity,
        "adjusted_severity": item.adjusted_severity,
        "controls": detail.controls,
        "source": item.source,
        "detector": item.detector,
        "source_identifier": item.source_identifier,
        "assets": item.assets,
        "cves": item.cves,
        "owner": item.owner_id,
        "detected_on": _iso(item.detected_on),
        "scheduled_completion_on": _iso(item.scheduled_completion_on),
        "due_on": _iso(item.due_on),
        "remediation_plan": item.remediation_plan,
        "resources_required": item.resources_required,
        "vendor": {
            "dependency": item.vendor_dependency,
            "product": item.vendor_product,
            "last_checkin_on": _iso(item.last_vendor_checkin_on),
        },
        "origin_channel": item.origin_channel_id,
        "source_message_url": item.source_message_url,
        "created_by": item.created_by,
        "created_at": _iso(item.created_at),
        "updated_at": _iso(item.updated_at),
        "closed_at": _iso(item.closed_at),
        "closure": item.closure,
        "found_again_after": rules.label(item.recurs_number) if item.recurs_number is not None else None,
        "plan_approval": (
            {"by": item.plan_approved_by, "at": _iso(item.plan_approved_at)} if item.plan_approved_at else None
        ),
        "risk_accepted_until": _iso(item.risk_accepted_until),
        "version": item.version,
        "milestones": [
            {
                "number": m.number,
                "description": m.description,
                "planned_due_on": _iso(m.planned_due_on),
                "due_on": _iso(m.due_on),
                "completed_at": _iso(m.completed_at),
                "completed_by": m.completed_by,
            }
            for m in detail.milestones
        ],
        "milestone_changes": [
            {
                "seq": c.seq,
                "milestone": milestone_numbers[c.milestone_id],
                "kind": c.kind,
                "old_due_on": _iso(c.old_due_on),
                "new_due_on": _iso(c.new_due_on),
                "reason": c.reason,
                "changed_by": c.changed_by,
                "changed_at": _iso(c.changed_at),
            }
            for c in detail.changes
        ],
        "requests": [
            {
                "kind": r.kind,
                "deviation": r.deviation,
                "status": r.status,
                "text": r.text,
                "adjusted_severity": r.adjusted_severity,
                "until_on": _iso(r.until_on),
                "new_due_on": _iso(r.new_due_on),
                "requested_by": r.requested_by,
                "requested_at": _iso(r.requested_at),
                "decided_by": r.decided_by,
                "decided_at": _iso(r.decided_at),
                "decision_note": r.decision_note,
            }
            for r in detail.requests
        ],
    }


def write_json(
    details: Iterable[ItemDetail],
    out: IO[str],
    *,
    rules: Rules,
    exported_at: datetime,
    team_id: str | None,
    system_name: str | None,
) -> int:
    """Write the export document item by item (no list of 100k dicts in memory); returns the count."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": exported_at.isoformat(),
        "filter": {"team_id": team_id, "system": system_name},
    }
    out.write(json.dumps(header, indent=2)[:-2] + ',\n  "items": [')
    count = 0
    today = rules.day(exported_at)
    for detail in details:
        document = json.dumps(item_document(detail, rules=rules, today=today), ensure_ascii=False)
        out.write(("," if count else "") + "\n    " + document)
        count += 1
    out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count
