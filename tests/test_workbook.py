"""The FedRAMP workbook: layout, formats, and export → import round trip."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.interchange.exports import ExportFormat, export
from bot.interchange.importing import read_findings
from bot.interchange.workbook_import import rating, template_finding
from bot.poam import items, milestones, review
from bot.poam.actor import Actor, Role, Rules
from bot.poam.clock import FixedClock
from bot.poam.errors import NotFound
from bot.poam.imports import import_findings
from bot.poam.item_details import ItemDetail, item_details, show_item
from bot.poam.severity import Severity
from bot.poam.systems import Impact, add_system, change_system
from bot.reminders.people import remember_person
from bot.store.engine import unit_of_work
from bot.store.models import AuditEvent

SAMPLES = Path(__file__).parent / "samples"

# The 31 column headers of GSA's FedRAMP POA&M template, Rev 5, as listed in DOMAIN.md.
DOMAIN_COLUMNS = [
    "POAM ID", "Controls", "Weakness Name", "Weakness Description", "Weakness Detector Source",
    "Weakness Source Identifier", "Asset Identifier", "Point of Contact", "Resources Required",
    "Overall Remediation Plan", "Original Detection Date", "Scheduled Completion Date", "Planned Milestones",
    "Milestone Changes", "Status Date", "Vendor Dependency", "Last Vendor Check-in Date",
    "Vendor Dependent Product Name", "Original Risk Rating", "Adjusted Risk Rating", "Risk Adjustment",
    "False Positive", "Operational Requirement", "Deviation Rationale", "Supporting Documents", "Comments",
    "Auto-Approve", "Binding Operational Directive 22-01 tracking",
    "Binding Operational Directive 22-01 Due Date", "CVE", "Service Name",
]


def _workbook_bytes(
    engine: Engine, actor: Actor, team: str | None = None, fmt: ExportFormat = ExportFormat.XLSX
) -> bytes:
    out = io.BytesIO()
    with unit_of_work(engine) as session:
        export(session, out, fmt=fmt, rules=actor.rules, now=actor.now(), team_id=team or actor.team_id,
               system_name=None, csp="Acme Cloud")
    return out.getvalue()


def _workbook(engine: Engine, actor: Actor, team: str | None = None) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(_workbook_bytes(engine, actor, team)))


def _rows(sheet) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """The item rows of a tab, by column header."""
    rows = []
    for cells in sheet.iter_rows(min_row=8, values_only=True):
        if all(value is None for value in cells):
            break
        rows.append(dict(zip(DOMAIN_COLUMNS, cells, strict=True)))
    return rows


@pytest.fixture
def populated(engine: Engine, make_actor) -> tuple[Actor, Actor]:  # type: ignore[no-untyped-def]
    owner, ao = make_actor("U0OWNER01"), make_actor("U0AO00001", Role.AO)
    with unit_of_work(engine) as s:
        items.log_item(s, owner, title="TLS 1.0 on the LB", severity=Severity.CRITICAL, controls=["SC-8", "SC-13"],
                       assets=["lb-01", "lb-02"], description="=HYPERLINK(\"http://x\") looks like a formula", cves=["CVE-2024-3094"], detected_on=date(2026, 11, 2), owner_id=owner.user_id)
        items.set_plan(s, owner, number=1, plan="Disable TLS 1.0", resources="2 hours")
        milestones.add_milestone(s, owner, number=1, description="Change the LB policy", due_on=date(2026, 11, 25))
        milestones.add_milestone(s, owner, number=1, description="Rescan", due_on=date(2026, 11, 28))
        milestones.move_milestone(s, owner, number=1, milestone=1, due_on=date(2026, 11, 27), reason="change freeze")
        items.log_item(s, owner, title="Old finding", severity=Severity.LOW, owner_id=owner.user_id)
        review.request_deviation(s, owner, number=2, deviation=review.Deviation.FALSE_POSITIVE, rationale="Not installed")
        review.decide(s, ao, number=2, approve=True)
        # The names Slack gave them, as a request of each records them (the AO's is not known).
        remember_person(s, team_id=owner.team_id, user_id=owner.user_id, tz=owner.tz, name="Olive Owner",
                        clock=owner.clock)
    return owner, ao


def test_tabs_heading_and_headers(engine: Engine, populated: tuple[Actor, Actor]) -> None:
    owner, _ = populated
    book = _workbook(engine, owner)
    assert book.sheetnames[:2] == ["Open POA&M Items", "Closed POA&M Items"]
    sheet = book["Open POA&M Items"]
    assert [c.value for c in sheet[2][:4]] == ["CSP", "System Name", "Impact Level", "POAM Date"]
    assert [c.value for c in sheet[3][:3]] == ["Acme Cloud", "Default", "Moderate"]
    assert [c.value for c in sheet[5]] == DOMAIN_COLUMNS
    assert sheet["A8"].value == "POAM-1" and sheet["A9"].value is None
    assert book["Closed POA&M Items"]["A8"].value == "POAM-2"


def test_the_layout_around_the_items_is_gsas(engine: Engine, populated: tuple[Actor, Actor]) -> None:
    """Row 7 was reworded ("Text" for a unique identifier and a rationale),
    no headers stayed in sight, and the Record of Changes sat a row high."""
    owner, _ = populated
    book = _workbook(engine, owner)
    for tab in ("Open POA&M Items", "Closed POA&M Items"):
        sheet = book[tab]
        assert sheet.freeze_panes == "A6"
        formats = [cell.value for cell in sheet[7]]
        assert formats[0] == "Unique Identifier" and formats[23] == "Deviation Type : Rationale"
        assert formats[13] == "(##) New/Update/Complete xxxx-xx-xx  : Description of change"
    changes = book["Record of Changes"]
    assert (changes["B2"].value, changes["B3"].value, changes["C4"].value) == (
        "Record of Changes", "Date", "Exported by poam-bot")


def test_the_heading_says_what_system_set_made_of_the_system(
    engine: Engine, populated: tuple[Actor, Actor], make_actor
) -> None:  # type: ignore[no-untyped-def]
    owner, _ = populated
    with unit_of_work(engine) as s:
        change_system(s, make_actor("U0ADMIN01", Role.ADMIN), name="default", impact=Impact.HIGH)
    assert [c.value for c in _workbook(engine, owner)["Open POA&M Items"][3][:3]] == ["Acme Cloud", "Default", "High"]


def test_item_row_uses_the_template_formats(engine: Engine, populated: tuple[Actor, Actor]) -> None:
    owner, _ = populated
    sheet = _workbook(engine, owner)["Open POA&M Items"]
    row = {header: cell.value for header, cell in zip(DOMAIN_COLUMNS, sheet[8], strict=True)}
    assert row["Planned Milestones"] == "(01) 2026-11-25: Change the LB policy\n\n(02) 2026-11-28: Rescan"
    assert row["Milestone Changes"] == "(01) Update 2026-11-27 : moved from 2026-11-25: change freeze"
    assert row["Original Detection Date"] == datetime(2026, 11, 2)  # a real Excel date
    assert sheet.cell(row=8, column=11).number_format == "yyyy-mm-dd"
    assert row["Original Risk Rating"] == "High" and "Original severity: Critical." in row["Comments"]
    assert row["Adjusted Risk Rating"] == "N/A"
    assert row["Weakness Description"].startswith("=HYPERLINK")
    assert sheet.cell(row=8, column=4).data_type == "s"  # text, never a live formula
    assert (row["Risk Adjustment"], row["False Positive"], row["Operational Requirement"]) == ("No", "No", "No")
    assert row["Asset Identifier"] == "lb-01\nlb-02"  # one per line, as the template asks
    assert row["Weakness Detector Source"] == "Self-Identified"  # logged in Slack: no scanner
    assert row["Point of Contact"] == "Olive Owner (U0OWNER01)"  # a name an assessor reads, the id imports read
    closed = _workbook(engine, owner)["Closed POA&M Items"]
    closed_row = {header: cell.value for header, cell in zip(DOMAIN_COLUMNS, closed[8], strict=True)}
    assert closed_row["False Positive"] == "Yes"
    assert "approved by U0AO00001 on" in closed_row["Comments"]  # a name never learnt: the id
    assert closed_row["Deviation Rationale"] == "False positive: Not installed"


def test_its_dates_are_days_of_the_deployments_time_zone(engine: Engine, populated: tuple[Actor, Actor]) -> None:
    """Fri 20 Nov 15:00 UTC is Sat 21 Nov in Kiritimati (UTC+14): a team
    there closing an item on the 21st read the 20th (UTC's day), a day before
    items its people logged that day were detected."""
    owner, _ = populated
    rules = replace(owner.rules, timezone=ZoneInfo("Pacific/Kiritimati"))
    out = io.BytesIO()
    with unit_of_work(engine) as session:
        done = export(session, out, fmt=ExportFormat.XLSX, rules=rules, now=owner.now(), team_id=owner.team_id,
                      system_name=None, csp="Acme Cloud")
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    assert done.filename.endswith("-20261121.xlsx")
    assert book["Open POA&M Items"]["D3"].value == datetime(2026, 11, 21)  # the POAM Date
    (closed,) = _rows(book["Closed POA&M Items"])
    assert closed["Status Date"] == datetime(2026, 11, 21)
    assert "approved by U0AO00001 on 2026-11-21" in closed["Comments"]


def test_comments_say_what_an_item_waits_on(engine: Engine, populated: tuple[Actor, Actor]) -> None:
    """A fix waiting on its verifier or an extension asked of the AO left no
    trace in the row (a CSV's Status said one; the template has no column)."""
    owner, _ = populated

    def comments() -> str:
        (row, *_) = _rows(_workbook(engine, owner)["Open POA&M Items"])
        return str(row["Comments"])

    with unit_of_work(engine) as s:
        review.request_extension(s, owner, number=1, due_on=date(2027, 3, 1), reason="Vendor patch late")
    assert ("Extension to 2027-03-01 requested by Olive Owner (U0OWNER01) on 2026-11-20; "
            "awaiting the authorizing official.") in comments()
    with unit_of_work(engine) as s:
        review.withdraw_request(s, owner, number=1)
        review.submit_fix(s, owner, number=1)
    said = comments()
    assert ("Remediation submitted for verification by Olive Owner (U0OWNER01) on 2026-11-20; "
            "awaiting an independent verifier.") in said and "Extension" not in said


def test_export_then_import_into_an_empty_workspace_gives_the_same_items(
    engine: Engine, populated: tuple[Actor, Actor], make_actor, clock: FixedClock
) -> None:  # type: ignore[no-untyped-def]
    owner, ao = populated
    with unit_of_work(engine) as s:  # an approved extension: the due date is no longer the scheduled one
        review.request_extension(s, owner, number=1, due_on=date(2027, 3, 1), reason="Vendor patch late")
        review.decide(s, ao, number=1, approve=True)
    out = io.BytesIO()
    with unit_of_work(engine) as s:
        export(s, out, fmt=ExportFormat.XLSX, rules=owner.rules, now=owner.now(), team_id=owner.team_id,
               system_name=None, csp="Acme")
    clock.advance(days=9)  # restored some days later
    importer = make_actor("U0ADMIN01", Role.ADMIN, team="T0002")
    with unit_of_work(engine) as s:
        summary = import_findings(s, importer, findings=read_findings("poam.xlsx", out.getvalue()), source_name="poam.xlsx")
    assert (summary.new, summary.updated, summary.skipped) == (2, 0, 0)
    with unit_of_work(engine) as s:
        before = item_details(s, [items.load_item(s, owner, number=n) for n in (1, 2)])
        after = item_details(s, [items.load_item(s, importer, number=n) for n in (1, 2)])
    for old, new in zip(before, after, strict=True):
        for name in ("title", "description", "severity", "assets", "cves", "detected_on", "scheduled_completion_on", "owner_id",
                     "remediation_plan", "resources_required", "due_on"):
            assert getattr(new.item, name) == getattr(old.item, name), name
        assert new.controls == old.controls
        assert [(m.planned_due_on, m.description) for m in new.milestones] == [
            (m.planned_due_on, m.description) for m in old.milestones
        ]
    assert after[1].item.status == "closed"
    assert after[1].item.closed_at.date() == before[1].item.closed_at.date() != importer.today()  # its Status Date
    (restored_closed,) = _rows(_workbook(engine, importer)["Closed POA&M Items"])
    assert restored_closed["Status Date"].date() == before[1].item.closed_at.date()  # and exports it again
    assert after[0].item.due_on == date(2027, 3, 1) != after[0].item.scheduled_completion_on
    with unit_of_work(engine) as s:
        again = import_findings(s, importer, findings=read_findings("poam.xlsx", out.getvalue()), source_name="poam.xlsx")
    assert again.new == 0


def test_a_restored_workbook_keeps_each_items_id(engine: Engine, populated: tuple[Actor, Actor], make_actor) -> None:  # type: ignore[no-untyped-def]
    """Numbered in file order (the open tab, then the closed one), POAM-2,
    closed, came back as POAM-3, and POAM-3 as POAM-2."""
    owner, _ = populated
    with unit_of_work(engine) as s:
        items.log_item(s, owner, title="Weak SSH ciphers", severity=Severity.LOW)
    out = io.BytesIO()
    with unit_of_work(engine) as s:
        export(s, out, fmt=ExportFormat.XLSX, rules=owner.rules, now=owner.now(), team_id=owner.team_id,
               system_name=None, csp="Acme")
    importer = make_actor("U0ADMIN01", Role.ADMIN, team="T0002")
    with unit_of_work(engine) as s:
        summary = import_findings(s, importer, findings=read_findings("poam.xlsx", out.getvalue()), source_name="poam.xlsx")
    assert summary.numbers == [1, 2, 3]
    with unit_of_work(engine) as s:
        titles = {actor.team_id: [items.load_item(s, actor, number=n).title for n in (1, 2, 3)]
                  for actor in (owner, importer)}
    assert titles[importer.team_id] == titles[owner.team_id] == ["TLS 1.0 on the LB", "Old finding", "Weak SSH ciphers"]


def _milestone_history(detail: ItemDetail, rules: Rules) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """An item's milestones and their changes, as an assessor compares them (no ids, no people)."""
    by_id = {m.id: m.number for m in detail.milestones}
    return (
        [(m.number, m.description, m.planned_due_on, m.due_on, m.completed_at and rules.day(m.completed_at))
         for m in detail.milestones],
        [(by_id[c.milestone_id], c.kind, c.old_due_on, c.new_due_on, c.reason) for c in detail.changes],
    )


@pytest.mark.parametrize("fmt", [ExportFormat.XLSX, ExportFormat.CSV])
def test_milestones_come_back_moved_completed_and_added_as_exported(
    engine: Engine, make_actor, clock: FixedClock, fmt: ExportFormat
) -> None:  # type: ignore[no-untyped-def]
    """Read from Planned Milestones alone, a restored item came back as first
    planned: a moved milestone on its old date, a completed one open (and
    late in the morning DM), one added after the plan's approval missing."""
    owner, ao = make_actor("U0OWNER01"), make_actor("U0AO00001", Role.AO)
    with unit_of_work(engine) as s:
        items.log_item(s, owner, title="Patch the LB", severity=Severity.MODERATE, owner_id=owner.user_id,
                       detected_on=date(2026, 11, 2))
        for description, due_on in (("Change the policy", date(2026, 11, 25)), ("Rescan", date(2026, 12, 20)),
                                    ("Report", date(2026, 12, 22))):
            milestones.add_milestone(s, owner, number=1, description=description, due_on=due_on)
        items.set_plan(s, owner, number=1, plan="Tighten the TLS policy")
    with unit_of_work(engine) as s:
        review.approve_plan(s, ao, number=1)
    with unit_of_work(engine) as s:
        milestones.move_milestone(s, owner, number=1, milestone=2, due_on=date(2026, 12, 18), reason="window moved")
        milestones.add_milestone(s, owner, number=1, description="Tell the customer", due_on=date(2026, 12, 19))
        milestones.complete_milestone(s, owner, number=1, milestone=1)
        milestones.move_milestone(s, owner, number=1, milestone=4, due_on=date(2026, 12, 21), reason="after the rescan")
    clock.advance(days=3)
    with unit_of_work(engine) as s:
        milestones.complete_milestone(s, owner, number=1, milestone=3, note="Sent: https://x/report")
    exported = _workbook_bytes(engine, owner, fmt=fmt)
    clock.advance(days=2)  # restored some days later, elsewhere
    importer = make_actor("U0ADMIN01", Role.ADMIN, team="T0002")
    name = f"poam.{fmt.suffix}"
    with unit_of_work(engine) as s:
        import_findings(s, importer, findings=read_findings(name, exported), source_name=name)
    with unit_of_work(engine) as s:
        before, after = (item_details(s, [items.load_item(s, actor, number=1)])[0] for actor in (owner, importer))
    assert _milestone_history(after, importer.rules) == _milestone_history(before, owner.rules)
    assert [m.completed_at is not None for m in after.milestones] == [True, False, True, False]
    assert {m.completed_by for m in after.milestones} == {None}  # not in the file: nobody is barred from verifying
    assert after.item.source_identifier is None  # a blank Weakness Source Identifier stays blank
    first, again = (_first_row(data, fmt) for data in (exported, _workbook_bytes(engine, importer, fmt=fmt)))
    assert first["Milestone Changes"].count("\n\n") == 4
    assert "(04) New 2026-12-19 : Tell the customer" in first["Milestone Changes"]
    for cell in ("Planned Milestones", "Milestone Changes", "Weakness Source Identifier"):
        assert again[cell] == first[cell], cell
    oscal = json.loads(_workbook_bytes(engine, importer, fmt=ExportFormat.OSCAL))
    (task,) = [task for risk in oscal["plan-of-action-and-milestones"]["risks"]
               for remediation in risk.get("remediations", ()) for task in remediation["tasks"]
               if task["title"].startswith("M1:")]
    assert task["remarks"] == "Completed on 2026-11-20."  # by nobody the file names


def _all_rows(data: bytes, fmt: ExportFormat) -> dict[object, dict[str, object]]:
    """Every item's row of an export (both tabs), by Weakness Name."""
    if fmt is ExportFormat.CSV:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    else:
        book = openpyxl.load_workbook(io.BytesIO(data))
        rows = [*_rows(book["Open POA&M Items"]), *_rows(book["Closed POA&M Items"])]
    return {row["Weakness Name"]: row for row in rows}


#: What a row says of its deviations and its vendor.
_DEVIATION_CELLS = ("Adjusted Risk Rating", "Risk Adjustment", "False Positive", "Operational Requirement",
                    "Deviation Rationale", "Last Vendor Check-in Date", "Vendor Dependency")


@pytest.mark.parametrize("fmt", [ExportFormat.XLSX, ExportFormat.CSV])
def test_deviations_and_vendor_check_ins_come_back_as_exported(
    engine: Engine, make_actor, clock: FixedClock, fmt: ExportFormat
) -> None:  # type: ignore[no-untyped-def]
    """Restored, a High item adjusted to Low (due in 180 days) came back High
    with no adjustment, an operational requirement in progress, a false
    positive closed as "imported", a vendor check-in gone (its reminder due)."""
    owner, ao = make_actor("U0OWNER01"), make_actor("U0AO00001", Role.AO)
    asks = [
        ("Old Apache on web-01", Severity.HIGH, review.Deviation.RISK_ADJUSTMENT, {"adjusted_severity": Severity.LOW}),
        ("SMBv1 on the print server", Severity.MODERATE, review.Deviation.OPERATIONAL_REQUIREMENT,
         {"until": date(2027, 5, 1)}),
        ("Scanner misread a banner", Severity.LOW, review.Deviation.FALSE_POSITIVE, {}),
    ]
    with unit_of_work(engine) as s:
        for number, (title, severity, deviation, shape) in enumerate(asks, start=1):
            items.log_item(s, owner, title=title, severity=severity, owner_id=owner.user_id,
                           detected_on=date(2026, 11, 2))
            review.request_deviation(s, owner, number=number, deviation=deviation, rationale=f"Why {number}", **shape)
            review.decide(s, ao, number=number, approve=True)
        items.log_item(s, owner, title="Waits on the vendor", severity=Severity.MODERATE, owner_id=owner.user_id)
        review.set_vendor(s, owner, number=4, product="Acme VPN", checkin=True)
        items.log_item(s, owner, title="Asked about", severity=Severity.MODERATE, owner_id=owner.user_id)
        review.request_deviation(s, owner, number=5, deviation=review.Deviation.RISK_ADJUSTMENT, rationale="Later",
                                 adjusted_severity=Severity.LOW)
    exported = _workbook_bytes(engine, owner, fmt=fmt)
    clock.advance(days=2)
    importer = make_actor("U0ADMIN01", Role.ADMIN, team="T0002")
    name = f"poam.{fmt.suffix}"
    with unit_of_work(engine) as s:
        summary = import_findings(s, importer, findings=read_findings(name, exported), source_name=name)
    assert (summary.new, summary.unrestored_deviations) == (5, 1)
    assert "1 deviation(s) not restored (pending, without their rating" in str(summary)
    with unit_of_work(engine) as s:
        restored = {n: items.load_item(s, importer, number=n) for n in range(1, 6)}
        was = {n: items.load_item(s, owner, number=n) for n in range(1, 6)}
    for n in range(1, 6):
        for field in ("severity", "adjusted_severity", "status", "risk_accepted_until", "due_on", "closure",
                      "last_vendor_checkin_on", "vendor_dependency"):
            assert getattr(restored[n], field) == getattr(was[n], field), (n, field)
    assert (restored[1].adjusted_severity, restored[2].status, restored[3].closure) == (
        Severity.LOW, "risk_accepted", "false_positive")
    first, again = (_all_rows(data, fmt) for data in (exported, _workbook_bytes(engine, importer, fmt=fmt)))
    for title, row in first.items():
        for cell in _DEVIATION_CELLS:
            expected = "No" if title == "Asked about" and cell == "Risk Adjustment" else row[cell]
            if title == "Asked about" and cell == "Deviation Rationale":
                expected = None if fmt is ExportFormat.XLSX else ""
            assert again[title][cell] == expected, (title, cell)
    assert "Risk adjusted to Low (recorded in a POA&M imported on" in str(again["Old Apache on web-01"]["Comments"])


def test_a_workspaces_csv_restores_each_row_into_the_system_it_names(engine: Engine, make_actor) -> None:  # type: ignore[no-untyped-def]
    """The System column was read and dropped: every row of a workspace-wide
    CSV went into one system."""
    admin = make_actor("U0ADMIN01", Role.ADMIN)
    with unit_of_work(engine) as s:
        add_system(s, admin, name="Payments")
        items.log_item(s, admin, title="Default's weakness", severity=Severity.LOW)
        items.log_item(s, admin, title="Payments' weakness", severity=Severity.LOW, system_name="Payments")
    exported = _workbook_bytes(engine, admin, fmt=ExportFormat.CSV)
    restorer = make_actor("U0ADMIN01", Role.ADMIN, team="T0002")
    with unit_of_work(engine) as s:
        with pytest.raises(NotFound, match="row 3: there is no system called `Payments` in this workspace"):
            import_findings(s, restorer, findings=read_findings("poam.csv", exported), source_name="poam.csv")
    with unit_of_work(engine) as s:
        add_system(s, restorer, name="payments")
    with unit_of_work(engine) as s:
        summary = import_findings(s, restorer, findings=read_findings("poam.csv", exported), source_name="poam.csv")
    assert summary.new == 2
    one = make_actor("U0ADMIN01", Role.ADMIN, team="T0003")  # a system named for the import takes every row
    with unit_of_work(engine) as s:
        import_findings(s, one, findings=read_findings("poam.csv", exported), source_name="poam.csv",
                        system_name="Default")
    with unit_of_work(engine) as s:
        restored = [show_item(s, actor, number=n) for actor in (restorer, one) for n in (1, 2)]
    assert [(d.item.title, d.system.name) for d in restored] == [
        ("Default's weakness", "Default"), ("Payments' weakness", "payments"),
        ("Default's weakness", "Default"), ("Payments' weakness", "Default")]
    with unit_of_work(engine, read_only=True) as s:  # the trail says where each went, as item.logged does
        trail = s.exec(select(AuditEvent).where(AuditEvent.team_id == "T0002", AuditEvent.action == "item.imported")
                       .order_by(col(AuditEvent.seq))).all()
    assert [event.details["system"] for event in trail] == ["Default", "payments"]


def _first_row(data: bytes, fmt: ExportFormat) -> dict[str, object]:
    """The first open item's row of an export, by column header."""
    if fmt is ExportFormat.CSV:
        return dict(next(csv.DictReader(io.StringIO(data.decode("utf-8-sig")))))
    return _rows(openpyxl.load_workbook(io.BytesIO(data))["Open POA&M Items"])[0]


@pytest.mark.parametrize("fmt", [ExportFormat.XLSX, ExportFormat.CSV])
def test_vendor_dependency_comes_back_as_it_was_exported(
    engine: Engine, populated: tuple[Actor, Actor], make_actor, fmt: ExportFormat
) -> None:  # type: ignore[no-untyped-def]
    """Read from the product's name, a dependency naming no product came back
    as none, and a fix shipped (its product's name kept) as one again."""
    owner, _ = populated
    with unit_of_work(engine) as s:
        items.log_item(s, owner, title="Waits on a vendor", severity=Severity.LOW, owner_id=owner.user_id)
        items.log_item(s, owner, title="Vendor fixed it", severity=Severity.LOW, owner_id=owner.user_id)
        review.set_vendor(s, owner, number=3)
        review.set_vendor(s, owner, number=4, product="Acme LB")
        review.vendor_shipped(s, owner, number=4)
    exported = _workbook_bytes(engine, owner, fmt=fmt)
    importer = make_actor("U0ADMIN01", Role.ADMIN, team="T0002")
    name = f"poam.{fmt.suffix}"
    with unit_of_work(engine) as s:
        import_findings(s, importer, findings=read_findings(name, exported), source_name=name)
    with unit_of_work(engine) as s:
        restored = {item.title: item for item in (items.load_item(s, importer, number=n) for n in range(1, 5))}
    assert (restored["Waits on a vendor"].vendor_dependency, restored["Waits on a vendor"].vendor_product) == (True, None)
    assert (restored["Vendor fixed it"].vendor_dependency, restored["Vendor fixed it"].vendor_product) == (
        False, "Acme LB")


@pytest.mark.parametrize(
    ("sample", "tools"),
    [("weekly.nessus", {"Nessus"}), ("codescan.sarif", {"CodeQL", "Trivy"}), ("container-scan.csv", {"Grype"})],
)
def test_a_workbook_restored_from_a_scan_knows_the_next_scan(
    engine: Engine, make_actor, clock: FixedClock, sample: str, tools: set[str]
) -> None:  # type: ignore[no-untyped-def]
    """GSA's template: the scanner's name in Weakness Detector Source, the plugin
    id alone in Weakness Source Identifier, the port beside the asset. A
    workbook restored elsewhere keeps the items a rescan then finds again."""
    data = (SAMPLES / sample).read_bytes()
    admin, restorer = make_actor("U0ADMIN01", Role.ADMIN), make_actor("U0ADMIN02", Role.ADMIN, team="T0002")
    with unit_of_work(engine) as s:
        scanned = import_findings(s, admin, findings=read_findings(sample, data), source_name=sample)
    workbook = _workbook_bytes(engine, admin)
    rows = _rows(openpyxl.load_workbook(io.BytesIO(workbook))["Open POA&M Items"])
    assert len(rows) == scanned.new > 0
    assert {row["Weakness Detector Source"] for row in rows} == tools
    exported = json.loads(_workbook_bytes(engine, admin, fmt=ExportFormat.JSON))["items"]
    assert {item["detector"] for item in exported} == tools
    if "Nessus" in tools:
        on_port = next(row for row in rows if row["Weakness Source Identifier"] == "183391")
        assert on_port["Asset Identifier"] == "web-01 (443/TCP)"
    clock.advance(days=2)
    with unit_of_work(engine) as s:  # its own export back: no item is seen again by a scan
        back = import_findings(s, admin, findings=read_findings("poam.xlsx", workbook), source_name="poam.xlsx")
    assert (back.new, back.updated, back.unchanged) == (0, 0, scanned.new)
    with unit_of_work(engine) as s:
        restored = import_findings(s, restorer, findings=read_findings("poam.xlsx", workbook), source_name="poam.xlsx")
    assert restored.new == scanned.new
    with unit_of_work(engine) as s:
        rescan = import_findings(s, restorer, findings=read_findings(sample, data), source_name=sample)
        assert items.load_item(s, restorer, number=1).detector in tools
    assert (rescan.new, rescan.updated + rescan.unchanged) == (0, scanned.new)


def test_the_workspaces_own_export_imported_back_adds_nothing(
    engine: Engine, populated: tuple[Actor, Actor], make_actor
) -> None:  # type: ignore[no-untyped-def]
    """Items logged in Slack have no fingerprint: a row is known as one of the
    workspace's items by its POAM ID, title, detection date, assets and
    source identifier together."""
    owner, _ = populated
    admin = make_actor("U0ADMIN01", Role.ADMIN)
    with unit_of_work(engine) as s:  # typed in Slack: the import would write these "web01 (8080/TCP)"
        for asset in ("web01(8080/tcp)", "web02 (08080/tcp)"):
            items.log_item(s, owner, title="Debug port open", severity=Severity.LOW, assets=[asset])
    workbook = _workbook_bytes(engine, owner)
    with unit_of_work(engine) as s:
        summary = import_findings(s, admin, findings=read_findings("poam.xlsx", workbook), source_name="poam.xlsx")
    assert (summary.new, summary.unchanged) == (0, 4)  # three open items, one closed


@pytest.mark.parametrize(("cell", "value"), [
    ("A8", "POAM-7"),  # no such item here
    ("C8", "TLS 1.0 on the load balancers"),  # another weakness under a number of ours
    ("G8", "lb-03"),  # the same scanner finding on another host
    ("F8", "104743"),
    ("K8", datetime(2026, 11, 3)),
])
def test_a_row_that_differs_from_the_item_its_number_names_is_imported(
    engine: Engine, populated: tuple[Actor, Actor], make_actor, cell: str, value: object
) -> None:  # type: ignore[no-untyped-def]
    owner, _ = populated
    admin = make_actor("U0ADMIN01", Role.ADMIN)
    book = _workbook(engine, owner)
    book["Open POA&M Items"][cell] = value
    edited = io.BytesIO()
    book.save(edited)
    with unit_of_work(engine) as s:
        summary = import_findings(s, admin, findings=read_findings("poam.xlsx", edited.getvalue()),
                                  source_name="poam.xlsx")
    assert (summary.new, summary.unchanged) == (1, 1)


def _milestone_changes_after(engine: Engine, owner: Actor, *, moves: int, reason: str) -> str:
    """The Milestone Changes cell of an item whose one milestone moved ``moves`` times for ``reason``."""
    with unit_of_work(engine) as s:
        items.log_item(s, owner, title="Long history", severity=Severity.LOW, owner_id=owner.user_id)
        milestones.add_milestone(s, owner, number=1, description="Patch", due_on=date(2026, 12, 1))
        for day in range(2, 2 + moves):
            milestones.move_milestone(s, owner, number=1, milestone=1, due_on=date(2026, 12, day), reason=reason)
    sheet = _workbook(engine, owner)["Open POA&M Items"]
    return str(sheet.cell(row=8, column=DOMAIN_COLUMNS.index("Milestone Changes") + 1).value)


def test_a_cell_past_excels_limit_is_cut_and_says_so(engine: Engine, make_actor) -> None:  # type: ignore[no-untyped-def]
    """Milestone changes have no limit in number; a cell has 32,767 characters."""
    changes = _milestone_changes_after(engine, make_actor("U0OWNER01"), moves=18, reason="x" * milestones.MAX_REASON)
    assert len(changes) == 32_767 and changes.endswith("(cut at Excel's limit of a cell; the JSON export has all of it)")


def test_the_limit_counts_as_excel_does_two_units_for_an_emoji(engine: Engine, make_actor) -> None:  # type: ignore[no-untyped-def]
    """Excel counts a cell's text in UTF-16 units: 2,000 emoji are 4,000 (12 moves: 48,000)."""
    changes = _milestone_changes_after(engine, make_actor("U0OWNER01"), moves=12,
                                       reason="\U0001f525" * milestones.MAX_REASON)
    assert len(changes.encode("utf-16-le")) // 2 in (32_766, 32_767)  # a pair is never split
    assert changes.endswith("(cut at Excel's limit of a cell; the JSON export has all of it)")
    assert "\ufffd" not in changes


def test_the_heading_names_text_as_text(engine: Engine, make_actor) -> None:  # type: ignore[no-untyped-def]
    """The CSP and the system's name are anyone's words: never a live formula."""
    admin = make_actor("U0ADMIN01", Role.ADMIN)
    with unit_of_work(engine) as s:
        add_system(s, admin, name="=1+1", organization='=HYPERLINK("http://evil.example","Click")')
    out = io.BytesIO()
    with unit_of_work(engine) as s:
        export(s, out, fmt=ExportFormat.XLSX, rules=admin.rules, now=admin.now(), team_id=admin.team_id,
               system_name="=1+1", csp="")
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue()))["Open POA&M Items"]
    assert [(cell.value, cell.data_type) for cell in sheet[3][:2]] == [
        ('=HYPERLINK("http://evil.example","Click")', "s"), ("=1+1", "s")]


