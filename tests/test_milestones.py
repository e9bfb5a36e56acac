"""Milestones: add, complete, move; the FedRAMP "Milestone Changes" they leave.

Refusals are checked like in ``test_items``: caught inside a unit of work that
then commits, and the whole database must be unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.poam import audit
from bot.poam.actor import Actor
from bot.poam.errors import InvalidInput, InvalidState, NotFound, PermissionDenied, PoamError
from bot.poam.item_details import show_item
from bot.poam.items import claim_item, log_item
from bot.poam.lifecycle import Status
from bot.poam.milestones import (
    MAX_MILESTONES,
    ChangeKind,
    add_milestone,
    complete_milestone,
    move_milestone,
)
from bot.poam.severity import Severity
from bot.store.engine import unit_of_work
from bot.store.models import AuditEvent, Item, Milestone, MilestoneChange
from tests.db import assert_refused, run

TEAM = "T0001"
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
ALICE = "U00000ALICE"
BOB = "U000000BOB"
ADMIN = "U0000ADMIN"
ITEM_DUE = date(2026, 12, 20)  # a high finding detected today


# ---------------------------------------------------------------- helpers


def log(engine: Engine, actor: Actor, **kwargs: Any) -> Item:
    kwargs.setdefault("title", "Outdated OpenSSL on web-01")
    kwargs.setdefault("severity", Severity.HIGH)
    return run(engine, lambda s: log_item(s, actor, **kwargs))


def item_row(engine: Engine, number: int = 1) -> Item:
    with unit_of_work(engine) as session:
        return session.exec(select(Item).where(Item.team_id == TEAM, Item.number == number)).one()


def milestones(engine: Engine, number: int = 1) -> list[Milestone]:
    item = item_row(engine, number)
    with unit_of_work(engine) as session:
        return list(
            session.exec(
                select(Milestone).where(Milestone.item_id == item.id).order_by(col(Milestone.number))
            ).all()
        )


def changes(engine: Engine, number: int = 1) -> list[MilestoneChange]:
    item = item_row(engine, number)
    with unit_of_work(engine) as session:
        return list(
            session.exec(
                select(MilestoneChange)
                .where(MilestoneChange.item_id == item.id)
                .order_by(col(MilestoneChange.seq))
            ).all()
        )


def last_event(engine: Engine) -> AuditEvent:
    with unit_of_work(engine) as session:
        return session.exec(
            select(AuditEvent).where(AuditEvent.team_id == TEAM).order_by(col(AuditEvent.seq).desc())
        ).first()  # type: ignore[return-value]


def event_count(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return len(session.exec(select(AuditEvent)).all())


def force_status(engine: Engine, status: Status, number: int = 1) -> None:
    table = Item.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(
            sa.update(table).where(table.c.team_id == TEAM, table.c.number == number).values(status=status)
        )


@pytest.fixture
def owned(engine: Engine, alice: Actor) -> Engine:
    """POAM-1, high, detected today (due 2026-12-20), owned by alice."""
    log(engine, alice)
    run(engine, lambda s: claim_item(s, alice, number=1))
    return engine


def add(engine: Engine, actor: Actor, description: str, due_on: date, number: int = 1) -> Milestone:
    return run(engine, lambda s: add_milestone(s, actor, number=number, description=description, due_on=due_on))


# ---------------------------------------------------------------- add


def test_add_milestones(owned: Engine, alice: Actor) -> None:
    first = add(owned, alice, "  Patch staging  ", date(2026, 12, 1))
    assert first.number == 1
    second = add(owned, alice, "Patch production", ITEM_DUE)  # on the item's due date: allowed
    third = add(owned, alice, "Announce the window", TODAY)  # today: allowed
    assert (second.number, third.number) == (2, 3)

    rows = milestones(owned)
    assert [(m.number, m.description, m.planned_due_on, m.due_on) for m in rows] == [
        (1, "Patch staging", date(2026, 12, 1), date(2026, 12, 1)),
        (2, "Patch production", ITEM_DUE, ITEM_DUE),
        (3, "Announce the window", TODAY, TODAY),
    ]
    assert all(m.created_by == ALICE and m.created_at == NOW for m in rows)
    assert all(m.completed_at is None and m.completed_by is None for m in rows)
    assert all(m.team_id == TEAM for m in rows)
    assert changes(owned) == []  # adding is not a "change"
    assert item_row(owned).version == 5  # logged 1, claimed 2, three milestones

    event = last_event(owned)
    assert (event.action, event.actor_id, event.item_id) == ("milestone.added", ALICE, item_row(owned).id)
    assert event.details == {"milestone": 3, "description": "Announce the window", "due_on": "2026-11-20"}


def test_milestone_numbers_are_per_item(engine: Engine, alice: Actor) -> None:
    log(engine, alice, owner_id=ALICE)
    log(engine, alice, owner_id=ALICE)
    add(engine, alice, "a", date(2026, 12, 1), number=1)
    add(engine, alice, "b", date(2026, 12, 1), number=1)
    assert add(engine, alice, "c", date(2026, 12, 1), number=2).number == 1


_BAD_ADDS: list[tuple[str, dict[str, Any], type[PoamError], str]] = [
    ("empty", {"description": "  "}, InvalidInput, "The milestone is missing."),
    (
        "too long",
        {"description": "m" * 1_001},
        InvalidInput,
        "The milestone is 1,001 characters long; the limit is 1,000.",
    ),
    (
        "in the past",
        {"due_on": date(2026, 11, 19)},
        InvalidInput,
        "The milestone date 2026-11-19 is in the past; today is 2026-11-20.",
    ),
    (
        "after the item is due",
        {"due_on": date(2026, 12, 21)},
        InvalidInput,
        "The milestone date 2026-12-21 is after POAM-1's due date (2026-12-20); a later date "
        "needs an extension approved by the authorizing official.",
    ),
    ("unknown item", {"number": 9}, NotFound, "There is no item POAM-9 in this workspace."),
]


@pytest.mark.parametrize(
    ("overrides", "error", "message"), [c[1:] for c in _BAD_ADDS], ids=[c[0] for c in _BAD_ADDS]
)
def test_add_refuses_bad_input(
    owned: Engine, alice: Actor, overrides: dict[str, Any], error: type[PoamError], message: str
) -> None:
    arguments: dict[str, Any] = {"number": 1, "description": "Patch", "due_on": date(2026, 12, 1), **overrides}
    assert_refused(owned, lambda s: add_milestone(s, alice, **arguments), error, message)
    assert milestones(owned) == []


def test_only_the_owner_adds_milestones(engine: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    log(engine, alice)

    def adding(actor: Actor) -> Callable[[Session], object]:
        return lambda s: add_milestone(s, actor, number=1, description="Patch", due_on=date(2026, 12, 1))

    assert_refused(
        engine, adding(alice), PermissionDenied,
        "Only the owner can add milestones, and POAM-1 has none; claim it first.",
    )
    run(engine, lambda s: claim_item(s, alice, number=1))
    assert_refused(engine, adding(bob), PermissionDenied, "Only the owner of POAM-1 can add milestones.")
    # An admin is not the owner.
    assert_refused(engine, adding(admin), PermissionDenied, "Only the owner of POAM-1 can add milestones.")
    force_status(engine, Status.CLOSED)
    assert_refused(engine, adding(alice), InvalidState, "POAM-1 is closed; a closed item never reopens.")


def test_add_in_review_is_refused(owned: Engine, alice: Actor) -> None:
    force_status(owned, Status.PENDING_VERIFICATION)
    message = "POAM-1 is pending verification, so you cannot change its plan or milestones now."
    assert_refused(
        owned, lambda s: add_milestone(s, alice, number=1, description="Patch", due_on=date(2026, 12, 1)),
        InvalidState, message,
    )
    assert_refused(owned, lambda s: complete_milestone(s, alice, number=1, milestone=1), InvalidState, message)


def test_add_while_risk_accepted_is_allowed(owned: Engine, alice: Actor) -> None:
    force_status(owned, Status.RISK_ACCEPTED)
    assert add(owned, alice, "Re-review", date(2026, 12, 1)).number == 1
    assert item_row(owned).status == Status.RISK_ACCEPTED


def test_milestone_limit(owned: Engine, alice: Actor) -> None:
    with unit_of_work(owned) as session:
        for n in range(MAX_MILESTONES):
            add_milestone(session, alice, number=1, description=f"Step {n + 1}", due_on=date(2026, 12, 1))
    assert [m.number for m in milestones(owned)] == list(range(1, MAX_MILESTONES + 1))
    assert_refused(
        owned,
        lambda s: add_milestone(s, alice, number=1, description="One too many", due_on=date(2026, 12, 1)),
        InvalidInput,
        "POAM-1 already has 50 milestones.",
    )


def test_milestone_dates_use_the_owners_day(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    kiritimati = make_actor(ALICE, tz="Pacific/Kiritimati")  # already 2026-11-21 there
    los_angeles = make_actor(BOB, tz="America/Los_Angeles")  # still 2026-11-20
    log(engine, kiritimati, owner_id=ALICE)
    log(engine, los_angeles, owner_id=BOB)
    assert_refused(
        engine,
        lambda s: add_milestone(s, kiritimati, number=1, description="m", due_on=TODAY),
        InvalidInput,
        "The milestone date 2026-11-20 is in the past; today is 2026-11-21.",
    )
    assert add(engine, los_angeles, "m", TODAY, number=2).due_on == TODAY


# ---------------------------------------------------------------- complete


def test_complete_a_milestone(owned: Engine, alice: Actor, clock: Any) -> None:
    add(owned, alice, "Patch staging", date(2026, 12, 1))
    add(owned, alice, "Patch production", date(2026, 12, 10))
    clock.advance(days=2)  # Sunday 2026-11-22
    done = run(owned, lambda s: complete_milestone(s, alice, number=1, milestone=1))
    later = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    assert done.completed_at == later and done.completed_by == ALICE

    rows = milestones(owned)
    assert (rows[0].completed_at, rows[0].completed_by) == (later, ALICE)
    assert (rows[0].planned_due_on, rows[0].due_on) == (date(2026, 12, 1), date(2026, 12, 1))
    assert rows[1].completed_at is None

    (change,) = changes(owned)
    assert change.kind == ChangeKind.COMPLETE == "complete"
    assert change.seq == 1
    assert change.milestone_id == rows[0].id
    assert (change.old_due_on, change.new_due_on) == (date(2026, 12, 1), date(2026, 11, 22))
    assert change.reason == "Milestone M1 completed."
    assert (change.changed_by, change.changed_at) == (ALICE, later)
    assert item_row(owned).version == 5
    assert item_row(owned).updated_at == later

    event = last_event(owned)
    assert (event.action, event.actor_id) == ("milestone.completed", ALICE)
    assert event.details == {"milestone": 1, "due_on": "2026-12-01", "completed_on": "2026-11-22", "note": None}

    run(owned, lambda s: complete_milestone(s, alice, number=1, milestone=2, note="  Rolled out with 3.0.15. "))
    assert changes(owned)[-1].reason == "Rolled out with 3.0.15."
    assert changes(owned)[-1].seq == 2
    assert last_event(owned).details["note"] == "Rolled out with 3.0.15."


def test_complete_refusals(owned: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    add(owned, alice, "Patch staging", date(2026, 12, 1))
    assert_refused(
        owned, lambda s: complete_milestone(s, alice, number=1, milestone=2), NotFound, "POAM-1 has no milestone M2."
    )
    assert_refused(
        owned, lambda s: complete_milestone(s, alice, number=4, milestone=1), NotFound,
        "There is no item POAM-4 in this workspace.",
    )
    assert_refused(
        owned, lambda s: complete_milestone(s, bob, number=1, milestone=1), PermissionDenied,
        "Only the owner of POAM-1 can complete milestones.",
    )
    assert_refused(
        owned, lambda s: complete_milestone(s, admin, number=1, milestone=1), PermissionDenied,
        "Only the owner of POAM-1 can complete milestones.",
    )
    assert_refused(
        owned, lambda s: complete_milestone(s, alice, number=1, milestone=1, note="n" * 2_001), InvalidInput,
        "The note is 2,001 characters long; the limit is 2,000.",
    )
    run(owned, lambda s: complete_milestone(s, alice, number=1, milestone=1))
    count = event_count(owned)
    assert_refused(
        owned, lambda s: complete_milestone(s, alice, number=1, milestone=1), InvalidState,
        "M1 of POAM-1 is already complete.",
    )
    assert event_count(owned) == count
    assert len(changes(owned)) == 1


# ---------------------------------------------------------------- move


def test_move_keeps_the_planned_date(owned: Engine, alice: Actor, clock: Any) -> None:
    add(owned, alice, "Patch staging", date(2026, 12, 1))
    clock.advance(hours=2)
    moved = run(
        owned,
        lambda s: move_milestone(
            s, alice, number=1, milestone=1, due_on=date(2026, 12, 10), reason="  vendor patch slipped "
        ),
    )
    assert (moved.planned_due_on, moved.due_on) == (date(2026, 12, 1), date(2026, 12, 10))
    (row,) = milestones(owned)
    assert (row.planned_due_on, row.due_on, row.completed_at) == (date(2026, 12, 1), date(2026, 12, 10), None)

    (change,) = changes(owned)
    assert change.kind == ChangeKind.UPDATE == "update"
    assert (change.seq, change.milestone_id) == (1, row.id)
    assert (change.old_due_on, change.new_due_on) == (date(2026, 12, 1), date(2026, 12, 10))
    assert change.reason == "vendor patch slipped"
    assert change.changed_by == ALICE
    assert change.changed_at == datetime(2026, 11, 20, 17, 0, tzinfo=UTC)

    event = last_event(owned)
    assert (event.action, event.actor_id, event.item_id) == ("milestone.moved", ALICE, row.item_id)
    assert event.details == {
        "milestone": 1,
        "due_on": {"from": "2026-12-01", "to": "2026-12-10"},
        "reason": "vendor patch slipped",
    }

    # Moving again records another change from the current date; the plan stays.
    run(owned, lambda s: move_milestone(s, alice, number=1, milestone=1, due_on=date(2026, 12, 5), reason="back"))
    run(owned, lambda s: complete_milestone(s, alice, number=1, milestone=1))
    assert [(c.seq, c.kind, c.old_due_on, c.new_due_on) for c in changes(owned)] == [
        (1, "update", date(2026, 12, 1), date(2026, 12, 10)),
        (2, "update", date(2026, 12, 10), date(2026, 12, 5)),
        (3, "complete", date(2026, 12, 5), TODAY),
    ]
    (row,) = milestones(owned)
    assert (row.planned_due_on, row.due_on) == (date(2026, 12, 1), date(2026, 12, 5))
    assert item_row(owned).version == 6

    detail = run(owned, lambda s: show_item(s, alice, number=1))
    assert [c.seq for c in detail.changes] == [1, 2, 3]
    assert detail.milestones[0].planned_due_on == date(2026, 12, 1)

    with unit_of_work(owned) as session:
        assert audit.verify_chain(session, team_id=TEAM).ok


def test_move_refusals(owned: Engine, alice: Actor, bob: Actor, admin: Actor) -> None:
    add(owned, alice, "Patch staging", date(2026, 12, 1))

    def moving(actor: Actor = alice, **overrides: Any) -> Callable[[Session], object]:
        arguments: dict[str, Any] = {
            "number": 1, "milestone": 1, "due_on": date(2026, 12, 10), "reason": "slipped", **overrides,
        }
        return lambda s: move_milestone(s, actor, **arguments)

    assert_refused(owned, moving(reason=""), InvalidInput, "The reason is missing.")
    assert_refused(owned, moving(reason="  \n "), InvalidInput, "The reason is missing.")
    assert_refused(
        owned, moving(reason="r" * 2_001), InvalidInput, "The reason is 2,001 characters long; the limit is 2,000."
    )
    assert_refused(owned, moving(milestone=7), NotFound, "POAM-1 has no milestone M7.")
    assert_refused(owned, moving(number=2), NotFound, "There is no item POAM-2 in this workspace.")
    assert_refused(owned, moving(due_on=date(2026, 12, 1)), InvalidInput, "M1 is already due 2026-12-01.")
    assert_refused(
        owned, moving(due_on=date(2026, 11, 19)), InvalidInput,
        "The milestone date 2026-11-19 is in the past; today is 2026-11-20.",
    )
    assert_refused(
        owned, moving(due_on=date(2026, 12, 21)), InvalidInput,
        "The milestone date 2026-12-21 is after POAM-1's due date (2026-12-20); a later date "
        "needs an extension approved by the authorizing official.",
    )
    assert_refused(owned, moving(bob), PermissionDenied, "Only the owner of POAM-1 can move milestones.")
    assert_refused(owned, moving(admin), PermissionDenied, "Only the owner of POAM-1 can move milestones.")
    run(owned, lambda s: complete_milestone(s, alice, number=1, milestone=1))
    assert_refused(owned, moving(), InvalidState, "M1 of POAM-1 is complete; it cannot move.")
    (row,) = milestones(owned)
    assert row.due_on == row.planned_due_on == date(2026, 12, 1)
    assert [c.kind for c in changes(owned)] == ["complete"]


def test_milestones_of_another_workspace_are_invisible(
    owned: Engine, alice: Actor, make_actor: Callable[..., Actor]
) -> None:
    add(owned, alice, "Patch staging", date(2026, 12, 1))
    intruder = make_actor(ALICE, team="T0002")  # same user id, other workspace
    message = "There is no item POAM-1 in this workspace."
    assert_refused(owned, lambda s: complete_milestone(s, intruder, number=1, milestone=1), NotFound, message)
    assert_refused(
        owned,
        lambda s: move_milestone(s, intruder, number=1, milestone=1, due_on=date(2026, 12, 2), reason="r"),
        NotFound,
        message,
    )
    assert_refused(
        owned,
        lambda s: add_milestone(s, intruder, number=1, description="m", due_on=date(2026, 12, 2)),
        NotFound,
        message,
    )
