"""The review workflow: independent verification, the authorizing official's
decisions (plans, deviations, extensions, residual risk), expiry, vendor
check-ins, exports, audit, and races.

Expectations come from ``DOMAIN.md`` and issue 4. Every call runs in its own
``unit_of_work`` like a real request. Refusals are checked with
:func:`assert_refused`: the error is caught *inside* the unit of work, so the
unit commits, and the whole database must still be exactly as it was.
Disagreements with the documents are bugs in ``bot/``, kept here as strict
xfails.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.commands.views import cards
from bot.interchange.csv_export import write_csv
from bot.interchange.json_export import write_json
from bot.poam import audit
from bot.poam.actor import SYSTEM_ACTOR, Actor, Role, Rules
from bot.poam.clock import FixedClock
from bot.poam.deadlines import DOD_CAT
from bot.poam.errors import (
    AlreadyDecided,
    InvalidCombination,
    InvalidInput,
    InvalidState,
    NotFound,
    PermissionDenied,
    PoamError,
)
from bot.poam.item_details import iter_item_details, show_item
from bot.poam.items import assign_item, claim_item, log_item, release_item, set_plan
from bot.poam.lifecycle import Status
from bot.poam.milestones import add_milestone, complete_milestone, move_milestone
from bot.poam.review import (
    Deviation,
    Expired,
    RequestKind,
    RequestStatus,
    accept_risk,
    approve_plan,
    decide,
    deciders_for,
    end_risk_acceptance,
    reject_fix,
    remediators,
    request_deviation,
    request_extension,
    requests_of,
    set_vendor,
    submit_fix,
    vendor_shipped,
    verify_fix,
    waiting_on,
    withdraw_request,
)
from bot.poam.roles import grant_role
from bot.poam.severity import Severity
from bot.poam.systems import add_system, change_system
from bot.reminders import expiries
from bot.reminders.expiries import end_risk_acceptances
from bot.store.engine import unit_of_work
from bot.store.models import Item, ReviewRequest, Workspace
from tests import db
from tests.db import events, fetch, force, run, snapshot, statements

#: Refusals here may be any subclass of the expected error (e.g. AlreadyDecided for InvalidState).
assert_refused = functools.partial(db.assert_refused, exact_type=False)

TEAM = "T0001"
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DETECTED = date(2026, 11, 1)
MODERATE_DUE = date(2027, 1, 30)  # FedRAMP: 90 days from detection
HIGH_DUE = date(2026, 12, 1)  # 30 days
LOW_DUE = date(2027, 4, 30)  # 180 days

ALICE = "U00000ALICE"  # owner
BOB = "U000000BOB"  # another owner
REPORTER = "U0REPORTER"
VERA = "U00000VERA"  # verifier
VIC = "U000000VIC"  # verifier
OTTO = "U00000OTTO"  # authorizing official
AMY = "U000000AMY"  # authorizing official
SYSAO = "U0000SYSAO"  # AO named on the Payroll system, no role
ADMIN = "U0000ADMIN"

ActorFactory = Callable[..., Actor]


# ---------------------------------------------------------------- helpers


def requests(engine: Engine, number: int = 1) -> list[ReviewRequest]:
    with unit_of_work(engine, read_only=True) as session:
        item = session.exec(select(Item).where(Item.team_id == TEAM, Item.number == number)).one()
        return requests_of(session, item)


def chain_ok(engine: Engine) -> audit.ChainReport:
    with unit_of_work(engine, read_only=True) as session:
        report = audit.verify_chain(session, team_id=TEAM)
    assert report.ok, str(report.broken)
    return report


def export_json(engine: Engine) -> list[dict[str, Any]]:
    out = io.StringIO()
    with unit_of_work(engine, read_only=True) as session:
        write_json(
            iter_item_details(session, team_id=TEAM), out, rules=Rules(), exported_at=NOW, team_id=TEAM, system_name=None
        )
    return json.loads(out.getvalue())["items"]  # type: ignore[no-any-return]


def export_csv(engine: Engine) -> list[dict[str, str]]:
    out = io.StringIO()
    with unit_of_work(engine, read_only=True) as session:
        write_csv(iter_item_details(session, team_id=TEAM), out, rules=Rules())
    return list(csv.DictReader(io.StringIO(out.getvalue())))


class People:
    """The cast, as actors on the test clock."""

    def __init__(self, make_actor: ActorFactory, rules: Rules | None = None) -> None:
        self.reporter = make_actor(REPORTER, rules=rules)
        self.alice = make_actor(ALICE, rules=rules)
        self.bob = make_actor(BOB, rules=rules)
        self.vera = make_actor(VERA, Role.VERIFIER, rules=rules)
        self.vic = make_actor(VIC, Role.VERIFIER, rules=rules)
        self.otto = make_actor(OTTO, Role.AO, rules=rules)
        self.amy = make_actor(AMY, Role.AO, rules=rules)
        self.sysao = make_actor(SYSAO, rules=rules)
        self.admin = make_actor(ADMIN, Role.ADMIN, rules=rules)


@pytest.fixture
def people(make_actor: ActorFactory) -> People:
    return People(make_actor)


def new_item(
    engine: Engine,
    people: People,
    *,
    owner: Actor | None = None,
    severity: Severity = Severity.MODERATE,
    plan: bool = True,
    system_name: str | None = None,
) -> int:
    """A finding logged by the reporter, claimed by ``owner`` (default Alice) with a plan."""
    owner = owner or people.alice
    with unit_of_work(engine) as session:
        number = log_item(
            session, people.reporter, title="Outdated OpenSSL on web-01", severity=severity,
            detected_on=DETECTED, system_name=system_name,
        ).number
        claim_item(session, owner, number=number)
        if plan:
            set_plan(session, owner, number=number, plan="Upgrade OpenSSL to 3.0.15.")
    return number


def submitted(engine: Engine, people: People, *, owner: Actor | None = None) -> tuple[int, ReviewRequest]:
    owner = owner or people.alice
    number = new_item(engine, people, owner=owner)
    request = run(engine, lambda s: submit_fix(s, owner, number=number, evidence="Clean rescan attached."))
    return number, request


# ---------------------------------------------------------------- verification


def test_submit_then_a_separate_verifier_closes_it_as_remediated(engine: Engine, people: People) -> None:
    number, request = submitted(engine, people)
    item = fetch(engine, number)
    assert item.status == Status.PENDING_VERIFICATION
    assert (request.kind, request.status, request.text) == (
        RequestKind.VERIFICATION, RequestStatus.PENDING, "Clean rescan attached.",
    )
    assert (request.requested_by, request.requested_at, request.decided_by) == (ALICE, NOW, None)

    run(engine, lambda s: verify_fix(s, people.vera, number=number, note="Rescanned; fixed."))
    item = fetch(engine, number)
    assert (item.status, item.closure, item.closed_at) == (Status.CLOSED, "remediated", NOW)
    (decided,) = requests(engine)
    assert (decided.status, decided.decided_by, decided.decided_at, decided.decision_note) == (
        RequestStatus.APPROVED, VERA, NOW, "Rescanned; fixed.",
    )
    trail = events(engine)
    assert [e.action for e in trail[-2:]] == ["fix.submitted", "fix.verified"]
    assert trail[-1].actor_id == VERA
    assert trail[-1].details["status"] == {"from": "pending_verification", "to": "closed"}
    (row,) = export_csv(engine)  # the closure's evidence and verdict, where an assessor reads the workbook
    assert row["Comments"] == (
        f"Remediation verified by {VERA} on 2026-11-20. Evidence: Clean rescan attached. "
        "Verifier's note: Rescanned; fixed."
    )
    # A closed item never reopens.
    assert_refused(
        engine, lambda s: submit_fix(s, people.alice, number=number), InvalidState,
        "POAM-1 is closed; a closed item never reopens.",
    )
    chain_ok(engine)


def test_owner_cannot_verify_their_own_fix(engine: Engine, make_actor: ActorFactory, people: People) -> None:
    owner = make_actor(ALICE, Role.VERIFIER)  # holding the role does not help
    number, _ = submitted(engine, people, owner=owner)
    message = "You own POAM-1; a separate person must verify the fix."
    assert_refused(engine, lambda s: verify_fix(s, owner, number=number), PermissionDenied, message)
    assert_refused(engine, lambda s: reject_fix(s, owner, number=number, reason="meh"), PermissionDenied, message)
    # Even after an admin hands the item to someone else, the submitter stays barred.
    run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=BOB))
    assert_refused(
        engine, lambda s: verify_fix(s, owner, number=number), PermissionDenied,
        "You submitted the fix for POAM-1; a separate person must verify it.",
    )


def test_milestone_completer_cannot_verify(engine: Engine, people: People) -> None:
    number = new_item(engine, people, owner=people.vera)  # a verifier working as owner
    run(engine, lambda s: add_milestone(s, people.vera, number=number, description="Patch", due_on=date(2026, 12, 1)))
    run(engine, lambda s: complete_milestone(s, people.vera, number=number, milestone=1))
    run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=ALICE))
    run(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="Done."))
    message = "You completed a milestone of POAM-1; a separate person must verify the fix."
    assert_refused(engine, lambda s: verify_fix(s, people.vera, number=number), PermissionDenied, message)
    assert_refused(
        engine, lambda s: reject_fix(s, people.vera, number=number, reason="no"), PermissionDenied, message
    )
    run(engine, lambda s: verify_fix(s, people.vic, number=number))  # a separate verifier may
    assert fetch(engine, number).status == Status.CLOSED


def test_fixes_waiting_on_a_verifier_leave_out_their_own_work_in_a_few_statements(
    engine: Engine, people: People
) -> None:
    """Who worked on each item was read three statements an item: a Home of
    1,500 fixes pending took 1.7 s for a verifier who may verify none."""
    numbers = [submitted(engine, people, owner=owner)[0] for owner in (people.alice, people.vera, people.alice)]
    run(engine, lambda s: assign_item(s, people.admin, number=numbers[1], owner_id=ALICE))  # Vera owned it
    for _ in range(20):  # Vera submitted these: not hers to verify
        number, _request = submitted(engine, people, owner=people.vera)
        run(engine, lambda s, n=number: assign_item(s, people.admin, number=n, owner_id=ALICE))
    with unit_of_work(engine, read_only=True) as session, statements(engine) as seen:
        vera = [item.number for item, _ in waiting_on(session, people.vera).verifications]
        vic = [item.number for item, _ in waiting_on(session, people.vic).verifications]
    assert vera == [numbers[0], numbers[2]]
    assert len(vic) == 23
    assert len(seen) <= 12


def test_requests_waiting_on_an_ao_read_the_systems_once_and_on_nobody_else_none(
    engine: Engine, people: People
) -> None:
    """Each pending deviation read its item's system again: a Home or morning
    DM of someone with no role at all ran a statement per request."""
    numbers = [new_item(engine, people) for _ in range(20)]
    for number in numbers:
        run(engine, lambda s, n=number: request_deviation(
            s, people.alice, number=n, deviation=Deviation.FALSE_POSITIVE, rationale="Scanner misread the banner."))
    with unit_of_work(engine, read_only=True) as session, statements(engine) as seen:
        otto = waiting_on(session, people.otto)
        read_for_otto = len(seen)
        bob = waiting_on(session, people.bob)
    assert [item.number for item, _ in otto.decisions] == numbers
    assert read_for_otto <= 8
    assert (bob.total, bob.is_ao) == (0, False)
    assert len(seen) - read_for_otto == 1  # the systems, to know Bob is no system's AO


def test_submitter_cannot_verify(engine: Engine, people: People) -> None:
    number, _ = submitted(engine, people, owner=people.vera)
    run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=ALICE))
    message = "You submitted the fix for POAM-1; a separate person must verify it."
    assert_refused(engine, lambda s: verify_fix(s, people.vera, number=number), PermissionDenied, message)
    assert_refused(
        engine, lambda s: reject_fix(s, people.vera, number=number, reason="no"), PermissionDenied, message
    )


def test_a_former_owner_cannot_verify(engine: Engine, people: People) -> None:
    """COMMANDS.md: a verifier is "not a remediator of this item"; owning it
    before counts, however the ownership ended (released, or reassigned)."""
    for hand_over in ("assign", "release"):
        number = new_item(engine, people, owner=people.vera)  # a verifier working as owner
        if hand_over == "assign":
            run(engine, lambda s, n=number: assign_item(s, people.admin, number=n, owner_id=ALICE))
        else:
            run(engine, lambda s, n=number: release_item(s, people.vera, number=n))
            run(engine, lambda s, n=number: claim_item(s, people.alice, number=n))
        run(engine, lambda s, n=number: submit_fix(s, people.alice, number=n, evidence="Done."))
        message = f"You owned POAM-{number} before; a separate person must verify the fix."
        assert_refused(engine, lambda s, n=number: verify_fix(s, people.vera, number=n), PermissionDenied, message)
        assert_refused(
            engine, lambda s, n=number: reject_fix(s, people.vera, number=n, reason="no"), PermissionDenied, message
        )
        run(engine, lambda s, n=number: verify_fix(s, people.vic, number=n))


def test_a_first_owner_named_when_logged_cannot_verify(engine: Engine, people: People) -> None:
    with unit_of_work(engine) as session:
        number = log_item(session, people.reporter, title="Weak TLS", severity=Severity.LOW, detected_on=DETECTED,
                          owner_id=VERA).number
    run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=ALICE))
    run(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="Done."))
    assert_refused(
        engine, lambda s: verify_fix(s, people.vera, number=number), PermissionDenied,
        "You owned POAM-1 before; a separate person must verify the fix.",
    )


def test_the_submitter_of_a_fix_sent_back_cannot_verify_a_later_one(engine: Engine, people: People) -> None:
    number, _ = submitted(engine, people, owner=people.vera)
    run(engine, lambda s: reject_fix(s, people.vic, number=number, reason="Still vulnerable."))
    run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=ALICE))
    run(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="Fixed for real."))
    message = "You submitted a fix for POAM-1; a separate person must verify the fix."
    assert_refused(engine, lambda s: verify_fix(s, people.vera, number=number), PermissionDenied, message)
    run(engine, lambda s: verify_fix(s, people.vic, number=number))
    assert fetch(engine, number).status == Status.CLOSED


def test_a_verifier_who_sent_a_fix_back_may_verify_the_next_one(engine: Engine, people: People) -> None:
    number, _ = submitted(engine, people)
    run(engine, lambda s: reject_fix(s, people.vera, number=number, reason="Port 443 still shows 1.1.1."))
    run(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="Now really fixed."))
    run(engine, lambda s: verify_fix(s, people.vera, number=number))
    assert fetch(engine, number).status == Status.CLOSED
    assert [r.status for r in requests(engine)] == [RequestStatus.REJECTED, RequestStatus.APPROVED]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reject_needs_a_reason(engine: Engine, people: People, reason: str | None) -> None:
    number, _ = submitted(engine, people)
    assert_refused(
        engine, lambda s: reject_fix(s, people.vera, number=number, reason=reason),  # type: ignore[arg-type]
        InvalidInput, "The reason is missing.",
    )


def test_reject_returns_the_item_to_in_progress_with_the_reason(engine: Engine, people: People) -> None:
    number, _ = submitted(engine, people)
    run(engine, lambda s: reject_fix(s, people.vera, number=number, reason="  Port 443 still shows 1.1.1. "))
    item = fetch(engine, number)
    assert (item.status, item.owner_id, item.closure, item.closed_at) == (Status.IN_PROGRESS, ALICE, None, None)
    (request,) = requests(engine)
    assert (request.status, request.decided_by, request.decided_at, request.decision_note) == (
        RequestStatus.REJECTED, VERA, NOW, "Port 443 still shows 1.1.1.",
    )
    last = events(engine)[-1]
    assert (last.action, last.actor_id) == ("fix.rejected", VERA)
    assert last.details["reason"] == "Port 443 still shows 1.1.1."
    assert last.details["status"] == {"from": "pending_verification", "to": "in_progress"}
    # The owner can work on and resubmit it.
    run(engine, lambda s: add_milestone(s, people.alice, number=number, description="Redo", due_on=date(2026, 12, 5)))
    run(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="Second try."))
    assert fetch(engine, number).status == Status.PENDING_VERIFICATION


# ---------------------------------------------------------------- admins get no bypass


def _admin_cases() -> list[Any]:
    """(setup state, operation by the admin, expected message)."""
    return [
        pytest.param("submitted", lambda s, a, n: verify_fix(s, a, number=n), id="verify"),
        pytest.param("submitted", lambda s, a, n: reject_fix(s, a, number=n, reason="x"), id="reject"),
        pytest.param("planned", lambda s, a, n: approve_plan(s, a, number=n), id="approve_plan"),
        pytest.param("requested", lambda s, a, n: decide(s, a, number=n, approve=True), id="decide"),
        pytest.param(
            "planned", lambda s, a, n: accept_risk(s, a, number=n, until=date(2027, 1, 1), rationale="x"),
            id="accept_risk",
        ),
        pytest.param("planned", lambda s, a, n: submit_fix(s, a, number=n), id="submit"),
        pytest.param("planned", lambda s, a, n: set_plan(s, a, number=n, plan="x"), id="set_plan"),
        pytest.param(
            "planned",
            lambda s, a, n: request_deviation(s, a, number=n, deviation=Deviation.FALSE_POSITIVE, rationale="x"),
            id="deviate",
        ),
        pytest.param("requested", lambda s, a, n: withdraw_request(s, a, number=n), id="withdraw"),
        pytest.param("planned", lambda s, a, n: set_vendor(s, a, number=n, checkin=True), id="vendor"),
    ]


@pytest.mark.parametrize(("setup", "operation"), _admin_cases())
def test_admin_gets_no_bypass(
    engine: Engine, people: People, setup: str, operation: Callable[[Session, Actor, int], object]
) -> None:
    number = new_item(engine, people)
    if setup == "submitted":
        run(engine, lambda s: submit_fix(s, people.alice, number=number))
    elif setup == "requested":
        run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 3, 1), reason="x"))
    assert_refused(engine, lambda s: operation(s, people.admin, number), PermissionDenied)


def test_an_admin_who_is_also_a_verifier_still_cannot_verify_their_own_item(
    engine: Engine, make_actor: ActorFactory, people: People
) -> None:
    boss = make_actor(ADMIN, Role.ADMIN, Role.VERIFIER, Role.AO)
    number, _ = submitted(engine, people, owner=boss)
    assert_refused(
        engine, lambda s: verify_fix(s, boss, number=number), PermissionDenied,
        "You own POAM-1; a separate person must verify the fix.",
    )


# ---------------------------------------------------------------- the authorizing official


def test_ao_cannot_accept_risk_on_an_item_they_own(engine: Engine, people: People) -> None:
    number = new_item(engine, people, owner=people.otto)
    assert_refused(
        engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2027, 1, 1), rationale="fine"),
        PermissionDenied, "You own POAM-1; another authorizing official must accept its risk.",
    )
    assert_refused(
        engine, lambda s: approve_plan(s, people.otto, number=number), PermissionDenied,
        "You own POAM-1; another authorizing official must approve its plan.",
    )
    run(engine, lambda s: accept_risk(s, people.amy, number=number, until=date(2027, 1, 1), rationale="WAF rule."))
    assert fetch(engine, number).status == Status.RISK_ACCEPTED


def test_an_unowned_item_whose_risk_is_accepted_can_be_claimed_and_released(engine: Engine, people: People) -> None:
    """Accepted while unowned, it waited for an admin's assign: nobody could
    claim it to keep its plan or its vendor check-ins (COMMANDS.md: anyone
    claims an unowned item)."""
    number = run(engine, lambda s: log_item(s, people.reporter, title="TLS 1.0 on lb-01", severity=Severity.MODERATE,
                                            detected_on=DETECTED).number)
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2027, 1, 1), rationale="WAF rule."))
    run(engine, lambda s: claim_item(s, people.bob, number=number))
    item = fetch(engine, number)
    assert (item.owner_id, item.status) == (BOB, Status.RISK_ACCEPTED)
    assert events(engine)[-1].details == {"owner": {"from": None, "to": BOB}}
    run(engine, lambda s: release_item(s, people.bob, number=number))
    item = fetch(engine, number)
    assert (item.owner_id, item.status) == (None, Status.RISK_ACCEPTED)
    assert events(engine)[-1].details == {"owner": {"from": BOB, "to": None}}


def test_the_aos_re_review_ends_an_acceptance_now(engine: Engine, people: People) -> None:
    """A re-review could only renew it, to tomorrow at the earliest: the item
    stayed accepted until then (DOMAIN.md: expiry or re-review returns it to work)."""
    number = new_item(engine, people)
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2027, 1, 1), rationale="WAF rule."))
    assert_refused(engine, lambda s: end_risk_acceptance(s, people.alice, number=number, rationale="mine"),
                   PermissionDenied)
    run(engine, lambda s: end_risk_acceptance(s, people.amy, number=number, rationale="The WAF rule was removed."))
    item = fetch(engine, number)
    assert (item.status, item.risk_accepted_until, item.owner_id) == (Status.IN_PROGRESS, None, ALICE)
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.details) == ("risk.ended", AMY, {
        "until": {"from": "2027-01-01", "to": None}, "rationale": "The WAF rule was removed.",
        "status": {"from": "risk_accepted", "to": "in_progress"}})
    assert_refused(engine, lambda s: end_risk_acceptance(s, people.amy, number=number, rationale="again"),
                   InvalidState, "POAM-1 is in progress, so you cannot end its risk acceptance now.")
    unowned = run(engine, lambda s: log_item(s, people.reporter, title="TLS 1.0 on lb-01", severity=Severity.LOW,
                                             detected_on=DETECTED).number)
    run(engine, lambda s: accept_risk(s, people.otto, number=unowned, until=date(2027, 1, 1), rationale="Legacy."))
    run(engine, lambda s: end_risk_acceptance(s, people.otto, number=unowned, rationale="Replaced."))
    assert fetch(engine, unowned).status == Status.OPEN


def test_system_ao_who_owns_the_item_cannot_accept_its_risk(engine: Engine, people: People) -> None:
    run(engine, lambda s: add_system(s, people.admin, name="Payroll", ao_user_id=SYSAO))
    number = new_item(engine, people, owner=people.sysao, system_name="Payroll")
    assert_refused(
        engine, lambda s: accept_risk(s, people.sysao, number=number, until=date(2027, 1, 1), rationale="fine"),
        PermissionDenied,
    )


def test_ao_cannot_decide_on_an_item_they_own(engine: Engine, people: People) -> None:
    number = new_item(engine, people, owner=people.otto)
    run(engine, lambda s: request_extension(s, people.otto, number=number, due_on=date(2027, 3, 1), reason="x"))
    assert_refused(
        engine, lambda s: decide(s, people.otto, number=number, approve=True), PermissionDenied,
        "You own POAM-1; another authorizing official must decide it.",
    )


def test_ao_cannot_decide_a_request_they_made(engine: Engine, people: People) -> None:
    number = new_item(engine, people, owner=people.otto)
    run(engine, lambda s: request_deviation(
        s, people.otto, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="internal only",
        adjusted_severity=Severity.LOW,
    ))
    run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=ALICE))
    for approve in (True, False):
        assert_refused(
            engine, lambda s, approve=approve: decide(s, people.otto, number=number, approve=approve),
            PermissionDenied, "You asked for this on POAM-1; another authorizing official must decide.",
        )
    run(engine, lambda s: decide(s, people.amy, number=number, approve=True))
    assert fetch(engine, number).adjusted_severity == Severity.LOW


def test_an_ao_who_worked_on_an_item_decides_nothing_of_it_once_it_changed_hands(
    engine: Engine, people: People
) -> None:
    """Refused only while they owned it, an AO could write a plan, release the
    item and approve the plan; complete a milestone, hand the item on and
    close it as a false positive the new owner asked for (no verification);
    accept the risk of an item they just let go. They are left out of who is
    asked to decide, of what waits on them, and of the card's buttons."""
    number = new_item(engine, people, owner=people.otto)  # Otto writes the plan
    run(engine, lambda s: add_milestone(s, people.otto, number=number, description="Patch", due_on=date(2026, 12, 1)))
    run(engine, lambda s: complete_milestone(s, people.otto, number=number, milestone=1))
    run(engine, lambda s: release_item(s, people.otto, number=number))
    assert_refused(engine, lambda s: approve_plan(s, people.otto, number=number), PermissionDenied,
                   "You completed a milestone of POAM-1; another authorizing official must approve its plan.")
    assert_refused(
        engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2027, 1, 1), rationale="fine"),
        PermissionDenied, "You completed a milestone of POAM-1; another authorizing official must accept its risk.",
    )
    run(engine, lambda s: claim_item(s, people.alice, number=number))
    asked = run(engine, lambda s: request_deviation(s, people.alice, number=number,
                                                   deviation=Deviation.FALSE_POSITIVE, rationale="Backported."))
    assert_refused(engine, lambda s: decide(s, people.otto, number=number, approve=True), PermissionDenied,
                   "You completed a milestone of POAM-1; another authorizing official must decide it.")
    for ao in (OTTO, AMY):
        run(engine, lambda s, ao=ao: grant_role(s, people.admin, user_id=ao, role=Role.AO))
    with unit_of_work(engine, read_only=True) as session:
        item = session.exec(select(Item).where(Item.number == number)).one()
        assert deciders_for(session, item, asked) == [AMY]
        assert (waiting_on(session, people.otto).decisions, waiting_on(session, people.otto).plans) == ([], [])
        assert [i.number for i, _ in waiting_on(session, people.amy).decisions] == [number]
        assert [i.number for i in waiting_on(session, people.amy).plans] == [number]
        detail = show_item(session, people.otto, number=number, with_changes=False)
        assert cards.needs_remediators(detail, people.otto)
        assert item.id is not None
        worked_on = remediators(session, team_id=TEAM, item_id=item.id, owner_id=item.owner_id)
        offered = json.dumps(cards.item_card(detail, viewer=people.otto, remediators=worked_on))
        assert "poam.decide" not in offered and "poam.plan.approve" not in offered
        for_amy = json.dumps(cards.item_card(detail, viewer=people.amy, remediators=worked_on))
        assert "poam.plan.approve" in for_amy and "poam.decide.approve" in for_amy
    run(engine, lambda s: decide(s, people.amy, number=number, approve=True, reason="Agreed."))


