"""Reminder planning costs what is due, not what the POA&M holds (issue 7).

Planning runs on every scheduler tick. A workspace's history (closed items,
finished milestones, months of sent messages) must not slow it down: with the
same work due, planning runs the same statements with or without that
history, and each reads the work due through an index (the reminder indexes
of migration 0007) rather than walking the items, milestones or outbox.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Engine, text

from bot.poam import items as items_mod
from bot.poam import review
from bot.poam.actor import Role
from bot.poam.lifecycle import Status
from bot.poam.milestones import add_milestone
from bot.poam.severity import Severity
from bot.reminders import people
from bot.reminders.planner import plan
from bot.store import outbox
from bot.store.engine import unit_of_work
from bot.store.models import Item, Milestone, OutboxMessage
from tests import test_reminders as harness
from tests.db import statements
from tests.test_reminders import AO, FRI, OWNER, OWNER2, TEAM, VERIFIER, World, overdue_item, utc

# The fixtures of the shared harness (the fake Slack, the world).
fake_api, fake, make_world, world = harness.fake_api, harness.fake, harness.make_world, harness.world

HISTORY_ITEMS = 1_500
REMINDER_INDEXES = {  # overdue items are found through the older (team, status, …) indexes
    "ix_milestones_team_open_due",  # milestones due soon
    "ix_items_team_vendor",  # vendor check-ins
    "ix_items_team_plan_pending",  # plans awaiting the AO
    "ix_outbox_team_kind_day",  # what was planned already today
}
FULL_SCAN = re.compile(r"\bSCAN (items|milestones|outbox)\b|Seq Scan on (items|milestones|outbox)\b")


def due_work(world: World) -> None:
    """Something of every kind for an owner, a verifier and an AO."""
    world.grant(VERIFIER, Role.VERIFIER)
    world.grant(AO, Role.AO)
    owner = world.actor(OWNER)
    world.at(utc(2026, 10, 1, 12))
    vendor = world.log("Vendor patch pending", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=90))
    world.do(lambda s: review.set_vendor(s, owner, number=vendor, product="AcmeOS", checkin=True))
    world.at(utc(2026, 11, 20, 8))
    overdue_item(world)
    milestone = world.log("Patch web tier", owner=OWNER, due=FRI + timedelta(days=20))
    world.do(lambda s: add_milestone(s, owner, number=milestone, description="Staging", due_on=FRI + timedelta(days=2)))
    world.do(lambda s: items_mod.set_plan(s, owner, number=milestone, plan="Upgrade the kernel"))
    fixed = world.log("Weak ciphers", owner=OWNER2, due=FRI + timedelta(days=20))
    world.do(lambda s: review.submit_fix(s, world.actor(OWNER2), number=fixed, evidence="rescan clean"))
    world.at(utc(2026, 11, 20, 15))


def add_history(engine: Engine) -> None:
    """Closed items with finished milestones and two months of sent DMs, in
    bulk. The items are copies of item 1, a vendor item, with plans never
    approved: the kind of history the partial indexes must keep out of reach."""
    with unit_of_work(engine, read_only=True) as session:
        template = session.get(Item, 1).model_dump(exclude={"id"})  # type: ignore[union-attr]
    closed_at = utc(2026, 9, 1)
    rows = [
        {**template, "number": 1_000 + n, "status": Status.CLOSED, "closed_at": closed_at, "closure": "remediated",
         "due_on": FRI - timedelta(days=n % 300), "plan_approved_at": None, "remediation_plan": "Patched."}
        for n in range(HISTORY_ITEMS)
    ]
    with engine.begin() as connection:
        ids = connection.execute(sa.insert(Item).returning(Item.id), rows).scalars().all()
        connection.execute(sa.insert(Milestone), [
            {"team_id": TEAM, "item_id": item_id, "number": m, "description": "Step", "planned_due_on": FRI - timedelta(days=m),
             "due_on": FRI - timedelta(days=m), "completed_at": closed_at, "completed_by": OWNER, "created_by": OWNER,
             "created_at": closed_at}
            for item_id in ids for m in (1, 2, 3)
        ])
        connection.execute(sa.insert(OutboxMessage), [
            {"team_id": TEAM, "recipient": user, "kind": "reminder", "subject": "daily", "local_day": FRI - timedelta(days=d),
             "text": "…", "blocks": [], "status": outbox.SENT, "attempts": 1, "next_attempt_at": closed_at,
             "created_at": closed_at, "sent_at": closed_at}
            for d in range(1, 61) for user in (OWNER, OWNER2, VERIFIER, AO)
        ])
        connection.execute(text("ANALYZE"))


def planned(world: World) -> tuple[list[str], list[tuple[str, Any]]]:
    """Who planning would message now, and the statements it ran."""
    settings = world.scheduler.settings
    with statements(world.engine) as seen, unit_of_work(world.engine, read_only=True) as session:
        messages = plan(session, clock=world.clock, rules=settings.rules, default_tz=settings.timezone)
    return sorted(m.recipient for m in messages), seen


def query_plan(engine: Engine, statement: str, parameters: Any) -> str:
    """The database's plan for one statement. PostgreSQL is told to avoid
    sequential scans, as it would at scale, so a scan left means no index fits."""
    postgres = engine.dialect.name == "postgresql"
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if postgres:
            cursor.execute("SET enable_seqscan = off")
        cursor.execute(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + statement, parameters)
        return "\n".join(str(row[-1] if not postgres else row[0]) for row in cursor.fetchall())
    finally:
        connection.rollback()
        connection.close()


def test_history_changes_nothing_planning_runs(world: World) -> None:
    due_work(world)
    before = planned(world)
    assert before[0] == sorted([OWNER, VERIFIER, AO])
    add_history(world.engine)
    assert planned(world) == before


def test_planning_reads_the_work_due_through_indexes(world: World) -> None:
    due_work(world)
    add_history(world.engine)
    _, seen = planned(world)
    plans = [query_plan(world.engine, s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    assert not [p for p in plans if FULL_SCAN.search(p)]
    used = {name for p in plans for name in REMINDER_INDEXES if name in p}
    assert used == REMINDER_INDEXES, "\n\n".join(plans)


def test_an_owner_ahead_of_utc_hears_of_what_is_overdue_on_their_own_day(world: World) -> None:
    """Who to ask is found on the latest local day anywhere (UTC+14)."""
    world.at(utc(2026, 11, 19, 8))
    late_there = world.log("Due Thursday", owner=OWNER, due=date(2026, 11, 19))
    world.do(lambda s: people.remember_person(s, team_id=TEAM, user_id=OWNER, tz=ZoneInfo("Pacific/Kiritimati"),
                                              name=None, clock=world.clock))
    world.at(utc(2026, 11, 19, 20))  # Thursday in UTC; Friday 10:00 in Kiritimati
    recipients, _ = planned(world)
    assert recipients == [OWNER]
    world.tick()
    assert f"*POAM-{late_there}* Due Thursday — due Thu 19 Nov 2026, *1d overdue*" in world.dm_text(OWNER)
