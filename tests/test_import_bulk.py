"""Importing many findings at once, on both databases: the check writes nothing
and reports what the import then does; bulk-inserted items keep their
controls, milestones and a valid audit chain."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.commands.views.cards import item_card
from bot.interchange.fedramp import COLUMNS, row
from bot.interchange.findings import Finding, Milestone, MilestoneChange
from bot.interchange.importing import read_findings
from bot.interchange.json_export import item_document
from bot.interchange.workbook_import import template_finding
from bot.poam import audit, items
from bot.poam.actor import Actor, Role
from bot.poam.clock import FixedClock
from bot.poam.errors import InvalidInput
from bot.poam.imports import check_findings, file_digest, import_findings
from bot.poam.item_details import iter_item_details, show_item
from bot.poam.lifecycle import Status
from bot.poam.milestones import ChangeKind
from bot.poam.severity import Severity
from bot.poam.systems import add_system
from bot.store.engine import unit_of_work
from bot.store.models import Item, ItemControl
from bot.store.models import Milestone as MilestoneRow
from bot.store.models import MilestoneChange as MilestoneChangeRow
from tests.db import events, fetch, force, run, snapshot, wait_for_a_lock_wait

DUE = date(2027, 1, 15)
EARLIER = date(2027, 1, 10)


def finding(index: int, *, severity: Severity | None = Severity.HIGH, closed: bool = False, **more: Any) -> Finding:
    return Finding(tool="BenchScan", rule_id=f"R{index:05d}", asset=f"host-{index}", title=f"Weakness {index}",
                   severity=severity, where=f"results[{index}]", closed=closed, **more)


def imported(engine: Engine, actor: Actor, findings: list[Finding]) -> Any:
    return run(engine, lambda s: import_findings(s, actor, findings=findings, source_name="scan.sarif"))


def test_a_check_writes_nothing_and_reports_what_the_import_then_does(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    imported(engine, admin, [finding(i) for i in range(5)] + [finding(5, closed=True)])
    force(engine, 5, status=Status.CLOSED)  # item 5 (finding 4) closed since: its weakness found again is new
    clock.advance(days=1)
    imported(engine, admin, [finding(2)])  # already seen at this very time: unchanged
    scan = [
        finding(0), finding(1), finding(0),  # seen before: updated, then a duplicate in the file: unchanged
        finding(2),
        finding(4),
        finding(5, closed=True),  # closed in a workbook imported before: unchanged
        finding(7, controls=("AC-2", "SI-2"), milestones=(Milestone(DUE, "Patch"), Milestone(DUE, "Rescan"))),
        finding(8), finding(9, severity=None),  # new, then informational: skipped
    ]
    before = snapshot(engine)
    with unit_of_work(engine, read_only=True) as session:
        checked = check_findings(session, admin, findings=scan)
    assert snapshot(engine) == before  # no rows, no item numbers, no audit events
    done = imported(engine, admin, scan)
    assert str(checked) == str(done) == "3 new (1 found again after being closed), 2 updated, 3 unchanged, 1 skipped"
    assert (checked.numbers, done.numbers) == ([], [7, 8, 9])
    # DOMAIN.md: a weakness found again is a new item linked to the old one.
    assert [fetch(engine, number).recurs_number for number in (7, 8, 9)] == [5, None, None]
    found_again = [e for e in events(engine) if e.action == "item.imported" and e.details["number"] == 7]
    assert found_again[0].details["recurs"] == 5
    # What it was imported as, as item.logged says: an assessor reads it from the trail alone.
    item = fetch(engine, 8)
    (planned,) = [e.details for e in events(engine) if e.action == "item.imported" and e.details["number"] == 8]
    assert {key: planned.get(key) for key in ("severity", "detected_on", "due_on", "owner", "milestones")} == {
        "severity": "high", "detected_on": item.detected_on.isoformat(), "due_on": item.due_on.isoformat(),
        "owner": None, "milestones": [{"milestone": 1, "due_on": DUE.isoformat(), "description": "Patch"},
                                      {"milestone": 2, "due_on": DUE.isoformat(), "description": "Rescan"}],
    }
    assert (planned["controls"], planned.get("plan")) == (["AC-2", "SI-2"], None)  # what the file brought
    assert "milestones" not in found_again[0].details


def test_a_bulk_import_keeps_its_rows_linked_and_the_audit_chain_valid(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    run(engine, lambda s: items.log_item(s, admin, title="Logged by hand", severity=Severity.LOW))
    count = 2_345  # more than one batch of bulk statements
    scan = [finding(i, controls=("AC-2", f"SI-{1 + i % 9}"), milestones=(Milestone(DUE, f"Fix {i}", 1),),
                    milestone_changes=(MilestoneChange(2, ChangeKind.NEW, DUE, f"Rescan {i}"),
                                       MilestoneChange(1, ChangeKind.UPDATE, EARLIER, f"Sooner {i}"))
                    if i % 3 == 0 else ())
            for i in range(count)]
    summary = imported(engine, admin, scan)
    assert (summary.new, summary.numbers) == (count, list(range(2, count + 2)))
    trail = events(engine)
    assert [e.action for e in trail[-count - 1:]] == ["item.imported"] * count + ["import.completed"]
    with unit_of_work(engine, read_only=True) as session:
        assert audit.verify_chain(session, team_id=admin.team_id).ok
        by_id = {item.id: item for item in session.exec(select(Item).where(col(Item.number) > 1))}
        for event in trail[-count - 1:-1]:
            item = by_id[event.item_id]
            assert (event.details["number"], event.details["fingerprint"]) == (item.number, item.fingerprint)
        controls = session.exec(select(ItemControl.item_id, ItemControl.control))
        milestones = session.exec(select(MilestoneRow.item_id, MilestoneRow.description))
        assert {(by_id[i].title, c) for i, c in controls} == {
            (f"Weakness {n}", c) for n in range(count) for c in ("AC-2", f"SI-{1 + n % 9}")
        }
        assert {(by_id[i].title, d) for i, d in milestones} == {(f"Weakness {n}", f"Fix {n}") for n in range(count)} | {
            (f"Weakness {n}", f"Rescan {n}") for n in range(0, count, 3)}
        changes = session.exec(select(MilestoneChangeRow.item_id, MilestoneChangeRow.seq, MilestoneRow.item_id,
                                      MilestoneRow.due_on, MilestoneChangeRow.reason)
                               .join(MilestoneRow, col(MilestoneRow.id) == MilestoneChangeRow.milestone_id))
        # Each change of its own item's milestone, numbered in the file's order.
        assert {(by_id[i].title, seq, by_id[own].title, due, why) for i, seq, own, due, why in changes} == {
            change for n in range(0, count, 3) for change in (
                (f"Weakness {n}", 1, f"Weakness {n}", DUE, f"Rescan {n}"),
                (f"Weakness {n}", 2, f"Weakness {n}", EARLIER, f"Sooner {n}"))}
    clock.advance(hours=1)
    again = imported(engine, admin, scan)  # every one seen again, in one bulk UPDATE per batch
    assert (again.new, again.updated) == (0, count)
    with unit_of_work(engine, read_only=True) as session:
        seen_now = session.exec(select(func.count()).select_from(Item).where(Item.last_seen_at == clock.now())).one()
        assert seen_now == count
        assert audit.verify_chain(session, team_id=admin.team_id).ok


def test_a_weakness_found_again_names_its_closed_item_everywhere(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    """The card, the workbook's comments and the JSON export say which closed
    item the new one's weakness was found in before."""
    imported(engine, admin, [finding(1)])
    force(engine, 1, status=Status.CLOSED)
    clock.advance(days=1)
    imported(engine, admin, [finding(1)])
    with unit_of_work(engine, read_only=True) as session:
        card = str(item_card(show_item(session, admin, number=2, with_changes=False), viewer=admin))
        details = {detail.item.number: detail for detail in iter_item_details(session, team_id=admin.team_id)}
    assert "Found again after *POAM-1* was closed." in card
    comments = dict(zip(COLUMNS, row(details[2], rules=admin.rules), strict=True))["Comments"]
    assert comments is not None and "Found again after POAM-1 was closed." in str(comments)
    assert item_document(details[2], rules=admin.rules, today=date(2026, 11, 21))["found_again_after"] == "POAM-1"
    assert item_document(details[1], rules=admin.rules, today=date(2026, 11, 21))["found_again_after"] is None