def test_an_ao_is_offered_approve_plan_on_a_card_while_a_fix_waits(engine: Engine, people: People) -> None:
    """The card asks who worked on the item for the AO's buttons too, also
    while a fix waits on a verifier (the AO not being one)."""
    number, _ = submitted(engine, people)  # Alice's plan, not approved yet
    with unit_of_work(engine, read_only=True) as session:
        assert [i.number for i in waiting_on(session, people.otto).plans] == [number]
        detail = show_item(session, people.otto, number=number, with_changes=False)
        assert cards.needs_remediators(detail, people.otto)
        item = detail.item
        assert item.id is not None
        worked_on = remediators(session, team_id=TEAM, item_id=item.id, owner_id=item.owner_id)
        assert "poam.plan.approve" in json.dumps(cards.item_card(detail, viewer=people.otto, remediators=worked_on))
    run(engine, lambda s: approve_plan(s, people.otto, number=number))


def _card_buttons(engine: Engine, viewer: Actor, number: int) -> dict[str, dict[str, Any]]:
    """The buttons of ``viewer``'s card of item ``number``, by their text, as ``/poam show`` builds it."""
    with unit_of_work(engine, read_only=True) as session:
        detail = show_item(session, viewer, number=number, with_changes=False)
        item = detail.item
        assert item.id is not None
        worked_on = remediators(session, team_id=TEAM, item_id=item.id, owner_id=item.owner_id)
        blocks = cards.item_card(detail, viewer=viewer, remediators=worked_on)
    return {e["text"]["text"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_a_cards_verify_and_decision_buttons_ask_first_as_the_dms_do(engine: Engine, people: People) -> None:
    """One stray click on a card closed an item for good (verified, or a false
    positive approved): the DM's buttons asked first, the card's did not."""
    number, _ = submitted(engine, people)
    verify = _card_buttons(engine, people.vera, number)["Verify"]
    assert verify["confirm"]["title"]["text"] == "Verify POAM-1?"
    run(engine, lambda s: reject_fix(s, people.vera, number=number, reason="Still vulnerable."))
    run(engine, lambda s: request_deviation(s, people.alice, number=number, deviation=Deviation.FALSE_POSITIVE,
                                            rationale="Backported."))
    buttons = _card_buttons(engine, people.otto, number)
    assert buttons["Approve"]["confirm"]["text"]["text"] == "You approve a false positive."
    assert buttons["Reject"]["confirm"]["title"]["text"] == "Reject for POAM-1?"


@pytest.mark.parametrize("handed_on", ["released", "assigned"])
def test_an_ao_who_owned_an_item_before_does_not_approve_its_plan(
    engine: Engine, people: People, handed_on: str
) -> None:
    number = new_item(engine, people, owner=people.otto)
    if handed_on == "released":
        run(engine, lambda s: release_item(s, people.otto, number=number))
    else:
        run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=BOB))
    assert_refused(engine, lambda s: approve_plan(s, people.otto, number=number), PermissionDenied,
                   "You owned POAM-1 before; another authorizing official must approve its plan.")
    with unit_of_work(engine, read_only=True) as session:
        assert waiting_on(session, people.otto).plans == []
    run(engine, lambda s: approve_plan(s, people.amy, number=number))