def test_control_characters_a_workbook_cannot_hold_are_left_out(engine: Engine, make_actor) -> None:  # type: ignore[no-untyped-def]
    """A scanner's colour codes in a finding must not cost the team its whole
    workbook (openpyxl refuses the file for one such character)."""
    owner = make_actor("U0OWNER01")
    with unit_of_work(engine) as s:
        items.log_item(s, owner, title="Bell \x07 in the \uffffti\ufffetle", severity=Severity.LOW, owner_id=owner.user_id,
                       description="\x1b[31mCRITICAL\x1b[0m banner\tshown\non login")
    sheet = _workbook(engine, owner)["Open POA&M Items"]
    row = {header: cell.value for header, cell in zip(DOMAIN_COLUMNS, sheet[8], strict=True)}
    assert row["Weakness Name"] == "Bell  in the title"
    assert row["Weakness Description"] == "[31mCRITICAL[0m banner\tshown\non login"  # tab and newline kept


def test_only_the_exports_own_note_makes_a_row_critical() -> None:
    """Comments quote people's words (evidence, reasons): the note counts only where the export puts it, first."""
    assert rating("High", "Original severity: Critical. Risk accepted until 2027-01-01.", where="r") == Severity.CRITICAL
    quoted = "Remediation verified by U0000VERA on 2026-11-20. Evidence: original severity: critical per the scanner."
    assert rating("High", quoted, where="r") == Severity.HIGH


