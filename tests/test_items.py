"""Items: log, claim, release, assign, plan, show, list, history.

Every call runs in its own ``unit_of_work`` like a real request. Refusals are
checked with :func:`assert_refused`: the error is caught *inside* the unit of
work, so the unit commits, and the whole database must still be exactly as it
was (row values, versions, audit events). That proves each refusal happens
before anything is written, not merely that a rollback hides it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.poam import audit, fields
from bot.poam.actor import SYSTEM_ACTOR, Actor, Role, Rules
from bot.poam.deadlines import DOD_CAT, parse_policy
from bot.poam.errors import AlreadyClaimed, InvalidInput, InvalidState, NotFound, PermissionDenied, PoamError
from bot.poam.fields import Source
from bot.poam.item_details import ItemDetail, SystemRow, item_details, show_item
from bot.poam.item_lists import MAX_PAGE, Direction, Position, Scope, list_items
from bot.poam.items import (
    assign_item,
    claim_item,
    item_history,
    load_item,
    log_item,
    release_item,
    set_plan,
    snooze_item,
)
from bot.poam.lifecycle import Status
from bot.poam.milestones import add_milestone, move_milestone
from bot.poam.review import request_extension
from bot.poam.severity import Severity
from bot.poam.systems import add_system
from bot.store.engine import unit_of_work
from bot.store.models import InfoSystem, Item, ItemControl, Workspace
from tests.db import assert_refused, events, fetch, force, run, snapshot, statements

TEAM = "T0001"
OTHER_TEAM = "T0002"
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
ALICE = "U00000ALICE"
BOB = "U000000BOB"
ADMIN = "U0000ADMIN"


# ---------------------------------------------------------------- helpers


def log(engine: Engine, actor: Actor, **kwargs: Any) -> Item:
    kwargs.setdefault("title", "Outdated OpenSSL on web-01")
    kwargs.setdefault("severity", Severity.HIGH)
    with unit_of_work(engine) as session:
        return log_item(session, actor, **kwargs)


def chain_ok(engine: Engine, team: str = TEAM) -> None:
    with unit_of_work(engine, read_only=True) as session:
        report = audit.verify_chain(session, team_id=team)
    assert report.ok, str(report.broken)


# ---------------------------------------------------------------- log


def test_log_item_with_defaults(engine: Engine, alice: Actor) -> None:
    item = log(engine, alice, title="  Outdated OpenSSL on web-01  ")

    stored = fetch(engine, 1)
    assert item.number == stored.number == 1
    assert stored.title == "Outdated OpenSSL on web-01"
    assert stored.status == Status.OPEN
    assert stored.owner_id is None
    assert stored.severity == "high"
    assert stored.source == "self"
    assert stored.description is None
    assert stored.source_identifier is None
    assert stored.assets == [] and stored.cves == []
    assert stored.detected_on == TODAY
    assert stored.due_on == stored.scheduled_completion_on == date(2026, 12, 20)
    assert stored.created_by == ALICE
    assert stored.created_at == stored.updated_at == NOW
    assert stored.version == 1
    assert stored.closed_at is None
    with unit_of_work(engine) as session:
        system = session.get(InfoSystem, stored.system_id)
        assert system is not None and system.is_default and system.name == "Default"
        assert session.exec(select(ItemControl)).all() == []

    logged = events(engine)
    assert [(e.seq, e.action, e.actor_id, e.item_id) for e in logged] == [
        (1, "system.added", SYSTEM_ACTOR, None),  # the default system: the bot's, not the first user's
        (2, "item.logged", ALICE, stored.id),
    ]
    assert system.created_by == SYSTEM_ACTOR
    assert logged[1].details == {
        "number": 1,
        "title": "Outdated OpenSSL on web-01",
        "severity": "high",
        "system": "Default",
        "controls": [],
        "source": "self",
        "assets": [],
        "cves": [],
        "detected_on": "2026-11-20",
        "due_on": "2026-12-20",
        "owner": None,
    }
    assert logged[1].at == NOW
    chain_ok(engine)


def test_log_item_with_every_field(engine: Engine, alice: Actor) -> None:
    log(
        engine,
        alice,
        title="SQL injection in /login",
        severity=Severity.CRITICAL,
        description="  Found by the quarterly pentest.  ",
        controls=[" si-2(2) ", "AC-2", "ac-2", "3.12.2"],
        source=Source.PENTEST,
        source_identifier="PT-2026-17",
        assets=["web-01", " db-02 ", "web-01", ""],
        cves=["cve-2024-3094", "CVE-2024-3094", "CVE-2023-44487"],
        detected_on=date(2026, 11, 1),
        due_on=date(2026, 11, 25),
        owner_id=BOB,
        origin_channel_id="C0123SEC",
        source_message_url="https://example.slack.com/archives/C0123SEC/p1",
    )
    stored = fetch(engine, 1)
    assert stored.description == "Found by the quarterly pentest."
    assert stored.source == "pentest"
    assert stored.source_identifier == "PT-2026-17"
    assert stored.assets == ["web-01", "db-02"]
    assert stored.cves == ["CVE-2024-3094", "CVE-2023-44487"]
    assert stored.detected_on == date(2026, 11, 1)
    assert stored.due_on == stored.scheduled_completion_on == date(2026, 11, 25)
    # Logged with an owner: the item is being worked on at once.
    assert stored.owner_id == BOB
    assert stored.status == Status.IN_PROGRESS
    assert stored.origin_channel_id == "C0123SEC"
    assert stored.source_message_url == "https://example.slack.com/archives/C0123SEC/p1"
    with unit_of_work(engine) as session:
        rows = session.exec(select(ItemControl).order_by(col(ItemControl.position))).all()
        assert [(r.control, r.position, r.team_id, r.item_id) for r in rows] == [
            ("SI-2(2)", 0, TEAM, stored.id),
            ("AC-2", 1, TEAM, stored.id),
            ("3.12.2", 2, TEAM, stored.id),
        ]
    details = events(engine)[-1].details
    assert details["controls"] == ["SI-2(2)", "AC-2", "3.12.2"]
    assert details["owner"] == BOB
    assert details["source"] == "pentest"
    assert details["cves"] == ["CVE-2024-3094", "CVE-2023-44487"]
    assert details["assets"] == ["web-01", "db-02"]
    assert details["due_on"] == "2026-11-25"
    assert len(events(engine)) == 2  # system.added + item.logged, nothing for the owner
    chain_ok(engine)


@pytest.mark.parametrize("given, stored", [
    (["SI-2 (2)"], ["SI-2(2)"]),
    (["si-2 ( 2 ) ( a )"], ["SI-2(2)(A)"]),
    (["AC-2 SI-2"], ["AC-2", "SI-2"]),  # was stored as one id, AC-2SI-2
    (["SC-28 SC-13\n", "AC-2(1) sc-28"], ["SC-28", "SC-13", "AC-2(1)"]),
    (["AC-2 Account Management", "AC-2 and SI-2"], ["AC-2", "SI-2"]),  # names beside ids: no controls of their own
    (["AC-2 (Account Management)", "NIST SP 800-53 SI-2 Rev. 5"], ["AC-2", "SI-2"]),  # a name's parentheses, numbers
    (["AC.L2-3.1.1 3.12.2 A.5.1"], ["AC.L2-3.1.1", "3.12.2", "A.5.1"]),  # CMMC, NIST 800-171, ISO 27001
    (["CC6.1 AC-2", "PR.AC-1 ISO 27001"], ["CC6.1", "AC-2", "PR.AC-1"]),  # SOC 2, CSF beside NIST; a standard's number
    (["AC-2 (ACM)"], ["AC-2"]),  # an abbreviation in parentheses: a name, not an enhancement
])
def test_controls_written_with_spaces_between_them_stay_apart(given: list[str], stored: list[str]) -> None:
    assert fields.controls(given) == stored


def test_words_alone_are_no_control() -> None:
    with pytest.raises(InvalidInput, match="`see notes` is not a control id"):
        fields.controls(["AC-2", "see notes"])


def test_log_item_numbers_count_up(engine: Engine, alice: Actor, bob: Actor) -> None:
    numbers = [log(engine, actor).number for actor in (alice, bob, alice, bob)]
    assert numbers == [1, 2, 3, 4]
    with unit_of_work(engine) as session:
        workspace = session.get(Workspace, TEAM)
        assert workspace is not None and workspace.last_item_number == 4
    # One system.added on first use, then exactly one event per item.
    assert [e.action for e in events(engine)] == ["system.added"] + ["item.logged"] * 4


@pytest.mark.parametrize(
    ("severity", "due"),
    [
        (Severity.CRITICAL, date(2026, 12, 1)),
        (Severity.HIGH, date(2026, 12, 1)),
        (Severity.MODERATE, date(2027, 1, 30)),
        (Severity.LOW, date(2027, 4, 30)),
    ],
)
def test_due_date_follows_fedramp_policy(
    engine: Engine, alice: Actor, severity: Severity, due: date
) -> None:
    log(engine, alice, severity=severity, detected_on=date(2026, 11, 1))
    stored = fetch(engine, 1)
    assert stored.due_on == stored.scheduled_completion_on == due


def test_custom_deadline_policy_changes_the_due_date(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    custom = make_actor(ALICE, rules=Rules(deadlines=parse_policy("high=10")))
    log(engine, custom, severity=Severity.HIGH, detected_on=date(2026, 11, 1))
    assert fetch(engine, 1).due_on == date(2026, 11, 11)
    # Severities the override does not name keep the FedRAMP days.
    log(engine, custom, severity=Severity.MODERATE, detected_on=date(2026, 11, 1))
    assert fetch(engine, 2).due_on == date(2027, 1, 30)
    # The policy also bounds explicit due dates, with its own numbers in the message.
    assert_refused(
        engine,
        lambda s: log_item(
            s, custom, title="t", severity=Severity.HIGH,
            detected_on=date(2026, 11, 1), due_on=date(2026, 11, 12),
        ),
        InvalidInput,
        "The due date 2026-11-12 is later than the high deadline (2026-11-11, 10 days from "
        "detection); a later date needs an extension approved by the authorizing official.",
    )


def test_dod_preset_policy(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    dod = make_actor(ALICE, rules=Rules(deadlines=DOD_CAT))
    log(engine, dod, severity=Severity.LOW, detected_on=date(2026, 11, 1))
    assert fetch(engine, 1).due_on == date(2027, 11, 1)


def test_due_date_on_the_deadline_is_accepted(engine: Engine, alice: Actor) -> None:
    log(engine, alice, detected_on=date(2026, 11, 1), due_on=date(2026, 12, 1))
    log(engine, alice, detected_on=date(2026, 11, 1), due_on=date(2026, 11, 1))  # same day
    assert fetch(engine, 1).due_on == date(2026, 12, 1)
    assert fetch(engine, 2).due_on == date(2026, 11, 1)


def test_detection_today_is_the_actors_local_day(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    # 15:00 UTC is 05:00 on Saturday the 21st in Kiritimati (UTC+14) and 07:00 on
    # Friday the 20th in Los Angeles.
    kiritimati = make_actor(ALICE, tz="Pacific/Kiritimati")
    los_angeles = make_actor(BOB, tz="America/Los_Angeles")
    log(engine, kiritimati, severity=Severity.HIGH)
    log(engine, los_angeles, severity=Severity.HIGH)
    assert fetch(engine, 1).detected_on == date(2026, 11, 21)
    assert fetch(engine, 1).due_on == date(2026, 12, 21)
    assert fetch(engine, 2).detected_on == date(2026, 11, 20)
    assert fetch(engine, 2).due_on == date(2026, 12, 20)
    # The 21st is "today" in Kiritimati but still the future in Los Angeles.
    log(engine, kiritimati, detected_on=date(2026, 11, 21))
    assert fetch(engine, 3).detected_on == date(2026, 11, 21)
    assert_refused(
        engine,
        lambda s: log_item(s, los_angeles, title="t", severity=Severity.LOW, detected_on=date(2026, 11, 21)),
        InvalidInput,
        "The detection date 2026-11-21 is in the future; today is 2026-11-20.",
    )


_BAD_LOGS: list[tuple[str, dict[str, Any], type[PoamError], str, str | None]] = [
    # (id, arguments, error, message, the field the error names)
    ("empty title", {"title": ""}, InvalidInput, "The title is missing.", "title"),
    ("blank title", {"title": " \n\t "}, InvalidInput, "The title is missing.", "title"),
    # Nothing to see: zero-width spaces, a byte-order mark, a right-to-left mark, Braille blanks, controls.
    ("invisible title", {"title": "\u200b\ufeff\u202e\u2800\x1b\u3000\ufe0f\u034f\U000e0100"}, InvalidInput,
     "The title is missing.", "title"),
    (
        "huge title", {"title": "x" * 40_000}, InvalidInput,
        "The title is 40,000 characters long; the limit is 300.", "title",
    ),
    (
        "title one too long", {"title": "y" * 301}, InvalidInput,
        "The title is 301 characters long; the limit is 300.", "title",
    ),
    (
        "NUL in title", {"title": "a\x00b"}, InvalidInput,
        "The title contains a NUL character; remove it and try again.", "title",
    ),
    (
        "huge description", {"description": "d" * 10_001}, InvalidInput,
        "The description is 10,001 characters long; the limit is 10,000.", "description",
    ),
    (
        "long source id", {"source_identifier": "s" * 201}, InvalidInput,
        "The source identifier is 201 characters long; the limit is 200.", "source_identifier",
    ),
    (
        "bad CVE", {"cves": ["CVE-24-1"]}, InvalidInput,
        "`CVE-24-1` is not a CVE id; write it like CVE-2024-3094.", "cves",
    ),
    (
        "not a CVE", {"cves": ["log4shell"]}, InvalidInput,
        "`LOG4SHELL` is not a CVE id; write it like CVE-2024-3094.", "cves",
    ),
    (
        "bad control", {"controls": ["AC_2"]}, InvalidInput,
        "`AC_2` is not a control id; write it like AC-2 or SI-2(2).", "controls",
    ),
    (
        "too many controls", {"controls": [f"AC-{n}" for n in range(1, 52)]}, InvalidInput,
        "51 controls given; the limit is 50.", "controls",
    ),
    (
        "long asset", {"assets": ["a" * 201]}, InvalidInput,
        "An asset id is 201 characters long; the limit is 200.", "assets",
    ),
    (
        "bad owner", {"owner_id": "bob"}, InvalidInput,
        "`bob` is not a Slack user (owner) id; mention the person, like @jane.", "owner_id",
    ),
    (
        "future detection", {"detected_on": date(2026, 11, 21)}, InvalidInput,
        "The detection date 2026-11-21 is in the future; today is 2026-11-20.", "detected_on",
    ),
    (  # the form's date picker goes back to year 1; such an item's export could not be imported again
        "detection before 1990", {"detected_on": date(1989, 12, 31)}, InvalidInput,
        "The detection date 1989-12-31 is before 1990; dates must fall between 1990 and 2200.", "detected_on",
    ),
    (
        "due before detection", {"detected_on": date(2026, 11, 10), "due_on": date(2026, 11, 9)}, InvalidInput,
        "The due date 2026-11-09 is before the detection date 2026-11-10.", "due_on",
    ),
    (
        "due past the deadline", {"detected_on": date(2026, 11, 1), "due_on": date(2026, 12, 2)}, InvalidInput,
        "The due date 2026-12-02 is later than the high deadline (2026-12-01, 30 days from "
        "detection); a later date needs an extension approved by the authorizing official.",
        "due_on",
    ),
    (
        "unknown system", {"system_name": "Payroll"}, NotFound,
        "There is no system called `Payroll`; `/poam systems` lists them.", None,
    ),
]


@pytest.mark.parametrize(
    ("overrides", "error", "message", "field"),
    [case[1:] for case in _BAD_LOGS],
    ids=[case[0] for case in _BAD_LOGS],
)
def test_log_item_refuses_bad_input(
    engine: Engine,
    alice: Actor,
    overrides: dict[str, Any],
    error: type[PoamError],
    message: str,
    field: str | None,
) -> None:
    log(engine, alice)  # the workspace exists, so a refusal must write nothing at all
    arguments: dict[str, Any] = {"title": "A finding", "severity": Severity.HIGH, **overrides}
    refused = assert_refused(engine, lambda s: log_item(s, alice, **arguments), error, message)
    # A form can show the message beside the argument at fault.
    assert getattr(refused, "field", None) == field
    assert [e.action for e in events(engine)] == ["system.added", "item.logged"]
    # The number a refused log would have used is not burnt.
    assert log(engine, alice).number == 2


def test_log_item_title_at_the_limit_is_stored_whole(engine: Engine, alice: Actor) -> None:
    title = "é" * 299 + "✓"
    log(engine, alice, title=title)
    assert fetch(engine, 1).title == title
    chain_ok(engine)


def test_log_item_into_a_named_system(engine: Engine, admin: Actor, alice: Actor) -> None:
    payroll = run(engine, lambda s: add_system(s, admin, name="Payroll"))
    log(engine, alice, system_name="  PAYROLL ")
    log(engine, alice)
    assert fetch(engine, 1).system_id == payroll.id
    assert fetch(engine, 2).system_id != payroll.id
    assert events(engine)[-2].details["system"] == "Payroll"
    assert events(engine)[-1].details["system"] == "Default"


# ---------------------------------------------------------------- claim


def test_claim_item(engine: Engine, alice: Actor, bob: Actor, clock: Any) -> None:
    log(engine, bob)
    clock.advance(hours=1)
    claimed = run(engine, lambda s: claim_item(s, alice, number=1))
    stored = fetch(engine, 1)
    assert claimed.owner_id == stored.owner_id == ALICE
    assert stored.status == Status.IN_PROGRESS
    assert stored.version == 2
    assert stored.updated_at == datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    assert stored.created_at == NOW
    last = events(engine)[-1]
    assert (last.seq, last.action, last.actor_id, last.item_id) == (3, "item.claimed", ALICE, stored.id)
    assert last.details == {"owner": {"from": None, "to": ALICE}, "status": {"from": "open", "to": "in_progress"}}
    chain_ok(engine)


def test_a_claim_shows_in_the_item_read_earlier_in_the_same_unit_of_work(engine: Engine, alice: Actor, bob: Actor) -> None:
    """The claim writes with a Core UPDATE; an ORM copy of the item read before
    it in the same transaction must not keep the old owner."""
    log(engine, bob)
    with unit_of_work(engine) as session:
        before = load_item(session, alice, number=1)
        assert before.owner_id is None
        claim_item(session, alice, number=1)
        assert before.owner_id == ALICE
        assert load_item(session, alice, number=1) is before
    assert (before.owner_id, before.status, before.version) == (ALICE, Status.IN_PROGRESS, 2)  # after the unit too


def test_a_claim_lost_meanwhile_says_who_won_though_the_item_was_read_before(
    engine: Engine, alice: Actor, bob: Actor
) -> None:
    """PostgreSQL, where a reader does not hold back a writer: the loser's copy of
    the item predates the winner's claim, and the refusal must not go by it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    log(engine, bob)
    with unit_of_work(engine) as session:
        before = load_item(session, alice, number=1)
        run(engine, lambda s: claim_item(s, bob, number=1))  # another request wins meanwhile
        with pytest.raises(AlreadyClaimed) as refused:
            claim_item(session, alice, number=1)
        assert (refused.value.message, refused.value.owner_id) == ("POAM-1 is already claimed by someone else.", BOB)
        assert before.owner_id == BOB