def test_an_ao_who_submitted_a_fix_sent_back_does_not_decide(engine: Engine, people: People) -> None:
    number, _ = submitted(engine, people, owner=people.otto)
    run(engine, lambda s: reject_fix(s, people.vera, number=number, reason="Still vulnerable."))
    run(engine, lambda s: assign_item(s, people.admin, number=number, owner_id=ALICE))
    run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 3, 1), reason="Vendor."))
    assert_refused(engine, lambda s: decide(s, people.otto, number=number, approve=False), PermissionDenied)


def test_system_ao_decides_for_their_system_only(engine: Engine, people: People) -> None:
    run(engine, lambda s: add_system(s, people.admin, name="Payroll", ao_user_id=SYSAO))
    payroll = new_item(engine, people, system_name="Payroll")
    default = new_item(engine, people)
    for number in (payroll, default):
        run(engine, lambda s, n=number: request_extension(s, people.alice, number=n, due_on=date(2027, 3, 1), reason="x"))
    assert_refused(
        engine, lambda s: decide(s, people.sysao, number=default, approve=True), PermissionDenied,
        "Only the authorizing official can decide it.",
    )
    run(engine, lambda s: decide(s, people.sysao, number=payroll, approve=True))
    assert fetch(engine, payroll).due_on == date(2027, 3, 1)


def test_a_system_ao_removed_or_replaced_decides_no_more(engine: Engine, people: People) -> None:
    run(engine, lambda s: add_system(s, people.admin, name="Payroll", ao_user_id=SYSAO))
    number = new_item(engine, people, system_name="Payroll")

    def ask(due_on: date) -> None:
        run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=due_on, reason="x"))

    ask(date(2027, 3, 1))
    run(engine, lambda s: change_system(s, people.admin, name="Payroll", ao_user_id=BOB))
    assert_refused(
        engine, lambda s: decide(s, people.sysao, number=number, approve=True), PermissionDenied,
        "Only the authorizing official can decide it.",
    )
    run(engine, lambda s: decide(s, people.bob, number=number, approve=True))  # the new one does
    ask(date(2027, 4, 1))
    run(engine, lambda s: change_system(s, people.admin, name="Payroll", remove_ao=True))
    assert_refused(
        engine, lambda s: decide(s, people.bob, number=number, approve=True), PermissionDenied,
        "Only the authorizing official can decide it.",
    )
    assert fetch(engine, number).due_on == date(2027, 3, 1)


def test_nobody_but_the_ao_decides(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 3, 1), reason="x"))
    for someone in (people.alice, people.bob, people.vera, people.admin):
        assert_refused(
            engine, lambda s, a=someone: decide(s, a, number=number, approve=True), PermissionDenied,
            "Only the authorizing official can decide it.",
        )


def test_deciding_where_nothing_was_ever_asked_says_so(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    label = f"POAM-{number}"
    assert_refused(engine, lambda s: decide(s, people.otto, number=number, approve=True), AlreadyDecided,
                   f"{label} has no request to decide waiting; none was ever made.")
    assert_refused(engine, lambda s: verify_fix(s, people.vera, number=number), AlreadyDecided,
                   f"{label} has no fix to verify waiting; none was ever made.")


def test_the_history_says_what_each_review_step_changed_and_why(engine: Engine, people: People) -> None:
    """DOMAIN.md: the trail says who changed what, when, from what to what;
    `/poam history` shows it for the review steps too, not only their names."""
    number = new_item(engine, people)
    run(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="Clean rescan attached."))
    run(engine, lambda s: reject_fix(s, people.vera, number=number, reason="db-02 still <vulnerable>"))
    run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 3, 1), reason="Vendor"))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    text = json.dumps(cards.history(events(engine)[-4:], label=f"POAM-{number}"), ensure_ascii=False)
    due = fetch(engine, number).scheduled_completion_on
    for line in (
        "submitted the fix: evidence Clean rescan attached.; status in_progress \u2192 pending_verification",
        "sent the fix back: reason db-02 still &lt;vulnerable&gt;; status pending_verification \u2192 in_progress",
        f"asked for an extension: due on {due} \u2192 2027-03-01; reason Vendor",
        f"approved a request: kind extension; due on {due} \u2192 2027-03-01",
    ):
        assert line in text, (line, text)


# ---------------------------------------------------------------- plan approval


