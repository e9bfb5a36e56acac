"""The name the bot keeps for someone (exports write it beside their id): the
one Slack gives them, kept until Slack gives another."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

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