@pytest.mark.parametrize(("comments", "due"), [
    ("Current due date: 2027-03-01.", date(2027, 3, 1)),
    ("Original severity: Critical. Found again after POAM-3 was closed. Current due date: 2027-03-01. "
     "Extension to 2027-03-01 approved by U0AO00001 on 2026-11-20.", date(2027, 3, 1)),
    ("Original severity: Critical.\nCurrent due date: 2027-03-01.", date(2027, 3, 1)),  # a cell edited by hand
    ("Extension approved by U0AO00001. Reason: current due date: 2027-03-01. was too soon", None),  # people's words
    (None, None),
])
def test_only_the_exports_own_note_gives_the_current_due_date(comments: str | None, due: date | None) -> None:
    cells = {"Weakness Name": "W", "POAM ID": "POAM-1", "Original Risk Rating": "High", "Comments": comments,
             "Scheduled Completion Date": date(2026, 12, 2)}
    assert template_finding(cells, where="r", closed=False).due_on == due


@pytest.mark.parametrize(
    ("contact", "owner"),
    [
        ("U0OWNER01", "U0OWNER01"),
        ("<@U0OWNER01|olive>", "U0OWNER01"),
        ("Olive Owner (U0OWNER01)", "U0OWNER01"),
        # A name is anyone's own words: the id the export appends is the one read.
        ("U0VICTIM1|Eve (U0EVE0001)", "U0EVE0001"),
        ("<@U0VICTIM1|Eve (U0EVE0001)", "U0EVE0001"),
        ("Eve (U0ADMIN01) (U0EVE0001)", "U0EVE0001"),
        # Hand-written contacts name nobody.
        ("Jane Doe (USA)", None),
        ("Ops team (WAN)", None),
        ("Bob Jones", None),
        # Words a hand-kept sheet writes where no one is named yet: ids have a digit.
        ("UNASSIGNED", None),
        ("WEBTEAM", None),
        ("<@UNKNOWN>", None),
        ("U1", None),
    ],
)
def test_the_point_of_contact_read_back_is_the_id_the_export_wrote(contact: str, owner: str | None) -> None:
    cells = {"Weakness Name": "Weak TLS", "POAM ID": "POAM-1", "Original Risk Rating": "Low", "Point of Contact": contact}
    found = template_finding(cells, where="row 8", closed=False)
    assert (found.owner_id, found.unknown_contact) == (owner, None if owner else contact)
