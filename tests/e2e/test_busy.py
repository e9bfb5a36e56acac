"""A change that cannot get its turn (another writer holds the database or the
workspace too long) is refused within Slack's time, cleanly, changing nothing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select

from bot.commands import context
from bot.commands.ids import BlockId
from bot.store import counters
from bot.store.engine import unit_of_work
from bot.store.models import Item
from tests.db import snapshot
from tests.e2e.conftest import wait_for
from tests.e2e.test_interactions import acked, card, form_values, log_form, next_response
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

ALICE, BOB = "U00000ALICE", "U000000BOB"


def _logged_post_recorded(engine: Engine) -> bool:
    """Whether the "logged" post (after the ack) has saved the item's thread:
    until then that write may land between two snapshots."""
    with engine.connect() as connection:
        return connection.execute(select(Item.origin_thread_ts).where(Item.number == 1)).scalar_one() is not None


def test_a_claim_that_cannot_get_its_turn_is_refused_and_changes_nothing(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shorter wait than the real 2 s keeps the test quick and leaves room
    # under Slack's 3 s on a busy machine.
    monkeypatch.setattr(context, "REQUEST_MAX_WAIT", 0.5)
    assert "Logged *POAM-1*" in slack.command("log Waiting for a turn sev:high", user=ALICE).text
    wait_for(lambda: _logged_post_recorded(engine))
    before = snapshot(engine)
    with unit_of_work(engine) as session:
        # Another writer: SQLite's write lock (BEGIN IMMEDIATE), PostgreSQL's workspace row.
        counters.lock_workspace(session, team_id=fake_slack.team_id)
        started = time.monotonic()
        answer = slack.command("claim 1", user=BOB)
        waited = time.monotonic() - started
    assert answer.status == 200
    assert "nothing was changed" in answer.text and "went wrong" not in answer.text, answer.text
    assert 0.5 <= waited < 3.0  # it waited its turn, then answered within Slack's 3 s
    assert snapshot(engine) == before
    # Once the other writer is done, the same claim goes through.
    assert "You now own *POAM-1*" in slack.command("claim 1", user=BOB).text


def test_buttons_and_events_ack_while_every_turn_waits_for_the_database(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """Two claims hold both turns, waiting for another writer: a button and an
    App Home event are still acked at once (their acks carry nothing and wait
    for no turn); the button's work takes its turn after them and answers
    through the response URL."""
    for title in ("First", "Second", "Third"):
        slack.command(f"log {title} sev:high", user=ALICE)
    wait_for(lambda: _logged_post_recorded(engine))
    claim = card(slack, 3, user=BOB)["Claim"]
    seen = len(fake_slack.responses)
    with unit_of_work(engine) as session, ThreadPoolExecutor(max_workers=2) as pool:
        counters.lock_workspace(session, team_id=fake_slack.team_id)  # another writer
        claims = [pool.submit(slack.command, f"claim {number}", user=BOB) for number in (1, 2)]
        time.sleep(0.3)  # both have their turn and wait in the database
        acked(slack.click(claim["action_id"], claim["value"], user=BOB))
        assert slack.event({"type": "app_home_opened", "user": ALICE, "tab": "home", "event_ts": "1.1"}).status == 200
        assert not any(c.done() for c in claims)  # both acks came while both turns were taken
        assert fake_slack.responses[seen:] == []
        session.rollback()  # the other writer is done: the claims go through
        assert all("You now own" in c.result(timeout=5).text for c in claims)
    assert "You now own *POAM-3*" in str(next_response(fake_slack, seen))


def test_a_form_that_cannot_be_saved_in_time_says_so_on_the_form(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context, "REQUEST_MAX_WAIT", 0.5)
    slack.command("log First sev:low", user=ALICE)  # the workspace exists, so the lock below is the only obstacle
    wait_for(lambda: _logged_post_recorded(engine))
    view = log_form(slack, fake_slack)
    before = snapshot(engine)
    with unit_of_work(engine) as session:
        counters.lock_workspace(session, team_id=fake_slack.team_id)
        answer = slack.submit(view, form_values(), user=ALICE)
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["response_action"] == "errors", body
    assert "nothing was changed" in body["errors"][BlockId.TITLE], body
    assert snapshot(engine) == before