def test_snoozing_reminders_is_audited_but_changes_no_status_date(
    engine: Engine, alice: Actor, clock: Any
) -> None:
    log(engine, alice, owner_id=ALICE)
    clock.advance(hours=1)
    run(engine, lambda s: snooze_item(s, alice, number=1, days=3))
    stored = fetch(engine, 1)
    assert stored.snoozed_until == date(2026, 11, 23)
    assert (stored.version, stored.updated_at) == (1, NOW)  # the exported Status Date stays
    assert events(engine)[-1].action == "item.snoozed"
    chain_ok(engine)


def test_claim_refusals(engine: Engine, alice: Actor, bob: Actor, make_actor: Callable[..., Actor]) -> None:
    log(engine, alice)
    run(engine, lambda s: claim_item(s, alice, number=1))

    taken = assert_refused(
        engine, lambda s: claim_item(s, bob, number=1), AlreadyClaimed,
        "POAM-1 is already claimed by someone else.",
    )
    assert isinstance(taken, AlreadyClaimed) and taken.owner_id == ALICE
    own = assert_refused(engine, lambda s: claim_item(s, alice, number=1), AlreadyClaimed, "You already own POAM-1.")
    assert isinstance(own, AlreadyClaimed) and own.owner_id == ALICE
    assert_refused(engine, lambda s: claim_item(s, bob, number=99), NotFound, "There is no item POAM-99 in this workspace.")
    vuln = make_actor(BOB, rules=Rules(id_prefix="VULN"))
    assert_refused(engine, lambda s: claim_item(s, vuln, number=7), NotFound, "There is no item VULN-7 in this workspace.")
    assert fetch(engine, 1).version == 2


