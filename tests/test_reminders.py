"""Reminders and the weekly digest (issue 5): planning and content, with a fixed clock.

Every test drives the real :class:`~bot.reminders.scheduler.Scheduler` (lease,
expiries, planning into the outbox, dispatch) against the database of each
backend and a fake Slack Web API on loopback, then asserts on what the fake
received and on the outbox. The clock is a :class:`FixedClock` moved by hand.

The harness here (``World``, ``make_world``, the users…) is imported by
``test_dispatch.py`` and ``test_scheduler_processes.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.poam import audit, review
from bot.poam import items as items_mod
from bot.poam.actor import Actor, Role
from bot.poam.clock import FixedClock
from bot.poam.lifecycle import Status
from bot.poam.milestones import add_milestone
from bot.poam.roles import grant_role
from bot.poam.severity import Severity
from bot.reminders import people, subscriptions
from bot.reminders import scheduler as scheduler_module
from bot.reminders.digest import digest_message
from bot.reminders.dispatch import Pacer
from bot.reminders.planner import enqueue, plan
from bot.reminders.scheduler import Scheduler, TickReport
from bot.store import outbox, rows
from bot.store.engine import unit_of_work
from bot.store.models import Item, OutboxMessage, Workspace
from tests.db import events, statements
from tests.fake_slack import BLOCKS_TEXT_LIMIT, FakeSlack, blocks_text

T = TypeVar("T")

TEAM = "T0001"
ADMIN = "U0000ADMIN"
OWNER = "U0000OWNER"
OWNER2 = "U000OWNER2"
VERIFIER = "U00VERIFY1"
AO = "U000000AO1"
CHANNEL = "C0SECURITY"
DIGEST_CHANNEL = "C0DIGEST01"
THREAD = "1700000000.000100"

FRI = date(2026, 11, 20)  # the `clock` fixture: Fri 2026-11-20 15:00 UTC
MON = date(2026, 11, 23)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------- harness


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeSlack]:
    """One fake Slack per module (starting and stopping one costs half a second)."""
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_api: FakeSlack) -> FakeSlack:
    fake_api.clear()
    fake_api._failures.clear()  # failures a previous test left unused
    return fake_api


@dataclass
class World:
    """A database, a clock, a fake Slack and a scheduler ticking against them."""

    engine: Engine
    clock: FixedClock
    fake: FakeSlack
    scheduler: Scheduler
    make_actor: Callable[..., Actor]

    # -------------------------------------------------- acting

    def do(self, work: Callable[[Session], T]) -> T:
        with unit_of_work(self.engine) as session:
            return work(session)

    def actor(self, user: str, *roles: Role, tz: str = "UTC") -> Actor:
        return self.make_actor(user, *roles, tz=tz)

    def at(self, moment: datetime) -> World:
        self.clock.set(moment)
        return self

    def tick(self, at: datetime | None = None) -> TickReport:
        if at is not None:
            self.clock.set(at)
        return self.scheduler.tick()

    def log(
        self,
        title: str,
        *,
        severity: Severity = Severity.HIGH,
        owner: str | None = None,
        due: date | None = None,
        by: str = OWNER,
        channel: str | None = None,
        thread: str | None = None,
    ) -> int:
        """Log an item (detected early enough that ``due`` is within its deadline)."""
        actor = self.actor(by)
        detected = None
        if due is not None:
            detected = min(due - timedelta(days=actor.rules.deadlines.days_for(severity)), actor.today())
        item = self.do(
            lambda s: items_mod.log_item(
                s, actor, title=title, severity=severity, owner_id=owner, due_on=due, detected_on=detected,
                origin_channel_id=channel, origin_thread_ts=thread,
            )
        )
        return item.number

    def grant(self, user: str, role: Role) -> None:
        self.do(lambda s: grant_role(s, self.actor(ADMIN, Role.ADMIN), user_id=user, role=role))

    def item(self, number: int) -> Item:
        with unit_of_work(self.engine, read_only=True) as session:
            found = session.exec(select(Item).where(Item.team_id == TEAM, Item.number == number)).one()
            return found

    # -------------------------------------------------- observing

    def posts(self) -> list[dict[str, Any]]:
        return [call.params for call in self.fake.calls_to("chat.postMessage")]

    def posts_to(self, recipient: str) -> list[dict[str, Any]]:
        return [p for p in self.posts() if p.get("channel") == recipient]

    def dm_text(self, user: str) -> str:
        """The one DM ``user`` got, all its text (fails unless exactly one)."""
        (dm,) = self.posts_to(user)
        return text_of(dm)

    def outbox(self) -> list[OutboxMessage]:
        with unit_of_work(self.engine, read_only=True) as session:
            return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def text_of(params: dict[str, Any]) -> str:
    """All the text of a posted message (its ``text`` and every string in its blocks)."""
    blocks = params.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return params.get("text", "") + "\n" + _strings(blocks)


def _strings(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        return "\n".join(_strings(v) for v in data.values())
    if isinstance(data, list):
        return "\n".join(_strings(v) for v in data)
    return ""


def make_settings(database_url: str, *, tz: str = "UTC") -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        poam_timezone=tz,
        poam_admins=frozenset({ADMIN}),
    )


def make_scheduler(engine: Engine, fake: FakeSlack, clock: FixedClock, database_url: str, *, tz: str = "UTC") -> Scheduler:
    return Scheduler(
        engine=engine,
        client=WebClient(token="xoxb-x", base_url=fake.base_url),
        settings=make_settings(database_url, tz=tz),
        clock=clock,
        pacer=Pacer(interval=0),
    )


@pytest.fixture
def make_world(
    engine: Engine, clock: FixedClock, fake: FakeSlack, make_actor: Callable[..., Actor], database_url: str
) -> Callable[..., World]:
    def make(tz: str = "UTC") -> World:
        return World(engine, clock, fake, make_scheduler(engine, fake, clock, database_url, tz=tz), make_actor)

    return make


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


def overdue_item(world: World, owner: str = OWNER, *, days: int = 10, title: str = "Outdated OpenSSL") -> int:
    """An item of ``owner``'s, ``days`` overdue on the clock's (UTC) day."""
    return world.log(title, owner=owner, due=world.clock.now().date() - timedelta(days=days))


# ---------------------------------------------------------------- once


def test_the_same_tick_run_twice_sends_nothing_twice(world: World) -> None:
    world.at(utc(2026, 11, 13, 10))  # a week earlier: the nudge will be due
    world.grant(VERIFIER, Role.VERIFIER)
    world.grant(AO, Role.AO)
    world.log("Unclaimed finding", channel=CHANNEL, thread=THREAD)
    world.at(utc(2026, 11, 23, 8))  # Monday before 09:00 UTC
    late = overdue_item(world, days=10)
    world.log("Waiting for verification", owner=OWNER2, due=MON + timedelta(days=20))
    world.do(lambda s: review.submit_fix(s, world.actor(OWNER2), number=3))
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))

    first = world.tick(utc(2026, 11, 23, 9, 0))
    assert first.leader and first.planned == 5, world.outbox()
    recipients = sorted(p["channel"] for p in world.posts())
    assert recipients == sorted([OWNER, VERIFIER, AO, CHANNEL, DIGEST_CHANNEL])
    assert {row.status for row in world.outbox()} == {outbox.SENT}
    assert f"POAM-{late}" in world.dm_text(OWNER)

    rows, calls = len(world.outbox()), len(world.fake.calls)
    again = world.tick()
    assert (again.planned, again.dispatched.sent if again.dispatched else None) == (0, 0)
    for minutes in (1, 60, 14 * 60 + 59):  # later the same day, everywhere
        world.tick(utc(2026, 11, 23, 9, 0) + timedelta(minutes=minutes))
    assert len(world.outbox()) == rows
    assert len(world.fake.calls) == calls

    # Planning by hand (as a second process would) adds nothing either.
    settings = world.scheduler.settings
    assert world.do(
        lambda s: enqueue(s, plan(s, clock=world.clock, rules=settings.rules, default_tz=settings.timezone), now=world.clock.now())
    ) == 0


def test_what_is_queued_goes_out_when_planning_fails(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure to plan (one person's DM past a database limit, say) stopped
    the tick before its dispatch: nothing queued went out, for anyone."""
    overdue_item(world)
    settings = world.scheduler.settings
    queued = world.do(lambda s: enqueue(
        s, plan(s, clock=world.clock, rules=settings.rules, default_tz=settings.timezone), now=world.clock.now()))
    assert queued == 1

    def failing(*_: Any, **__: Any) -> Any:
        raise RuntimeError("planning broke")

    monkeypatch.setattr(scheduler_module, "plan", failing)
    report = world.tick()
    assert report.planned == 0 and report.dispatched is not None and report.dispatched.sent == 1
    assert [p["channel"] for p in world.posts()] == [OWNER]
    assert "planning reminders and digests failed" in caplog.text


