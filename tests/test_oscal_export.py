"""The OSCAL POA&M export (issue 6, part 2), checked against NIST's model as
compliance-trestle carries it (OSCAL 1.1.x), plus the rules of NIST's JSON
schema that trestle's models do not enforce (non-empty arrays, one-line titles,
time zones, references that resolve).

The workspace is built with the domain operations, one item per state.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import trestle.oscal
from sqlalchemy import Engine
from sqlmodel import Session, select
from trestle.oscal.poam import Model, PlanOfActionAndMilestones

from bot.interchange import exports
from bot.interchange.exports import ExportFormat
from bot.interchange.findings import Finding
from bot.interchange.importing import read_findings
from bot.interchange.json_export import item_document
from bot.interchange.oscal_export import (
    FEDRAMP_NS,
    OSCAL_VERSION,
    UUID_IDENTIFIER_TYPE,
    RiskStatus,
    item_uuid,
    stable_uuid,
    write_oscal,
)
from bot.poam.actor import Actor, Role, Rules
from bot.poam.clock import FixedClock
from bot.poam.fields import Source
from bot.poam.imports import import_findings
from bot.poam.item_details import iter_item_details
from bot.poam.items import claim_item, log_item, release_item, set_plan
from bot.poam.milestones import add_milestone, complete_milestone, move_milestone
from bot.poam.review import (
    Deviation,
    accept_risk,
    approve_plan,
    decide,
    request_deviation,
    request_extension,
    set_vendor,
    submit_fix,
    vendor_shipped,
    verify_fix,
    withdraw_request,
)
from bot.poam.severity import Severity
from bot.poam.systems import Impact, add_system, change_system
from bot.reminders.expiries import end_risk_acceptances
from bot.store.engine import unit_of_work
from bot.store.models import InfoSystem
from tests.db import run

TEAM = "T0001"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DETECTED = date(2026, 11, 1)

REPORTER = "U0REPORTER"
ALICE = "U00000ALICE"
VERA = "U00000VERA"
OTTO = "U00000OTTO"
ADMIN = "U0000ADMIN"

ActorFactory = Callable[..., Actor]


class Cast:
    def __init__(self, make_actor: ActorFactory) -> None:
        self.reporter = make_actor(REPORTER)
        self.alice = make_actor(ALICE)
        self.vera = make_actor(VERA, Role.VERIFIER)
        self.otto = make_actor(OTTO, Role.AO)
        self.admin = make_actor(ADMIN, Role.ADMIN)


@pytest.fixture
def cast(make_actor: ActorFactory) -> Cast:
    return Cast(make_actor)


def worked_item(
    engine: Engine, cast: Cast, *, plan: bool = True, title: str = "Outdated OpenSSL on web-01",
    system_name: str | None = None,
) -> int:
    """Logged by the reporter, claimed by Alice, with a plan unless told otherwise."""
    with unit_of_work(engine) as session:
        number = log_item(
            session, cast.reporter, title=title, severity=Severity.MODERATE, detected_on=DETECTED,
            system_name=system_name,
        ).number
        claim_item(session, cast.alice, number=number)
        if plan:
            set_plan(session, cast.alice, number=number, plan="Upgrade OpenSSL to 3.0.15.")
    return number


# The workspace: one item per state, and what each must export as.
EXPECTED_STATUS = {
    "POAM-1": RiskStatus.OPEN,
    "POAM-2": RiskStatus.REMEDIATING,  # in progress, plan and milestones
    "POAM-3": RiskStatus.CLOSED,  # verified
    "POAM-4": RiskStatus.CLOSED,  # approved false positive
    "POAM-5": RiskStatus.DEVIATION_APPROVED,  # risk accepted by the AO
    "POAM-6": RiskStatus.REMEDIATING,  # extension pending: not a deviation
    "POAM-7": RiskStatus.DEVIATION_REQUESTED,  # risk adjustment pending
    "POAM-8": RiskStatus.DEVIATION_APPROVED,  # risk adjustment approved
    "POAM-9": RiskStatus.INVESTIGATING,  # in progress, no plan yet
    "POAM-10": RiskStatus.REMEDIATING,  # fix waiting for verification
    "POAM-11": RiskStatus.DEVIATION_APPROVED,  # operational requirement approved
}

OPEN, INVESTIGATING, REMEDIATING = "open", "investigating", "remediating"
REQUESTED, APPROVED, CLOSED = "deviation-requested", "deviation-approved", "closed"
WORKED = [OPEN, INVESTIGATING, REMEDIATING]
EXPECTED_CHANGES = {
    "POAM-1": [OPEN],
    "POAM-2": WORKED,
    "POAM-3": [*WORKED, CLOSED],
    "POAM-4": [*WORKED, REQUESTED, CLOSED],
    "POAM-5": [*WORKED, APPROVED],
    "POAM-6": WORKED,
    "POAM-7": [*WORKED, REQUESTED],
    "POAM-8": [*WORKED, REQUESTED, APPROVED],
    "POAM-9": [OPEN, INVESTIGATING],
    "POAM-10": WORKED,
    "POAM-11": [*WORKED, REQUESTED, APPROVED],
}


@pytest.fixture
def workspace(engine: Engine, cast: Cast, clock: FixedClock) -> Engine:
    alice, otto = cast.alice, cast.otto

    def step(operation: Callable[[Session], Any]) -> Any:
        clock.advance(minutes=1)  # distinct, increasing timestamps in the trail
        return run(engine, operation)

    # 1: open, unowned; a critical scan finding on two assets.
    step(lambda s: log_item(
        s, cast.reporter, title="OpenSSH\nuser enumeration", severity=Severity.CRITICAL,
        description="Found by the weekly scan.\nSee the plugin output.",
        controls=["AC-2", "SI-2(2)"], source=Source.SCAN, source_identifier="Nessus 12345",
        assets=["web-01", "db-01"], cves=["CVE-2024-6387"], detected_on=DETECTED,
        source_message_url="https://example.slack.com/archives/C1/p1",
    ))
    # 2: in progress with a plan, two milestones (one moved, one done), a vendor check-in, an approved plan.
    two = worked_item(engine, cast)
    step(lambda s: set_plan(s, alice, number=two, plan="Upgrade OpenSSL to 3.0.15.", resources="Two hours of ops."))
    step(lambda s: add_milestone(s, alice, number=two, description="Patch staging", due_on=date(2026, 12, 1)))
    step(lambda s: add_milestone(s, alice, number=two, description="Patch production", due_on=date(2026, 12, 15)))
    step(lambda s: move_milestone(
        s, alice, number=two, milestone=2, due_on=date(2026, 12, 20), reason="Change freeze."))
    step(lambda s: complete_milestone(s, alice, number=two, milestone=1))
    step(lambda s: set_vendor(s, alice, number=two, product="Acme TLS", checkin=True))
    step(lambda s: approve_plan(s, otto, number=two))
    # 3: closed, verified by a separate verifier.
    three = worked_item(engine, cast)
    step(lambda s: submit_fix(s, alice, number=three, evidence="Clean rescan."))
    step(lambda s: verify_fix(s, cast.vera, number=three, note="Rescanned."))
    # 4: an approved false positive.
    four = worked_item(engine, cast)
    step(lambda s: request_deviation(
        s, alice, number=four, deviation=Deviation.FALSE_POSITIVE, rationale="Backported fix."))
    step(lambda s: decide(s, otto, number=four, approve=True, reason="Confirmed."))
    # 5: risk accepted by the AO.
    five = worked_item(engine, cast)
    step(lambda s: accept_risk(s, otto, number=five, until=date(2027, 3, 1), rationale="Replacement ordered."))
    # 6: an extension waiting for the AO.
    six = worked_item(engine, cast)
    step(lambda s: request_extension(s, alice, number=six, due_on=date(2027, 3, 1), reason="Vendor patch slipped."))
    # 7: a risk adjustment waiting; 8: one approved.
    seven = worked_item(engine, cast)
    step(lambda s: request_deviation(
        s, alice, number=seven, deviation=Deviation.RISK_ADJUSTMENT, rationale="Admin VLAN only.",
        adjusted_severity=Severity.LOW))
    eight = worked_item(engine, cast)
    step(lambda s: request_deviation(
        s, alice, number=eight, deviation=Deviation.RISK_ADJUSTMENT, rationale="Behind the WAF.",
        adjusted_severity=Severity.LOW))
    step(lambda s: decide(s, otto, number=eight, approve=True))
    # 9: claimed, no plan yet; 10: fix submitted, not verified.
    worked_item(engine, cast, plan=False)
    ten = worked_item(engine, cast)
    step(lambda s: submit_fix(s, alice, number=ten, evidence="Done."))
    # 11: an approved operational requirement.
    eleven = worked_item(engine, cast)
    step(lambda s: request_deviation(
        s, alice, number=eleven, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="Legacy client.",
        until=date(2027, 6, 1)))
    step(lambda s: decide(s, otto, number=eleven, approve=True))
    assert eleven == len(EXPECTED_STATUS)
    return engine


def export(
    engine: Engine, *, at: datetime = NOW, system_name: str | None = None, team: str = TEAM,
    names: dict[tuple[str, str], str] | None = None, csp: str = "",
) -> tuple[dict[str, Any], int]:
    out = io.StringIO()
    with unit_of_work(engine, read_only=True) as session:
        system = None
        if system_name is not None:
            system = session.exec(
                select(InfoSystem).where(InfoSystem.team_id == team, InfoSystem.name_key == system_name.lower())
            ).one()
        count = write_oscal(
            iter_item_details(session, team_id=team, system_name=system_name), out,
            session=session, rules=Rules(), exported_at=at, team_id=team, system=system, title="Example POA&M",
            names=names, csp=csp,
        )
    return json.loads(out.getvalue()), count


# ---------------------------------------------------------------- checking a document


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


REFERENCES = {
    "observation-uuid": "observations",
    "risk-uuid": "risks",
    "party-uuid": "parties",
    "party-uuids": "parties",
    "subject-uuid": "inventory-items",
    "response-uuid": "remediations",
    "task-uuid": "tasks",
}
#: An actor refers by its type: a person to a party, a tool to a component.
ACTORS = {"party": "parties", "tool": "components"}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
TIMESTAMP_KEYS = {"last-modified", "collected", "deadline", "start", "end", "date"}


def assert_valid(document: dict[str, Any]) -> PlanOfActionAndMilestones:
    """Valid for NIST's model (trestle) and for the schema rules trestle leaves out."""
    wrapped = Model.parse_obj(document)  # the whole file, as trestle reads it
    poam = wrapped.plan_of_action_and_milestones
    assert isinstance(poam, PlanOfActionAndMilestones)
    poam.oscal_serialize_json()  # trestle refuses to write a datetime without a time zone
    body = document["plan-of-action-and-milestones"]
    defined: dict[str, set[str]] = {kind: set() for kind in {*REFERENCES.values(), *ACTORS.values()}}
    for path, node in walk(body):
        assert node is not None and node != [] and node != {}, f"{path} is empty"
        key = path.rsplit("/", 1)[-1].split("[")[0]
        if key in ("title", "name", "value", "id") and isinstance(node, str):
            assert node == node.strip() and "\n" not in node, f"{path} must be one line: {node!r}"
        if key in TIMESTAMP_KEYS and isinstance(node, str):
            assert TIMESTAMP.match(node), f"{path} is not a UTC date-time: {node}"
        for kind in defined:
            if path.endswith(f"/{kind}") and isinstance(node, list):
                defined[kind].update(element["uuid"] for element in node)
    for path, node in walk(body):
        key = path.rsplit("/", 1)[-1].split("[")[0]
        if key in REFERENCES and not path.endswith("]"):
            for value in node if isinstance(node, list) else [node]:
                assert value in defined[REFERENCES[key]], f"{path} = {value} refers to nothing"
        if isinstance(node, dict) and "actor-uuid" in node:
            assert node["actor-uuid"] in defined[ACTORS[node["type"]]], f"{path} refers to no {node['type']}"
    return poam