def test_plan_approval_records_who_and_when(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: approve_plan(s, people.otto, number=number))
    item = fetch(engine, number)
    assert (item.plan_approved_by, item.plan_approved_at) == (OTTO, NOW)
    (request,) = requests(engine)
    assert (request.kind, request.status, request.requested_by, request.decided_by, request.decided_at) == (
        RequestKind.PLAN_APPROVAL, RequestStatus.APPROVED, OTTO, OTTO, NOW,
    )
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.details) == ("plan.approved", OTTO, {"plan": "Upgrade OpenSSL to 3.0.15."})
    error = assert_refused(engine, lambda s: approve_plan(s, people.amy, number=number), AlreadyDecided)
    assert isinstance(error, AlreadyDecided) and error.decided_by == OTTO
    assert export_json(engine)[0]["plan_approval"] == {"by": OTTO, "at": NOW.isoformat()}
    (row,) = export_csv(engine)  # the workbook's and CSV's Comments say so: no column of the template does
    assert row["Comments"] == f"Remediation plan approved by {OTTO} on {NOW.date().isoformat()}."


def test_plan_approval_needs_a_plan(engine: Engine, people: People) -> None:
    number = new_item(engine, people, plan=False)
    assert_refused(engine, lambda s: approve_plan(s, people.otto, number=number), InvalidState)


def _with_milestone(engine: Engine, people: People, number: int) -> None:
    run(engine, lambda s: add_milestone(s, people.alice, number=number, description="Patch", due_on=date(2026, 12, 10)))


@pytest.mark.parametrize(
    ("change", "action"),
    [
        (lambda s, a, n: set_plan(s, a, number=n, plan="Replace the host instead."), "item.plan_set"),
        (lambda s, a, n: add_milestone(s, a, number=n, description="Rescan", due_on=date(2026, 12, 20)),
         "milestone.added"),
        (lambda s, a, n: move_milestone(s, a, number=n, milestone=1, due_on=date(2026, 12, 18), reason="Freeze."),
         "milestone.moved"),
    ],
    ids=["set_plan", "add_milestone", "move_milestone"],
)
def test_plan_approval_is_lost_when_the_plan_or_milestones_change(
    engine: Engine, people: People, change: Callable[[Session, Actor, int], object], action: str
) -> None:
    number = new_item(engine, people)
    _with_milestone(engine, people, number)
    run(engine, lambda s: approve_plan(s, people.otto, number=number))
    run(engine, lambda s: change(s, people.alice, number))
    item = fetch(engine, number)
    assert (item.plan_approved_by, item.plan_approved_at) == (None, None)
    last = events(engine)[-1]
    assert last.action == action and last.details["plan_approval"] == "withdrawn"
    assert export_json(engine)[0]["plan_approval"] is None
    assert "plan approved" not in export_csv(engine)[0]["Comments"]  # the approval withdrawn, though its request stays
    run(engine, lambda s: approve_plan(s, people.otto, number=number))  # it can be approved again
    assert fetch(engine, number).plan_approved_by == OTTO


def test_the_same_plan_sent_again_changes_nothing_and_keeps_its_approval(engine: Engine, people: People) -> None:
    """A `/poam plan` sent again (its answer lost, say) withdrew the approval of
    the very plan the AO had approved, and recorded a change from it to itself."""
    number = new_item(engine, people)
    run(engine, lambda s: set_plan(s, people.alice, number=number, plan="Upgrade OpenSSL to 3.0.15.", resources="1 day"))
    run(engine, lambda s: approve_plan(s, people.otto, number=number))
    for again in ({}, {"resources": "1 day"}):
        assert_refused(engine, lambda s, again=again: set_plan(s, people.alice, number=number,
                                                               plan=" Upgrade OpenSSL to 3.0.15. ", **again),
                       InvalidInput, "The plan of POAM-1 is already that; nothing was changed.")
    run(engine, lambda s: set_plan(s, people.alice, number=number, plan="Upgrade OpenSSL to 3.0.15.", resources="2 days"))
    item = fetch(engine, number)
    assert (item.remediation_plan, item.plan_approved_by) == ("Upgrade OpenSSL to 3.0.15.", None)
    assert events(engine)[-1].details == {"resources": {"from": "1 day", "to": "2 days"}, "plan_approval": "withdrawn"}


def test_plan_approval_is_kept_when_a_milestone_is_completed(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    _with_milestone(engine, people, number)
    run(engine, lambda s: approve_plan(s, people.otto, number=number))
    run(engine, lambda s: complete_milestone(s, people.alice, number=number, milestone=1))
    item = fetch(engine, number)
    assert (item.plan_approved_by, item.plan_approved_at) == (OTTO, NOW)
    assert "plan_approval" not in events(engine)[-1].details


def test_milestones_added_after_the_plan_was_approved_are_new_milestone_changes(
    engine: Engine, people: People
) -> None:
    """DOMAIN.md: planned milestones are never edited in place, and a change is
    written ``(##) New|Update|Complete``: the approved plan is the baseline, and
    a milestone added after it (even once approval was withdrawn) is a change,
    not a milestone planned from the start."""
    number = new_item(engine, people)
    _with_milestone(engine, people, number)  # M1, part of the plan the AO approves
    run(engine, lambda s: approve_plan(s, people.otto, number=number))
    run(engine, lambda s: add_milestone(s, people.alice, number=number, description="Patch the standby",
                                        due_on=date(2026, 12, 12)))
    run(engine, lambda s: add_milestone(s, people.alice, number=number, description="Rescan both",
                                        due_on=date(2026, 12, 14)))
    (row,) = export_csv(engine)
    assert row["Planned Milestones"].count("\n\n") == 0 and row["Planned Milestones"].startswith("(01) ")
    assert row["Milestone Changes"] == "(02) New 2026-12-12 : Patch the standby\n\n(03) New 2026-12-14 : Rescan both"
    (document,) = export_json(engine)
    assert [(c["kind"], c["new_due_on"], c["changed_by"]) for c in document["milestone_changes"]] == [
        ("new", "2026-12-12", ALICE), ("new", "2026-12-14", ALICE),
    ]


def test_milestones_added_before_any_approval_are_the_plan(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    _with_milestone(engine, people, number)
    run(engine, lambda s: add_milestone(s, people.alice, number=number, description="Rescan",
                                        due_on=date(2026, 12, 14)))
    (row,) = export_csv(engine)
    assert row["Planned Milestones"].startswith("(01) ") and "(02) 2026-12-14: Rescan" in row["Planned Milestones"]
    assert row["Milestone Changes"] == ""


# ---------------------------------------------------------------- deviations


@pytest.mark.parametrize(
    ("deviation", "extra", "message"),
    [
        (Deviation.RISK_ADJUSTMENT, {}, "A risk adjustment needs the adjusted severity: `sev:low`."),
        (Deviation.FALSE_POSITIVE, {"adjusted_severity": Severity.LOW}, "Only a risk adjustment (ra) takes `sev:`."),
        (Deviation.OPERATIONAL_REQUIREMENT, {"adjusted_severity": Severity.LOW},
         "Only a risk adjustment (ra) takes `sev:`."),
        (Deviation.OPERATIONAL_REQUIREMENT, {}, "An operational requirement needs a re-review date: `until:+6m`."),
        (Deviation.RISK_ADJUSTMENT, {"adjusted_severity": Severity.LOW, "until": date(2027, 3, 1)},
         "Only an operational requirement (or) takes `until:`."),
        (Deviation.FALSE_POSITIVE, {"until": date(2027, 3, 1)}, "Only an operational requirement (or) takes `until:`."),
    ],
)
def test_a_deviation_refuses_what_does_not_go_with_its_kind(
    engine: Engine, people: People, deviation: Deviation, extra: dict[str, Any], message: str
) -> None:
    number = new_item(engine, people, severity=Severity.MODERATE)
    assert_refused(
        engine,
        lambda s: request_deviation(s, people.alice, number=number, deviation=deviation, rationale="why", **extra),
        InvalidCombination, message,
    )


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.CRITICAL])
def test_operational_requirement_for_a_high_risk_is_refused_at_request(
    engine: Engine, people: People, severity: Severity
) -> None:
    number = new_item(engine, people, severity=severity)
    error = assert_refused(
        engine,
        lambda s: request_deviation(
            s, people.alice, number=number, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="legacy",
            until=date(2027, 3, 1),
        ),
        (InvalidInput, InvalidState),
    )
    assert "High" in error.message


def test_operational_requirement_is_refused_for_an_item_adjusted_to_high(engine: Engine, people: People) -> None:
    number = new_item(engine, people)  # Moderate
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="internet facing after all",
        adjusted_severity=Severity.HIGH,
    ))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    assert_refused(
        engine,
        lambda s: request_deviation(
            s, people.alice, number=number, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="legacy",
            until=date(2027, 3, 1),
        ),
        (InvalidInput, InvalidState),
    )


def test_operational_requirement_is_possible_once_a_high_is_adjusted_down(engine: Engine, people: People) -> None:
    number = new_item(engine, people, severity=Severity.HIGH)
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="behind the VPN",
        adjusted_severity=Severity.MODERATE,
    ))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="legacy payroll",
        until=date(2027, 3, 1),
    ))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    item = fetch(engine, number)
    assert (item.status, item.risk_accepted_until) == (Status.RISK_ACCEPTED, date(2027, 3, 1))


@pytest.mark.parametrize(
    "values",
    [{"severity": "high"}, {"severity": "critical"}, {"adjusted_severity": "high"}],
    ids=["now-high", "now-critical", "adjusted-to-high"],
)
def test_operational_requirement_for_a_high_risk_is_refused_at_approval(
    engine: Engine, people: People, values: dict[str, str]
) -> None:
    number = new_item(engine, people)  # Moderate when asked
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="legacy",
        until=date(2027, 3, 1),
    ))
    force(engine, number, **values)  # the rating changed meanwhile (no operation does this with a request pending)
    error = assert_refused(
        engine, lambda s: decide(s, people.otto, number=number, approve=True), (InvalidInput, InvalidState)
    )
    assert "High" in error.message
    run(engine, lambda s: decide(s, people.otto, number=number, approve=False, reason="High risk."))
    assert fetch(engine, number).status == Status.IN_PROGRESS


def test_approved_false_positive_closes_the_item(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.FALSE_POSITIVE,
        rationale="The scanner misreads the backported version.",
    ))
    assert fetch(engine, number).status == Status.IN_PROGRESS  # pending: nothing changes yet
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True, reason="Confirmed with the vendor."))
    item = fetch(engine, number)
    assert (item.status, item.closure, item.closed_at, item.owner_id) == (
        Status.CLOSED, "false_positive", NOW, ALICE,
    )
    (request,) = requests(engine)
    assert (request.kind, request.deviation, request.status, request.decided_by, request.decision_note) == (
        RequestKind.DEVIATION, Deviation.FALSE_POSITIVE, RequestStatus.APPROVED, OTTO, "Confirmed with the vendor.",
    )
    last = events(engine)[-1]
    assert (last.action, last.actor_id) == ("request.approved", OTTO)
    assert last.details["status"] == {"from": "in_progress", "to": "closed"}
    (document,) = export_json(engine)
    assert (document["status"], document["closure"]) == ("closed", "false_positive")
    (row,) = export_csv(engine)
    assert (row["False Positive"], row["Risk Adjustment"], row["Operational Requirement"]) == ("Yes", "No", "No")
    assert row["Deviation Rationale"] == "False positive: The scanner misreads the backported version."
    assert row["Comments"] == (f"False positive approved by {OTTO} on 2026-11-20: "
                               "The scanner misreads the backported version.")
    # Closed for good.
    assert_refused(engine, lambda s: submit_fix(s, people.alice, number=number), InvalidState)
    assert_refused(engine, lambda s: claim_item(s, people.bob, number=number), PoamError)