def test_each_reminder_is_planned_with_its_unique_key(world: World) -> None:
    overdue_item(world)
    world.tick()
    (row,) = world.outbox()
    assert (row.team_id, row.recipient, row.kind, row.subject, row.local_day) == (TEAM, OWNER, "reminder", "daily", FRI)
    assert row.status == outbox.SENT and row.sent_at == world.clock.now() and row.attempts == 1


# ---------------------------------------------------------------- when


@pytest.mark.parametrize("source", ["remember_person", "set_preferences"])
def test_new_york_is_reminded_at_nine_local_on_both_sides_of_dst(world: World, source: str) -> None:
    world.at(utc(2026, 10, 1, 12))
    world.log("Open S3 bucket", owner=OWNER, due=date(2026, 10, 20))
    new_york = ZoneInfo("America/New_York")
    if source == "remember_person":
        world.do(lambda s: people.remember_person(s, team_id=TEAM, user_id=OWNER, tz=new_york, name=None, clock=world.clock))
    else:
        world.do(lambda s: people.set_preferences(s, world.actor(OWNER, tz="America/New_York"), remind_at=time(9, 0)))

    sent_at: list[datetime] = []

    def tick(moment: datetime) -> None:
        before = len(world.posts_to(OWNER))
        world.tick(moment)
        if len(world.posts_to(OWNER)) > before:
            sent_at.append(moment)

    # Friday 30 October: EDT (UTC-4), 09:00 local is 13:00 UTC; midnight is 04:00 UTC.
    for hour in range(4, 13):
        tick(utc(2026, 10, 30, hour))
    tick(utc(2026, 10, 30, 12, 59))
    assert sent_at == []
    tick(utc(2026, 10, 30, 13, 0))
    assert sent_at == [utc(2026, 10, 30, 13, 0)]
    # The rest of Friday and the weekend (DST ends Sun 1 Nov at 06:00 UTC): nothing.
    for hours in range(1, 61, 3):
        tick(utc(2026, 10, 30, 13) + timedelta(hours=hours))
    # Monday 2 November: EST (UTC-5), 09:00 local is 14:00 UTC.
    tick(utc(2026, 11, 2, 13, 0))
    tick(utc(2026, 11, 2, 13, 59))
    assert sent_at == [utc(2026, 10, 30, 13, 0)]
    tick(utc(2026, 11, 2, 14, 0))
    tick(utc(2026, 11, 2, 20, 0))
    assert sent_at == [utc(2026, 10, 30, 13, 0), utc(2026, 11, 2, 14, 0)]
    assert [(r.recipient, r.local_day) for r in world.outbox()] == [(OWNER, date(2026, 10, 30)), (OWNER, date(2026, 11, 2))]
    assert "Fri 30 Oct 2026" in world.posts_to(OWNER)[0]["text"]
    assert "Mon 2 Nov 2026" in world.posts_to(OWNER)[1]["text"]


def test_people_without_a_known_zone_get_the_workspace_default(make_world: Callable[..., World]) -> None:
    world = make_world(tz="America/Los_Angeles")  # PST, UTC-8: 09:00 is 17:00 UTC
    overdue_item(world)
    world.tick(utc(2026, 11, 20, 16, 59))
    assert world.posts() == []
    world.tick(utc(2026, 11, 20, 17, 0))
    assert [p["channel"] for p in world.posts()] == [OWNER]


def test_weekends_get_nothing(world: World) -> None:
    world.at(utc(2026, 11, 19, 12))
    overdue_item(world)
    world.grant(AO, Role.AO)
    world.tick(utc(2026, 11, 20, 15))  # Friday's reminders
    assert sorted(p["channel"] for p in world.posts()) == [AO, OWNER]
    world.fake.clear()
    for hours in range(0, 48, 2):  # Sat 00:00 … Sun 22:00 UTC
        world.tick(utc(2026, 11, 21, 0) + timedelta(hours=hours))
    world.tick(utc(2026, 11, 22, 23, 59))
    assert [(p["channel"], p["text"]) for p in world.posts()] == []
    world.tick(utc(2026, 11, 23, 9, 0))
    assert sorted(p["channel"] for p in world.posts()) == [AO, OWNER]
    assert {r.local_day for r in world.outbox()} == {FRI, MON}


def test_the_weekend_is_the_persons_own(world: World) -> None:
    """Auckland (NZDT, UTC+13): Saturday there is still Friday in UTC, Monday there is Sunday."""
    overdue_item(world)
    world.do(lambda s: people.remember_person(s, team_id=TEAM, user_id=OWNER, tz=ZoneInfo("Pacific/Auckland"), name=None, clock=world.clock))
    world.tick(utc(2026, 11, 20, 21, 0))  # Sat 21 Nov 10:00 in Auckland
    world.tick(utc(2026, 11, 21, 21, 0))  # Sun 22 Nov 10:00
    assert world.posts() == []
    world.tick(utc(2026, 11, 22, 20, 0))  # Mon 23 Nov 09:00 in Auckland, Sunday in UTC
    assert [p["channel"] for p in world.posts()] == [OWNER]
    assert [r.local_day for r in world.outbox()] == [MON]


def test_someone_who_moves_west_gets_no_second_dm_that_day(world: World) -> None:
    """Their DM of Tuesday in Auckland, then Slack says Honolulu, where it is
    still Monday evening: the day's check by local date sent Monday's too."""
    overdue_item(world)
    world.do(lambda s: people.remember_person(s, team_id=TEAM, user_id=OWNER, tz=ZoneInfo("Pacific/Auckland"),
                                              name=None, clock=world.clock))
    world.tick(utc(2026, 11, 23, 20, 0))  # Tue 24 Nov 09:00 in Auckland
    world.do(lambda s: people.remember_person(s, team_id=TEAM, user_id=OWNER, tz=ZoneInfo("Pacific/Honolulu"),
                                              name=None, clock=world.clock))
    world.tick(utc(2026, 11, 23, 20, 1))  # Mon 23 Nov 10:01 in Honolulu
    assert len(world.posts_to(OWNER)) == 1
    world.tick(utc(2026, 11, 24, 19, 0))  # Tue 24 Nov 09:00 in Honolulu: had Tuesday's already
    world.tick(utc(2026, 11, 25, 19, 0))  # Wednesday's
    assert len(world.posts_to(OWNER)) == 2


def test_a_morning_dm_still_waiting_when_the_next_is_planned_is_not_sent(world: World) -> None:
    """Slack down from before Monday's DM to after Tuesday's: both went out on
    Tuesday, Monday's saying "due today" of Monday."""
    overdue_item(world)
    world.fake.outage(status=503)
    world.tick(utc(2026, 11, 23, 9, 0))
    world.tick(utc(2026, 11, 24, 9, 0))
    world.fake.recover()
    world.fake.clear()
    world.tick(utc(2026, 11, 24, 9, 30))
    (dm,) = world.posts_to(OWNER)
    monday, tuesday = sorted((r for r in world.outbox() if r.recipient == OWNER), key=lambda r: r.local_day)
    assert (monday.status, monday.last_error) == (outbox.FAILED, "superseded by the one of 2026-11-24")
    assert tuesday.status == outbox.SENT and "Tue 24 Nov 2026" in dm["text"]


