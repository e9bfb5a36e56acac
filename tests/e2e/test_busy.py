"""A change that cannot get its turn (another writer holds the database or the
workspace too long) is refused within Slack's time, cleanly, changing nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from bot.commands import context
from bot.commands.ids import BlockId
from bot.store import counters
from bot.store.engine import unit_of_work
from bot.store.models import Item, Milestone
from tests.db import snapshot
from tests.e2e.conftest import wait_for
from tests.e2e.test_interactions import (
    acked,
    card,
    form_values,
    log_form,
    milestone_form,
    milestone_values,
    next_response,
    opened_view,
)
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


def _hold_the_database(engine: Engine, team_id: str, seconds: float) -> threading.Thread:
    """Another writer holding the database for ``seconds`` (started, and holding, on return)."""
    holding = threading.Event()

    def hold() -> None:
        with unit_of_work(engine) as session:
            counters.lock_workspace(session, team_id=team_id)
            holding.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    return holder


def test_a_command_answered_after_slacks_time_is_answered_by_its_response_url(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its change made after the time Slack waits for the ack (a wait for a turn
    and for the database), a command's answer went only in the ack, which Slack
    had dropped: the user saw an error and never learned the new item's id."""
    monkeypatch.setattr(context, "ANSWER_WITHIN", 0.3)  # for the real 2.5 s; the wait below is past it
    slack.command("log First sev:low", user=ALICE)
    wait_for(lambda: _logged_post_recorded(engine))
    seen = len(fake_slack.responses)
    holder = _hold_the_database(engine, fake_slack.team_id, 0.8)
    answer = slack.command("log Second sev:low", user=ALICE)
    holder.join()
    assert (answer.status, answer.body) == (200, "")
    later = next_response(fake_slack, seen)
    assert "Logged *POAM-2*" in str(later) and later.get("response_type") == "ephemeral", later
    assert "Logged *POAM-3*" in slack.command("log Third sev:low", user=ALICE).text  # in time: in the ack


def test_a_form_saved_after_slacks_time_is_confirmed_by_dm_and_not_saved_twice(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack says it could not connect and keeps the form open when its save
    answers late: the confirmation goes by DM, and Submit pressed again saves
    nothing twice (a new request, of the same form)."""
    monkeypatch.setattr(context, "ANSWER_WITHIN", 0.3)
    slack.command("log First sev:low", user=ALICE)
    wait_for(lambda: _logged_post_recorded(engine))
    view = log_form(slack, fake_slack)
    holder = _hold_the_database(engine, fake_slack.team_id, 0.8)
    answer = slack.submit(view, form_values(), user=ALICE)
    holder.join()
    assert (answer.status, answer.body) == (200, "")  # the form closes, if Slack still listens
    dm = wait_for(lambda: [c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == ALICE])
    assert "Logged *POAM-2*" in str(dm[0].params), dm
    time.sleep(1.1)  # Submit again, a second later: another timestamp and signature
    again = slack.submit(view, form_values(), user=ALICE).json()
    assert again["response_action"] == "update", again
    assert "This form was saved already, so nothing was logged again." in str(again["view"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Item)).scalar_one() == 2


def test_a_form_refused_after_slacks_time_says_so_privately_too(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused after the time Slack waits for the ack (the database busy past
    the wait), the form's errors went in an ack Slack had dropped: the user
    saw that Slack could not connect, not that nothing was saved, or why."""
    monkeypatch.setattr(context, "ANSWER_WITHIN", 0.3)
    monkeypatch.setattr(context, "REQUEST_MAX_WAIT", 0.5)
    slack.command("log First sev:low", user=ALICE)
    wait_for(lambda: _logged_post_recorded(engine))
    view = log_form(slack, fake_slack)
    before = snapshot(engine)
    holder = _hold_the_database(engine, fake_slack.team_id, 1.5)
    answer = slack.submit(view, form_values(), user=ALICE).json()
    holder.join()
    assert answer["response_action"] == "errors", answer  # on the form, should Slack still be listening
    said = wait_for(lambda: [c.params for c in fake_slack.calls_to("chat.postMessage")
                             if c.params.get("channel") == ALICE])
    assert "Your form was not saved: Too many changes at once" in str(said[0]), said
    assert snapshot(engine) == before


def test_a_form_refused_then_corrected_saves_once(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    view = log_form(slack, fake_slack)
    refused = slack.submit(view, form_values(**{BlockId.TITLE: {"type": "plain_text_input", "value": " "}}), user=ALICE)
    assert refused.json()["response_action"] == "errors"
    assert "Logged *POAM-1*" in slack.submit(view, form_values(), user=ALICE).text
    time.sleep(1.1)
    assert "saved already" in slack.submit(view, form_values(), user=ALICE).text
    seen = len(fake_slack.calls_to("views.open"))
    assert slack.command("log", user=ALICE).body == ""
    other = opened_view(fake_slack, seen)  # another form: saved
    assert "Logged *POAM-2*" in slack.submit(other, form_values(), user=ALICE).text


def test_a_milestone_form_submitted_again_adds_nothing_twice(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    view = milestone_form(slack, fake_slack, engine)
    assert "Added *M1*" in slack.submit(view, milestone_values(), user=ALICE).text
    time.sleep(1.1)
    assert "saved already, so nothing was added again" in slack.submit(view, milestone_values(), user=ALICE).text
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Milestone)).scalar_one() == 1
