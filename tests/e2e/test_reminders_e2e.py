"""Reminders and the weekly digest end to end (issue 5).

The bot runs as the real WSGI app on loopback; people use it with signed
``/poam`` requests; the scheduler (``Scheduler.tick`` with the same settings,
database and clock) plans and sends over the fake Slack Web API, whose
``users.info`` tells the bot each person's time zone.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, text
from sqlmodel import select

from bot.config import Settings
from bot.poam.clock import FixedClock
from bot.reminders.dispatch import Pacer
from bot.reminders.scheduler import Scheduler
from bot.store.engine import unit_of_work
from bot.store.models import DigestSubscription, Item, Person
from tests.e2e.conftest import ADMIN, wait_for
from tests.e2e.test_commands import (  # noqa: F401  (fast_teardown is an autouse fixture)
    fast_teardown,
    reply,
    snapshot,
    strings,
    wait_threads,
)
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

OWNER = "U0000OWNER"
AO = "U000000AO1"
BOB = "U000000BOB"
CHANNEL = "C0CHANNEL1"
NEW_YORK = "America/New_York"


def utc(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def dms(fake_slack: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == user]


def all_text(params: dict[str, Any]) -> str:
    blocks = params.get("blocks") or []
    return params.get("text", "") + "\n" + strings(json.loads(blocks) if isinstance(blocks, str) else blocks)


@pytest.fixture
def scheduler(engine: Engine, settings: Settings, clock: FixedClock, fake_slack: FakeSlack) -> Scheduler:
    return Scheduler(
        engine=engine, client=WebClient(token="xoxb-x", base_url=fake_slack.base_url), settings=settings,
        clock=clock, pacer=Pacer(interval=0),
    )


@pytest.fixture
def overdue(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, clock: FixedClock) -> int:
    """An AO; an item of the owner's (in New York, says Slack) logged 1 Oct, due 31 Oct:
    20 days overdue on Fri 20 Nov."""
    fake_slack.user(OWNER, tz=NEW_YORK)
    assert "is now" in reply(slack.raw_command(f"role <@{AO}|ao> +ao", user=ADMIN))
    clock.set(utc(10, 1, 15))
    body = reply(slack.raw_command(f"log Outdated OpenSSL on web-01 sev:high owner:<@{OWNER}|o>", user=OWNER))
    assert "Logged *POAM-1*" in body, body
    wait_threads(engine, 1)
    clock.set(utc(11, 20, 13, 59))  # Friday, 08:59 in New York
    fake_slack.clear()
    return 1


def test_an_overdue_item_gives_one_dm_to_its_owner_and_an_escalation_to_the_ao(
    overdue: int, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    with unit_of_work(engine, read_only=True) as session:
        person = session.get(Person, ("T0001", OWNER))
        assert person is not None and person.tz == NEW_YORK  # learnt from users.info when they used the bot

    scheduler.tick()  # 13:59 UTC: the AO (workspace zone, UTC) is past 09:00, the owner is not
    (ao_dm,) = dms(fake_slack, AO)
    text = all_text(ao_dm)
    assert "Escalations: more than 7 days overdue" in text
    assert f"*POAM-1* Outdated OpenSSL on web-01 — 20d overdue, owner <@{OWNER}>" in text
    assert dms(fake_slack, OWNER) == []

    clock.set(utc(11, 20, 14, 0))  # 09:00 in New York
    scheduler.tick()
    (owner_dm,) = dms(fake_slack, OWNER)
    text = all_text(owner_dm)
    assert owner_dm["text"] == "Your POA&M for Fri 20 Nov 2026"
    assert "*POAM-1* Outdated OpenSSL on web-01 — due Sat 31 Oct 2026, *20d overdue*" in text
    assert "Escalations" not in text

    for moment in (utc(11, 20, 14, 0, 30), utc(11, 20, 18), utc(11, 21, 3, 59)):  # the rest of Friday in New York
        clock.set(moment)
        scheduler.tick()
    assert len(dms(fake_slack, OWNER)) == 1 and len(dms(fake_slack, AO)) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


def test_remind_without_options_only_reads(overdue: int, slack: SlackDriver, engine: Engine) -> None:
    """Showing one's settings neither waits for nor takes the write lock: with
    a long write under way (SQLite's one writer) it still answers at once."""
    with engine.begin() as writer:  # holds SQLite's write lock (PostgreSQL: an open transaction)
        writer.execute(text("SELECT 1"))
        assert "You get a DM at *09:00* (America/New_York) on weekdays" in reply(slack.command("remind", user=OWNER))


def test_remind_at_and_off_over_slack(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    assert "You get a DM at *09:00* (America/New_York) on weekdays" in reply(slack.command("remind", user=OWNER))
    assert "You get a DM at *08:30* (America/New_York)" in reply(slack.command("remind at:08:30", user=OWNER))
    with unit_of_work(engine, read_only=True) as session:
        person = session.get(Person, ("T0001", OWNER))
        assert person is not None and (person.remind_at, person.reminders_on) == (time(8, 30), True)

    clock.set(utc(11, 20, 13, 29))  # 08:29 in New York
    scheduler.tick()
    assert dms(fake_slack, OWNER) == []
    clock.set(utc(11, 20, 13, 30))
    scheduler.tick()
    assert len(dms(fake_slack, OWNER)) == 1

    assert "Your morning reminders are *off*" in reply(slack.command("remind off", user=OWNER))
    clock.set(utc(11, 23, 15))  # Monday, 10:00 in New York
    scheduler.tick()
    assert len(dms(fake_slack, OWNER)) == 1  # nothing on Monday
    assert len(dms(fake_slack, AO)) == 2  # the AO still hears about it

    assert "*08:30*" in reply(slack.command("remind on", user=OWNER))
    scheduler.tick()
    assert len(dms(fake_slack, OWNER)) == 2
    assert "Mon 23 Nov 2026" in dms(fake_slack, OWNER)[1]["text"]


def test_snooze_over_slack(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    before = snapshot(engine)
    refused = reply(slack.command("snooze 1 3d", user=BOB))
    assert ":no_entry:" in refused and "owner" in refused.lower()
    assert snapshot(engine) == before

    clock.set(utc(11, 20, 15))  # Friday 10:00 in New York
    assert "No reminders about *POAM-1* through Mon 23 Nov 2026." in reply(slack.command("snooze 1 3d", user=OWNER))
    with unit_of_work(engine, read_only=True) as session:
        item = session.exec(select(Item).where(Item.number == 1)).one()
        assert item.snoozed_until == date(2026, 11, 23)
    scheduler.tick()
    assert dms(fake_slack, OWNER) == []
    assert "POAM-1" in all_text(dms(fake_slack, AO)[0])  # escalation is not the owner's to silence
    clock.set(utc(11, 24, 15))  # Tuesday: the snooze is over
    scheduler.tick()
    assert "POAM-1" in all_text(dms(fake_slack, OWNER)[0])


def test_subscribe_and_preview_the_digest_over_slack(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    before = snapshot(engine)
    refused = reply(slack.command("subscribe weekly day:tuesday at:10:00", user=OWNER))
    assert ":no_entry:" in refused and "Only a POA&amp;M admin can" in refused, refused
    assert snapshot(engine) == before

    in_dm = reply(slack.command("subscribe", user=ADMIN, channel="D0DIRECT01"))
    assert "Subscribe from the channel that should get the digest." in in_dm
    assert "does not get the digest" in reply(slack.command("subscribe off", user=ADMIN))
    assert snapshot(engine) == before

    body = reply(slack.command("subscribe weekly day:tuesday at:10:00", user=ADMIN))
    assert "This channel gets the weekly digest on Tuesdays at 10:00 (UTC)" in body, body
    with unit_of_work(engine, read_only=True) as session:
        (subscription,) = session.exec(select(DigestSubscription)).all()
        assert (subscription.channel_id, subscription.weekday, subscription.post_at) == (CHANNEL, 1, time(10, 0))
    body = reply(slack.command("subscribe at:11:30", user=ADMIN))  # the day stays
    assert "This channel gets the weekly digest on Tuesdays at 11:30 (UTC)" in body, body
    body = reply(slack.command("subscribe at:10:00", user=ADMIN))
    assert "This channel gets the weekly digest on Tuesdays at 10:00 (UTC)" in body, body

    preview = slack.command("digest", user=OWNER)
    body = reply(preview)  # ephemeral: the slash command's own answer
    assert preview.json()["text"] == "Weekly POA&M digest: 1 open, 1 overdue"
    assert "*Open items*\n1 (+0 since last week)" in body and "*Overdue*\n1" in body, body
    assert f"• *POAM-1* Outdated OpenSSL on web-01 — 20d overdue · <@{OWNER}>" in body
    assert [c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == CHANNEL] == []

    def digests() -> list[dict[str, Any]]:
        return [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == CHANNEL]

    for moment in (utc(11, 23, 10), utc(11, 24, 9, 59)):  # Monday, and Tuesday before 10:00
        clock.set(moment)
        scheduler.tick()
    assert digests() == []
    clock.set(utc(11, 24, 10))
    scheduler.tick()
    scheduler.tick()
    (digest,) = digests()
    assert digest["text"] == "Weekly POA&M digest: 1 open, 1 overdue"
    assert "thread_ts" not in digest or not digest["thread_ts"]

    assert "no longer gets the weekly digest" in reply(slack.command("subscribe off", user=ADMIN))
    clock.set(utc(12, 1, 10))
    scheduler.tick()
    assert len(digests()) == 1


def person_tz(engine: Engine, user: str) -> str | None:
    with unit_of_work(engine, read_only=True) as session:
        person = session.get(Person, ("T0001", user))
        return person.tz if person else None


def test_a_time_zone_change_in_slack_moves_the_reminder(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    answer = slack.event(
        {"type": "user_change", "user": {"id": OWNER, "team_id": "T0001", "tz": "Asia/Tokyo", "is_admin": False},
         "event_ts": "1700000000.3"}
    )
    assert answer.status == 200
    wait_for(lambda: person_tz(engine, OWNER) == "Asia/Tokyo")
    clock.set(utc(11, 22, 23, 59))  # Mon 23 Nov 08:59 in Tokyo
    scheduler.tick()
    assert dms(fake_slack, OWNER) == []
    clock.set(utc(11, 23, 0, 0))  # 09:00 in Tokyo, still Sunday night in New York
    scheduler.tick()
    (dm,) = dms(fake_slack, OWNER)
    assert dm["text"] == "Your POA&M for Mon 23 Nov 2026"


def test_a_command_keeps_the_recorded_time_zone_when_slack_cannot_answer(
    overdue: int, slack: SlackDriver, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    """Slack down, the owner (in Tokyo, as recorded) counted days in the
    workspace's zone: their item's 21st day overdue read as its 20th."""
    slack.event({"type": "user_change", "user": {"id": OWNER, "team_id": "T0001", "tz": "Asia/Tokyo"},
                 "event_ts": "1700000000.3"})
    wait_for(lambda: person_tz(engine, OWNER) == "Asia/Tokyo")
    clock.set(utc(11, 20, 16, 0))  # Sat 21 Nov 01:00 in Tokyo, Fri 20 Nov in UTC; the cached answer has expired
    fake_slack.fail("users.info", error="fatal_error", times=5)
    body = reply(slack.command("show POAM-1", user=OWNER))
    assert "overdue 21d" in body, body


def test_remind_keeps_the_slack_time_zone_when_slack_cannot_answer(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    assert person_tz(engine, OWNER) == NEW_YORK
    clock.set(utc(11, 20, 13, 0))  # the users.info cache (1 h) has expired since the item was logged
    fake_slack.fail("users.info", error="fatal_error", times=5)
    body = reply(slack.command("remind at:08:30", user=OWNER))
    assert "*08:30*" in body
    assert person_tz(engine, OWNER) == NEW_YORK
    clock.set(utc(11, 23, 8, 30))  # Monday 08:30 UTC: 03:30 in New York
    scheduler.tick()
    assert dms(fake_slack, OWNER) == []