def test_messages_that_waited_out_slack_say_what_is_true_when_they_go(world: World) -> None:
    """Written at 09:00 while Slack was down and sent at 10:00 as written, the
    morning DM told its old owner of an item reassigned meanwhile that it was
    overdue, the nudge asked the channel to claim a claimed item, and the
    digest named the old owner."""
    world.at(utc(2026, 11, 16, 10))
    unclaimed = world.log("Nobody's finding", channel=CHANNEL, thread=THREAD, severity=Severity.MODERATE)
    world.at(utc(2026, 11, 23, 8))
    late = overdue_item(world, OWNER)
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.fake.outage(status=503)
    world.tick(utc(2026, 11, 23, 9, 0))
    assert {row.kind for row in world.outbox()} == {"reminder", "nudge", "digest"}
    world.at(utc(2026, 11, 23, 9, 30))
    world.do(lambda s: items_mod.assign_item(s, world.actor(ADMIN, Role.ADMIN), number=late, owner_id=OWNER2))
    world.do(lambda s: items_mod.claim_item(s, world.actor(OWNER2), number=unclaimed))
    world.fake.recover()
    world.fake.clear()
    world.tick(utc(2026, 11, 23, 10, 0))

    assert world.posts_to(OWNER) == [] and world.posts_to(CHANNEL) == []
    assert f"POAM-{late}*" in world.dm_text(OWNER2)  # planned at 10:00, as its new owner's
    (digest,) = world.posts_to(DIGEST_CHANNEL)
    assert f"*POAM-{late}* Outdated OpenSSL — 10d overdue · <@{OWNER2}>" in text_of(digest)
    withdrawn = {(row.recipient, row.kind) for row in world.outbox()
                 if row.last_error == "withdrawn: nothing to say any more (changed while it waited)"}
    assert withdrawn == {(OWNER, "reminder"), (CHANNEL, "nudge")}


def test_a_digest_that_waited_is_not_posted_in_a_channel_unsubscribed_meanwhile(world: World) -> None:
    admin = world.actor(ADMIN, Role.ADMIN)
    world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL))
    world.fake.outage(status=503)
    world.tick(utc(2026, 11, 23, 9, 0))
    world.at(utc(2026, 11, 23, 9, 30))
    world.do(lambda s: subscriptions.unsubscribe(s, admin, channel_id=DIGEST_CHANNEL))
    world.fake.recover()
    world.fake.clear()
    world.tick(utc(2026, 11, 23, 10, 0))
    assert world.posts_to(DIGEST_CHANNEL) == []
    (digest,) = [row for row in world.outbox() if row.kind == "digest"]
    assert (digest.status, digest.last_error) == (
        outbox.FAILED, "withdrawn: nothing to say any more (changed while it waited)")