@pytest.mark.parametrize("closed_first", [True, False], ids=["closed-first", "open-first"])
def test_a_file_with_a_closed_item_and_its_weakness_found_again_keeps_both_linked(
    engine: Engine, admin: Actor, closed_first: bool
) -> None:
    """Our own export imported elsewhere lists a closed item and the open item
    its weakness came back as: both are kept (one per fingerprint and state),
    the open one linked to the closed one."""
    rows = [finding(1, closed=True), finding(1)]
    done = imported(engine, admin, rows if closed_first else rows[::-1])
    assert str(done) == "2 new (1 found again after being closed), 0 updated, 0 unchanged, 0 skipped"
    closed, reopened = (1, 2) if closed_first else (2, 1)
    assert fetch(engine, closed).status == Status.CLOSED and fetch(engine, closed).recurs_number is None
    assert fetch(engine, reopened).status == Status.OPEN and fetch(engine, reopened).recurs_number == closed


def test_the_latest_closed_item_is_the_one_found_again(engine: Engine, admin: Actor, clock: FixedClock) -> None:
    imported(engine, admin, [finding(1)])
    force(engine, 1, status=Status.CLOSED)
    clock.advance(days=1)
    imported(engine, admin, [finding(1)])
    force(engine, 2, status=Status.CLOSED)
    clock.advance(days=1)
    imported(engine, admin, [finding(1)])
    assert [fetch(engine, number).recurs_number for number in (1, 2, 3)] == [None, 1, 2]