@pytest.mark.parametrize(
    ("rules", "adjusted", "due"),
    [
        (Rules(), Severity.LOW, LOW_DUE),
        (Rules(), Severity.HIGH, HIGH_DUE),
        (Rules(deadlines=DOD_CAT), Severity.LOW, date(2027, 11, 1)),  # CAT III: 365 days
    ],
    ids=["fedramp-low", "fedramp-high", "dod-low"],
)
def test_approved_risk_adjustment_recomputes_the_due_date_by_the_policy(
    engine: Engine, make_actor: ActorFactory, rules: Rules, adjusted: Severity, due: date
) -> None:
    people = People(make_actor, rules)
    number = new_item(engine, people)
    before = fetch(engine, number)
    scheduled = before.scheduled_completion_on
    assert before.due_on == scheduled == rules.deadlines.due_date(severity=Severity.MODERATE, detected_on=DETECTED)
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="Reassessed.",
        adjusted_severity=adjusted,
    ))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    item = fetch(engine, number)
    assert (item.severity, item.adjusted_severity, item.status) == (Severity.MODERATE, adjusted, Status.IN_PROGRESS)
    assert item.due_on == due  # counted from the detection date, not from today
    assert (item.detected_on, item.scheduled_completion_on) == (DETECTED, scheduled)  # never change
    last = events(engine)[-1]
    assert last.details["due_on"] == {"from": scheduled.isoformat(), "to": due.isoformat()}
    assert last.details["adjusted_severity"] == {"from": None, "to": adjusted}
    (row,) = export_csv(engine)
    assert row["Risk Adjustment"] == "Yes"
    assert row["Scheduled Completion Date"] == scheduled.isoformat()
    assert row["Current Due Date"] == due.isoformat()
    # The workbook has no column for the current due date: its comments say it.
    assert row["Comments"] == (
        f"Current due date: {due.isoformat()}. Risk adjusted to {adjusted.value.capitalize()} by {OTTO} on 2026-11-20: "
        "Reassessed."
    )


@pytest.mark.parametrize(("adjusted", "due"), [(Severity.LOW, date(2027, 6, 1)), (Severity.HIGH, HIGH_DUE)])
def test_a_lower_rating_keeps_an_extension_granted_before(
    engine: Engine, people: People, adjusted: Severity, due: date
) -> None:
    """A Moderate item extended to 1 June 2027, then rated Low: recomputed by
    the policy alone, it was due on 30 April, a month taken back by a decision
    that lowered the risk. A higher rating is due by the policy, as tightening."""
    number = new_item(engine, people)
    run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 6, 1), reason="Vendor."))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="Reassessed.",
        adjusted_severity=adjusted,
    ))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    assert fetch(engine, number).due_on == due


def test_a_higher_rating_never_gives_more_time(engine: Engine, people: People) -> None:
    """Due by 8 Nov (a KEV's two weeks, set when it was logged) and rated
    Critical: by the policy alone it was due on 1 Dec, more time granted by a
    decision that raised the risk, with no extension on record. The AO is
    shown what approving a lower rating does to the date before deciding."""
    with unit_of_work(engine) as s:
        number = log_item(s, people.reporter, title="KEV on web-01", severity=Severity.HIGH, detected_on=DETECTED,
                          due_on=date(2026, 11, 15)).number
        claim_item(s, people.alice, number=number)
    raised = run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="Exploited in the wild.",
        adjusted_severity=Severity.CRITICAL,
    ))
    item = fetch(engine, number)
    assert cards.due_if_approved(item, raised, rules=people.otto.rules) == ""  # the date stays
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    assert (fetch(engine, number).adjusted_severity, fetch(engine, number).due_on) == ("critical", date(2026, 11, 15))
    lowered = run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="Behind the WAF now.",
        adjusted_severity=Severity.MODERATE,
    ))
    item = fetch(engine, number)
    assert cards.due_if_approved(item, lowered, rules=people.otto.rules) == "; approving makes it due Sat 30 Jan 2027"
    with unit_of_work(engine, read_only=True) as s:
        asked = json.dumps(cards.item_card(show_item(s, people.otto, number=number), viewer=people.otto))
    assert "a risk adjustment to :large_yellow_circle: Moderate; approving makes it due Sat 30 Jan 2027" in asked
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    assert fetch(engine, number).due_on == date(2027, 1, 30)  # 90 days from detection


def test_a_rejected_deviation_changes_nothing_on_the_item(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT, rationale="x",
        adjusted_severity=Severity.LOW,
    ))
    before = fetch(engine, number)
    run(engine, lambda s: decide(s, people.otto, number=number, approve=False, reason="Internet facing."))
    after = fetch(engine, number)
    assert (after.status, after.due_on, after.adjusted_severity) == (before.status, before.due_on, None)
    assert requests(engine)[-1].status == RequestStatus.REJECTED
    assert events(engine)[-1].action == "request.rejected"


# ---------------------------------------------------------------- extensions and the exports


def test_approved_extension_moves_the_due_date_and_keeps_the_scheduled_completion_date(
    engine: Engine, people: People
) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: request_extension(
        s, people.alice, number=number, due_on=date(2027, 3, 1), reason="The vendor patch slipped to February.",
    ))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True, reason="One time."))
    item = fetch(engine, number)
    assert (item.due_on, item.scheduled_completion_on, item.detected_on) == (date(2027, 3, 1), MODERATE_DUE, DETECTED)
    last = events(engine)[-1]
    assert last.details["due_on"] == {"from": "2027-01-30", "to": "2027-03-01"}
    # Milestones may now run to the new date.
    run(engine, lambda s: add_milestone(s, people.alice, number=number, description="Late patch", due_on=date(2027, 2, 20)))

    (document,) = export_json(engine)
    assert (document["scheduled_completion_on"], document["due_on"]) == ("2027-01-30", "2027-03-01")
    (extension,) = document["requests"]
    assert extension == {
        "kind": "extension",
        "deviation": None,
        "status": "approved",
        "text": "The vendor patch slipped to February.",
        "adjusted_severity": None,
        "until_on": None,
        "new_due_on": "2027-03-01",
        "requested_by": ALICE,
        "requested_at": NOW.isoformat(),
        "decided_by": OTTO,
        "decided_at": NOW.isoformat(),
        "decision_note": "One time.",
    }
    (row,) = export_csv(engine)
    assert row["Original Detection Date"] == "2026-11-01"
    assert row["Scheduled Completion Date"] == "2027-01-30"
    assert row["Current Due Date"] == "2027-03-01"
    assert row["Comments"] == (
        f"Current due date: 2027-03-01. Extension to 2027-03-01 approved by {OTTO} on 2026-11-20: "
        "The vendor patch slipped to February."
    )
    assert (row["Risk Adjustment"], row["False Positive"], row["Operational Requirement"]) == ("No", "No", "No")


def test_extension_must_be_later_than_the_current_due_date(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    for day in (MODERATE_DUE, date(2027, 1, 1)):
        assert_refused(
            engine, lambda s, d=day: request_extension(s, people.alice, number=number, due_on=d, reason="x"),
            InvalidInput,
        )


def test_an_extension_to_a_day_already_past_is_refused(engine: Engine, people: People, clock: FixedClock) -> None:
    """Later than the due date an overdue item missed, but before today: the
    item would stay overdue, extended."""
    number = new_item(engine, people)
    clock.set(datetime(2027, 2, 20, 15, 0, tzinfo=UTC))  # three weeks overdue
    for day in (date(2027, 2, 10), date(2027, 2, 20)):
        assert_refused(
            engine, lambda s, d=day: request_extension(s, people.alice, number=number, due_on=d, reason="x"),
            InvalidInput,
        )
    run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 2, 21), reason="x"))


def test_a_second_risk_adjustment_pending_leaves_the_rationale_of_the_approved_one(
    engine: Engine, people: People
) -> None:
    """Beside Adjusted Risk Rating Low and Risk Adjustment Yes, Deviation
    Rationale gave the reasons of a pending adjustment to High: Comments tell
    of that one; a pending request of another kind still takes the column."""
    number = new_item(engine, people)
    run(engine, lambda s: request_deviation(s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT,
                                            rationale="Behind the VPN", adjusted_severity=Severity.LOW))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    run(engine, lambda s: request_deviation(s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT,
                                            rationale="Exposed after all", adjusted_severity=Severity.HIGH))
    (row,) = export_csv(engine)
    assert (row["Adjusted Risk Rating"], row["Risk Adjustment"], row["Deviation Rationale"]) == (
        "Low", "Yes", "Risk adjustment: Behind the VPN")
    assert row["Comments"].endswith(
        "Risk adjustment to High asked for again, pending the authorizing official: Exposed after all.")
    run(engine, lambda s: withdraw_request(s, people.alice, number=number))
    run(engine, lambda s: request_deviation(s, people.alice, number=number, deviation=Deviation.FALSE_POSITIVE,
                                            rationale="Not installed"))
    (row,) = export_csv(engine)
    assert (row["Risk Adjustment"], row["False Positive"], row["Deviation Rationale"]) == (
        "Yes", "Pending", "False positive: Not installed")
    assert "asked for again" not in row["Comments"]


def test_decisions_record_every_field_they_change_from_what_to_what(engine: Engine, people: People) -> None:
    """An assessor reads in the trail what each decision changed: the status,
    and the closure or the date until which the risk stands."""
    def deviate(number: int, deviation: Deviation, **kwargs: Any) -> None:
        run(engine, lambda s: request_deviation(s, people.alice, number=number, deviation=deviation, rationale="Why.",
                                                **kwargs))
        run(engine, lambda s: decide(s, people.otto, number=number, approve=True))

    false_positive = new_item(engine, people, severity=Severity.MODERATE)
    deviate(false_positive, Deviation.FALSE_POSITIVE)
    assert events(engine)[-1].details["closure"] == {"from": None, "to": "false_positive"}
    assert events(engine)[-1].details["status"]["to"] == "closed"
    requirement = new_item(engine, people, severity=Severity.MODERATE)
    deviate(requirement, Deviation.OPERATIONAL_REQUIREMENT, until=date(2027, 6, 1))
    assert events(engine)[-1].details["risk_accepted_until"] == {"from": None, "to": "2027-06-01"}
    accepted = new_item(engine, people, severity=Severity.MODERATE)
    run(engine, lambda s: accept_risk(s, people.otto, number=accepted, until=date(2027, 1, 1), rationale="Low use."))
    assert events(engine)[-1].details["status"] == {"from": "in_progress", "to": "risk_accepted"}