def test_a_message_that_fails_to_be_written_again_goes_as_written_and_holds_up_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A rebuild that raised (here a nudge whose subject names no item) ended
    the round with its row claimed: claimed first again at every tick, it
    held every row behind it back."""
    overdue_item(world, OWNER2)
    world.at(utc(2026, 11, 23, 9, 0))
    now = world.clock.now()
    world.do(lambda s: outbox.insert_once(
        s, team_id=TEAM, recipient=CHANNEL, kind="nudge", subject="item:unreadable", local_day=MON,
        text="as planned", blocks=[], thread_ts=None, next_attempt_at=now, created_at=now - timedelta(hours=1)))
    world.fake.outage(status=503)
    world.tick()
    world.fake.recover()
    world.fake.clear()
    world.tick(utc(2026, 11, 23, 10, 0))
    assert [post["text"] for post in world.posts_to(CHANNEL)] == ["as planned"]
    assert len(world.posts_to(OWNER2)) == 1
    assert "could not write outbox row" in caplog.text


def test_a_morning_dm_that_waited_is_not_sent_once_reminders_are_off_or_its_day_is_over(world: World) -> None:
    overdue_item(world, OWNER)
    overdue_item(world, OWNER2)
    world.fake.outage(status=503)
    world.tick(utc(2026, 11, 23, 9, 0))
    world.do(lambda s: people.set_preferences(s, world.actor(OWNER), on=False))
    world.fake.recover()
    world.fake.clear()
    world.tick(utc(2026, 11, 23, 9, 10))
    assert world.posts_to(OWNER) == [] and len(world.posts_to(OWNER2)) == 1

    world.fake.outage(status=503)
    world.tick(utc(2026, 11, 24, 9, 0))  # Tuesday's, for OWNER2 only
    world.fake.recover()
    world.fake.clear()
    world.tick(utc(2026, 11, 25, 0, 5))  # Wednesday: Tuesday's would say "due today" of Tuesday
    assert world.posts_to(OWNER2) == []
    world.tick(utc(2026, 11, 25, 9, 0))
    assert "Wed 25 Nov 2026" in world.dm_text(OWNER2)


def test_remind_at_changes_the_time(world: World) -> None:
    world.at(utc(2026, 11, 19, 12))
    overdue_item(world, OWNER)
    overdue_item(world, OWNER2)
    world.do(lambda s: people.set_preferences(s, world.actor(OWNER), remind_at=time(8, 30)))
    world.tick(utc(2026, 11, 20, 8, 29))
    assert world.posts() == []
    world.tick(utc(2026, 11, 20, 8, 30))
    assert [p["channel"] for p in world.posts()] == [OWNER]
    world.tick(utc(2026, 11, 20, 8, 59))
    world.tick(utc(2026, 11, 20, 9, 0))
    assert [p["channel"] for p in world.posts()] == [OWNER, OWNER2]


def test_remind_off_stops_the_dm_and_on_brings_it_back(world: World) -> None:
    world.at(utc(2026, 11, 19, 12))
    overdue_item(world, OWNER)
    overdue_item(world, OWNER2)
    world.do(lambda s: people.set_preferences(s, world.actor(OWNER), on=False))
    for hour in (9, 12, 23):
        world.tick(utc(2026, 11, 20, hour))
    assert [p["channel"] for p in world.posts()] == [OWNER2]
    assert [r.recipient for r in world.outbox()] == [OWNER2]
    world.do(lambda s: people.set_preferences(s, world.actor(OWNER), on=True))
    world.tick(utc(2026, 11, 23, 9))
    assert sorted(p["channel"] for p in world.posts()) == sorted([OWNER2, OWNER, OWNER2])


def test_reminder_settings_are_in_the_audit_trail(world: World) -> None:
    """DOMAIN.md: everything leaves a trail, who changed what, when, from what to what."""
    owner = world.actor(OWNER)
    world.do(lambda s: people.set_preferences(s, owner, remind_at=time(8, 30)))
    world.do(lambda s: people.set_preferences(s, owner, on=False))
    world.do(lambda s: people.set_preferences(s, owner, on=False, remind_at=time(8, 30)))  # no change: no event
    changed = [(e.actor_id, e.details) for e in events(world.engine) if e.action == "reminders.changed"]
    assert changed == [
        (OWNER, {"remind_at": {"from": "09:00", "to": "08:30"}}),
        (OWNER, {"reminders_on": {"from": True, "to": False}}),
    ]


def test_nothing_due_means_no_dm(world: World) -> None:
    world.grant(VERIFIER, Role.VERIFIER)  # nothing to verify
    world.grant(AO, Role.AO)  # nothing to decide, nothing late
    world.log("Due in a month, no milestones", owner=OWNER, due=FRI + timedelta(days=30))
    world.log("Someone else's, due soon", owner=OWNER2, due=FRI + timedelta(days=20))
    for hour in (9, 15, 23):
        report = world.tick(utc(2026, 11, 20, hour))
        assert report.leader and report.planned == 0
    world.tick(utc(2026, 11, 23, 9))
    assert world.posts() == []
    assert world.outbox() == []


# ---------------------------------------------------------------- what


def test_the_owners_dm_lists_milestones_overdue_items_and_vendor_checkins(world: World) -> None:
    world.at(utc(2026, 11, 12, 12))
    late_milestones = world.log("Patch web tier", owner=OWNER, due=FRI + timedelta(days=20))
    world.do(lambda s: add_milestone(s, world.actor(OWNER), number=late_milestones, description="Staging rollout", due_on=FRI - timedelta(days=1)))
    world.at(utc(2026, 11, 20, 12))
    for days, what in ((0, "Rollout day"), (6, "Week out"), (7, "Just beyond"), (2, "Soon")):
        world.do(lambda s, d=days, w=what: add_milestone(s, world.actor(OWNER), number=late_milestones, description=w, due_on=FRI + timedelta(days=d)))
    overdue = overdue_item(world, days=3, title="Expired TLS certificate")
    vendor_old = world.log("Vendor patch pending", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=90))
    vendor_new = world.log("Vendor fix promised", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=90))
    vendor_submitted = world.log("Vendor fix applied", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=90))
    not_mine = overdue_item(world, OWNER2, days=3, title="Bob's problem")
    world.at(utc(2026, 10, 20, 12))  # 31 days before the reminder
    world.do(lambda s: review.set_vendor(s, world.actor(OWNER), number=vendor_old, product="AcmeOS", checkin=True))
    world.do(lambda s: review.set_vendor(s, world.actor(OWNER), number=vendor_submitted, checkin=True))
    world.do(lambda s: review.submit_fix(s, world.actor(OWNER), number=vendor_submitted))  # `vendor` would refuse
    world.at(utc(2026, 10, 22, 12))  # 29 days before
    world.do(lambda s: review.set_vendor(s, world.actor(OWNER), number=vendor_new, product="AcmeDB", checkin=True))

    world.tick(utc(2026, 11, 20, 15))
    dm = world.dm_text(OWNER)
    assert "Milestones due this week" in dm
    assert "M1 Staging rollout, *late since Thu 19 Nov 2026*" in dm
    assert "M2 Rollout day, *due today*" in dm
    assert "M3 Week out, due Thu 26 Nov 2026" in dm  # the seven days from today, as the digest's week
    assert "M5 Soon, due Sun 22 Nov 2026" in dm
    assert "Just beyond" not in dm
    assert f"*POAM-{overdue}* Expired TLS certificate — due Tue 17 Nov 2026, *3d overdue*" in dm
    assert "Vendor check-ins due" in dm
    assert f"*POAM-{vendor_old}* Vendor patch pending — last vendor check-in Tue 20 Oct 2026" in dm
    # Commands to copy name the person's own items (they read POAM-12, or "…", whatever the ids).
    assert f"`/poam vendor POAM-{vendor_old} checkin`" in dm
    example = re.search(r"`/poam snooze POAM-(\d+) 3d`", dm)
    assert example and int(example.group(1)) in (late_milestones, overdue, vendor_old), dm
    assert f"POAM-{vendor_new}*" not in dm and f"POAM-{vendor_submitted}*" not in dm
    assert f"POAM-{not_mine}*" not in dm and "Bob's problem" not in dm
    assert "Escalations" not in dm  # not an AO
    assert "Bob's problem" in world.dm_text(OWNER2)
    # Sections come in a fixed order: milestones, overdue, …, vendor check-ins.
    assert dm.index("Milestones due this week") < dm.index("Overdue") < dm.index("Vendor check-ins due")


def test_items_due_within_a_week_are_in_the_dm_before_they_are_late(world: World) -> None:
    """An item with no milestone got no word until the morning it was overdue."""
    world.at(utc(2026, 11, 2, 12))
    today = world.log("Rotate the signing key", owner=OWNER, due=FRI)
    week = world.log("Renew the TLS certificate", owner=OWNER, due=FRI + timedelta(days=6))
    beyond = world.log("Retire the old VPN", owner=OWNER, due=FRI + timedelta(days=7))
    theirs = world.log("Bob's key", owner=OWNER2, due=FRI + timedelta(days=1))
    planned = world.log("Patch the hypervisor", owner=OWNER, due=FRI + timedelta(days=2))
    world.do(lambda s: add_milestone(s, world.actor(OWNER), number=planned, description="Patch the first host",
                                     due_on=FRI + timedelta(days=1)))
    world.tick(utc(2026, 11, 20, 15))
    dm = world.dm_text(OWNER)
    assert "M1 Patch the first host" in dm and "Patch the hypervisor — due" not in dm  # once, by its milestone
    assert f"*POAM-{today}* Rotate the signing key — *due today*" in dm
    assert f"*POAM-{week}* Renew the TLS certificate — due Thu 26 Nov 2026" in dm
    assert f"POAM-{beyond}*" not in dm and f"POAM-{theirs}*" not in dm
    assert "Due this week" in dm and "Overdue" not in dm
    assert f"*POAM-{theirs}* Bob's key — due Sat 21 Nov 2026" in world.dm_text(OWNER2)


def test_the_milestones_of_an_item_whose_risk_is_accepted_are_not_late_in_the_dm(world: World) -> None:
    """The card marks no milestone late while the risk is accepted (its dates
    do not count); the morning DM said "late since"."""
    world.grant(AO, Role.AO)
    world.at(utc(2026, 11, 2, 12))
    accepted = world.log("Legacy cipher on the VPN", owner=OWNER, due=FRI + timedelta(days=10))
    world.do(lambda s: add_milestone(s, world.actor(OWNER), number=accepted, description="Replace the VPN",
                                     due_on=FRI - timedelta(days=10)))
    world.do(lambda s: review.accept_risk(s, world.actor(AO, Role.AO), number=accepted, until=date(2027, 3, 31),
                                          rationale="Compensating control"))
    world.at(utc(2026, 11, 20, 12))
    overdue_item(world, days=3, title="Expired TLS certificate")  # something else to be told of
    world.tick(utc(2026, 11, 20, 15))
    dm = world.dm_text(OWNER)
    assert "Expired TLS certificate" in dm and "Replace the VPN" not in dm


def test_the_dm_of_an_owner_of_more_items_than_one_statement_takes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their milestones were read with one IN list of every item needing them:
    past 65,535 items (a scan's Point of Contact) PostgreSQL refused it, and the
    tick failed for every workspace. Read a chunk at a time, in due order still."""
    monkeypatch.setattr(rows, "IN_LIST_SIZE", 2)
    numbers = [world.log(f"Finding {n}", owner=OWNER, due=FRI + timedelta(days=20)) for n in range(5)]
    for number, days in zip(numbers, (5, 1, 4, 2, 3), strict=True):
        world.do(lambda s, n=number, d=days: add_milestone(s, world.actor(OWNER), number=n, description=f"In {d}d",
                                                           due_on=FRI + timedelta(days=d)))
    with statements(world.engine) as seen:
        world.tick()
    milestone_reads = [params for statement, params in seen
                       if "FROM milestones" in statement and "IN (" in statement and "items" not in statement]
    assert milestone_reads and max(len(params) for params in milestone_reads) <= 2 + 3  # two ids; team, due
    dm = world.dm_text(OWNER)
    assert [dm.index(f"In {d}d") for d in range(1, 6)] == sorted(dm.index(f"In {d}d") for d in range(1, 6))


def test_a_verifier_is_told_what_waits_for_verification(world: World) -> None:
    world.grant(VERIFIER, Role.VERIFIER)
    number = world.log("Weak ciphers", owner=OWNER, due=FRI + timedelta(days=20))
    world.do(lambda s: review.submit_fix(s, world.actor(OWNER), number=number, evidence="rescan clean"))
    world.tick()
    assert f"*POAM-{number}* Weak ciphers — fix submitted by <@{OWNER}>" in world.dm_text(VERIFIER)
    assert "Waiting on you to verify" in world.dm_text(VERIFIER)
    assert world.posts_to(OWNER) == []  # the owner has nothing due: their fix waits on someone else


