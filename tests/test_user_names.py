"""The name the bot keeps for someone (exports write it beside their id): the
one Slack gives them, kept until Slack gives another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, update

from bot.commands.users import UserDirectory
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