def test_deviation_columns_say_yes_no_pending(engine: Engine, people: People) -> None:
    alice, otto = people.alice, people.otto

    def deviate(number: int, deviation: Deviation, **kwargs: Any) -> None:
        run(engine, lambda s: request_deviation(s, alice, number=number, deviation=deviation, rationale="Why.", **kwargs))

    pending_ra = new_item(engine, people)
    deviate(pending_ra, Deviation.RISK_ADJUSTMENT, adjusted_severity=Severity.LOW)
    approved_fp = new_item(engine, people)
    deviate(approved_fp, Deviation.FALSE_POSITIVE)
    run(engine, lambda s: decide(s, otto, number=approved_fp, approve=True))
    approved_or = new_item(engine, people)
    deviate(approved_or, Deviation.OPERATIONAL_REQUIREMENT, until=date(2027, 6, 1))
    run(engine, lambda s: decide(s, otto, number=approved_or, approve=True))
    rejected_ra = new_item(engine, people)
    deviate(rejected_ra, Deviation.RISK_ADJUSTMENT, adjusted_severity=Severity.LOW)
    run(engine, lambda s: decide(s, otto, number=rejected_ra, approve=False))
    withdrawn_fp = new_item(engine, people)
    deviate(withdrawn_fp, Deviation.FALSE_POSITIVE)
    run(engine, lambda s: withdraw_request(s, alice, number=withdrawn_fp))
    approved_ra = new_item(engine, people)
    deviate(approved_ra, Deviation.RISK_ADJUSTMENT, adjusted_severity=Severity.LOW)
    run(engine, lambda s: decide(s, otto, number=approved_ra, approve=True))
    pending_or = new_item(engine, people)
    deviate(pending_or, Deviation.OPERATIONAL_REQUIREMENT, until=date(2027, 6, 1))

    rows = {int(row["POAM ID"].split("-")[1]): row for row in export_csv(engine)}

    def answers(number: int) -> tuple[str, str, str, str]:
        row = rows[number]
        return (row["Risk Adjustment"], row["False Positive"], row["Operational Requirement"], row["Adjusted Risk Rating"])

    assert answers(pending_ra) == ("Pending", "No", "No", "N/A")
    assert answers(approved_fp) == ("No", "Yes", "No", "N/A")
    assert answers(approved_or) == ("No", "No", "Yes", "N/A")
    assert answers(rejected_ra) == ("No", "No", "No", "N/A")
    assert answers(withdrawn_fp) == ("No", "No", "No", "N/A")
    assert answers(approved_ra) == ("Yes", "No", "No", "Low")
    assert answers(pending_or) == ("No", "No", "Pending", "N/A")
    assert rows[approved_or]["Status"] == "risk_accepted"
    assert rows[approved_fp]["Status"] == "closed"
    assert rows[approved_or]["Comments"] == (
        f"Operational requirement approved by {OTTO} on 2026-11-20, to be reviewed again by 2027-06-01: Why."
    )
    assert rows[pending_or]["Comments"] == rows[rejected_ra]["Comments"] == ""  # only decisions made

    documents = {document["number"]: document for document in export_json(engine)}
    assert [r["status"] for r in documents[withdrawn_fp]["requests"]] == ["withdrawn"]
    assert [(r["deviation"], r["status"]) for r in documents[pending_or]["requests"]] == [("or", "pending")]
    assert documents[approved_or]["risk_accepted_until"] == "2027-06-01"


def test_operational_requirement_says_yes_while_the_risk_stays_accepted(
    engine: Engine, people: People, clock: FixedClock
) -> None:
    """By an approved OR or by accept-risk, as OSCAL's deviation-approved says;
    once the acceptance lapses the item is due again, and says No."""
    accepted = new_item(engine, people)
    run(engine, lambda s: accept_risk(s, people.otto, number=accepted, until=date(2026, 12, 1), rationale="WAF rule."))
    approved_or = new_item(engine, people)
    run(engine, lambda s: request_deviation(s, people.alice, number=approved_or,
                                            deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="Why.",
                                            until=date(2026, 12, 1)))
    run(engine, lambda s: decide(s, people.otto, number=approved_or, approve=True))
    accepted_high = new_item(engine, people, severity=Severity.HIGH)  # an OR is never approved for High
    run(engine, lambda s: accept_risk(s, people.otto, number=accepted_high, until=date(2026, 12, 1), rationale="x"))

    def columns() -> dict[int, tuple[str, str]]:
        return {int(row["POAM ID"].split("-")[1]): (row["Operational Requirement"], row["Deviation Rationale"])
                for row in export_csv(engine)}

    assert columns() == {accepted: ("Yes", "Operational requirement: WAF rule."),
                         approved_or: ("Yes", "Operational requirement: Why."), accepted_high: ("No", "")}
    clock.advance(days=12)
    assert [expired.number for expired in _expire(engine, clock)] == [accepted, approved_or, accepted_high]
    assert columns() == {accepted: ("No", ""), approved_or: ("No", ""), accepted_high: ("No", "")}
    assert all(f"by {OTTO} on 2026-11-20" in row["Comments"] for row in export_csv(engine))  # still on record


# ---------------------------------------------------------------- requests: one at a time, withdraw, the record


def _pending_ra(engine: Engine, people: People) -> int:
    number = new_item(engine, people)
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.RISK_ADJUSTMENT,
        rationale="Only reachable from the admin VLAN.", adjusted_severity=Severity.LOW,
    ))
    return number


def test_one_pending_request_at_a_time(engine: Engine, people: People) -> None:
    number = _pending_ra(engine, people)
    assert_refused(
        engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 3, 1), reason="x"),
        InvalidState,
    )
    for deviation, extra in (
        (Deviation.FALSE_POSITIVE, {}),
        (Deviation.RISK_ADJUSTMENT, {"adjusted_severity": Severity.HIGH}),
        (Deviation.OPERATIONAL_REQUIREMENT, {"until": date(2027, 3, 1)}),
    ):
        assert_refused(
            engine,
            lambda s, d=deviation, e=extra: request_deviation(  # type: ignore[misc]
                s, people.alice, number=number, deviation=d, rationale="x", **e
            ),
            InvalidState,
        )
    assert_refused(
        engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2027, 1, 1), rationale="x"),
        InvalidState,
    )
    assert [r.status for r in requests(engine)] == [RequestStatus.PENDING]


def test_submit_is_refused_while_a_request_waits_and_changes_nothing(engine: Engine, people: People) -> None:
    number = _pending_ra(engine, people)
    assert_refused(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="done"), InvalidState)


def test_a_request_records_who_asked_when_what_and_why_and_who_decided(engine: Engine, people: People) -> None:
    number = _pending_ra(engine, people)
    (request,) = requests(engine)
    assert (request.team_id, request.kind, request.deviation, request.status) == (
        TEAM, RequestKind.DEVIATION, Deviation.RISK_ADJUSTMENT, RequestStatus.PENDING,
    )
    assert (request.requested_by, request.requested_at) == (ALICE, NOW)
    assert (request.text, request.adjusted_severity) == ("Only reachable from the admin VLAN.", Severity.LOW)
    assert (request.decided_by, request.decided_at, request.decision_note) == (None, None, None)
    last = events(engine)[-1]
    assert (last.action, last.actor_id) == ("deviation.requested", ALICE)
    assert last.details == {
        "request": request.id, "deviation": "ra", "rationale": "Only reachable from the admin VLAN.",
        "adjusted_severity": "low", "until": None,
    }
    run(engine, lambda s: decide(s, people.otto, number=number, approve=False, reason="Still internet facing."))
    (request,) = requests(engine)
    assert (request.status, request.decided_by, request.decided_at, request.decision_note) == (
        RequestStatus.REJECTED, OTTO, NOW, "Still internet facing.",
    )
    last = events(engine)[-1]
    assert (last.action, last.actor_id) == ("request.rejected", OTTO)
    assert last.details["request"] == request.id and last.details["reason"] == "Still internet facing."


def test_withdraw(engine: Engine, people: People) -> None:
    number = _pending_ra(engine, people)
    assert_refused(engine, lambda s: withdraw_request(s, people.bob, number=number), PermissionDenied)
    run(engine, lambda s: withdraw_request(s, people.alice, number=number))
    (request,) = requests(engine)
    assert (request.status, request.decided_by, request.decided_at) == (RequestStatus.WITHDRAWN, ALICE, NOW)
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.details) == (
        "request.withdrawn", ALICE, {"request": request.id, "kind": "deviation", "deviation": "ra"}
    )
    # The AO's Approve button, pressed afterwards, is told so and changes nothing.
    error = assert_refused(
        engine, lambda s: decide(s, people.otto, number=number, approve=True, request_id=request.id), AlreadyDecided
    )
    assert isinstance(error, AlreadyDecided) and error.decided_by == ALICE
    assert "withdrawn" in error.message
    # Nothing left to withdraw; a new request may be made.
    assert_refused(engine, lambda s: withdraw_request(s, people.alice, number=number), (AlreadyDecided, InvalidState))
    run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 3, 1), reason="x"))
    assert [r.status for r in requests(engine)] == [RequestStatus.WITHDRAWN, RequestStatus.PENDING]
    assert fetch(engine, number).adjusted_severity is None


# ---------------------------------------------------------------- risk acceptance and its expiry


def _expire(engine: Engine, clock: FixedClock, tz: str = "UTC") -> list[Expired]:
    done = end_risk_acceptances(engine, clock=clock, rules=Rules(timezone=ZoneInfo(tz)))
    assert not done.failed
    return done.ended


def test_risk_acceptance_expires_after_its_date_not_before(engine: Engine, people: People, clock: FixedClock) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2026, 12, 31), rationale="WAF rule."))
    item = fetch(engine, number)
    assert (item.status, item.risk_accepted_until) == (Status.RISK_ACCEPTED, date(2026, 12, 31))
    (request,) = requests(engine)
    assert (request.kind, request.status, request.requested_by, request.decided_by, request.until_on, request.text) == (
        RequestKind.RISK_ACCEPTANCE, RequestStatus.APPROVED, OTTO, OTTO, date(2026, 12, 31), "WAF rule.",
    )
    (row,) = export_csv(engine)
    assert row["Comments"] == f"Risk accepted until 2026-12-31 by {OTTO} on 2026-11-20: WAF rule."

    before = snapshot(engine)
    for moment in (NOW, datetime(2026, 12, 31, 0, 0, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)):
        clock.set(moment)
        assert _expire(engine, clock) == []  # the until date itself still holds
    assert snapshot(engine) == before

    clock.set(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    assert _expire(engine, clock) == [Expired(TEAM, number, date(2026, 12, 31))]
    item = fetch(engine, number)
    assert (item.status, item.owner_id, item.risk_accepted_until) == (Status.IN_PROGRESS, ALICE, None)
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.item_id) == ("risk.expired", SYSTEM_ACTOR, item.id)
    assert last.details == {"until": "2026-12-31", "status": {"from": "risk_accepted", "to": "in_progress"}}
    assert _expire(engine, clock) == []  # once
    chain_ok(engine)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Auckland"])
def test_risk_acceptance_holds_through_its_day_in_the_workspaces_zone(
    engine: Engine, people: People, clock: FixedClock, zone: str
) -> None:
    """Ended by the UTC day, an acceptance until 31 December ended at 16:00
    that day in Los Angeles, and held until 13:00 on 1 January in Auckland."""
    number = new_item(engine, people)
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2026, 12, 31), rationale="WAF rule."))
    last_moment = datetime(2027, 1, 1, tzinfo=ZoneInfo(zone)) - timedelta(seconds=1)
    clock.set(last_moment.astimezone(UTC))
    assert _expire(engine, clock, zone) == []
    clock.set((last_moment + timedelta(seconds=1)).astimezone(UTC))
    assert _expire(engine, clock, zone) == [Expired(TEAM, number, date(2026, 12, 31))]