def by_poam_id(body: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """POAM-ID → (poam-item, its observation, its risk)."""
    observations = {o["uuid"]: o for o in body.get("observations", [])}
    risks = {r["uuid"]: r for r in body.get("risks", [])}
    found = {}
    for entry in body["poam-items"]:
        (prop,) = [p for p in entry["props"] if p["name"] == "POAM-ID"]
        assert prop["ns"] == FEDRAMP_NS
        (observation,) = entry["related-observations"]
        (risk,) = entry["related-risks"]
        found[prop["value"]] = (entry, observations[observation["observation-uuid"]], risks[risk["risk-uuid"]])
    return found


def props(node: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in node.get("props", []) if p["name"] == name and p.get("ns") == FEDRAMP_NS]


def all_uuids(body: dict[str, Any]) -> list[str]:
    return [node for path, node in walk(body) if path.endswith("/uuid")]


# ---------------------------------------------------------------- tests


def test_trestle_models_the_oscal_version_we_write() -> None:
    assert re.match(trestle.oscal.OSCAL_VERSION_REGEX, OSCAL_VERSION)
    assert trestle.oscal.OSCAL_VERSION.split(".")[:2] == OSCAL_VERSION.split(".")[:2]


def test_the_export_validates_against_nists_model(workspace: Engine) -> None:
    document, count = export(workspace)
    assert count == len(EXPECTED_STATUS)
    poam = assert_valid(document)
    assert poam.metadata.oscal_version.__root__ == OSCAL_VERSION
    assert poam.metadata.title == "Example POA&M"
    assert len(poam.poam_items) == len(poam.risks) == len(poam.observations) == count  # type: ignore[arg-type]
    body = document["plan-of-action-and-milestones"]
    assert body["metadata"]["last-modified"] == "2026-11-20T15:00:00Z"
    assert body["system-id"]["identifier-type"] == UUID_IDENTIFIER_TYPE


def test_statuses_map_from_the_lifecycle(workspace: Engine) -> None:
    document, _ = export(workspace)
    items = by_poam_id(document["plan-of-action-and-milestones"])
    assert {poam_id: risk["status"] for poam_id, (_, _, risk) in items.items()} == EXPECTED_STATUS


def test_poam_ids_and_links(workspace: Engine) -> None:
    document, _ = export(workspace)
    body = document["plan-of-action-and-milestones"]
    items = by_poam_id(body)
    assert list(items) == [f"POAM-{n}" for n in range(1, 12)]
    for poam_id, (entry, observation, risk) in items.items():
        number = int(poam_id.split("-")[1])
        assert entry["uuid"] == item_uuid(TEAM, number, "poam-item")
        assert observation["uuid"] == item_uuid(TEAM, number, "observation")
        assert risk["uuid"] == item_uuid(TEAM, number, "risk")
        assert risk["related-observations"] == [{"observation-uuid": observation["uuid"]}]
        assert entry["title"] == risk["title"] == observation["title"]
    entry, observation, risk = items["POAM-1"]
    assert entry["title"] == "OpenSSH user enumeration"  # one line
    assert observation["description"] == "Found by the weekly scan.\nSee the plugin output."
    assert observation["methods"] == ["TEST"] and observation["types"] == ["finding"]
    assert observation["collected"] == "2026-11-01T00:00:00Z"
    assert "Nessus 12345" in observation["remarks"] and "Vulnerability Scan" in observation["remarks"]
    assert observation["relevant-evidence"][0]["href"] == "https://example.slack.com/archives/C1/p1"
    assets = {i["uuid"]: i["props"][0]["value"] for i in body["local-definitions"]["inventory-items"]}
    assert sorted(assets[s["subject-uuid"]] for s in observation["subjects"]) == ["db-01", "web-01"]
    assert items["POAM-2"][1]["methods"] == ["EXAMINE"]  # self-identified


def test_uuids_are_stable_across_exports_and_unique_within_one(
    workspace: Engine, cast: Cast, clock: FixedClock
) -> None:
    first, _ = export(workspace)
    clock.advance(days=1)
    run(workspace, lambda s: add_milestone(s, cast.alice, number=9, description="Plan it", due_on=date(2026, 12, 10)))
    second, _ = export(workspace, at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    one, two = first["plan-of-action-and-milestones"], second["plan-of-action-and-milestones"]
    assert one["uuid"] != two["uuid"]  # the document's own uuid is new each export
    for body in (one, two):
        uuids = all_uuids(body)
        assert len(uuids) == len(set(uuids))
    # Everything the first export named keeps its uuid; the new milestone and log entry are added.
    assert set(all_uuids(one)) - {one["uuid"]} <= set(all_uuids(two))
    assert two["system-id"] == one["system-id"]
    assert two["metadata"]["version"] != one["metadata"]["version"]
    parts = by_poam_id(two)
    assert [t["uuid"] for t in parts["POAM-9"][2]["remediations"][0]["tasks"]] == [
        item_uuid(TEAM, 9, "milestone/1")
    ]
    assert parts["POAM-9"][2]["status"] == RiskStatus.REMEDIATING  # a milestone is a plan


def test_milestone_tasks_carry_their_dates(workspace: Engine) -> None:
    document, _ = export(workspace)
    _, _, risk = by_poam_id(document["plan-of-action-and-milestones"])["POAM-2"]
    (remediation,) = risk["remediations"]
    assert remediation["lifecycle"] == "planned"
    assert remediation["description"] == "Upgrade OpenSSL to 3.0.15."
    assert remediation["required-assets"][0]["description"] == "Two hours of ops."
    assert remediation["origins"] == [{"actors": [{"type": "party", "actor-uuid": stable_uuid(TEAM, "party", ALICE)}]}]
    assert "Plan approved by U00000OTTO" in remediation["remarks"]
    tasks = remediation["tasks"]
    assert [(t["type"], t["title"], t["timing"]) for t in tasks] == [
        ("milestone", "M1: Patch staging", {"on-date": {"date": "2026-12-01T00:00:00Z"}}),
        ("milestone", "M2: Patch production", {"on-date": {"date": "2026-12-20T00:00:00Z"}}),
    ]
    assert tasks[0]["remarks"].startswith("Completed on 2026-11-20 by U00000ALICE")
    assert tasks[1]["remarks"] == "First planned for 2026-12-15."
    assert risk["deadline"] == "2027-01-30T00:00:00Z"  # 90 days from detection
    # A closed, verified item's plan is completed; an item without plan or milestones has no remediation.
    items = by_poam_id(document["plan-of-action-and-milestones"])
    assert items["POAM-3"][2]["remediations"][0]["lifecycle"] == "completed"
    assert "remediations" not in items["POAM-1"][2] and "remediations" not in items["POAM-9"][2]


def test_risk_log_has_the_status_changes_in_order(workspace: Engine) -> None:
    document, _ = export(workspace)
    items = by_poam_id(document["plan-of-action-and-milestones"])
    for poam_id, (_, _, risk) in items.items():
        entries = risk["risk-log"]["entries"]
        changes = [e["status-change"] for e in entries if "status-change" in e]
        assert changes == EXPECTED_CHANGES[poam_id], poam_id
        assert changes[-1] == risk["status"]
        starts = [e["start"] for e in entries]
        assert starts == sorted(starts)
    entries = items["POAM-3"][2]["risk-log"]["entries"]
    assert [e["title"] for e in entries] == [
        "Weakness logged", "Claimed", "Remediation plan set", "Fix submitted", "Fix verified; risk closed",
    ]
    assert entries[-1]["logged-by"] == [{"party-uuid": stable_uuid(TEAM, "party", VERA)}]
    assert entries[-1]["description"] == "A separate verifier confirmed the fix: Rescanned."
    two = items["POAM-2"][2]
    (checkin,) = [e for e in two["risk-log"]["entries"] if e["title"] == "Vendor Check-in"]
    assert checkin["props"] == [{"name": "vendor-dependency", "value": "vendor-check-in", "ns": FEDRAMP_NS}]
    (moved,) = [e for e in two["risk-log"]["entries"] if e["title"] == "Milestone M2 moved"]
    assert moved["description"] == "M2 moved from 2026-12-15 to 2026-12-20: Change freeze."
    assert moved["related-responses"] == [{
        "response-uuid": item_uuid(TEAM, 2, "remediation"),
        "related-tasks": [{"task-uuid": item_uuid(TEAM, 2, "milestone/2")}],
    }]


def test_fedramp_props_and_risk_ratings(workspace: Engine) -> None:
    document, _ = export(workspace)
    items = by_poam_id(document["plan-of-action-and-milestones"])
    one = items["POAM-1"][2]
    assert props(one, "impacted-control-id") == ["ac-2", "si-2.2"]
    (found,) = one["characterizations"]
    risk_facet, cve = found["facets"]
    assert (risk_facet["name"], risk_facet["value"], risk_facet["props"]) == (
        "risk", "high", [{"name": "state", "value": "initial"}],
    )
    assert "critical" in risk_facet["remarks"]
    assert (cve["name"], cve["system"], cve["value"]) == ("cve-id", "http://cve.mitre.org", "CVE-2024-6387")
    assert one["deadline"] == "2026-12-01T00:00:00Z"  # critical: 30 days

    def deviations(poam_id: str) -> tuple[list[str], list[str], list[str]]:
        risk = items[poam_id][2]
        return (props(risk, "false-positive"), props(risk, "risk-adjustment"), props(risk, "operational-requirement"))

    assert deviations("POAM-1") == ([], [], [])
    assert deviations("POAM-4") == (["approved"], [], [])
    assert deviations("POAM-7") == ([], ["pending"], [])
    assert deviations("POAM-8") == ([], ["approved"], [])
    assert deviations("POAM-11") == ([], [], ["approved"])
    assert deviations("POAM-5") == ([], [], ["approved"])  # risk accepted by the AO: an OR in FedRAMP's terms
    assert props(items["POAM-2"][2], "vendor-dependency") == ["tracking"]
    assert props(items["POAM-1"][2], "vendor-dependency") == []
    eight = items["POAM-8"][2]
    initial, adjusted = eight["characterizations"]
    assert [f["value"] for f in initial["facets"]] == ["moderate"]
    assert adjusted["facets"] == [{
        "name": "risk", "system": "https://fedramp.gov", "value": "low",
        "props": [{"name": "state", "value": "adjusted"}], "remarks": "Behind the WAF.",
    }]
    assert adjusted["origin"]["actors"][0]["actor-uuid"] == stable_uuid(TEAM, "party", OTTO)
    assert [m["description"] for m in eight["mitigating-factors"]] == ["Behind the WAF."]
    assert eight["deadline"] == "2027-04-30T00:00:00Z"  # low: 180 days from detection
    # The pending extension leaves the deadline where it is.
    assert items["POAM-6"][2]["deadline"] == "2027-01-30T00:00:00Z"


def test_an_empty_workspace_exports_a_valid_document(engine: Engine) -> None:
    document, count = export(engine)
    assert count == 0
    assert_valid(document)
    body = document["plan-of-action-and-milestones"]
    assert "observations" not in body and "risks" not in body and "local-definitions" not in body
    (placeholder,) = body["poam-items"]
    assert placeholder["title"] == "No POA&M items" and "props" not in placeholder
    assert body["metadata"]["version"] == "2026-11-20.0"


def test_the_tool_that_found_a_weakness_is_its_observations_origin(engine: Engine, cast: Cast) -> None:
    """FedRAMP's template: one component per scanning tool, which each
    observation's origin names beside the person (Weakness Detector Source)."""
    nessus = (Path(__file__).parent / "samples" / "weekly.nessus").read_bytes()
    run(engine, lambda s: import_findings(s, cast.admin, findings=read_findings("weekly.nessus", nessus),
                                          source_name="weekly.nessus"))
    worked_item(engine, cast)  # logged in Slack: no tool
    document, count = export(engine)
    assert_valid(document)
    body = document["plan-of-action-and-milestones"]
    (component,) = body["local-definitions"]["components"]
    assert (component["type"], component["title"]) == ("software", "Nessus")
    assert props(component, "name") == ["Nessus"]
    origins = {
        poam_id: [(actor["type"], actor["actor-uuid"]) for actor in observation["origins"][0]["actors"]]
        for poam_id, (_, observation, _) in by_poam_id(body).items()
    }
    admin, reporter = stable_uuid(TEAM, "party", ADMIN), stable_uuid(TEAM, "party", REPORTER)
    assert len(origins) == count == 6
    assert origins.pop(f"POAM-{count}") == [("party", reporter)]
    assert set(map(tuple, origins.values())) == {(("party", admin), ("tool", component["uuid"]))}
    assert "Weakness Detector Source: Nessus." in by_poam_id(body)["POAM-1"][1]["remarks"]


def test_an_item_closed_before_its_import_says_when(engine: Engine, cast: Cast) -> None:
    closed = Finding(tool="Nessus", rule_id="1", asset="h", title="Old", severity=Severity.LOW, where="row 8",
                     closed=True, closed_on=date(2026, 10, 5))
    run(engine, lambda s: import_findings(s, cast.admin, findings=[closed], source_name="poam.xlsx"))
    document, _ = export(engine)
    _, _, risk = by_poam_id(document["plan-of-action-and-milestones"])["POAM-1"]
    assert "Closed on 2026-10-05, before it was imported." in risk["statement"]


def test_a_system_export_names_the_system_and_its_ao(engine: Engine, cast: Cast) -> None:
    run(engine, lambda s: add_system(
        s, cast.admin, name="Payroll", impact=Impact.HIGH, organization="Example Corp", ao_user_id=OTTO,
    ))
    worked_item(engine, cast, system_name="Payroll")
    run(engine, lambda s: log_item(s, cast.reporter, title="Elsewhere", severity=Severity.LOW))
    document, count = export(engine, system_name="Payroll", csp="Example Corp")
    assert count == 1
    assert_valid(document)
    body = document["plan-of-action-and-milestones"]
    assert body["system-id"] == {"identifier-type": UUID_IDENTIFIER_TYPE, "id": stable_uuid(TEAM, "system/payroll")}
    metadata = body["metadata"]
    assert metadata["roles"] == [{"id": "cloud-service-provider", "title": "Cloud Service Provider"},
                                 {"id": "authorizing-official", "title": "Authorizing Official"}]
    assert metadata["responsible-parties"] == [
        {"role-id": "cloud-service-provider", "party-uuids": [stable_uuid(TEAM, "organization", "Example Corp")]},
        {"role-id": "authorizing-official", "party-uuids": [stable_uuid(TEAM, "party", OTTO)]},
    ]
    names = {party["name"]: (party["type"], party["uuid"]) for party in metadata["parties"]}
    assert names["Example Corp"] == ("organization", stable_uuid(TEAM, "organization", "Example Corp"))
    assert {name: kind for name, (kind, _) in names.items()} == {
        "Example Corp": "organization", REPORTER: "person", ALICE: "person", OTTO: "person"}
    assert list(by_poam_id(body)) == ["POAM-1"]


@pytest.mark.parametrize(("csp", "provider"), [("Acme Cloud", "Acme Cloud"), ("", "Finance dept")])
def test_the_cloud_service_provider_is_the_deployments_else_the_systems_organization(
    engine: Engine, cast: Cast, csp: str, provider: str
) -> None:
    """The workbook's CSP cell, OSCAL's title and its cloud-service-provider
    party name the same organization: ``POAM_CSP_NAME``, else the system's."""
    run(engine, lambda s: add_system(s, cast.admin, name="Payroll", organization="Finance dept", ao_user_id=OTTO,
                                     fedramp="F1603047866"))
    worked_item(engine, cast, system_name="Payroll")
    documents = {}
    for fmt in (ExportFormat.OSCAL, ExportFormat.XLSX):
        out = io.BytesIO()
        with unit_of_work(engine, read_only=True) as session:
            exports.export(session, out, fmt=fmt, rules=Rules(), now=NOW, team_id=TEAM, system_name="payroll", csp=csp)
        documents[fmt] = out.getvalue()
    body = json.loads(documents[ExportFormat.OSCAL])["plan-of-action-and-milestones"]
    assert_valid({"plan-of-action-and-milestones": body})
    assert body["metadata"]["title"] == f"{provider} POA&M: Payroll"
    parties = {party["uuid"]: party["name"] for party in body["metadata"]["parties"]}
    responsible = {entry["role-id"]: entry["party-uuids"] for entry in body["metadata"]["responsible-parties"]}
    assert [parties[uuid] for uuid in responsible["cloud-service-provider"]] == [provider]
    assert [parties[uuid] for uuid in responsible["authorizing-official"]] == [OTTO]
    heading = openpyxl.load_workbook(io.BytesIO(documents[ExportFormat.XLSX]))["Open POA&M Items"]
    assert [cell.value for cell in heading[3]][:2] == [provider, "Payroll"]


def test_a_system_with_a_fedramp_package_id_is_named_by_it(engine: Engine, cast: Cast) -> None:
    """FedRAMP's OSCAL POA&M names the system by its package ID (its template:
    ``system-id`` of identifier type https://fedramp.gov); without one, by a
    uuid of ours. Without an organization there is no provider party."""
    run(engine, lambda s: add_system(s, cast.admin, name="Payroll", fedramp="F1603047866"))
    worked_item(engine, cast, system_name="Payroll")
    document, _ = export(engine, system_name="Payroll")
    assert_valid(document)
    body = document["plan-of-action-and-milestones"]
    # OSCAL 1.0.3 deprecated https://fedramp.gov as an identifier type for this one.
    assert body["system-id"] == {"identifier-type": "http://fedramp.gov/ns/oscal", "id": "F1603047866"}
    assert "roles" not in body["metadata"] and "responsible-parties" not in body["metadata"]
    with unit_of_work(engine, read_only=True) as session:  # the JSON export says it too
        (detail,) = iter_item_details(session, team_id=TEAM, system_name="Payroll")
    assert item_document(detail, rules=Rules(), today=date(2026, 11, 20))["system"]["fedramp_id"] == "F1603047866"
    run(engine, lambda s: change_system(s, cast.admin, name="Payroll", remove_fedramp=True))
    document, _ = export(engine, system_name="Payroll")
    assert document["plan-of-action-and-milestones"]["system-id"] == {
        "identifier-type": UUID_IDENTIFIER_TYPE, "id": stable_uuid(TEAM, "system/payroll")}


def test_an_expired_risk_acceptance_logs_the_return_to_work(
    engine: Engine, cast: Cast, clock: FixedClock
) -> None:
    number = worked_item(engine, cast)
    run(engine, lambda s: accept_risk(s, cast.otto, number=number, until=date(2026, 11, 25), rationale="Briefly."))
    clock.set(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    assert end_risk_acceptances(engine, clock=clock, rules=Rules()).ended
    document, _ = export(engine, at=clock.now())
    assert_valid(document)
    _, _, risk = by_poam_id(document["plan-of-action-and-milestones"])["POAM-1"]
    entries = risk["risk-log"]["entries"]
    assert [e.get("status-change") for e in entries[-2:]] == [APPROVED, REMEDIATING]
    assert entries[-1]["title"] == "Risk acceptance ended"
    assert "logged-by" not in entries[-1]  # the bot did it
    assert risk["status"] == RiskStatus.REMEDIATING


def test_a_withdrawn_request_is_named_in_the_risk_log(engine: Engine, cast: Cast) -> None:
    number = worked_item(engine, cast)
    run(engine, lambda s: request_deviation(
        s, cast.alice, number=number, deviation=Deviation.FALSE_POSITIVE, rationale="Not installed there."))
    run(engine, lambda s: withdraw_request(s, cast.alice, number=number))
    document, _ = export(engine)
    assert_valid(document)
    _, _, risk = by_poam_id(document["plan-of-action-and-milestones"])["POAM-1"]
    withdrawn = risk["risk-log"]["entries"][-1]
    assert (withdrawn["title"], withdrawn["description"]) == (
        "False positive withdrawn", "The owner withdrew the pending request."
    )
    assert withdrawn.get("status-change") == REMEDIATING  # back from "deviation requested"


def test_a_release_says_whether_the_owner_gave_the_item_up_or_an_admin_took_it_back(
    engine: Engine, cast: Cast
) -> None:
    number = worked_item(engine, cast)
    run(engine, lambda s: release_item(s, cast.admin, number=number))
    run(engine, lambda s: claim_item(s, cast.alice, number=number))
    run(engine, lambda s: release_item(s, cast.alice, number=number))
    document, _ = export(engine)
    assert_valid(document)
    _, _, risk = by_poam_id(document["plan-of-action-and-milestones"])["POAM-1"]
    taken, _, given = [entry for entry in risk["risk-log"]["entries"] if entry["title"] in {"Released", "Claimed"}][-3:]
    assert taken["description"] == f"Taken back from its owner {ALICE}; it is unowned again."
    assert given["description"] == "The owner gave the item up; it is unowned again."


def test_a_vendor_fix_shipped_is_in_the_risk_log(engine: Engine, cast: Cast, clock: FixedClock) -> None:
    number = worked_item(engine, cast)
    run(engine, lambda s: set_vendor(s, cast.alice, number=number, product="Acme TLS"))
    clock.advance(days=20)
    run(engine, lambda s: vendor_shipped(s, cast.alice, number=number))
    document, _ = export(engine)
    assert_valid(document)
    _, _, risk = by_poam_id(document["plan-of-action-and-milestones"])["POAM-1"]
    shipped, asked = risk["risk-log"]["entries"][-2:]
    assert asked["title"] == "Extension requested"
    assert (shipped["title"], shipped["description"]) == (
        "Vendor fix shipped",
        "The vendor's fix shipped on 2026-12-10: the remediation clock restarts (due 2027-03-10 by the deadline policy).",
    )


def test_parties_are_named_where_the_bot_knows_the_name(engine: Engine, cast: Cast) -> None:
    worked_item(engine, cast)
    document, _ = export(engine, names={(TEAM, ALICE): "  Alice\nLiddell ", ("T0OTHER", REPORTER): "Not this one"})
    assert_valid(document)
    parties = {party["uuid"]: party for party in document["plan-of-action-and-milestones"]["metadata"]["parties"]}
    alice = parties[stable_uuid(TEAM, "party", ALICE)]
    assert (alice["name"], alice["remarks"]) == ("Alice Liddell", f"Slack user ID {ALICE}.")
    reporter = parties[stable_uuid(TEAM, "party", REPORTER)]  # a name of another workspace is not theirs
    assert (reporter["name"], reporter["remarks"]) == (REPORTER, "Slack user ID.")
    _, _, risk = by_poam_id(document["plan-of-action-and-milestones"])["POAM-1"]  # and the risk log's words
    (claimed,) = [entry for entry in risk["risk-log"]["entries"] if entry["title"] == "Claimed"]
    assert claimed["description"] == f"Claimed by Alice Liddell ({ALICE})."