def test_the_aos_dm_lists_approvals_requests_ending_acceptances_and_escalations(world: World) -> None:
    world.grant(AO, Role.AO)
    ao = world.actor(AO, Role.AO)
    world.at(utc(2026, 11, 1, 12))
    plan_item = world.log("Plan to approve", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=100))
    extension = world.log("Wants more time", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=60))
    ending = world.log("Accepted, ending soon", owner=OWNER2, severity=Severity.LOW, due=FRI + timedelta(days=100))
    lasting = world.log("Accepted, for long", owner=OWNER2, severity=Severity.LOW, due=FRI + timedelta(days=100))
    own = world.log("The AO's own, ending", owner=AO, severity=Severity.LOW, due=FRI + timedelta(days=100))
    world.at(utc(2026, 11, 20, 12))
    eight = overdue_item(world, OWNER2, days=8, title="Eight days late")
    overdue_item(world, OWNER2, days=7, title="Seven days late")
    world.do(lambda s: items_mod.set_plan(s, world.actor(OWNER), number=plan_item, plan="Upgrade the kernel"))
    world.do(lambda s: review.request_extension(s, world.actor(OWNER), number=extension, due_on=FRI + timedelta(days=90), reason="vendor"))
    world.do(lambda s: review.accept_risk(s, ao, number=ending, until=FRI + timedelta(days=20), rationale="compensating control"))
    world.do(lambda s: review.accept_risk(s, ao, number=lasting, until=FRI + timedelta(days=40), rationale="compensating control"))
    world.grant("U00000AO22", Role.AO)
    world.do(lambda s: review.accept_risk(s, world.actor("U00000AO22", Role.AO), number=own,
                                          until=FRI + timedelta(days=20), rationale="compensating control"))

    world.tick(utc(2026, 11, 20, 15))
    dm = world.dm_text(AO)
    assert f"*POAM-{plan_item}* Plan to approve — plan awaiting your approval" in dm
    assert f"*POAM-{extension}* Wants more time — request from <@{OWNER}>" in dm
    assert "Risk acceptances ending within 30 days" in dm
    assert (f"*POAM-{ending}* Accepted, ending soon — accepted until Thu 10 Dec 2026 — "
            f"`/poam accept-risk POAM-{ending} until:&lt;date&gt; &lt;why&gt;` renews it") in dm
    # Their own item they may not renew: no command offered that would refuse them.
    assert re.search(rf"\*POAM-{own}\* The AO's own, ending — accepted until Thu 10 Dec 2026\n", dm + "\n"), dm
    assert "Accepted, for long" not in dm
    assert "Escalations: more than 7 days overdue" in dm
    assert f"*POAM-{eight}* Eight days late — 8d overdue, owner <@{OWNER2}>" in dm
    assert "Seven days late" not in dm
    # The owner is told about both late items, without an escalation section.
    owner2 = world.dm_text(OWNER2)
    assert "Eight days late" in owner2 and "Seven days late" in owner2 and "Escalations" not in owner2


def test_a_systems_ao_gets_escalations_for_their_system(world: World, make_actor: Callable[..., Actor]) -> None:
    from bot.poam.systems import add_system

    world.do(lambda s: add_system(s, world.actor(ADMIN, Role.ADMIN), name="Payments", ao_user_id=AO))
    actor = world.actor(OWNER)
    item = world.do(
        lambda s: items_mod.log_item(
            s, actor, title="Payments DB unpatched", severity=Severity.HIGH, owner_id=OWNER,
            detected_on=FRI - timedelta(days=40), due_on=FRI - timedelta(days=10), system_name="Payments",
        )
    )
    other = overdue_item(world, OWNER, days=10, title="Default system item")
    world.tick()
    dm = world.dm_text(AO)
    assert f"*POAM-{item.number}* Payments DB unpatched — 10d overdue" in dm
    assert f"POAM-{other}*" not in dm


def test_a_snoozed_item_is_left_out_until_the_snooze_ends(world: World) -> None:
    world.at(utc(2026, 11, 19, 12))
    snoozed = overdue_item(world, days=3, title="Snoozed problem")
    world.at(utc(2026, 11, 20, 8))
    item = world.do(lambda s: items_mod.snooze_item(s, world.actor(OWNER), number=snoozed, days=3))
    assert item.snoozed_until == date(2026, 11, 23)
    world.tick(utc(2026, 11, 20, 9))
    world.tick(utc(2026, 11, 23, 9))  # "through Mon 23 Nov" holds on the 23rd
    assert world.posts() == []
    assert world.outbox() == []
    world.tick(utc(2026, 11, 24, 9))
    assert "Snoozed problem" in world.dm_text(OWNER)


@pytest.mark.parametrize("hand_over", ["assign", "release and claim"])
def test_a_snooze_ends_when_the_item_changes_hands(world: World, hand_over: str) -> None:
    """The owner who snoozed an item is leaving it: the next one must hear of it."""
    number = overdue_item(world, title="Handed over")
    world.do(lambda s: items_mod.snooze_item(s, world.actor(OWNER), number=number, days=7))
    if hand_over == "assign":
        world.do(lambda s: items_mod.assign_item(s, world.actor(ADMIN, Role.ADMIN), number=number, owner_id=OWNER2))
    else:
        world.do(lambda s: items_mod.release_item(s, world.actor(OWNER), number=number))
        world.do(lambda s: items_mod.claim_item(s, world.actor(OWNER2), number=number))
    assert world.item(number).snoozed_until is None
    world.tick()
    assert "Handed over" in world.dm_text(OWNER2)
    ended = [e.details for e in events(world.engine) if e.action in ("item.assigned", "item.released")]
    assert ended[-1]["snoozed_until"] == {"from": (FRI + timedelta(days=7)).isoformat(), "to": None}


def test_a_snoozed_item_does_not_hide_the_others(world: World) -> None:
    world.at(utc(2026, 11, 19, 12))
    snoozed = overdue_item(world, days=3, title="Snoozed problem")
    overdue_item(world, days=2, title="Loud problem")
    world.do(lambda s: items_mod.snooze_item(s, world.actor(OWNER), number=snoozed, days=7))
    world.tick(utc(2026, 11, 20, 9))
    dm = world.dm_text(OWNER)
    assert "Loud problem" in dm and "Snoozed problem" not in dm


def test_an_unclaimed_item_gets_exactly_one_nudge_in_its_thread(world: World) -> None:
    world.at(utc(2026, 11, 20, 15))
    number = world.log("Nobody's finding", channel=CHANNEL, thread=THREAD, severity=Severity.MODERATE)
    world.log("Claimed in time", channel=CHANNEL, thread="1700000000.000200", severity=Severity.MODERATE)
    world.do(lambda s: items_mod.claim_item(s, world.actor(OWNER2), number=2))
    world.log("Logged outside any channel", severity=Severity.MODERATE)
    world.tick(utc(2026, 11, 23, 14, 59))  # 3 days less a minute
    assert world.posts_to(CHANNEL) == []
    for hours in range(0, 24 * 5, 5):  # Mon 15:00 and on, for five days
        world.tick(utc(2026, 11, 23, 15) + timedelta(hours=hours))
    (nudge,) = world.posts_to(CHANNEL)
    assert nudge["thread_ts"] == THREAD
    assert f"*POAM-{number}* has waited 3 days for an owner" in nudge["text"]
    assert f"/poam claim POAM-{number}" in nudge["text"]
    assert [(r.recipient, r.kind, r.subject) for r in world.outbox() if r.kind == "nudge"] == [(CHANNEL, "nudge", f"item:{number}")]


def test_an_unclaimed_item_is_nudged_once_even_after_its_nudge_is_forgotten(world: World) -> None:
    """The outbox forgets sent messages after a month; the nudge it forgot was
    planned again, "has waited 34 days", and every month after."""
    world.at(utc(2026, 11, 2, 10))
    world.log("Nobody's finding", channel=CHANNEL, thread=THREAD, severity=Severity.LOW)
    for days in range(3, 100):
        world.tick(utc(2026, 11, 2, 11) + timedelta(days=days))
    assert len(world.posts_to(CHANNEL)) == 1
    assert not [r for r in world.outbox() if r.kind == "nudge"]  # forgotten since


def test_expired_risk_acceptances_are_processed_by_the_tick(world: World) -> None:
    world.grant(AO, Role.AO)
    number = world.log("Accepted for now", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=100))
    world.do(lambda s: review.accept_risk(s, world.actor(AO, Role.AO), number=number, until=FRI + timedelta(days=2), rationale="ok"))
    assert world.tick(utc(2026, 11, 22, 23, 59)).expired == 0  # "until 22 Nov" holds through the 22nd
    assert world.item(number).status == Status.RISK_ACCEPTED
    report = world.tick(utc(2026, 11, 23, 0, 0))
    assert report.expired == 1
    assert world.item(number).status == Status.IN_PROGRESS and world.item(number).risk_accepted_until is None
    assert world.tick().expired == 0