def test_claim_item_logged_with_an_owner(engine: Engine, alice: Actor, bob: Actor) -> None:
    log(engine, alice, owner_id=ALICE)
    error = assert_refused(
        engine, lambda s: claim_item(s, bob, number=1), AlreadyClaimed, "POAM-1 is already claimed by someone else."
    )
    assert isinstance(error, AlreadyClaimed) and error.owner_id == ALICE


def test_claim_closed_item_is_refused(engine: Engine, alice: Actor) -> None:
    log(engine, alice)
    force(engine, 1, status=Status.CLOSED)
    assert_refused(
        engine, lambda s: claim_item(s, alice, number=1), InvalidState, "POAM-1 is closed; a closed item never reopens."
    )


def test_claiming_a_closed_item_one_owned_says_it_is_closed(engine: Engine, alice: Actor, bob: Actor) -> None:
    """Its owner was told "You already own POAM-1", as if it could be worked
    on; every other subcommand says the item is closed."""
    log(engine, alice, owner_id=ALICE)
    force(engine, 1, status=Status.CLOSED)
    for claimer in (alice, bob):
        assert_refused(engine, lambda s: claim_item(s, claimer, number=1), InvalidState,  # noqa: B023
                       "POAM-1 is closed; a closed item never reopens.")


# ---------------------------------------------------------------- release