def test_a_false_positive_the_scanner_still_reports_brings_nothing_new(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    """The AO agreed it is no weakness: each month's scan brought it back as a
    new open item, overdue, waiting on a new false-positive request."""
    imported(engine, admin, [finding(1), finding(2)])
    force(engine, 1, status=Status.CLOSED, closure="false_positive")
    force(engine, 2, status=Status.CLOSED, closure="remediated")
    clock.advance(days=30)
    done = imported(engine, admin, [finding(1), finding(2)])
    assert str(done) == "1 new (1 found again after being closed), 0 updated, 1 unchanged, 0 skipped"
    assert fetch(engine, 3).recurs_number == 2  # the remediated one is back: a new item, linked


def test_new_items_whose_point_of_contact_names_no_slack_user_are_counted(engine: Engine, admin: Actor) -> None:
    """A hand-edited workbook may name people (``Bob Jones``): those items come
    in without an owner, and the check and the import say how many."""
    rows = [finding(1, unknown_contact="Bob Jones"), finding(2, owner_id="U0OWNER01"), finding(3),
            finding(4, unknown_contact="Ops team", closed=True)]  # a closed item needs no owner
    with unit_of_work(engine, read_only=True) as session:
        checked = check_findings(session, admin, findings=rows)
    done = imported(engine, admin, rows)
    assert str(checked) == str(done) == (
        "4 new, 0 updated, 0 unchanged, 0 skipped; 1 new without an owner, as their Point of Contact names no Slack user"
    )
    assert [fetch(engine, number).owner_id for number in (1, 2, 3)] == [None, "U0OWNER01", None]
    (completed,) = [event for event in events(engine) if event.action == "import.completed"]
    assert completed.details["unassigned"] == 1


@pytest.mark.parametrize(("dates", "problem"), [
    ({"scheduled_completion_on": date(2026, 10, 31)}, "the scheduled completion date 2026-10-31 is before"),
    ({"due_on": date(2026, 10, 31)}, "the current due date 2026-10-31 is before"),
])
def test_a_date_before_the_detection_date_imports_nothing(
    engine: Engine, admin: Actor, dates: dict[str, date], problem: str
) -> None:
    """A hand-edited workbook or CSV cannot make an item due before it was found."""
    before = snapshot(engine)
    bad = finding(2, detected_on=date(2026, 11, 2), **dates)
    with pytest.raises(InvalidInput, match=f"results\\[2\\]: {problem} the detection date 2026-11-02"):
        imported(engine, admin, [finding(1), bad])
    assert snapshot(engine) == before


def test_a_scan_imported_into_another_system_is_that_systems(engine: Engine, admin: Actor, clock: FixedClock) -> None:
    """Imported into Staging after Prod, a scan was '8 updated' and Staging's
    POA&M had none of its weaknesses: they stayed Prod's."""
    run(engine, lambda s: add_system(s, admin, name="Staging"))
    scan = [finding(i) for i in range(3)]
    assert imported(engine, admin, scan).new == 3
    clock.advance(hours=1)
    staging = run(engine, lambda s: import_findings(s, admin, findings=scan, source_name="scan.sarif",
                                                     system_name="Staging"))
    assert (staging.new, staging.updated) == (3, 0)
    clock.advance(hours=1)
    assert imported(engine, admin, scan).updated == 3  # the default system's, seen again


def test_rows_repeating_a_weakness_add_their_cves_to_it(engine: Engine, admin: Actor) -> None:
    """Nessus's CSV writes a row per CVE: the first row's item kept its CVE alone."""
    rows = [finding(1, cves=(cve,)) for cve in ("CVE-2023-31122", "CVE-2023-43622", "CVE-2023-45802")]
    summary = imported(engine, admin, rows)
    assert (summary.new, summary.unchanged) == (1, 2)
    assert fetch(engine, 1).cves == ["CVE-2023-31122", "CVE-2023-43622", "CVE-2023-45802"]


def test_rows_repeating_a_weakness_past_the_cves_an_item_keeps_say_so(engine: Engine, admin: Actor) -> None:
    """A rollup plugin in Nessus's CSV, a row per CVE: the item kept 100 of 130
    without a word."""
    rows = [finding(1, cves=(f"CVE-2024-{1000 + n}",), description="Kernel rollup." if n == 0 else None)
            for n in range(130)]
    imported(engine, admin, rows)
    item = fetch(engine, 1)
    assert item.cves == [f"CVE-2024-{1000 + n}" for n in range(100)]
    assert item.description == "Kernel rollup.\n\nCVEs: 130 listed; the item keeps the first 100 (30 left out)."
    long = [finding(2, cves=(f"CVE-2024-{2000 + n}",), description="x" * 10_000) for n in range(101)]
    imported(engine, admin, long)
    kept = fetch(engine, 2).description
    assert kept is not None and len(kept) == 10_000 and kept.endswith("…\n\nCVEs: 101 listed; the item keeps the first 100 (1 left out).")


def test_a_scan_from_before_an_item_closed_brings_nothing_back(engine: Engine, admin: Actor, clock: FixedClock) -> None:
    """Uploaded again after its weakness was fixed, last week's scan made a new
    item 'found again', detected days before the one it followed closed."""
    scan = finding(1, detected_on=date(2026, 11, 20), scanned_on=date(2026, 11, 20))
    imported(engine, admin, [scan])
    clock.advance(days=5)
    force(engine, 1, status=Status.CLOSED, closed_at=clock.now())
    clock.advance(days=1)
    old = imported(engine, admin, [scan])
    assert (old.new, old.unchanged) == (0, 1)
    # A CSV's "First Seen" stays as it was when the weakness comes back: it is no scan's day.
    first_seen = imported(engine, admin, [replace(scan, scanned_on=None)])
    assert (first_seen.new, first_seen.recurring) == (1, 1)
    force(engine, 2, status=Status.CLOSED, closed_at=clock.now())
    clock.advance(days=1)
    new = imported(engine, admin, [replace(scan, detected_on=date(2026, 11, 27), scanned_on=date(2026, 11, 27))])
    assert (new.new, new.recurring) == (1, 1)  # found in a scan after it closed: it came back


def test_the_same_undated_scan_uploaded_again_after_closing_brings_nothing_back(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    """A CSV that gives no date, uploaded again after its item closed, made it
    again, "found again" (DOMAIN.md: re-importing the same scan must not
    duplicate items); a different file (a new scan) still brings it back."""
    data = b"Plugin ID,Name,Risk,Host\n19506,Weak TLS,High,web-01\n"

    def upload(file: bytes) -> Any:
        with unit_of_work(engine) as session:
            return import_findings(session, admin, findings=read_findings("scan.csv", file), source_name="scan.csv",
                                   digest=file_digest(file))

    assert upload(data).new == 1
    clock.advance(days=5)
    force(engine, 1, status=Status.CLOSED, closed_at=clock.now())
    clock.advance(days=1)
    with unit_of_work(engine, read_only=True) as session:
        checked = check_findings(session, admin, findings=read_findings("scan.csv", data), digest=file_digest(data))
    again = upload(data)
    assert (checked.new, again.new, again.unchanged) == (0, 0, 1)
    later = upload(data + b"19507,Other,Low,web-02\n")
    assert (later.new, later.recurring) == (2, 1)


def test_the_same_file_uploaded_again_leaves_its_open_items_unchanged(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    """It said they were "updated" and moved their last seen to the upload's
    time, as if a scan had seen them then; a new file still updates them."""
    data = b"Plugin ID,Name,Risk,Host\n19506,Weak TLS,High,web-01\n19507,Old SSH,Low,web-02\n"

    def upload(file: bytes) -> Any:
        with unit_of_work(engine) as session:
            return import_findings(session, admin, findings=read_findings("scan.csv", file), source_name="scan.csv",
                                   digest=file_digest(file))

    def last_seen() -> list[Any]:
        with unit_of_work(engine, read_only=True) as session:
            return list(session.exec(select(Item.last_seen_at).order_by(col(Item.number))))

    first = upload(data)
    seen = last_seen()
    clock.advance(days=2)
    again = upload(data)
    assert (first.new, again.new, again.updated, again.unchanged) == (2, 0, 0, 2)
    assert last_seen() == seen
    later = upload(data + b"19508,New one,Low,web-03\n")
    assert (later.new, later.updated) == (1, 2)
    assert last_seen()[:2] == [clock.now()] * 2


def test_items_an_earlier_version_made_are_known_again_by_the_next_scan(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    """Nessus's CSV was the tool "CSV"; two SARIF results whose first location
    names no file were one item "(no location)": the next import of either
    made duplicates. Now the item is the first such result's; the other is new."""
    nessus_csv = finding(1)
    sarif_a, sarif_b = (replace(finding(2), asset=path, earlier_shared_asset="(no location)")
                        for path in ("src/A.cs", "src/B.cs"))
    imported(engine, admin, [replace(nessus_csv, tool="CSV"), replace(sarif_a, asset="(no location)")])
    clock.advance(hours=1)
    again = imported(engine, admin, [replace(nessus_csv, tool="Nessus", earlier_tool="CSV"), sarif_a, sarif_b])
    assert (again.new, again.updated) == (1, 2)
    assert fetch(engine, 3).assets == ["src/B.cs"]


def sarif_file(*results: dict[str, Any]) -> bytes:
    return json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Semgrep"}},
                                                     "results": list(results)}]}).encode()