def test_the_tick_ends_acceptances_by_the_workspace_zone(make_world: Callable[..., World]) -> None:
    world = make_world("America/New_York")
    world.grant(AO, Role.AO)
    number = world.log("Accepted for now", owner=OWNER, severity=Severity.LOW, due=FRI + timedelta(days=100))
    world.do(lambda s: review.accept_risk(s, world.actor(AO, Role.AO), number=number, until=FRI + timedelta(days=2), rationale="ok"))
    assert world.tick(utc(2026, 11, 23, 4, 59)).expired == 0  # 23:59 on the 22nd in New York
    assert world.tick(utc(2026, 11, 23, 5, 0)).expired == 1


def test_a_workspace_whose_expiry_is_refused_stops_no_reminder(world: World) -> None:
    """Its audit trail past its recorded head (a restored copy, say), another
    workspace's expiry is refused, every tick: this one's digest goes out."""
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    owner, ao = world.make_actor(OWNER, team="T0002"), world.make_actor(AO, Role.AO, team="T0002")
    item = world.do(lambda s: items_mod.log_item(s, owner, title="Weak TLS", severity=Severity.LOW, owner_id=OWNER))
    world.do(lambda s: review.accept_risk(s, ao, number=item.number, until=FRI + timedelta(days=1), rationale="ok"))
    with world.engine.begin() as connection:
        connection.execute(update(Workspace).where(Workspace.team_id == "T0002").values(audit_seq=Workspace.audit_seq - 1))
    report = world.tick(utc(2026, 11, 23, 9, 0))  # Monday 09:00: the digest is due
    assert (report.expired, len(world.posts_to(DIGEST_CHANNEL))) == (0, 1)


# ---------------------------------------------------------------- the weekly digest


def fields_of(params: dict[str, Any]) -> dict[str, str]:
    """The digest's ``*label*\\nvalue`` fields as a dict."""
    blocks = params["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    found: dict[str, str] = {}
    for block in blocks:
        for field in block.get("fields", []):
            label, _, value = field["text"].partition("\n")
            found[label.strip("*")] = value
    return found


#: A title whose every character Slack's markup escapes, five-fold (``&`` → ``&amp;``).
ESCAPED_TITLE = "&" * 290


def test_a_morning_dm_and_a_digest_of_long_escaped_titles_stay_within_what_slack_takes(world: World) -> None:
    """An AO who owns a dozen items more than a week overdue: the Overdue and
    Escalations lists, ten lines each of titles that grow five-fold when
    escaped, came to over 12,000 characters, which Slack refuses
    (``msg_blocks_too_long``) every morning; the digest's Overdue and Due
    this week likewise."""
    world.grant(AO, Role.AO)
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.at(utc(2026, 11, 23, 8))
    for n in range(12):
        overdue_item(world, AO, days=10 + n, title=f"{n} {ESCAPED_TITLE}")
        world.log(f"{n} {ESCAPED_TITLE}", owner=OWNER, due=MON + timedelta(days=3))
    world.tick(utc(2026, 11, 23, 9, 0))
    for recipient in (AO, DIGEST_CHANNEL):
        (posted,) = world.posts_to(recipient)
        assert blocks_text(posted) <= BLOCKS_TEXT_LIMIT
    assert {row.status for row in world.outbox()} == {outbox.SENT}
    text = world.dm_text(AO)
    assert "*Overdue*" in text and "*Escalations: more than 7 days overdue*" in text
    assert text.count("…and more: `/poam list`.") == 2  # what did not fit, said
    digest = text_of(world.posts_to(DIGEST_CHANNEL)[0])
    assert "*Overdue*" in digest and "*Due this week*" in digest and digest.count(" more.") == 2
    assert "…and 2 more." not in digest  # fewer than ten lines of each: cut to fit


def test_the_digest_posts_on_monday_at_nine_workspace_time_once_even_when_quiet(make_world: Callable[..., World]) -> None:
    world = make_world(tz="Europe/Paris")  # CET, UTC+1
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 23, 7, 59))  # 08:59 in Paris
    world.tick(utc(2026, 11, 22, 8, 0))  # Sunday 09:00
    assert world.posts() == []
    world.tick(utc(2026, 11, 23, 8, 0))  # 09:00 in Paris
    assert len(world.posts_to(DIGEST_CHANNEL)) == 1
    for minutes in (1, 120, 600):
        world.tick(utc(2026, 11, 23, 8, 0) + timedelta(minutes=minutes))
    (digest,) = world.posts_to(DIGEST_CHANNEL)
    assert digest["text"] == "Weekly POA&M digest: 0 open, 0 overdue"
    assert "Nothing overdue" in text_of(digest)
    assert "Nothing falls due this week" in text_of(digest)
    assert fields_of(digest)["Open items"] == "0 (+0 since last week)"
    for days in range(1, 7):
        world.tick(utc(2026, 11, 23, 8, 0) + timedelta(days=days))
    assert len(world.posts_to(DIGEST_CHANNEL)) == 1
    world.tick(utc(2026, 11, 30, 8, 0))
    assert len(world.posts_to(DIGEST_CHANNEL)) == 2
    assert [(r.kind, r.subject, r.local_day) for r in world.outbox()] == [
        ("digest", "weekly", date(2026, 11, 23)), ("digest", "weekly", date(2026, 11, 30))
    ]


def test_the_digest_follows_the_workspace_zone_across_dst(make_world: Callable[..., World]) -> None:
    world = make_world(tz="America/New_York")
    world.at(utc(2026, 10, 20, 12))
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    posted: list[datetime] = []
    for moment in (utc(2026, 10, 26, 12, 59), utc(2026, 10, 26, 13, 0), utc(2026, 11, 2, 13, 59), utc(2026, 11, 2, 14, 0)):
        before = len(world.posts_to(DIGEST_CHANNEL))
        world.tick(moment)
        if len(world.posts_to(DIGEST_CHANNEL)) > before:
            posted.append(moment)
    assert posted == [utc(2026, 10, 26, 13, 0), utc(2026, 11, 2, 14, 0)]  # 09:00 EDT, then 09:00 EST


def test_the_digests_week_is_from_the_last_digest_across_dst(make_world: Callable[..., World]) -> None:
    """The week to 09:00 EST is 169 hours: an item logged in the hour after
    the last digest (09:30 EDT) was in neither digest's "logged this week"."""
    world = make_world(tz="America/New_York")
    world.at(utc(2026, 10, 20, 12))
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 10, 26, 13, 0))  # Monday 09:00 EDT
    world.at(utc(2026, 10, 26, 13, 30))
    world.log("Logged at 09:30 EDT", severity=Severity.LOW)
    world.tick(utc(2026, 11, 2, 14, 0))  # Monday 09:00 EST
    first, second = world.posts_to(DIGEST_CHANNEL)
    assert fields_of(first)["Open items"] == "0 (+0 since last week)"
    assert fields_of(second)["Open items"] == "1 (+1 since last week)"
    assert fields_of(second)["Logged this week"] == "1"


def test_the_digest_day_and_time_are_the_subscriptions(world: World) -> None:
    world.do(lambda s: subscriptions.subscribe(
        s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL, weekday=1, post_at=time(10, 0)))
    world.tick(utc(2026, 11, 23, 9))
    world.tick(utc(2026, 11, 24, 9, 59))
    assert world.posts() == []
    world.tick(utc(2026, 11, 24, 10, 0))
    assert len(world.posts_to(DIGEST_CHANNEL)) == 1


def test_a_digest_moved_to_a_later_day_waits_for_the_next_week(world: World) -> None:
    admin = world.actor(ADMIN, Role.ADMIN)
    world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 23, 9))  # Monday
    world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL, weekday=2))
    world.tick(utc(2026, 11, 25, 9))  # Wednesday
    assert len(world.posts_to(DIGEST_CHANNEL)) == 1
    world.tick(utc(2026, 12, 2, 9))  # the next Wednesday
    assert len(world.posts_to(DIGEST_CHANNEL)) == 2