def test_owner_releases(engine: Engine, alice: Actor, bob: Actor) -> None:
    log(engine, alice)
    run(engine, lambda s: claim_item(s, alice, number=1))
    released = run(engine, lambda s: release_item(s, alice, number=1))
    stored = fetch(engine, 1)
    assert released.owner_id is None and stored.owner_id is None
    assert stored.status == Status.OPEN
    assert stored.version == 3
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.item_id) == ("item.released", ALICE, stored.id)
    assert last.details == {"owner": {"from": ALICE, "to": None}, "status": {"from": "in_progress", "to": "open"}}
    # Released items can be claimed again, by anyone.
    assert run(engine, lambda s: claim_item(s, bob, number=1)).owner_id == BOB
    chain_ok(engine)


def test_admin_releases_someone_elses_item(engine: Engine, alice: Actor, admin: Actor) -> None:
    log(engine, alice, owner_id=ALICE)
    run(engine, lambda s: release_item(s, admin, number=1))
    assert fetch(engine, 1).owner_id is None
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.details) == (
        "item.released", ADMIN, {"owner": {"from": ALICE, "to": None}, "status": {"from": "in_progress", "to": "open"}},
    )


def test_release_refusals(engine: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    log(engine, alice)
    # Unowned: a non-admin is told to claim it; an admin is told the state is wrong.
    assert_refused(
        engine, lambda s: release_item(s, alice, number=1), PermissionDenied,
        "Only the owner can release it, and POAM-1 has none; claim it first.",
    )
    assert_refused(
        engine, lambda s: release_item(s, admin, number=1), InvalidState,
        "POAM-1 is open, so you cannot release it now.",
    )
    run(engine, lambda s: claim_item(s, alice, number=1))
    assert_refused(
        engine, lambda s: release_item(s, bob, number=1), PermissionDenied, "Only the owner of POAM-1 can release it."
    )
    assert_refused(
        engine, lambda s: release_item(s, bob, number=2), NotFound, "There is no item POAM-2 in this workspace."
    )
    force(engine, 1, status=Status.PENDING_VERIFICATION)
    assert_refused(
        engine, lambda s: release_item(s, alice, number=1), InvalidState,
        "POAM-1 is pending verification, so you cannot release it now.",
    )
    force(engine, 1, status=Status.CLOSED)
    assert_refused(
        engine, lambda s: release_item(s, admin, number=1), InvalidState,
        "POAM-1 is closed; a closed item never reopens.",
    )


# ---------------------------------------------------------------- assign


def test_admin_assigns_and_reassigns(engine: Engine, alice: Actor, admin: Actor) -> None:
    log(engine, alice)
    run(engine, lambda s: assign_item(s, admin, number=1, owner_id=BOB))
    stored = fetch(engine, 1)
    assert (stored.owner_id, stored.status, stored.version) == (BOB, Status.IN_PROGRESS, 2)
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.item_id) == ("item.assigned", ADMIN, stored.id)
    assert last.details == {"owner": {"from": None, "to": BOB}, "status": {"from": "open", "to": "in_progress"}}

    run(engine, lambda s: assign_item(s, admin, number=1, owner_id=ALICE))
    stored = fetch(engine, 1)
    assert (stored.owner_id, stored.status, stored.version) == (ALICE, Status.IN_PROGRESS, 3)
    assert events(engine)[-1].details == {"owner": {"from": BOB, "to": ALICE}}
    # An admin may assign an item to themselves.
    run(engine, lambda s: assign_item(s, admin, number=1, owner_id=ADMIN))
    assert fetch(engine, 1).owner_id == ADMIN
    chain_ok(engine)


def test_assign_keeps_a_pending_item_pending(engine: Engine, alice: Actor, admin: Actor) -> None:
    log(engine, alice, owner_id=ALICE)
    force(engine, 1, status=Status.PENDING_VERIFICATION)
    run(engine, lambda s: assign_item(s, admin, number=1, owner_id=BOB))
    stored = fetch(engine, 1)
    assert (stored.owner_id, stored.status) == (BOB, Status.PENDING_VERIFICATION)


