"""The name the bot keeps for someone (exports write it beside their id): the
one Slack gives them, kept until Slack gives another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, update

from bot.commands.users import UserDirectory, described_at
from bot.poam.clock import FixedClock
from bot.poam.systems import ensure_workspace
from bot.reminders.people import remember_person
from bot.store.engine import unit_of_work
from bot.store.models import Person

TEAM, USER = "T0001", "U0ALICE01"


@pytest.mark.parametrize(
    ("user", "name"),
    [
        ({"real_name": "Alice Liddell", "profile": {"real_name": "A. L.", "display_name": "alice"}}, "Alice Liddell"),
        ({"real_name": "  ", "profile": {"real_name": "Alice Liddell", "display_name": "alice"}}, "Alice Liddell"),
        ({"profile": {"display_name": "alice"}}, "alice"),
        ({"profile": {"real_name": "", "display_name": " "}}, None),
        ({"real_name": "x" * 300}, "x" * 200),
        ({}, None),
    ],
)
def test_the_name_is_the_real_one_else_the_display_one(user: dict[str, Any], name: str | None) -> None:
    directory = UserDirectory(default_tz=ZoneInfo("UTC"), clock=FixedClock(datetime(2026, 11, 20, tzinfo=UTC)))
    assert directory.remember(team_id=TEAM, user={"id": USER, **user}).name == name


def test_a_name_on_record_stays_until_slack_gives_another(engine: Engine, make_actor: Any) -> None:
    actor = make_actor(USER)
    clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))

    def remember(name: str | None, *, known_only: bool = False) -> str | None:
        with unit_of_work(engine) as session:
            remember_person(session, team_id=TEAM, user_id=USER, tz=ZoneInfo("UTC"), name=name, clock=clock,
                            known_only=known_only)
        clock.advance(minutes=1)
        with unit_of_work(engine, read_only=True) as session:
            person = session.get(Person, (TEAM, USER))
            return person.name if person is not None else None

    with unit_of_work(engine) as session:
        ensure_workspace(session, actor)
    assert remember(None, known_only=True) is None  # nobody on record: a profile event adds no one
    assert remember("Alice Liddell") == "Alice Liddell"
    assert remember(None) == "Alice Liddell"  # Slack said nothing of the name this time
    assert remember("Alice Hargreaves", known_only=True) == "Alice Hargreaves"


@pytest.mark.parametrize("known_only", [False, True], ids=["users.info", "user_change"])
def test_an_older_description_does_not_replace_a_later_one(engine: Engine, make_actor: Any, known_only: bool) -> None:
    """A ``users.info`` answer asked for before a ``user_change`` event was
    handled (perhaps by another process) tells of the person before the change."""
    clock = FixedClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    asked, changed = clock.now(), clock.now() + timedelta(seconds=1)

    def remember(name: str, tz: str, seen_at: datetime | None, *, known_only: bool = False) -> tuple[str | None, str | None]:
        with unit_of_work(engine) as session:
            remember_person(session, team_id=TEAM, user_id=USER, tz=ZoneInfo(tz), name=name, clock=clock,
                            seen_at=seen_at, known_only=known_only)
        with unit_of_work(engine, read_only=True) as session:
            person = session.get(Person, (TEAM, USER))
            assert person is not None
            return person.name, person.tz

    with unit_of_work(engine) as session:
        ensure_workspace(session, make_actor(USER))
    assert remember("Alice Liddell", "Asia/Tokyo", None) == ("Alice Liddell", "Asia/Tokyo")
    with unit_of_work(engine) as session:  # recorded before Slack's descriptions had a time
        session.exec(update(Person).values(slack_seen_at=None))  # type: ignore[call-overload]
    clock.advance(minutes=5)
    assert remember("Alice Hargreaves", "Europe/London", changed) == ("Alice Hargreaves", "Europe/London")
    assert remember("Alice Liddell", "Asia/Tokyo", asked, known_only=known_only) == ("Alice Hargreaves", "Europe/London")
    assert remember("Alice Pleasance", "UTC", changed, known_only=known_only) == ("Alice Pleasance", "UTC")
    assert remember("Alice Liddell", "Asia/Tokyo", None, known_only=known_only) == ("Alice Liddell", "Asia/Tokyo")


def test_the_directory_keeps_a_later_description_over_an_older_answer() -> None:
    clock = FixedClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    directory = UserDirectory(default_tz=ZoneInfo("UTC"), clock=clock)
    asked = clock.now()
    clock.advance(seconds=1)
    changed = directory.remember(team_id=TEAM, user={"id": USER, "real_name": "Alice Hargreaves", "tz": "Europe/London"})
    late = directory.remember(team_id=TEAM, user={"id": USER, "real_name": "Alice Liddell", "tz": "Asia/Tokyo"},
                              seen_at=asked)
    assert late == changed and late.name == "Alice Hargreaves" and late.seen_at == clock.now()
    later = directory.remember(team_id=TEAM, user={"id": USER, "real_name": "Alice Pleasance"}, seen_at=clock.now())
    assert later.name == "Alice Pleasance"  # the same moment: the one handled last


def test_a_profile_event_that_changes_nothing_writes_nothing(engine: Engine, make_actor: Any) -> None:
    """``user_change`` comes for everyone in the workspace, for any change of
    their profile (a status, a photo): only a new name or time zone is written."""
    clock = FixedClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    with unit_of_work(engine) as session:
        ensure_workspace(session, make_actor(USER))
        remember_person(session, team_id=TEAM, user_id=USER, tz=ZoneInfo("UTC"), name="Alice", clock=clock)

    def event(name: str, tz: str) -> tuple[datetime, datetime | None]:
        clock.advance(minutes=1)
        with unit_of_work(engine) as session:
            remember_person(session, team_id=TEAM, user_id=USER, tz=ZoneInfo(tz), name=name, clock=clock,
                            known_only=True)
        with unit_of_work(engine, read_only=True) as session:
            person = session.get(Person, (TEAM, USER))
            assert person is not None
            return person.updated_at, person.slack_seen_at

    recorded = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert event("Alice", "UTC") == (recorded, recorded)
    assert event("Alice", "Europe/Paris") == (recorded + timedelta(minutes=2),) * 2
    assert event("Alice B.", "Europe/Paris") == (recorded + timedelta(minutes=3),) * 2


@pytest.mark.parametrize(
    ("event_time", "expected"),
    [
        (datetime(2026, 11, 20, 11, 55, 7, tzinfo=UTC).timestamp(), datetime(2026, 11, 20, 11, 55, 8, tzinfo=UTC)),
        (int(datetime(2026, 11, 20, 11, 55, 7, tzinfo=UTC).timestamp()), datetime(2026, 11, 20, 11, 55, 8, tzinfo=UTC)),
        (int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()), datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        (int(datetime(2026, 11, 21, tzinfo=UTC).timestamp()), datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        (None, datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        ("1700000000", datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        (True, datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        (-5, datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        (10**20, datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
    ],
)
def test_a_profile_event_describes_the_user_as_of_its_event_time(event_time: Any, expected: datetime) -> None:
    """Slack sends an event again when its ack came late, minutes after: the
    copy describes the user as they were then, not when it is handled."""
    assert described_at(event_time, now=datetime(2026, 11, 20, 12, 0, tzinfo=UTC)) == expected