def test_the_morning_dm_and_the_digest_mean_the_same_week(world: World) -> None:
    """A milestone due next Monday was "due this week" in this Monday's DM and
    in next Monday's, while the digest said nothing fell due this week."""
    number = world.log("Patch the LB", owner=OWNER, due=MON + timedelta(days=20))
    for days, what in ((6, "Sunday's step"), (7, "Next Monday's step")):
        world.do(lambda s, d=days, w=what: add_milestone(s, world.actor(OWNER), number=number, description=w,
                                                          due_on=MON + timedelta(days=d)))
    world.tick(utc(2026, 11, 23, 9, 0))
    dm = world.dm_text(OWNER)
    assert "Sunday's step" in dm and "Next Monday's step" not in dm


def test_the_digest_keeps_the_audit_trails_head_in_the_channel(world: World) -> None:
    """The chain's head is in the database it guards: posted each week, the
    channel's history holds what `audit verify --anchor` then checks."""
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.log("Weak TLS", owner=OWNER)
    world.tick(utc(2026, 11, 23, 9, 0))
    with unit_of_work(world.engine, read_only=True) as session:
        head = audit.verify_chain(session, team_id=TEAM).head
    assert head is not None
    expected = f"{TEAM}:{head.seq}:{head.hash[:16]}"
    assert f"Audit trail head: `{expected}`. `poam-bot audit verify --anchor {expected}`" in text_of(
        world.posts_to(DIGEST_CHANNEL)[0])


def test_due_this_week_is_seven_days_each_item_in_one_digest(world: World) -> None:
    """Today to today + 7 was eight days: an item due next Monday was due
    "this week" in this Monday's digest and in next Monday's."""
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.log("Due on Sunday", owner=OWNER, due=MON + timedelta(days=6))
    world.log("Due next Monday", owner=OWNER, due=MON + timedelta(days=7))
    world.tick(utc(2026, 11, 23, 9, 0))
    world.tick(utc(2026, 11, 30, 9, 0))
    this_week, next_week = (text_of(post) for post in world.posts_to(DIGEST_CHANNEL))
    assert "Due on Sunday" in this_week and "Due next Monday" not in this_week
    assert "Due next Monday" in next_week


def test_a_digest_missed_while_the_scheduler_was_down_goes_out_later_that_week(world: World) -> None:
    """No tick from Monday 09:00 to midnight (the scheduler down from Sunday
    night to Tuesday morning): the week had no digest at all."""
    admin = world.actor(ADMIN, Role.ADMIN)
    world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 22, 23))  # Sunday night
    world.tick(utc(2026, 11, 24, 7))  # Tuesday morning
    assert len(world.posts_to(DIGEST_CHANNEL)) == 1
    for day in (25, 26, 29):
        world.tick(utc(2026, 11, day, 9))
    assert len(world.posts_to(DIGEST_CHANNEL)) == 1  # once a week
    world.at(utc(2026, 12, 1, 12))  # a channel subscribed after this week's was due waits for the next
    world.do(lambda s: subscriptions.subscribe(s, admin, channel_id="C0LATECOMER"))
    world.tick(utc(2026, 12, 2, 9))
    assert world.posts_to("C0LATECOMER") == []
    world.tick(utc(2026, 12, 7, 9))
    assert len(world.posts_to("C0LATECOMER")) == 1


def test_a_subscription_changed_keeps_what_is_not_given(world: World) -> None:
    admin = world.actor(ADMIN, Role.ADMIN)
    found = world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL))
    assert (found.weekday, found.post_at) == (0, time(9, 0))
    found = world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL, weekday=4))
    assert (found.weekday, found.post_at) == (4, time(9, 0))
    found = world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL, post_at=time(10, 30)))
    assert (found.weekday, found.post_at) == (4, time(10, 30))
    recorded = len(events(world.engine))
    found = world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL))
    assert (found.weekday, found.post_at) == (4, time(10, 30))
    assert len(events(world.engine)) == recorded  # nothing changed: nothing recorded


def test_the_digest_counts(world: World) -> None:
    world.grant(VERIFIER, Role.VERIFIER)
    world.grant(AO, Role.AO)
    ao, verifier = world.actor(AO, Role.AO), world.actor(VERIFIER, Role.VERIFIER)
    world.at(utc(2026, 11, 1, 10))
    a = world.log("A overdue", owner=OWNER, severity=Severity.HIGH, due=date(2026, 11, 15))
    b = world.log("B due this week", severity=Severity.MODERATE, due=date(2026, 11, 25))
    c = world.log("C closed this week", owner=OWNER2, severity=Severity.LOW)
    f = world.log("F risk accepted", owner=OWNER2, severity=Severity.LOW)
    g = world.log("G closed before", owner=OWNER2, severity=Severity.HIGH)
    world.do(lambda s: review.accept_risk(s, ao, number=f, until=date(2026, 12, 31), rationale="ok"))
    world.at(utc(2026, 11, 12, 10))
    world.do(lambda s: review.submit_fix(s, world.actor(OWNER2), number=g))
    world.do(lambda s: review.verify_fix(s, verifier, number=g))
    world.at(utc(2026, 11, 18, 10))
    world.do(lambda s: review.submit_fix(s, world.actor(OWNER2), number=c))
    world.do(lambda s: review.verify_fix(s, verifier, number=c))
    world.at(utc(2026, 11, 20, 10))
    d = world.log("D waiting on verification", owner=OWNER, severity=Severity.CRITICAL, due=date(2026, 12, 15))
    world.do(lambda s: review.submit_fix(s, world.actor(OWNER), number=d))
    e = world.log("E waiting on a decision", owner=OWNER2, severity=Severity.MODERATE, due=date(2027, 1, 20))
    world.do(lambda s: review.request_extension(s, world.actor(OWNER2), number=e, due_on=date(2027, 2, 15), reason="vendor"))
    world.do(lambda s: items_mod.set_plan(s, world.actor(OWNER), number=a, plan="Patch it."))  # for the AO to approve
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    assert (a, b, c, f, g, d, e) == (1, 2, 3, 4, 5, 6, 7)

    world.tick(utc(2026, 11, 23, 9))
    (digest,) = world.posts_to(DIGEST_CHANNEL)
    assert digest["text"] == "Weekly POA&M digest: 5 open, 1 overdue"
    assert fields_of(digest) == {
        "Open items": "5 (+1 since last week)",  # A B D E F now; A B C F a week ago
        "Overdue": "1",
        "Logged this week": "2",
        "Closed this week": "1",
        "By status": "in progress 2, open 1, pending verification 1, risk accepted 1",
        "By severity": "critical 1, high 1, moderate 2, low 1",
        "Waiting on verification": "1",
        "Waiting on a decision": "1",
        "Plans awaiting approval": "1",
    }
    text = text_of(digest)
    assert f"*POAM-1* A overdue — 8d overdue · <@{OWNER}>" in text
    assert "*POAM-2* B due this week — due Wed 25 Nov 2026 · _unclaimed_" in text
    assert "Nothing overdue" not in text
    for absent in ("C closed", "G closed", "D waiting", "E waiting", "F risk"):
        assert absent not in text


def test_the_digest_of_several_systems_counts_each_one(world: World) -> None:
    """The digest counts every system, `/poam list` the default one: a
    channel read "2 overdue" in one and 1 in the other, told nothing more."""
    from bot.poam.systems import add_system

    world.do(lambda s: add_system(s, world.actor(ADMIN, Role.ADMIN), name="Payroll <HR>"))
    actor = world.actor(OWNER)
    world.do(lambda s: items_mod.log_item(
        s, actor, title="Payroll DB unpatched", severity=Severity.HIGH, owner_id=OWNER,
        detected_on=FRI - timedelta(days=40), due_on=FRI - timedelta(days=10), system_name="Payroll <HR>"))
    world.do(lambda s: items_mod.log_item(s, actor, title="Payroll TLS", severity=Severity.LOW,
                                          system_name="Payroll <HR>"))
    overdue_item(world, OWNER, days=10, title="Default system item")
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 23, 9))
    (digest,) = world.posts_to(DIGEST_CHANNEL)
    assert digest["text"] == "Weekly POA&M digest: 3 open, 2 overdue"
    assert fields_of(digest)["By system"] == "Default: 1 open · 1 overdue\nPayroll &lt;HR&gt;: 2 open · 1 overdue"
    for n in range(9):
        world.do(lambda s, n=n: add_system(s, world.actor(ADMIN, Role.ADMIN), name=f"System {n}"))
    _, blocks = world.do(lambda s: digest_message(s, team_id=TEAM, clock=world.clock,
                                                  rules=world.scheduler.settings.rules))
    listed = fields_of({"blocks": blocks})["By system"].split("\n")
    assert (len(listed), listed[-1]) == (11, "…and 1 more.")