def test_assign_refusals(engine: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    log(engine, alice)
    run(engine, lambda s: claim_item(s, alice, number=1))
    assert_refused(
        engine, lambda s: assign_item(s, bob, number=1, owner_id=BOB), PermissionDenied,
        "Only a POA&M admin can assign owners.",
    )
    # Owning an item does not make you able to hand it over.
    assert_refused(
        engine, lambda s: assign_item(s, alice, number=1, owner_id=BOB), PermissionDenied,
        "Only a POA&M admin can assign owners.",
    )
    assert_refused(
        engine, lambda s: assign_item(s, admin, number=1, owner_id=ALICE), InvalidInput,
        "POAM-1 is already owned by that person.",
    )
    assert_refused(
        engine, lambda s: assign_item(s, admin, number=1, owner_id="@bob"), InvalidInput,
        "`@bob` is not a Slack user (owner) id; mention the person, like @jane.",
    )
    assert_refused(
        engine, lambda s: assign_item(s, admin, number=5, owner_id=BOB), NotFound,
        "There is no item POAM-5 in this workspace.",
    )
    force(engine, 1, status=Status.CLOSED)
    assert_refused(
        engine, lambda s: assign_item(s, admin, number=1, owner_id=BOB), InvalidState,
        "POAM-1 is closed; a closed item never reopens.",
    )


# ---------------------------------------------------------------- plan


def test_owner_sets_the_plan(engine: Engine, alice: Actor, clock: Any) -> None:
    log(engine, alice, owner_id=ALICE)
    run(engine, lambda s: set_plan(s, alice, number=1, plan="  Patch OpenSSL to 3.0.15. ", resources="2 engineer-days"))
    stored = fetch(engine, 1)
    assert stored.remediation_plan == "Patch OpenSSL to 3.0.15."
    assert stored.resources_required == "2 engineer-days"
    assert stored.version == 2
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.item_id) == ("item.plan_set", ALICE, stored.id)
    assert last.details == {
        "plan": {"from": None, "to": "Patch OpenSSL to 3.0.15."},
        "resources": {"from": None, "to": "2 engineer-days"},
    }

    clock.advance(days=1)
    run(engine, lambda s: set_plan(s, alice, number=1, plan="Rebuild the image instead."))
    stored = fetch(engine, 1)
    assert stored.remediation_plan == "Rebuild the image instead."
    assert stored.resources_required == "2 engineer-days"  # untouched when not given
    assert stored.version == 3
    assert stored.updated_at == datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    assert events(engine)[-1].details == {
        "plan": {"from": "Patch OpenSSL to 3.0.15.", "to": "Rebuild the image instead."}
    }
    chain_ok(engine)


