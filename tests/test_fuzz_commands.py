"""Property-based fuzzing of /poam: any text, any option value — no exception
escapes to the user, and a refused command changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from sqlalchemy import Engine, func
from sqlmodel import select

from bot.commands.context import Services, SlackRequest
from bot.commands.errors import answer
from bot.commands.slash import dispatch
from bot.commands.specs import SPECS
from bot.commands.users import UserDirectory
from bot.config import Settings
from bot.poam.clock import FixedClock
from bot.store.engine import make_engine, unit_of_work
from bot.store.models import AuditEvent
from tests.fake_slack import FakeSlack

NAMES = sorted({spec.name for spec in SPECS})
KEYS = sorted({key for spec in SPECS for option in spec.options for key in (option.key, *option.aliases)})
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["high", "medium", "+3d", "friday", "Dec 31", "2026-02-30", "<@U0BOB|bob>", "POAM-1", "M1",
                     "09:00", "25:00", "1w", "fp", "ra", "or", "approve", "csv", "oscal", "checkin", "", "\x00", "&lt;"]),
)
WORD = st.one_of(st.sampled_from(["1", "POAM-1", "add", "done", "move", "M1", "on", "off", "weekly", "+verifier"]),
                 st.text(min_size=1, max_size=15).filter(lambda t: not t.isspace()))


@st.composite
def commands(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(NAMES))]
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            value = draw(VALUES)
            quoted = f'"{value}"' if draw(st.booleans()) else value.replace(" ", "")
            parts.append(f"{draw(st.sampled_from(KEYS))}:{quoted}")
        else:
            parts.append(draw(WORD))
    return " ".join(parts)


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory, sqlite_template) -> Iterator[tuple[Engine, SlackRequest]]:  # type: ignore[no-untyped-def]
    import shutil

    path = tmp_path_factory.mktemp("fuzz") / "poam.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    fake = FakeSlack().start()
    clock = FixedClock(datetime(2026, 11, 20, 15, tzinfo=UTC))
    app_settings = Settings(_env_file=None, slack_bot_token="xoxb-x", slack_signing_secret="s",  # type: ignore[call-arg]
                            slack_api_url=fake.base_url, database_url=f"sqlite:///{path}")
    services = Services(engine=engine, settings=app_settings, clock=clock,
                        users=UserDirectory(default_tz=app_settings.timezone, clock=clock))
    client = WebClient(token="xoxb-x", base_url=fake.base_url)
    request = SlackRequest(services, client, team_id="T0001", user_id="U00000ALICE", channel_id="C0CHANNEL1")
    # Something to act on: one item owned by the fuzzing user.
    answer(lambda: dispatch(request, "log Fuzz target sev:low"))
    answer(lambda: dispatch(request, "claim 1"))
    yield engine, request
    fake.stop()
    engine.dispose()


def _events(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return session.exec(select(func.count()).select_from(AuditEvent)).one()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(commands(), st.text(max_size=120)))
def test_no_command_escapes_or_half_changes(fuzz_world: tuple[Engine, SlackRequest], text: str) -> None:
    engine, request = fuzz_world
    before = _events(engine)
    reply = answer(lambda: dispatch(request, text))
    assert "Something went wrong" not in reply.text, text
    refused = any(mark in str(reply.blocks) for mark in (":warning:", ":no_entry:"))
    if refused:
        assert _events(engine) == before, text