def test_a_closed_history_imported_this_week_was_neither_logged_nor_closed_this_week(world: World) -> None:
    """A team bringing its POA&M over imports its closed rows too: the first
    digest said thirty findings were logged and closed that week."""
    from bot.interchange.findings import Finding
    from bot.poam.imports import import_findings

    admin = world.actor(ADMIN, Role.ADMIN)
    history = [Finding(tool="Workbook", rule_id=f"V-{n}", asset="web-01", title=f"Old finding {n}",
                       severity=Severity.LOW, where=f"row {n}", closed=True,
                       closed_on=date(2026, 9, 1) if n % 2 else None)  # undated: closed when imported
               for n in range(30)]
    world.do(lambda s: import_findings(s, admin, findings=history, source_name="poam.xlsx"))
    world.do(lambda s: import_findings(s, admin, findings=[Finding(
        tool="Nessus", rule_id="19506", asset="web-02", title="New this week", severity=Severity.HIGH, where="row 1",
    )], source_name="scan.nessus"))
    world.do(lambda s: subscriptions.subscribe(s, admin, channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 23, 9))
    fields = fields_of(world.posts_to(DIGEST_CHANNEL)[0])
    assert (fields["Logged this week"], fields["Closed this week"]) == ("1", "0")


def test_subscribing_is_for_admins(world: World) -> None:
    from bot.poam.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        world.do(lambda s: subscriptions.subscribe(s, world.actor(OWNER), channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 23, 9))
    assert world.posts() == []


def test_workspaces_are_kept_apart(world: World) -> None:
    other = world.make_actor(OWNER, team="T0002")
    world.do(lambda s: items_mod.log_item(
        s, other, title="Other workspace's problem", severity=Severity.HIGH, owner_id=OWNER,
        detected_on=FRI - timedelta(days=40), due_on=FRI - timedelta(days=10),
    ))
    overdue_item(world, OWNER, title="Our problem")
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 23, 9))
    by_team = {(r.team_id, r.recipient): r for r in world.outbox()}
    assert set(by_team) == {("T0001", OWNER), ("T0002", OWNER), ("T0001", DIGEST_CHANNEL)}
    assert "Our problem" in by_team[("T0001", OWNER)].text + json.dumps(by_team[("T0001", OWNER)].blocks)
    assert "Other workspace" not in json.dumps(by_team[("T0001", OWNER)].blocks)
    assert "Other workspace's problem" in json.dumps(by_team[("T0002", OWNER)].blocks)
    assert "Our problem" not in json.dumps(by_team[("T0002", OWNER)].blocks)
    assert by_team[("T0001", DIGEST_CHANNEL)].text == "Weekly POA&M digest: 1 open, 1 overdue"
    assert len(world.posts_to(OWNER)) == 2


# ---------------------------------------------------------------- the command line


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any, database_url: str, *argv: str) -> tuple[int, str, str]:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("POAM_TIMEZONE", raising=False)
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_remind_dry_run_prints_what_would_be_sent_and_sends_nothing(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    world.at(utc(2026, 11, 19, 12))
    overdue_item(world, OWNER)
    world.do(lambda s: people.remember_person(s, team_id=TEAM, user_id=OWNER, tz=ZoneInfo("America/New_York"), name=None, clock=world.clock))
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))

    code, out, _ = cli(monkeypatch, capsys, tmp_path, database_url, "remind", "--dry-run", "--at", "2026-11-23T08:59:00-05:00")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "digest → C0DIGEST01 (T0001, 2026-11-23): Weekly POA&M digest: 1 open, 1 overdue"
    assert "    *Overdue*" in lines and lines[-1] == "1 message(s) would be sent."  # what it says, not its title alone
    assert all(line.startswith("    ") for line in lines[1:-1])
    code, out, _ = cli(monkeypatch, capsys, tmp_path, database_url, "remind", "--dry-run", "--at", "2026-11-23T09:00:00-05:00")
    assert out.splitlines()[0] == "reminder → U0000OWNER (T0001, 2026-11-23): Your POA&M for Mon 23 Nov 2026"
    assert any("Outdated OpenSSL" in line for line in out.splitlines()[1:])  # the items it is about
    assert out.splitlines()[-1] == "2 message(s) would be sent."
    assert world.outbox() == [] and world.posts() == []

    world.tick(utc(2026, 11, 23, 14))
    code, out, _ = cli(monkeypatch, capsys, tmp_path, database_url, "remind", "--dry-run", "--at", "2026-11-23T09:30:00-05:00")
    assert out.splitlines() == ["0 message(s) would be sent."]


def test_remind_dry_run_wants_an_offset(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(monkeypatch, capsys, tmp_path, database_url, "remind", "--dry-run", "--at", "2026-11-23T09:00:00")
    assert exit_info.value.code == 2
    assert "give the time with its offset" in capsys.readouterr().err


def test_digest_dry_run_prints_the_channels_digest(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.log("Something open", severity=Severity.LOW)
    code, out, _ = cli(monkeypatch, capsys, tmp_path, database_url, "digest", "--channel", DIGEST_CHANNEL, "--dry-run")
    assert code == 0
    assert out.splitlines()[0].startswith("Weekly POA&M digest: 1 open, ")
    assert '"type": "header"' in out
    code, _, err = cli(monkeypatch, capsys, tmp_path, database_url, "digest", "--channel", "C0NOTSUBS1", "--dry-run")
    assert code == 1
    assert "C0NOTSUBS1 is not subscribed to the digest; pass --team" in err
    assert world.posts() == []


# ---------------------------------------------------------------- safety and size


def test_titles_are_escaped_in_dms_and_digests(world: World) -> None:
    world.at(utc(2026, 11, 19, 12))
    overdue_item(world, OWNER, title="Fix <!channel> & <@U0000ADMIN|boss> <https://evil.example|login>")
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.tick(utc(2026, 11, 23, 9))
    for recipient in (OWNER, DIGEST_CHANNEL):
        (message,) = world.posts_to(recipient)
        text = text_of(message)
        assert "Fix &lt;!channel&gt; &amp; &lt;@U0000ADMIN|boss&gt; &lt;https://evil.example|login&gt;" in text
        assert "<!channel>" not in text and "<@U0000ADMIN|boss>" not in text and "<https://evil" not in text


def test_long_lists_are_capped(world: World) -> None:
    world.at(utc(2026, 11, 19, 12))
    for n in range(12):
        overdue_item(world, OWNER, days=20 + n, title=f"Late item {n:02d}")
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.grant(AO, Role.AO)
    world.tick(utc(2026, 11, 23, 9))
    dm = world.dm_text(OWNER)
    assert sum(f"Late item {n:02d}" in dm for n in range(12)) == 10
    assert "…and more: `/poam list`." in dm
    assert "Late item 11" in dm and "Late item 00" not in dm  # the most overdue first
    ao = world.dm_text(AO)
    assert sum(f"Late item {n:02d}" in ao for n in range(12)) == 10 and "…and more" in ao
    (digest,) = world.posts_to(DIGEST_CHANNEL)
    text = text_of(digest)
    assert sum(f"Late item {n:02d}" in text for n in range(12)) == 10
    assert "…and 2 more." in text
    assert fields_of(digest)["Overdue"] == "12"
    for message in world.posts():
        blocks = message["blocks"]
        assert len(blocks) <= 50
        assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