def test_plan_refusals(engine: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    log(engine, alice)
    assert_refused(
        engine, lambda s: set_plan(s, alice, number=1, plan="p"), PermissionDenied,
        "Only the owner can set its plan, and POAM-1 has none; claim it first.",
    )
    run(engine, lambda s: claim_item(s, alice, number=1))
    assert_refused(
        engine, lambda s: set_plan(s, bob, number=1, plan="p"), PermissionDenied,
        "Only the owner of POAM-1 can set its plan.",
    )
    # An admin is not the owner.
    assert_refused(
        engine, lambda s: set_plan(s, admin, number=1, plan="p"), PermissionDenied,
        "Only the owner of POAM-1 can set its plan.",
    )
    assert_refused(engine, lambda s: set_plan(s, alice, number=1, plan="   "), InvalidInput, "The plan is missing.")
    assert_refused(
        engine, lambda s: set_plan(s, alice, number=1, plan="p" * 10_001), InvalidInput,
        "The plan is 10,001 characters long; the limit is 10,000.",
    )
    assert_refused(
        engine, lambda s: set_plan(s, alice, number=1, plan="p", resources="r" * 2_001), InvalidInput,
        "The resources is 2,001 characters long; the limit is 2,000.",
    )
    assert_refused(
        engine, lambda s: set_plan(s, alice, number=3, plan="p"), NotFound,
        "There is no item POAM-3 in this workspace.",
    )
    force(engine, 1, status=Status.CLOSED)
    assert_refused(
        engine, lambda s: set_plan(s, alice, number=1, plan="p"), InvalidState,
        "POAM-1 is closed; a closed item never reopens.",
    )


def test_plan_refusal_in_review_reads_as_a_sentence(engine: Engine, alice: Actor) -> None:
    # Regression: this once read "you cannot edit plan it now."
    log(engine, alice, owner_id=ALICE)
    force(engine, 1, status=Status.PENDING_VERIFICATION)
    assert_refused(
        engine, lambda s: set_plan(s, alice, number=1, plan="p"), InvalidState,
        "POAM-1 is pending verification, so you cannot change its plan or milestones now.",
    )


# ---------------------------------------------------------------- show


def test_show_item(engine: Engine, alice: Actor) -> None:
    log(engine, alice, controls=["SI-2", "AC-2"], owner_id=ALICE)
    run(engine, lambda s: add_milestone(s, alice, number=1, description="Patch staging", due_on=date(2026, 12, 1)))
    run(engine, lambda s: add_milestone(s, alice, number=1, description="Patch prod", due_on=date(2026, 12, 10)))
    before = snapshot(engine)
    detail = run(engine, lambda s: show_item(s, alice, number=1))
    assert isinstance(detail, ItemDetail)
    assert detail.item.number == 1 and detail.item.title == "Outdated OpenSSL on web-01"
    assert detail.system.name == "Default"
    assert detail.controls == ["SI-2", "AC-2"]
    assert [(m.number, m.description, m.due_on) for m in detail.milestones] == [
        (1, "Patch staging", date(2026, 12, 1)),
        (2, "Patch prod", date(2026, 12, 10)),
    ]
    assert detail.changes == []
    assert snapshot(engine) == before  # reading writes nothing, no audit event


def test_show_reads_the_item_with_its_system_in_one_statement(engine: Engine, admin: Actor, alice: Actor) -> None:
    run(engine, lambda s: add_system(s, admin, name="Payroll", organization="Finance", ao_user_id=BOB))
    log(engine, alice)
    log(engine, alice, system_name="Payroll")
    with statements(engine) as seen:
        detail = run(engine, lambda s: show_item(s, alice, number=2, with_changes=False))
    assert (detail.item.number, detail.item.title) == (2, "Outdated OpenSSL on web-01")
    payroll = detail.system
    assert (payroll.id, payroll.name, payroll.organization, payroll.ao_user_id) == (detail.item.system_id, "Payroll", "Finance", BOB)
    assert payroll == run(engine, lambda s: item_details(s, [fetch(engine, 2)])[0].system)
    items_read = [statement for statement, _ in seen if "FROM items" in statement]
    assert len(items_read) == 1 and "JOIN systems" in items_read[0]
    assert not any(statement.lstrip().startswith("SELECT systems") for statement, _ in seen)


def test_show_reads_every_kind_of_detail_in_one_statement(engine: Engine, alice: Actor) -> None:
    """The card's controls, milestones and review requests come from one
    statement, and match what exports read kind by kind for several items
    (changes included)."""
    log(engine, alice, controls=["SI-2", "AC-2", "CM-6"], owner_id=ALICE)
    log(engine, alice, controls=["RA-5"], owner_id=ALICE)
    for number, description, due_on in ((1, "Patch staging", date(2026, 12, 1)), (1, "Patch prod", date(2026, 12, 10)),
                                         (2, "Rescan", date(2026, 12, 3))):
        run(engine, lambda s, n=number, d=description, on=due_on: add_milestone(s, alice, number=n, description=d, due_on=on))
    run(engine, lambda s: move_milestone(s, alice, number=1, milestone=2, due_on=date(2026, 12, 20), reason="Change freeze"))
    run(engine, lambda s: request_extension(s, alice, number=1, due_on=date(2027, 3, 1), reason="Vendor patch late"))
    with statements(engine) as seen:
        card = run(engine, lambda s: show_item(s, alice, number=1, with_changes=False))
    assert len(seen) == 2  # the item with its system, then every kind of detail
    with statements(engine) as seen:
        full = run(engine, lambda s: show_item(s, alice, number=1))
    assert len(seen) == 2  # milestone changes too
    both = run(engine, lambda s: item_details(s, [fetch(engine, 1), fetch(engine, 2)]))
    assert (card.controls, card.milestones, card.requests, card.changes) == (full.controls, full.milestones, full.requests, [])
    assert (both[0].controls, both[0].milestones, both[0].changes, both[0].requests) == (
        full.controls, full.milestones, full.changes, full.requests
    )
    assert full.controls == ["SI-2", "AC-2", "CM-6"]
    assert [(m.number, m.description, m.planned_due_on, m.due_on) for m in full.milestones] == [
        (1, "Patch staging", date(2026, 12, 1), date(2026, 12, 1)),
        (2, "Patch prod", date(2026, 12, 10), date(2026, 12, 20)),
    ]
    assert [(c.old_due_on, c.new_due_on, c.reason) for c in full.changes] == [
        (date(2026, 12, 10), date(2026, 12, 20), "Change freeze")
    ]
    assert full.milestones[0].created_at.tzinfo is not None  # typed as in the table, not as NULL's
    assert [(r.kind, r.new_due_on, r.text) for r in full.requests] == [("extension", date(2027, 3, 1), "Vendor patch late")]
    assert (both[1].controls, [m.description for m in both[1].milestones], both[1].requests) == (["RA-5"], ["Rescan"], [])


def test_a_system_row_has_every_column_of_the_table() -> None:
    assert SystemRow._fields == tuple(InfoSystem.__table__.c.keys())  # type: ignore[attr-defined]


def test_show_unknown_item(engine: Engine, alice: Actor) -> None:
    log(engine, alice)
    assert_refused(engine, lambda s: show_item(s, alice, number=2), NotFound, "There is no item POAM-2 in this workspace.")


@pytest.mark.parametrize("number", [0, -3, 2**31, 10**12])
def test_impossible_item_numbers_are_not_found(engine: Engine, alice: Actor, admin: Actor, number: int) -> None:
    # Regression: numbers below 1 once crashed with ValueError while formatting the label.
    log(engine, alice, owner_id=ALICE)
    message = f"There is no item {number} in this workspace."
    for operation in (
        lambda s: show_item(s, alice, number=number),
        lambda s: claim_item(s, alice, number=number),
        lambda s: release_item(s, alice, number=number),
        lambda s: assign_item(s, admin, number=number, owner_id=BOB),
        lambda s: set_plan(s, alice, number=number, plan="p"),
        lambda s: item_history(s, alice, number=number),
    ):
        assert_refused(engine, operation, NotFound, message)


# ---------------------------------------------------------------- list


@pytest.fixture
def listed(engine: Engine, alice: Actor, bob: Actor, admin: Actor) -> Engine:
    """Eight items covering every status, severity, owner and two systems (today 2026-11-20).

    | # | severity | detected   | due        | status / owner               | controls     |
    | 1 | high     | 2026-10-01 | 2026-10-31 | open, unowned (overdue)      | AC-2         |
    | 2 | low      | 2026-11-20 | 2027-05-19 | in progress, alice           | SI-2         |
    | 3 | moderate | 2026-08-01 | 2026-10-30 | in progress, bob (overdue)   | AC-2, SI-2   |
    | 4 | critical | 2026-11-19 | 2026-12-19 | open, unowned                |              |
    | 5 | high     | 2026-11-15 | 2026-12-15 | pending verification, alice  |              |
    | 6 | high     | 2026-09-01 | 2026-10-01 | closed (past due, not overdue)|             |
    | 7 | moderate | 2026-07-01 | 2026-09-29 | risk accepted, bob (not overdue) |          |
    | 8 | high     | 2026-11-20 | 2026-12-20 | open, system Payroll         |              |
    """
    run(engine, lambda s: add_system(s, admin, name="Payroll"))
    log(engine, alice, severity=Severity.HIGH, detected_on=date(2026, 10, 1), controls=["AC-2"])
    log(engine, alice, severity=Severity.LOW, owner_id=ALICE, controls=["SI-2"])
    log(engine, bob, severity=Severity.MODERATE, detected_on=date(2026, 8, 1), owner_id=BOB, controls=["AC-2", "SI-2"])
    log(engine, bob, severity=Severity.CRITICAL, detected_on=date(2026, 11, 19))
    log(engine, alice, severity=Severity.HIGH, detected_on=date(2026, 11, 15), owner_id=ALICE)
    log(engine, alice, severity=Severity.HIGH, detected_on=date(2026, 9, 1))
    log(engine, bob, severity=Severity.MODERATE, detected_on=date(2026, 7, 1), owner_id=BOB)
    log(engine, bob, severity=Severity.HIGH, system_name="Payroll")
    force(engine, 5, status=Status.PENDING_VERIFICATION)
    force(engine, 6, status=Status.CLOSED)
    force(engine, 7, status=Status.RISK_ACCEPTED)
    return engine


def numbers(engine: Engine, actor: Actor, **kwargs: Any) -> list[int]:
    page = run(engine, lambda s: list_items(s, actor, **kwargs))
    return [item.number for item in page.items]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (Scope.OPEN, [3, 1, 7, 5, 4, 2]),
        (Scope.ALL, [3, 1, 7, 6, 5, 4, 2]),
        (Scope.OVERDUE, [3, 1]),
        (Scope.UNCLAIMED, [1, 4]),
        (Scope.REVIEW, [5]),
        (Scope.CLOSED, [6]),
        (Scope.MINE, [5, 2]),
    ],
)
def test_list_scopes_overdue_first(listed: Engine, alice: Actor, scope: Scope, expected: list[int]) -> None:
    page = run(listed, lambda s: list_items(s, alice, scope=scope))
    assert [item.number for item in page.items] == expected
    assert page.total == len(expected)
    assert page.offset == 0
    assert page.today == TODAY