def _accepted_in_two_workspaces(engine: Engine, people: People, make_actor: Any) -> None:
    """Item 1 of this workspace and of T0OTHER, each risk accepted until 25 November."""
    for actor, otto in ((people.alice, people.otto),
                        (make_actor(ALICE, team="T0OTHER"), make_actor(OTTO, Role.AO, team="T0OTHER"))):
        item = run(engine, lambda s, actor=actor: log_item(s, actor, title="Weak TLS", severity=Severity.LOW,
                                                          owner_id=ALICE))
        run(engine, lambda s, otto=otto, item=item: accept_risk(s, otto, number=item.number, until=date(2026, 11, 25),
                                                                 rationale="WAF rule."))


def test_a_workspace_whose_change_is_refused_holds_back_no_other(
    engine: Engine, people: People, clock: FixedClock, make_actor: Any
) -> None:
    """Its audit trail past its recorded head (a restored copy, say), one
    workspace's expiry is refused: the others' end all the same, each in its own
    transaction, and the refusal is reported (the next tick tries again)."""
    _accepted_in_two_workspaces(engine, people, make_actor)
    with engine.begin() as connection:
        connection.execute(sa.update(Workspace).where(Workspace.team_id == TEAM).values(audit_seq=Workspace.audit_seq - 1))
    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    done = end_risk_acceptances(engine, clock=clock, rules=Rules())
    assert done.ended == [Expired("T0OTHER", 1, date(2026, 11, 25))]
    assert list(done.failed) == [TEAM] and "audit trail already holds events" in done.failed[TEAM]
    assert fetch(engine, 1).status == Status.RISK_ACCEPTED
    assert fetch(engine, 1, team="T0OTHER").status == Status.IN_PROGRESS


def test_a_workspace_whose_expiry_fails_otherwise_holds_back_no_other_either(
    engine: Engine, people: People, clock: FixedClock, make_actor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accepted_in_two_workspaces(engine, people, make_actor)
    ending = expiries.expire_risk_acceptances

    def busy_for_the_first(session: Session, *, team_id: str, **kwargs: Any) -> list[Expired]:
        if team_id == TEAM:
            raise sa.exc.OperationalError("UPDATE items", {}, RuntimeError("database is locked"))
        return ending(session, team_id=team_id, **kwargs)

    monkeypatch.setattr(expiries, "expire_risk_acceptances", busy_for_the_first)
    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    done = end_risk_acceptances(engine, clock=clock, rules=Rules())
    assert done.ended == [Expired("T0OTHER", 1, date(2026, 11, 25))]
    assert list(done.failed) == [TEAM] and "database is locked" in done.failed[TEAM]


def test_risk_acceptance_of_an_unowned_item_expires_to_open(engine: Engine, people: People, clock: FixedClock) -> None:
    with unit_of_work(engine) as session:
        number = log_item(session, people.reporter, title="Old TLS", severity=Severity.LOW).number
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2026, 12, 1), rationale="Decommission."))
    assert fetch(engine, number).status == Status.RISK_ACCEPTED
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert _expire(engine, clock) == [Expired(TEAM, number, date(2026, 12, 1))]
    item = fetch(engine, number)
    assert (item.status, item.owner_id) == (Status.OPEN, None)
    assert events(engine)[-1].details["status"] == {"from": "risk_accepted", "to": "open"}
    run(engine, lambda s: claim_item(s, people.bob, number=number))  # claimable again


def test_an_approved_operational_requirement_expires_too(engine: Engine, people: People, clock: FixedClock) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="Legacy payroll.",
        until=date(2027, 2, 1),
    ))
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    item = fetch(engine, number)
    assert (item.status, item.risk_accepted_until) == (Status.RISK_ACCEPTED, date(2027, 2, 1))
    clock.set(datetime(2027, 2, 1, 12, 0, tzinfo=UTC))
    assert _expire(engine, clock) == []
    clock.set(datetime(2027, 2, 2, 12, 0, tzinfo=UTC))
    assert [e.number for e in _expire(engine, clock)] == [number]
    assert fetch(engine, number).status == Status.IN_PROGRESS


def test_the_aos_re_review_renews_a_risk_acceptance_before_it_lapses(
    engine: Engine, people: People, clock: FixedClock
) -> None:
    """DOMAIN.md: risk_accepted ──expiry or re-review──> in_progress. An AO
    told of an acceptance ending within 30 days could only let it lapse (the
    item back in work, perhaps overdue) before accepting it again."""
    number = new_item(engine, people)
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2026, 12, 31), rationale="WAF rule."))
    renewed = run(engine, lambda s: accept_risk(
        s, people.otto, number=number, until=date(2027, 3, 31), rationale="Vendor fix due in Q1."))
    assert renewed.renewed_from == date(2026, 12, 31)
    item = fetch(engine, number)
    assert (item.status, item.risk_accepted_until) == (Status.RISK_ACCEPTED, date(2027, 3, 31))
    last = events(engine)[-1]
    assert (last.action, last.actor_id) == ("risk.renewed", OTTO)
    assert {key: last.details[key] for key in ("until", "rationale")} == {
        "until": {"from": "2026-12-31", "to": "2027-03-31"}, "rationale": "Vendor fix due in Q1."}
    (row,) = export_csv(engine)  # both decisions, with their grounds
    assert row["Comments"] == (f"Risk accepted until 2026-12-31 by {OTTO} on 2026-11-20: WAF rule. "
                               f"Risk accepted until 2027-03-31 by {OTTO} on 2026-11-20: Vendor fix due in Q1.")
    clock.set(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    assert _expire(engine, clock) == []  # the first date passed: renewed, it holds
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2027, 1, 2), rationale="Ends sooner."))
    clock.set(datetime(2027, 1, 3, 0, 0, tzinfo=UTC))
    assert _expire(engine, clock) == [Expired(TEAM, number, date(2027, 1, 2))]  # a re-review may end it sooner
    assert fetch(engine, number).status == Status.IN_PROGRESS
    chain_ok(engine)


def test_a_renewal_to_the_same_date_or_by_someone_not_the_ao_is_refused(engine: Engine, people: People) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2026, 12, 31), rationale="WAF rule."))
    assert_refused(engine, lambda s: accept_risk(s, people.otto, number=number, until=date(2026, 12, 31),
                                                 rationale="Again."), InvalidInput)
    assert_refused(engine, lambda s: accept_risk(s, people.alice, number=number, until=date(2027, 3, 31),
                                                 rationale="Mine."), PermissionDenied)


@pytest.mark.parametrize("until", [TODAY, date(2026, 11, 1)])
def test_risk_acceptance_needs_a_future_date(engine: Engine, people: People, until: date) -> None:
    number = new_item(engine, people)
    assert_refused(
        engine, lambda s: accept_risk(s, people.otto, number=number, until=until, rationale="x"), InvalidInput
    )


def test_a_risk_accepted_until_the_workspaces_today_is_refused_though_tomorrow_for_the_ao(
    engine: Engine, people: People, make_actor: ActorFactory
) -> None:
    """Fri 20 Nov 15:00 UTC: 03:00 on the 20th for an AO at UTC-12, 05:00 on
    the 21st in a workspace at UTC+14. Accepted until the 21st, the risk
    ended at the next tick (acceptances end by the workspace's day)."""
    number = new_item(engine, people)
    far_ao = make_actor(OTTO, Role.AO, tz="Etc/GMT+12", rules=Rules(timezone=ZoneInfo("Pacific/Kiritimati")))
    assert far_ao.today() == date(2026, 11, 20)
    assert_refused(engine, lambda s: accept_risk(s, far_ao, number=number, until=date(2026, 11, 21),
                                                 rationale="x"), InvalidInput)
    run(engine, lambda s: accept_risk(s, far_ao, number=number, until=date(2026, 11, 22), rationale="x"))


def test_an_operational_requirement_whose_date_has_passed_cannot_be_approved(
    engine: Engine, people: People, clock: FixedClock
) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: request_deviation(
        s, people.alice, number=number, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="Legacy.",
        until=date(2026, 12, 1),
    ))
    clock.set(datetime(2026, 12, 5, 15, 0, tzinfo=UTC))  # the AO gets to it late
    assert_refused(
        engine, lambda s: decide(s, people.otto, number=number, approve=True), (InvalidInput, InvalidState)
    )


# ---------------------------------------------------------------- vendor dependency


def test_vendor_dependency_and_checkins(engine: Engine, people: People, clock: FixedClock) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: set_vendor(s, people.alice, number=number, product="Acme Appliance"))
    item = fetch(engine, number)
    assert (item.vendor_dependency, item.vendor_product, item.last_vendor_checkin_on) == (True, "Acme Appliance", None)
    run(engine, lambda s: set_vendor(s, people.alice, number=number, checkin=True))
    assert fetch(engine, number).last_vendor_checkin_on == TODAY
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.details) == (
        "vendor.updated", ALICE, {"checkin": {"from": None, "to": "2026-11-20"}},
    )
    clock.advance(days=12)
    run(engine, lambda s: set_vendor(s, people.alice, number=number, checkin=True))
    assert fetch(engine, number).last_vendor_checkin_on == date(2026, 12, 2)
    assert_refused(engine, lambda s: set_vendor(s, people.alice, number=number), InvalidInput)
    (row,) = export_csv(engine)
    assert (row["Vendor Dependency"], row["Last Vendor Check-in Date"], row["Vendor Dependent Product Name"]) == (
        "Yes", "2026-12-02", "Acme Appliance",
    )


def test_vendor_checkin_is_today_in_the_owners_time_zone(engine: Engine, make_actor: ActorFactory, people: People) -> None:
    tokyo = make_actor(ALICE, tz="Asia/Tokyo")  # 15:00 UTC is already Saturday 00:00 in Tokyo
    number = new_item(engine, people)
    run(engine, lambda s: set_vendor(s, tokyo, number=number, checkin=True))
    assert fetch(engine, number).last_vendor_checkin_on == date(2026, 11, 21)


def test_a_vendor_fix_shipped_asks_the_ao_to_restart_the_clock(
    engine: Engine, people: People, clock: FixedClock
) -> None:
    """DOMAIN.md: once the vendor ships a fix the clock restarts: due as if found
    that day, by the item's current rating. The owner never moves their own
    due date later: the restarted date is an extension the AO decides."""
    number = new_item(engine, people)  # moderate, found 2026-11-01: due 2027-01-30
    assert_refused(engine, lambda s: vendor_shipped(s, people.alice, number=number), InvalidState,
                   "POAM-1 is not marked as waiting on a vendor; `/poam vendor POAM-1` marks it.")
    run(engine, lambda s: set_vendor(s, people.alice, number=number, product="Acme Appliance"))
    clock.advance(days=20)  # 2026-12-10
    assert_refused(engine, lambda s: vendor_shipped(s, people.bob, number=number), PermissionDenied)
    shipped = run(engine, lambda s: vendor_shipped(s, people.alice, number=number))
    assert shipped.extension is not None
    item = fetch(engine, number)
    assert (item.vendor_dependency, item.vendor_product, item.due_on) == (False, "Acme Appliance", date(2027, 1, 30))
    shipped_event, asked_event = events(engine)[-2:]
    assert (shipped_event.action, shipped_event.actor_id, shipped_event.details) == ("vendor.shipped", ALICE, {
        "dependency": {"from": True, "to": False}, "shipped_on": "2026-12-10", "restarted_due_on": "2027-03-10",
    })
    assert asked_event.action == "extension.requested"
    (asked,) = [r for r in requests(engine) if r.status == RequestStatus.PENDING]
    assert (asked.kind, asked.new_due_on, asked.requested_by) == (RequestKind.EXTENSION, date(2027, 3, 10), ALICE)
    assert asked.text == (
        "The vendor's fix shipped on 2026-12-10: the remediation clock restarts, due 2027-03-10 by the deadline policy."
    )
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True))
    item = fetch(engine, number)
    assert (item.due_on, item.scheduled_completion_on) == (date(2027, 3, 10), date(2027, 1, 30))
    (row,) = export_csv(engine)
    assert (row["Vendor Dependency"], row["Current Due Date"]) == ("No", "2027-03-10")
    assert_refused(engine, lambda s: vendor_shipped(s, people.alice, number=number), InvalidState)