def sarif_result(*locations: dict[str, Any]) -> dict[str, Any]:
    return {"ruleId": "generic.secrets", "level": "error", "message": {"text": "A secret."},
            "locations": list(locations)}


def test_a_finding_keeps_its_own_item_from_one_an_earlier_version_shared(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    """B's first location names only a method: earlier versions took its asset
    as A's, "(no location)". Before A, B took A's item by that, and every
    later import added a duplicate of A."""
    a = sarif_result()
    b = sarif_result({"logicalLocations": [{"fullyQualifiedName": "Db.Run"}]},
                     {"physicalLocation": {"artifactLocation": {"uri": "src/Db.cs"}}})
    assert imported(engine, admin, read_findings("scan.sarif", sarif_file(a))).new == 1
    clock.advance(days=7)
    assert str(imported(engine, admin, read_findings("scan.sarif", sarif_file(b, a)))) == (
        "1 new, 1 updated, 0 unchanged, 0 skipped")
    clock.advance(days=7)
    assert str(imported(engine, admin, read_findings("scan.sarif", sarif_file(b, a)))) == (
        "0 new, 2 updated, 0 unchanged, 0 skipped")
    assert [fetch(engine, number).assets for number in (1, 2)] == [["(no location)"], ["src/Db.cs"]]


def test_scanner_files_past_the_item_limits_import(engine: Engine, admin: Actor, clock: FixedClock) -> None:
    """A rollup plugin's 120 CVEs, or a deep path, refused the whole file; a
    later scan still knows the item by its whole path."""
    cves = "".join(f"<cve>CVE-2024-{1000 + n}</cve>" for n in range(120))
    nessus = (f'<NessusClientData_v2><Report name="r"><ReportHost name="web-01"><ReportItem port="0" severity="3" '
              f'pluginID="12345" pluginName="Kernel rollup">{cves}</ReportItem></ReportHost></Report>'
              "</NessusClientData_v2>").encode()
    deep = "src" + "/main/java/com/example" * 10 + "/Service.java"
    sarif = sarif_file(sarif_result({"physicalLocation": {"artifactLocation": {"uri": deep}}}))
    for name, data in (("weekly.nessus", nessus), ("scan.sarif", sarif)):
        assert imported(engine, admin, read_findings(name, data)).new == 1
    rollup, located = fetch(engine, 1), fetch(engine, 2)
    assert (len(rollup.cves), rollup.description) == (100, "CVEs: 120 listed; the item keeps the first 100 (20 left out).")
    assert located.assets[0].endswith("/com/example/Service.java") and deep in (located.description or "")
    clock.advance(days=7)
    assert imported(engine, admin, read_findings("scan.sarif", sarif)).updated == 1


def test_a_poam_csvs_asset_identifier_lists_several(engine: Engine, admin: Actor) -> None:
    data = b"Weakness Name,Original Risk Rating,Asset Identifier\nOpen port,High,\"web-01, web-02\"\n"
    imported(engine, admin, read_findings("poam.csv", data))
    assert fetch(engine, 1).assets == ["web-01", "web-02"]


def test_a_risk_adjusted_row_without_dates_is_due_by_its_adjusted_rating(engine: Engine, admin: Actor) -> None:
    """Given no date, a High row adjusted to Low came in due in 30 days, as
    if never adjusted (DOMAIN.md: the deadline follows the adjusted rating)."""
    data = (b"POAM ID,Weakness Name,Asset Identifier,Original Risk Rating,Adjusted Risk Rating,Risk Adjustment,"
            b"Original Detection Date,Deviation Rationale\n"
            b"V-1,Old TLS,lb-01,High,Low,Yes,2026-11-01,Risk Adjustment : internal only\n")
    imported(engine, admin, read_findings("poam.csv", data))
    item = fetch(engine, 1)
    assert (item.severity, item.adjusted_severity, item.scheduled_completion_on, item.due_on) == (
        "high", "low", date(2026, 12, 1), date(2027, 4, 30))


def test_a_scanners_asset_with_a_comma_is_one_asset(engine: Engine, admin: Actor) -> None:
    imported(engine, admin, [replace(finding(1), asset="docs/a,b.py")])
    assert fetch(engine, 1).assets == ["docs/a,b.py"]


def test_a_milestone_change_that_cannot_have_happened_imports_nothing(engine: Engine, admin: Actor) -> None:
    before = snapshot(engine)
    bad = finding(2, milestones=(Milestone(DUE, "Patch", 1),),
                  milestone_changes=(MilestoneChange(2, ChangeKind.UPDATE, EARLIER, "moved"),))
    with pytest.raises(InvalidInput, match=r"results\[2\]: Milestone Changes entry \(02\) names a milestone that is "):
        run(engine, lambda s: check_findings(s, admin, findings=[finding(1), bad]))
    with pytest.raises(InvalidInput, match=r"results\[2\]: Milestone Changes entry \(02\)"):
        imported(engine, admin, [finding(1), bad])
    assert snapshot(engine) == before


def test_a_row_without_a_detection_date_was_found_no_later_than_it_was_due(engine: Engine, admin: Actor) -> None:
    """Otherwise an overdue row of a legacy workbook would be stored as found
    today and due before that, and its own export could not be imported again."""
    imported(engine, admin, [finding(1, scheduled_completion_on=date(2026, 10, 1)), finding(2)])
    assert fetch(engine, 1).detected_on == date(2026, 10, 1) == fetch(engine, 1).due_on
    assert fetch(engine, 2).detected_on == admin.today()


def test_a_closed_row_keeps_the_day_it_closed(engine: Engine, admin: Actor) -> None:
    """A restored workbook's closed items did not all close today (the weekly
    digest counts what closed that week). The day is kept between detection
    and now: a Status Date a day off across time zones refuses no file."""
    today = admin.today()
    tomorrow = date.fromordinal(today.toordinal() + 1)
    imported(engine, admin, [
        finding(1, closed=True, closed_on=date(2026, 10, 5), detector="BenchScan"),
        finding(2, closed=True),  # no Status Date: closed when imported
        finding(3, closed=True, closed_on=date(2026, 9, 1), scheduled_completion_on=date(2026, 9, 30)),
        finding(4, closed=True, closed_on=tomorrow),
        finding(5, closed=True, closed_on=date(2026, 10, 1), detected_on=date(2026, 10, 2)),
    ])
    assert fetch(engine, 1).closed_at == datetime(2026, 10, 5, 12, tzinfo=UTC)
    assert fetch(engine, 2).closed_at == admin.now()
    assert fetch(engine, 3).detected_on == date(2026, 9, 1)  # undated: found no later than it closed
    assert fetch(engine, 4).closed_at == admin.now()  # never after now
    assert fetch(engine, 5).closed_at == datetime(2026, 10, 2, 12, tzinfo=UTC)
    recorded = {e.details["number"]: e.details for e in events(engine) if e.action == "item.imported"}
    assert (recorded[1]["closed_at"], recorded[1]["detector"]) == ("2026-10-05T12:00:00+00:00", "BenchScan")
    assert "detector" not in recorded[2]


@pytest.mark.parametrize(("earlier_cell", "cell"), [
    ("172.246.15.3 (80/TCP)", "172.246.15.3 (80/TCP)"),  # read whole before the port had a field
    ("db-01, db-02", "db-01\ndb-02"),  # our export's separator before the template's new line
    ("db-01\ndb-02", "db-01, db-02"),
])
@pytest.mark.parametrize("closed", [False, True])
def test_items_an_earlier_version_imported_are_known_again(
    engine: Engine, admin: Actor, earlier_cell: str, cell: str, closed: bool
) -> None:
    """An earlier version fingerprinted a workbook row by its Asset Identifier as written."""
    earlier = Finding(tool="Nessus", rule_id="12345", asset=earlier_cell, title="Open port", severity=Severity.HIGH,
                      where="row 8", closed=closed)
    imported(engine, admin, [earlier])
    cells = {column: None for column in COLUMNS} | {
        "POAM ID": "V-1", "Weakness Name": "Open port", "Weakness Detector Source": "Nessus",
        "Weakness Source Identifier": "12345", "Asset Identifier": cell, "Original Risk Rating": "High",
    }
    again = imported(engine, admin, [template_finding(cells, where="row 8", closed=closed)])
    assert (again.new, again.updated + again.unchanged) == (0, 1)


def test_long_tool_names_are_cut_and_a_port_too_long_to_show_is_left_out(
    engine: Engine, admin: Actor, clock: FixedClock
) -> None:
    """Files that imported before the tool's name and the port were kept still do."""
    long_asset = replace(finding(2), asset="h" * 195, port="443/tcp", detector="BenchScan")
    other_port = replace(long_asset, port="8443/tcp")
    imported(engine, admin, [finding(1, detector="T" * 150), long_asset, other_port])
    assert fetch(engine, 1).detector == "T" * 100
    # No room beside the asset: the port goes after the rule id, as the fingerprint joins them.
    assert [(fetch(engine, n).source_identifier, fetch(engine, n).assets) for n in (2, 3)] == [
        ("R00002/443/tcp", ["h" * 195]), ("R00002/8443/tcp", ["h" * 195])]
    clock.advance(minutes=1)
    again = imported(engine, admin, [long_asset, other_port])
    assert (again.new, again.updated) == (0, 2)
    with unit_of_work(engine) as session:  # restored elsewhere from the workbook, a rescan knows them
        rows = [row(d, rules=admin.rules) for d in iter_item_details(session, team_id=admin.team_id)]
    cells = [dict(zip(COLUMNS, cells, strict=True)) for cells in rows[1:]]
    restored = [template_finding(c, where="row", closed=False) for c in cells]
    assert [f.fingerprint for f in restored] == [long_asset.fingerprint, other_port.fingerprint]


def test_a_rescan_names_the_tool_of_items_imported_without_it(engine: Engine, admin: Actor, clock: FixedClock) -> None:
    imported(engine, admin, [finding(1), finding(2, detector="Other")])  # as items were before they kept it
    clock.advance(minutes=1)
    imported(engine, admin, [finding(1, detector="BenchScan"), finding(2, detector="BenchScan")])
    assert (fetch(engine, 1).detector, fetch(engine, 2).detector) == ("BenchScan", "Other")
    completed = [e.details for e in events(engine) if e.action == "import.completed"]
    assert completed[-1]["tools_named"] == {"BenchScan": [1]} and "tools_named" not in completed[0]


def test_one_weakness_twice_in_a_file_is_one_item(engine: Engine, admin: Actor) -> None:
    """Assets joined by ", " in one row and by lines in another: the same weakness."""
    cells = {column: None for column in COLUMNS} | {
        "POAM ID": "V-1", "Weakness Name": "Open port", "Weakness Source Identifier": "12345",
        "Original Risk Rating": "High",
    }
    rows = [template_finding(cells | {"Asset Identifier": cell}, where="row", closed=False)
            for cell in ("db-01, db-02", "db-01\ndb-02")]
    summary = imported(engine, admin, rows)
    assert (summary.new, summary.unchanged) == (1, 1)


def test_a_closed_row_never_closes_after_now_in_a_time_zone_ahead_of_utc(
    engine: Engine, make_actor: Any
) -> None:
    """Noon UTC of the local today is still to come there; a digest would count it twice."""
    admin = make_actor("U0ADMIN01", Role.ADMIN, tz="Pacific/Kiritimati")  # UTC+14
    assert admin.today() > admin.now().date()
    imported(engine, admin, [finding(1, closed=True, closed_on=admin.today())])
    assert fetch(engine, 1).closed_at == admin.now()


def test_a_scan_dated_by_utc_is_no_future_west_of_utc(engine: Engine, make_actor: Any, clock: FixedClock) -> None:
    """Scanners stamp their runs in UTC, read as UTC dates: at 18:00 in Los
    Angeles a scan of half an hour ago is dated tomorrow, and is fresh."""
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    admin = make_actor("U0ADMIN01", Role.ADMIN, tz="America/Los_Angeles")
    assert admin.today() == date(2026, 11, 20)
    summary = imported(engine, admin, [finding(1, detected_on=date(2026, 11, 21))])
    assert summary.new == 1 and fetch(engine, 1).detected_on == date(2026, 11, 21)
    with pytest.raises(InvalidInput, match="results\\[2\\]: the detection date 2026-11-22 is in the future"):
        imported(engine, admin, [finding(2, detected_on=date(2026, 11, 22))])


def test_a_day_already_begun_somewhere_is_no_future(engine: Engine, make_actor: Any) -> None:
    """15:00 UTC is Saturday in Auckland: a workbook exported there moments ago
    (an item logged, a milestone completed, on its day) was refused in New York."""
    admin = make_actor("U0ADMIN01", Role.ADMIN, tz="America/New_York")
    saturday = date(2026, 11, 21)
    done = finding(1, detected_on=saturday, milestones=(Milestone(DUE, "Patch", 1),),
                   milestone_changes=(MilestoneChange(1, ChangeKind.COMPLETE, saturday, "Patched"),))
    assert imported(engine, admin, [done]).new == 1
    with pytest.raises(InvalidInput, match=r"results\[2\]: Milestone Changes entry \(01\) completes it on 2026-11-22"):
        imported(engine, admin, [replace(done, rule_id="R2", where="results[2]", detected_on=None,
                                         milestone_changes=(MilestoneChange(1, ChangeKind.COMPLETE, saturday
                                                                            + timedelta(days=1), "Patched"),))])


def _import_beside(
    engine: Engine, admin: Actor, other: Callable[[Session, Callable[[], None]], object], scan: list[Finding]
) -> tuple[Any, list[BaseException]]:
    """Import ``scan`` while ``other`` runs in a transaction of its own in
    another thread; ``other`` calls the pause it is given, which lasts until
    the import waits for a lock (PostgreSQL shows it; on SQLite half a
    second). The import's summary, and what ``other`` raised."""
    paused, go_on = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def pause() -> None:
        paused.set()
        go_on.wait(timeout=10)

    def run_other() -> None:
        try:
            with unit_of_work(engine) as session:
                other(session, pause)
        except BaseException as error:  # reported by the test, from its own thread
            errors.append(error)

    thread = threading.Thread(target=run_other)
    thread.start()
    assert paused.wait(timeout=10)
    waiter = threading.Thread(target=lambda: (wait_for_a_lock_wait(engine), go_on.set()))
    waiter.start()
    summary = imported(engine, admin, scan)
    thread.join()
    waiter.join()
    return summary, errors


def test_two_imports_of_one_scan_at_once_add_its_items_once(engine: Engine, admin: Actor) -> None:
    """Two admins (or a form and the CLI) import the same scan: the second
    waits for the first and finds its items. SQLite's writers already wait
    for each other; PostgreSQL's did not, and each added every new item."""
    imported(engine, admin, [finding(0)])  # the workspace exists

    def first(session: Session, pause: Callable[[], None]) -> None:
        import_findings(session, admin, findings=[finding(1)], source_name="a.sarif")
        pause()  # still uncommitted

    second, errors = _import_beside(engine, admin, first, [finding(1)])
    assert not errors, errors
    assert (second.new, second.unchanged) == (0, 1)  # seen at this very time by the first
    with unit_of_work(engine, read_only=True) as session:
        assert session.exec(select(func.count()).select_from(Item)).one() == 2


def test_an_import_and_an_item_change_at_once_both_go_through(engine: Engine, admin: Actor, clock: FixedClock) -> None:
    """An item change locks its item, then the workspace (its audit event);
    an import updates the items it sees again. The import used to lock the
    workspace first: PostgreSQL found a deadlock and the import was lost."""
    imported(engine, admin, [finding(1)])
    clock.advance(days=1)

    def change(session: Session, pause: Callable[[], None]) -> None:
        items.load_item(session, admin, number=1, for_update=True)
        pause()
        audit.record(session, admin, action="item.test", item_id=None, details={})

    summary, errors = _import_beside(engine, admin, change, [finding(1)])
    assert not errors, errors
    assert summary.updated == 1