def test_list_default_scope_is_open(listed: Engine, alice: Actor) -> None:
    assert numbers(listed, alice) == [3, 1, 7, 5, 4, 2]


def test_list_mine_depends_on_who_asks(listed: Engine, bob: Actor, admin: Actor) -> None:
    assert numbers(listed, bob, scope=Scope.MINE) == [3, 7]
    assert numbers(listed, admin, scope=Scope.MINE) == []


def test_list_marks_overdue(listed: Engine, alice: Actor) -> None:
    page = run(listed, lambda s: list_items(s, alice, scope=Scope.ALL))
    assert {item.number: page.is_overdue(item) for item in page.items} == {
        1: True, 2: False, 3: True, 4: False, 5: False, 6: False, 7: False,
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"severity": Severity.HIGH}, [1, 5]),
        ({"severity": Severity.MODERATE, "scope": Scope.ALL}, [3, 7]),
        ({"severity": Severity.LOW, "scope": Scope.OVERDUE}, []),
        ({"control": "ac-2"}, [3, 1]),
        ({"control": " SI-2 "}, [3, 2]),
        ({"control": "AC-3"}, []),
        ({"owner_id": BOB, "scope": Scope.ALL}, [3, 7]),
        ({"owner_id": ALICE}, [5, 2]),
        ({"owner_id": ALICE, "severity": Severity.LOW}, [2]),
        ({"control": "AC-2", "owner_id": BOB, "severity": Severity.MODERATE}, [3]),
        ({"system_name": "payroll", "scope": Scope.ALL}, [8]),
        ({"system_name": "Payroll", "control": "AC-2"}, []),
        ({"system_name": "Default", "scope": Scope.UNCLAIMED}, [1, 4]),
    ],
)
def test_list_filters(listed: Engine, alice: Actor, filters: dict[str, Any], expected: list[int]) -> None:
    page = run(listed, lambda s: list_items(s, alice, **filters))
    assert [item.number for item in page.items] == expected
    assert page.total == len(expected)


def test_list_every_system(listed: Engine, alice: Actor) -> None:
    assert numbers(listed, alice, scope=Scope.ALL, every_system=True) == [3, 1, 7, 6, 5, 4, 8, 2]
    assert numbers(listed, alice, every_system=True, severity=Severity.HIGH) == [1, 5, 8]
    first = run(listed, lambda s: list_items(s, alice, every_system=True, limit=3))
    page = run(listed, lambda s: list_items(s, alice, every_system=True, limit=3, offset=3,
                                            start=(Direction.AFTER, first.position(first.items[-1]))))
    assert ([i.number for i in page.items], page.total) == ([5, 4, 8], 7)  # open ones only


def test_list_paging(listed: Engine, alice: Actor) -> None:
    pages = [run(listed, lambda s: list_items(s, alice, scope=Scope.ALL, limit=2))]
    while pages[-1].has_more:
        last = pages[-1]
        pages.append(run(listed, lambda s, last=last: list_items(
            s, alice, scope=Scope.ALL, limit=2, offset=last.offset + 2,
            start=(Direction.AFTER, last.position(last.items[-1])))))
    assert [[item.number for item in page.items] for page in pages] == [[3, 1], [7, 6], [5, 4], [2]]
    assert {page.total for page in pages} == {7}
    assert [(page.offset, page.more_before) for page in pages] == [(0, False), (2, True), (4, True), (6, True)]
    back = run(listed, lambda s: list_items(s, alice, scope=Scope.ALL, limit=2, offset=4,
                                            start=(Direction.BEFORE, pages[3].position(pages[3].items[0]))))
    assert ([item.number for item in back.items], back.more_before, back.has_more) == ([5, 4], True, True)
    full = run(listed, lambda s: list_items(s, alice, scope=Scope.ALL, limit=MAX_PAGE))
    assert len(full.items) == 7 and not full.has_more


def test_a_list_page_is_one_statement_with_its_count(listed: Engine, alice: Actor) -> None:
    # The page carries the count and finds its system itself: one statement, not
    # a system lookup, a count and a page. A page past the end counts apart.
    for kwargs in ({}, {"system_name": "Payroll", "scope": Scope.ALL}, {"every_system": True, "limit": 2}):
        with statements(listed) as seen:
            page = run(listed, lambda s, kwargs=kwargs: list_items(s, alice, **kwargs))
        selects = [statement for statement, _ in seen if statement.lstrip().upper().startswith("SELECT")]
        assert page.items and len(selects) == 1, selects
    end = (Direction.AFTER, Position(1, TODAY + timedelta(days=999), 99))
    past = run(listed, lambda s: list_items(s, alice, offset=50, start=end))
    assert (past.items, past.total) == ([], 6)


def test_a_list_on_a_workspaces_first_use_sets_it_up(engine: Engine, alice: Actor) -> None:
    page = run(engine, lambda s: list_items(s, alice))
    assert (page.items, page.total) == ([], 0)
    with unit_of_work(engine) as session:
        assert [(system.name, system.is_default) for system in session.exec(select(InfoSystem))] == [("Default", True)]
    assert [event.action for event in events(engine)] == ["system.added"]


def test_list_ties_break_by_number(engine: Engine, alice: Actor) -> None:
    for _ in range(3):
        log(engine, alice, severity=Severity.LOW)
    log(engine, alice, severity=Severity.HIGH)
    assert numbers(engine, alice) == [4, 1, 2, 3]