def test_a_vendor_fix_shipped_waits_for_a_pending_request(engine: Engine, people: People, clock: FixedClock) -> None:
    number = new_item(engine, people)
    run(engine, lambda s: set_vendor(s, people.alice, number=number, product="Acme Appliance"))
    run(engine, lambda s: request_extension(s, people.alice, number=number, due_on=date(2027, 2, 10), reason="Vendor."))
    clock.advance(days=20)
    before = snapshot(engine)
    assert_refused(engine, lambda s: vendor_shipped(s, people.alice, number=number), InvalidState,
                   "POAM-1 already waits on an extension request; that must be decided (or withdrawn) first.")
    assert snapshot(engine) == before


def test_a_vendor_fix_shipped_early_leaves_the_due_date(engine: Engine, people: People) -> None:
    """Shipped the day it was found: the restarted clock is no later, so nothing is asked."""
    with unit_of_work(engine) as session:
        number = log_item(session, people.reporter, title="Appliance firmware", severity=Severity.MODERATE,
                          detected_on=TODAY, owner_id=ALICE).number
    run(engine, lambda s: set_vendor(s, people.alice, number=number))
    shipped = run(engine, lambda s: vendor_shipped(s, people.alice, number=number))
    assert shipped.extension is None and shipped.item.vendor_dependency is False
    assert requests(engine, number) == [] and fetch(engine, number).due_on == TODAY + timedelta(days=90)


# ---------------------------------------------------------------- audit: one event per operation, chain intact


def test_every_operation_writes_exactly_one_audit_event(engine: Engine, people: People, clock: FixedClock) -> None:
    p = people
    steps: list[tuple[str, str, Callable[[Session], object]]] = [
        ("item.logged", REPORTER, lambda s: log_item(s, p.reporter, title="Weak TLS", severity=Severity.MODERATE,
                                                     detected_on=DETECTED)),
        ("item.claimed", ALICE, lambda s: claim_item(s, p.alice, number=1)),
        ("item.plan_set", ALICE, lambda s: set_plan(s, p.alice, number=1, plan="Disable TLS 1.0.")),
        ("milestone.added", ALICE, lambda s: add_milestone(s, p.alice, number=1, description="Staging",
                                                           due_on=date(2026, 12, 1))),
        ("milestone.added", ALICE, lambda s: add_milestone(s, p.alice, number=1, description="Production",
                                                           due_on=date(2026, 12, 15))),
        ("plan.approved", OTTO, lambda s: approve_plan(s, p.otto, number=1)),
        ("milestone.completed", ALICE, lambda s: complete_milestone(s, p.alice, number=1, milestone=1)),
        ("milestone.moved", ALICE, lambda s: move_milestone(s, p.alice, number=1, milestone=2,
                                                            due_on=date(2026, 12, 20), reason="Freeze.")),
        ("plan.approved", OTTO, lambda s: approve_plan(s, p.otto, number=1)),
        ("vendor.updated", ALICE, lambda s: set_vendor(s, p.alice, number=1, product="Acme", checkin=True)),
        ("extension.requested", ALICE, lambda s: request_extension(s, p.alice, number=1, due_on=date(2027, 3, 1),
                                                                   reason="Vendor.")),
        ("request.approved", OTTO, lambda s: decide(s, p.otto, number=1, approve=True)),
        ("deviation.requested", ALICE, lambda s: request_deviation(
            s, p.alice, number=1, deviation=Deviation.FALSE_POSITIVE, rationale="Maybe.")),
        ("request.withdrawn", ALICE, lambda s: withdraw_request(s, p.alice, number=1)),
        ("deviation.requested", ALICE, lambda s: request_deviation(
            s, p.alice, number=1, deviation=Deviation.RISK_ADJUSTMENT, rationale="Internal.",
            adjusted_severity=Severity.LOW)),
        ("request.rejected", AMY, lambda s: decide(s, p.amy, number=1, approve=False, reason="No.")),
        ("fix.submitted", ALICE, lambda s: submit_fix(s, p.alice, number=1, evidence="Scan.")),
        ("fix.rejected", VERA, lambda s: reject_fix(s, p.vera, number=1, reason="Still on.")),
        ("fix.submitted", ALICE, lambda s: submit_fix(s, p.alice, number=1, evidence="Scan 2.")),
        ("fix.verified", VIC, lambda s: verify_fix(s, p.vic, number=1)),
        ("item.logged", REPORTER, lambda s: log_item(s, p.reporter, title="Old SSH", severity=Severity.LOW)),
        ("item.claimed", BOB, lambda s: claim_item(s, p.bob, number=2)),
        ("item.released", BOB, lambda s: release_item(s, p.bob, number=2)),
        ("item.assigned", ADMIN, lambda s: assign_item(s, p.admin, number=2, owner_id=BOB)),
        ("risk.accepted", OTTO, lambda s: accept_risk(s, p.otto, number=2, until=date(2026, 11, 25),
                                                      rationale="Replacement ordered.")),
    ]
    for action, actor_id, operation in steps:
        count = len(events(engine))
        run(engine, operation)
        added = events(engine)[count:]
        if count == 0:  # the first use of the workspace also records its default system
            assert [e.action for e in added] == ["system.added", action]
            added = added[1:]
        assert [(e.action, e.actor_id) for e in added] == [(action, actor_id)], action
    clock.set(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    count = len(events(engine))
    assert len(_expire(engine, clock)) == 1
    assert [(e.action, e.actor_id) for e in events(engine)[count:]] == [("risk.expired", SYSTEM_ACTOR)]
    report = chain_ok(engine)
    assert report.events == len(steps) + 2


# ---------------------------------------------------------------- races and stale buttons


JOIN_TIMEOUT = 60


def race(work: Sequence[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Run each callable in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(work))
    results: list[tuple[str, Any]] = [("missing", None)] * len(work)

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[index] = ("ok", work[index]())
        except BaseException as error:  # noqa: BLE001 - reported to the test
            results[index] = ("error", error)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


@pytest.mark.parametrize("with_button", [False, True], ids=["command", "button"])
def test_two_verifiers_at_the_same_moment_make_one_decision(
    engine: Engine, people: People, with_button: bool
) -> None:
    number, request = submitted(engine, people)
    request_id = request.id if with_button else None
    verifiers = [people.vera, people.vic]

    def verify(actor: Actor) -> Callable[[], str]:
        def work() -> str:
            with unit_of_work(engine) as session:
                verify_fix(session, actor, number=number, request_id=request_id)
            return actor.user_id
        return work

    results = race([verify(v) for v in verifiers])
    winners = [value for kind, value in results if kind == "ok"]
    losers = [value for kind, value in results if kind == "error"]
    assert len(winners) == 1 and len(losers) == 1, results
    (winner,), (loser,) = winners, losers
    assert isinstance(loser, AlreadyDecided), repr(loser)
    assert loser.decided_by == winner
    assert "already verified" in loser.message

    item = fetch(engine, number)
    assert (item.status, item.closure) == (Status.CLOSED, "remediated")
    (decided,) = requests(engine)
    assert (decided.status, decided.decided_by) == (RequestStatus.APPROVED, winner)
    verified = [e for e in events(engine) if e.action == "fix.verified"]
    assert [e.actor_id for e in verified] == [winner]
    chain_ok(engine)


def test_two_aos_deciding_one_request_at_the_same_moment_make_one_decision(engine: Engine, people: People) -> None:
    number = _pending_ra(engine, people)

    def decision(actor: Actor, approve: bool) -> Callable[[], str]:
        def work() -> str:
            with unit_of_work(engine) as session:
                decide(session, actor, number=number, approve=approve, reason="Decided.")
            return actor.user_id
        return work

    results = race([decision(people.otto, True), decision(people.amy, False)])
    winners = [value for kind, value in results if kind == "ok"]
    losers = [value for kind, value in results if kind == "error"]
    assert len(winners) == 1 and len(losers) == 1, results
    (winner,), (loser,) = winners, losers
    assert isinstance(loser, AlreadyDecided), repr(loser)
    assert loser.decided_by == winner
    (request,) = requests(engine)
    assert request.decided_by == winner
    approved = winner == OTTO
    assert request.status == (RequestStatus.APPROVED if approved else RequestStatus.REJECTED)
    assert fetch(engine, number).adjusted_severity == (Severity.LOW if approved else None)
    decisions = [e for e in events(engine) if e.action in ("request.approved", "request.rejected")]
    assert [e.actor_id for e in decisions] == [winner]
    chain_ok(engine)


def test_a_stale_verify_button_is_told_and_changes_nothing(engine: Engine, people: People) -> None:
    number, first = submitted(engine, people)
    run(engine, lambda s: reject_fix(s, people.vic, number=number, reason="Not yet.", request_id=first.id))
    run(engine, lambda s: submit_fix(s, people.alice, number=number, evidence="Now."))
    # Vera presses Verify on the first DM, already decided by Vic.
    for operation in (
        lambda s: verify_fix(s, people.vera, number=number, request_id=first.id),
        lambda s: reject_fix(s, people.vera, number=number, reason="x", request_id=first.id),
    ):
        error = assert_refused(engine, operation, AlreadyDecided)
        assert isinstance(error, AlreadyDecided) and error.decided_by == VIC
        assert "already sent back" in error.message
    assert fetch(engine, number).status == Status.PENDING_VERIFICATION


def test_a_stale_decide_button_is_told_and_changes_nothing(engine: Engine, people: People) -> None:
    number = _pending_ra(engine, people)
    (request,) = requests(engine)
    run(engine, lambda s: decide(s, people.otto, number=number, approve=True, request_id=request.id))
    for approve in (True, False):
        error = assert_refused(
            engine, lambda s, a=approve: decide(s, people.amy, number=number, approve=a, request_id=request.id),
            AlreadyDecided,
        )
        assert isinstance(error, AlreadyDecided) and error.decided_by == OTTO
    # Without a request id (the command) it is the same answer.
    error = assert_refused(engine, lambda s: decide(s, people.amy, number=number, approve=False), AlreadyDecided)
    assert isinstance(error, AlreadyDecided) and error.decided_by == OTTO


def test_a_button_for_another_items_request_is_not_found(engine: Engine, people: People) -> None:
    first, request = submitted(engine, people)
    second, _ = submitted(engine, people)
    assert_refused(
        engine, lambda s: verify_fix(s, people.vera, number=second, request_id=request.id), NotFound,
    )
    assert first != second


def test_decide_with_the_id_of_a_verification_request_is_refused(engine: Engine, people: People) -> None:
    number, request = submitted(engine, people)
    assert_refused(
        engine, lambda s: decide(s, people.otto, number=number, approve=False, request_id=request.id),
        (NotFound, InvalidState, AlreadyDecided, InvalidInput),
    )
