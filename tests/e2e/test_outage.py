"""Slack answering 500 for a while: commands still ack, committed changes stay,
and reminders, the DMs a change brings and its posts in the item's thread go
out once Slack is back."""

from __future__ import annotations

from datetime import UTC, date, datetime

from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.commands.context import AFTER_ACK_THREADS, LISTENERS_AT_ONCE
from bot.config import Settings
from bot.poam.clock import FixedClock
from bot.reminders.dispatch import Pacer
from bot.reminders.scheduler import Scheduler
from bot.store import outbox
from bot.store.engine import unit_of_work
from bot.store.models import Item, OutboxMessage
from tests.e2e.conftest import ADMIN, wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

ALICE = "U00000ALICE"
VERIFIER = "U00VERIFY1"


def test_commands_ack_and_changes_stay_while_slack_fails_and_the_thread_follows(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    fake_slack.outage()
    logged = slack.command("log Logged during an outage sev:high", user=ALICE)
    assert logged.status == 200 and "Logged *POAM-1*" in logged.text
    claimed = slack.command("claim 1", user=ALICE)
    assert claimed.status == 200 and "You now own *POAM-1*" in claimed.text
    # The "logged" post could not go out: the person is told, privately, that it will.
    wait_for(lambda: [r for r in fake_slack.responses if "did not take my post in" in str(r)
                      and "I will keep trying" in str(r)], timeout=15)
    with unit_of_work(engine) as session:
        (item,) = session.exec(select(Item)).all()
    assert (item.title, item.owner_id, item.status) == ("Logged during an outage", ALICE, "in_progress")

    def posts_waiting() -> list[tuple[str | None, str]]:
        with unit_of_work(engine) as session:
            rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == "thread")
                                .order_by(col(OutboxMessage.id))).all()
            return [(row.thread_ts, row.status) for row in rows]

    # Both posts wait in the outbox (the claim's behind the "logged" one, which starts the thread).
    wait_for(lambda: posts_waiting() == [(None, outbox.PENDING), (None, outbox.PENDING)], timeout=15)
    fake_slack.recover()
    fake_slack.clear()
    scheduler = Scheduler(engine=engine, client=WebClient(token="xoxb-x", base_url=fake_slack.base_url),
                          settings=settings, clock=clock, pacer=Pacer(interval=0))
    for _ in range(3):  # ticks, past the backoff
        clock.advance(minutes=1)
        scheduler.tick()
    first, second = (call.params for call in fake_slack.calls_to("chat.postMessage"))
    assert "logged *POAM-1*" in first["text"] and not first.get("thread_ts")
    assert f"<@{ALICE}> claimed *POAM-1*" in second["text"] and second["thread_ts"] == "1700000000.000001"
    with unit_of_work(engine) as session:
        assert session.exec(select(Item.origin_thread_ts)).one() == "1700000000.000001"
    assert [status for _, status in posts_waiting()] == [outbox.SENT, outbox.SENT]


def test_slack_slow_after_the_ack_holds_up_no_ack_and_no_form(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    """Channel posts rate limited (each waits out Retry-After twice): more of them
    are under way than there are listener turns and after-ack threads, and a
    command still gets its answer, and a form still opens (its trigger expires
    in 3 s), before any of them is through."""
    slow = max(LISTENERS_AT_ONCE, AFTER_ACK_THREADS) + 1
    for number in range(1, slow + 1):
        assert slack.command(f"log Slow post {number} sev:low", user=ALICE).status == 200

    def claim_posts() -> list[object]:
        return [c for c in fake_slack.calls_to("chat.postMessage") if "claimed" in str(c.params)]

    wait_for(lambda: len(fake_slack.calls_to("chat.postMessage")) >= slow)  # the "logged" posts are out
    fake_slack.fail("chat.postMessage", times=2 * slow, status=429, retry_after=1)
    for number in range(1, slow + 1):
        assert "You now own" in slack.command(f"claim {number}", user=ALICE).text
    wait_for(lambda: len(claim_posts()) >= AFTER_ACK_THREADS)  # the after-ack threads are all waiting
    shown = slack.command("show 1", user=ALICE)
    assert "Slow post 1" in shown.text
    slack.command("log", user=ALICE)  # opens the form, on the form threads just after the ack
    wait_for(lambda: fake_slack.calls_to("views.open"), timeout=2.5)  # within the trigger's 3 s
    assert len(claim_posts()) <= 2 * slow  # the first 2 × slow attempts fail: none is through yet
    wait_for(lambda: len(claim_posts()) >= 3 * slow, timeout=20)  # and then they all go out


def test_reminders_wait_out_the_outage_and_then_go(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    slack.raw_command(f"log Overdue during an outage sev:high owner:<@{ALICE}|a> detected:2026-10-01 due:2026-10-10",
                      user=ALICE)
    scheduler = Scheduler(engine=engine, client=WebClient(token="xoxb-x", base_url=fake_slack.base_url),
                          settings=settings, clock=clock, pacer=Pacer(interval=0))
    clock.set(datetime(2026, 11, 23, 9, 30, tzinfo=UTC))  # Monday morning
    fake_slack.outage()
    for _ in range(3):  # a minute of ticks while Slack is down
        scheduler.tick()
        clock.advance(seconds=20)
    with unit_of_work(engine) as session:
        rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.recipient) == ALICE)).all()
    assert [row.status for row in rows] == [outbox.PENDING]
    assert rows[0].local_day == date(2026, 11, 23) and rows[0].attempts >= 1 and rows[0].last_error
    fake_slack.recover()
    fake_slack.clear()
    clock.advance(minutes=5)  # past the backoff
    scheduler.tick()
    dms = [c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == ALICE]
    assert len(dms) == 1 and "Overdue" in str(dms[0].params)
    clock.advance(minutes=30)
    scheduler.tick()
    assert len([c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == ALICE]) == 1


def test_a_verifier_asked_while_slack_is_down_is_asked_once_it_is_back(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, settings: Settings, clock: FixedClock
) -> None:
    assert "is now" in slack.raw_command(f"role <@{VERIFIER}|v> +verifier", user=ADMIN).text
    assert "Logged *POAM-1*" in slack.command("log Fixed during an outage sev:low", user=ALICE).text
    assert "You now own" in slack.command("claim 1", user=ALICE).text
    fake_slack.outage()
    submitted = slack.command('submit 1 evidence:"rescan is clean"', user=ALICE)
    assert "submitted for verification" in submitted.text and f"<@{VERIFIER}>" in submitted.text
    wait_for(lambda: [r for r in fake_slack.responses if f"did not take my message to <@{VERIFIER}> yet" in str(r)],
             timeout=15)
    with unit_of_work(engine) as session:
        (ask,) = session.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == "review")).all()
    assert (ask.recipient, ask.status, ask.attempts) == (VERIFIER, outbox.PENDING, 1)

    fake_slack.recover()
    fake_slack.clear()
    scheduler = Scheduler(engine=engine, client=WebClient(token="xoxb-x", base_url=fake_slack.base_url),
                          settings=settings, clock=clock, pacer=Pacer(interval=0))
    clock.advance(minutes=5)  # past the backoff
    scheduler.tick()

    def asks() -> list[object]:
        return [c for c in fake_slack.calls_to("chat.postMessage")
                if c.params.get("channel") == VERIFIER and "Please verify" in str(c.params)]

    assert len(asks()) == 1 and "rescan is clean" in str(asks()[0])
    clock.advance(minutes=30)
    scheduler.tick()
    assert len(asks()) == 1