def test_list_overdue_uses_the_viewers_day(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    los_angeles = make_actor(ALICE, tz="America/Los_Angeles")
    kiritimati = make_actor(BOB, tz="Pacific/Kiritimati")
    log(engine, los_angeles, severity=Severity.HIGH, detected_on=date(2026, 10, 21))  # due 2026-11-20
    log(engine, los_angeles, severity=Severity.LOW)
    assert fetch(engine, 1).due_on == TODAY
    assert numbers(engine, los_angeles, scope=Scope.OVERDUE) == []
    assert numbers(engine, kiritimati, scope=Scope.OVERDUE) == [1]
    page = run(engine, lambda s: list_items(s, kiritimati))
    assert page.today == date(2026, 11, 21)
    assert page.is_overdue(page.items[0])


def test_list_writes_nothing(listed: Engine, alice: Actor) -> None:
    before = snapshot(listed)
    for scope in Scope:
        run(listed, lambda s, scope=scope: list_items(s, alice, scope=scope))
    assert snapshot(listed) == before


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"limit": 0}, InvalidInput, "A page holds 1 to 200 items."),
        ({"limit": 201}, InvalidInput, "A page holds 1 to 200 items."),
        ({"offset": -1}, InvalidInput, "A page's offset is 0 to 1,000,000,000."),
        ({"control": "AC_2"}, InvalidInput, "`AC_2` is not a control id; write it like AC-2 or SI-2(2)."),
        ({"control": "AC-2 SI-2"}, InvalidInput, "A list is filtered by one control at a time; write it like AC-2."),
        ({"owner_id": "alice"}, InvalidInput, "`alice` is not a Slack user (owner) id; mention the person, like @jane."),
        ({"system_name": "Nope"}, NotFound, "There is no system called `Nope`; `/poam systems` lists them."),
    ],
)
def test_list_refusals(
    listed: Engine, alice: Actor, arguments: dict[str, Any], error: type[PoamError], message: str
) -> None:
    assert_refused(listed, lambda s: list_items(s, alice, **arguments), error, message)


@pytest.mark.parametrize("control", ["", "   "])
def test_list_with_blank_control_is_invalid_input(listed: Engine, alice: Actor, control: str) -> None:
    # Regression: this once escaped as ValueError ("not enough values to unpack").
    error = assert_refused(
        listed, lambda s: list_items(s, alice, control=control), InvalidInput,
        "The control to filter by is empty; write it like AC-2.",
    )
    assert isinstance(error, InvalidInput) and error.field == "control"


# ---------------------------------------------------------------- history


def test_item_history(engine: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    log(engine, alice)
    log(engine, bob)
    run(engine, lambda s: claim_item(s, alice, number=1))
    run(engine, lambda s: claim_item(s, bob, number=2))
    run(engine, lambda s: set_plan(s, alice, number=1, plan="Patch it"))
    run(engine, lambda s: add_milestone(s, alice, number=1, description="Patch", due_on=date(2026, 12, 1)))
    run(engine, lambda s: release_item(s, alice, number=1))
    run(engine, lambda s: assign_item(s, admin, number=1, owner_id=BOB))

    before = snapshot(engine)
    history = run(engine, lambda s: item_history(s, bob, number=1))
    assert snapshot(engine) == before
    assert [(e.action, e.actor_id) for e in history] == [
        ("item.logged", ALICE),
        ("item.claimed", ALICE),
        ("item.plan_set", ALICE),
        ("milestone.added", ALICE),
        ("item.released", ALICE),
        ("item.assigned", ADMIN),
    ]
    seqs = [e.seq for e in history]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    item_id = fetch(engine, 1).id
    assert {e.item_id for e in history} == {item_id}
    assert [e.action for e in run(engine, lambda s: item_history(s, alice, number=2))] == [
        "item.logged", "item.claimed",
    ]
    assert_refused(
        engine, lambda s: item_history(s, alice, number=3), NotFound, "There is no item POAM-3 in this workspace."
    )


# ---------------------------------------------------------------- workspaces


def test_workspaces_are_isolated(engine: Engine, alice: Actor, make_actor: Callable[..., Actor]) -> None:
    log(engine, alice, title="Team one's finding", controls=["AC-2"])
    run(engine, lambda s: claim_item(s, alice, number=1))
    other = make_actor(BOB, team=OTHER_TEAM)
    other_admin = make_actor(ADMIN, Role.ADMIN, team=OTHER_TEAM)
    # The other workspace exists (it has its own default system) but sees nothing of ours.
    assert run(engine, lambda s: list_items(s, other, scope=Scope.ALL)).items == []
    for operation in (
        lambda s: show_item(s, other, number=1),
        lambda s: claim_item(s, other, number=1),
        lambda s: release_item(s, other_admin, number=1),
        lambda s: assign_item(s, other_admin, number=1, owner_id=BOB),
        lambda s: set_plan(s, other, number=1, plan="p"),
        lambda s: item_history(s, other, number=1),
        lambda s: add_milestone(s, other, number=1, description="m", due_on=date(2026, 12, 1)),
    ):
        assert_refused(engine, operation, NotFound, "There is no item POAM-1 in this workspace.")
    for scope in Scope:
        page = run(engine, lambda s, scope=scope: list_items(s, other, scope=scope))
        assert (page.items, page.total) == ([], 0)
    assert run(engine, lambda s: list_items(s, other, control="AC-2", scope=Scope.ALL)).total == 0
    assert_refused(
        engine, lambda s: list_items(s, alice, system_name="Elsewhere"), NotFound,
        "There is no system called `Elsewhere`; `/poam systems` lists them.",
    )

    # Item numbers count separately per workspace.
    theirs = log(engine, other, title="Team two's finding")
    assert theirs.number == 1
    assert log(engine, alice).number == 2
    assert log(engine, other).number == 2
    assert fetch(engine, 1, team=OTHER_TEAM).title == "Team two's finding"
    assert fetch(engine, 1).title == "Team one's finding"
    assert fetch(engine, 1).owner_id == ALICE
    assert [i.number for i in run(engine, lambda s: list_items(s, other, scope=Scope.ALL)).items] == [1, 2]
    # The other team's control filter does not match our AC-2 row.
    assert run(engine, lambda s: list_items(s, other, control="AC-2", scope=Scope.ALL)).total == 0
    # Claiming their POAM-1 does not touch ours.
    run(engine, lambda s: claim_item(s, other, number=1))
    assert fetch(engine, 1, team=OTHER_TEAM).owner_id == BOB
    assert fetch(engine, 1).owner_id == ALICE
    assert [e.action for e in run(engine, lambda s: item_history(s, other, number=1))] == [
        "item.logged", "item.claimed",
    ]
    chain_ok(engine)
    chain_ok(engine, OTHER_TEAM)
    assert [e.seq for e in events(engine, OTHER_TEAM)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "extra",
    [
        {"source_message_url": "https://example.slack.com/archives/C0123/p" + "1" * 600},
        {"origin_channel_id": "C" + "0" * 40},
    ],
    ids=["long link", "long channel"],
)
def test_log_item_refuses_oversized_slack_references(engine: Engine, alice: Actor, extra: dict[str, str]) -> None:
    log(engine, alice)
    with unit_of_work(engine) as session, pytest.raises(InvalidInput):
        log_item(session, alice, title="From a message", severity=Severity.LOW, **extra)
