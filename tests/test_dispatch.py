"""Dispatch (issue 5): claim outbox rows, send, mark sent — or wait, retry, give up.

Against the fake Slack Web API on loopback and the database of each backend,
with a fixed clock: 429s with ``Retry-After``, runs of 500s, permanent
errors, a dispatcher killed mid-batch, per-channel pacing, and what
``poam-bot remind --status`` shows.
"""

from __future__ import annotations

import random
import socket
import sqlite3
import threading
import time as wall
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry import builtin_handlers
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from bot import app as app_module
from bot.app import web_client
from bot.cli import main
from bot.config import Settings
from bot.poam.actor import Role
from bot.poam.systems import ensure_workspace
from bot.rate_limits import LONGEST_WAIT_SECONDS
from bot.reminders import dispatch as dispatch_module
from bot.reminders import people, subscriptions
from bot.reminders import scheduler as scheduler_module
from bot.reminders.dispatch import (
    CLAIM_HOLD,
    MAX_ATTEMPTS,
    OUTAGE_PATIENCE,
    PER_CHANNEL_INTERVAL,
    QUOTED_CHARS,
    SETTLE_MAX_WAIT,
    SETTLE_PAUSES,
    UNDELIVERED,
    Pacer,
    Unsent,
    _quotable,
    dispatch,
    send_now,
)
from bot.reminders.scheduler import LEASE_TTL, Scheduler
from bot.store import outbox
from bot.store.engine import make_engine, unit_of_work
from bot.store.models import OutboxMessage
from tests import test_reminders as harness
from tests.tcp_proxy import CuttableProxy
from tests.test_reminders import ADMIN, DIGEST_CHANNEL, FRI, OWNER, TEAM, World, make_scheduler, overdue_item, utc

# The fixtures of the shared harness (the fake Slack, the world).
fake_api, fake, make_world, world = harness.fake_api, harness.fake, harness.make_world, harness.world

USERS = [f"U0000USER{n}" for n in range(1, 6)]


def queue(world: World, recipients: list[str], *, kind: str = "reminder") -> list[int]:
    """Plan one message to each recipient (as the planner would), due now."""
    world.do(lambda s: ensure_workspace(s, world.actor(ADMIN, Role.ADMIN)))
    now = world.clock.now()

    def insert(session: Any) -> None:
        for n, recipient in enumerate(recipients):
            assert outbox.insert_once(
                session, team_id=TEAM, recipient=recipient, kind=kind, subject=f"test:{n}", local_day=FRI,
                text=f"hello {recipient} #{n}", blocks=[], thread_ts=None, next_attempt_at=now, created_at=now,
            )

    world.do(insert)
    return [row.id for row in world.outbox()]  # type: ignore[misc]


def plain_client(world: World) -> WebClient:
    """A client without retry handlers for Slack's answers: every 429 or 500 reaches the dispatcher."""
    return WebClient(token="xoxb-x", base_url=world.fake.base_url)


def production_client(world: World) -> WebClient:
    """The client the bot really uses (it retries 429s after Retry-After, and 5xx, itself)."""
    settings = Settings(_env_file=None, slack_bot_token="xoxb-x", slack_api_url=world.fake.base_url)  # type: ignore[call-arg]
    return web_client(settings)


def run(world: World, client: Any, pacer: Pacer | None = None) -> Any:
    return dispatch(world.engine, client, clock=world.clock, pacer=pacer or Pacer(interval=0))


def row(world: World, row_id: int) -> OutboxMessage:
    return next(r for r in world.outbox() if r.id == row_id)


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk adds up to a second of random jitter to Retry-After; keep it out of timings."""
    monkeypatch.setattr(builtin_handlers.random, "random", lambda: 0.0)
    assert random.random() == 0.0


# ---------------------------------------------------------------- 429


def test_one_429_is_waited_out_by_the_client_then_delivered(world: World, no_jitter: None) -> None:
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", status=429, retry_after=1)
    started = wall.monotonic()
    report = run(world, production_client(world))
    elapsed = wall.monotonic() - started
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    assert 1.0 <= elapsed < 1.9, elapsed  # waited Retry-After (1 s), not more
    assert [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")] == [OWNER, OWNER]
    sent = row(world, row_id)
    assert (sent.status, sent.attempts, sent.last_error) == (outbox.SENT, 1, None)


def test_429s_beyond_the_clients_retries_put_the_row_back_for_retry_after(world: World, no_jitter: None) -> None:
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", status=429, retry_after=1, times=3)
    now = world.clock.now()
    report = run(world, production_client(world))
    assert (report.sent, report.retried, report.failed) == (0, 1, 0)
    assert len(world.fake.calls_to("chat.postMessage")) == 3  # the first try and the client's two retries
    waiting = row(world, row_id)
    assert waiting.status == outbox.PENDING
    assert waiting.next_attempt_at == now + timedelta(seconds=1)
    assert waiting.last_error is not None and waiting.last_error.startswith("ratelimited")
    world.clock.advance(seconds=1)
    assert run(world, production_client(world)).sent == 1
    assert len(world.fake.calls_to("chat.postMessage")) == 4
    assert row(world, row_id).status == outbox.SENT and row(world, row_id).last_error is None


def test_a_429_reaching_the_dispatcher_waits_exactly_retry_after(world: World) -> None:
    ids = queue(world, [OWNER, USERS[0]])
    world.fake.fail("chat.postMessage", status=429, retry_after=7)
    now = world.clock.now()
    report = run(world, plain_client(world))
    assert (report.sent, report.retried) == (1, 1)
    assert row(world, ids[0]).next_attempt_at == now + timedelta(seconds=7)
    assert row(world, ids[1]).status == outbox.SENT  # the next row was not held up
    world.clock.advance(seconds=6, microseconds=999_999)
    assert run(world, plain_client(world)).sent == 0
    world.clock.advance(microseconds=1)
    assert run(world, plain_client(world)).sent == 1
    assert [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")] == [OWNER, USERS[0], OWNER]


def test_a_long_retry_after_is_not_slept_in_the_thread_but_put_back_for(world: World) -> None:
    """A send waits out only a short Retry-After itself: a long sleep would
    outlast its claim (and the dispatcher would send it again)."""
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", status=429, retry_after=LONGEST_WAIT_SECONDS + 1)
    now = world.clock.now()
    report = run(world, production_client(world))
    assert (report.sent, report.retried, report.failed) == (0, 1, 0)
    assert len(world.fake.calls_to("chat.postMessage")) == 1  # not tried again in the thread
    waiting = row(world, row_id)
    assert (waiting.status, waiting.attempts) == (outbox.PENDING, 0)  # being rate limited uses up no try
    assert waiting.next_attempt_at == now + timedelta(seconds=LONGEST_WAIT_SECONDS + 1)
    world.clock.advance(seconds=LONGEST_WAIT_SECONDS + 1)
    assert run(world, production_client(world)).sent == 1


@pytest.mark.parametrize("header", ["soon", "-3", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_a_retry_after_that_is_no_count_of_seconds_puts_the_row_back_for_30_seconds(world: World, header: str) -> None:
    """slack_sdk's own handler raised ValueError on such a header, out of the dispatcher."""
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", status=429, retry_after=header)
    now = world.clock.now()
    report = run(world, production_client(world))
    assert (report.sent, report.retried, report.failed) == (0, 1, 0)
    assert len(world.fake.calls_to("chat.postMessage")) == 1
    waiting = row(world, row_id)
    assert (waiting.status, waiting.next_attempt_at) == (outbox.PENDING, now + timedelta(seconds=30))
    assert waiting.last_error is not None and waiting.last_error.startswith("ratelimited")


def test_a_retry_after_of_more_than_an_hour_puts_the_row_back_for_an_hour(world: World) -> None:
    """A huge Retry-After overflowed timedelta in _settle, left the row claimed, and
    escaped the dispatcher."""
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", status=429, retry_after="100000000000000")
    now = world.clock.now()
    assert run(world, production_client(world)).retried == 1
    waiting = row(world, row_id)
    assert (waiting.status, waiting.next_attempt_at) == (outbox.PENDING, now + timedelta(hours=1))


def test_rate_limits_do_not_use_up_the_retry_budget(world: World) -> None:
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", status=429, retry_after=1, times=MAX_ATTEMPTS - 1)
    world.fake.fail("chat.postMessage", status=500)
    for _ in range(MAX_ATTEMPTS):
        run(world, plain_client(world))
        world.clock.advance(seconds=1)
    assert row(world, row_id).status == outbox.PENDING  # one server error: retried later, not given up
    world.clock.advance(hours=1)
    assert run(world, plain_client(world)).sent == 1


# ---------------------------------------------------------------- 500s and permanent errors


def status_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str) -> list[str]:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DATABASE_URL", database_url)
    capsys.readouterr()
    assert main(["remind", "--status"]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_run_of_failures_ends_in_a_failed_row_visible_in_status(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An error that is not Slack being down, nor known to be for good (one
    Slack added since, say)."""
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", error="some_new_error", times=MAX_ATTEMPTS + 3)
    client = plain_client(world)
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = run(world, client)
        current = row(world, row_id)
        assert current.attempts == attempt
        assert len(world.fake.calls_to("chat.postMessage")) == attempt
        if attempt < MAX_ATTEMPTS:
            assert (report.retried, current.status) == (1, outbox.PENDING)
            wait = current.next_attempt_at - world.clock.now()
            waits.append(wait.total_seconds())
            world.clock.advance(seconds=wait.total_seconds() - 1)
            assert run(world, client).sent == 0 and len(world.fake.calls_to("chat.postMessage")) == attempt
            world.clock.advance(seconds=1)
        else:
            assert (report.failed, current.status) == (1, outbox.FAILED)
    assert waits == [30, 60, 120, 240]  # exponential backoff
    failed = row(world, row_id)
    assert failed.last_error is not None and failed.last_error.startswith("some_new_error")
    world.clock.advance(days=1)
    assert run(world, client).sent == 0
    assert len(world.fake.calls_to("chat.postMessage")) == MAX_ATTEMPTS  # given up: no more tries

    now = world.clock.now()
    world.do(lambda s: outbox.insert_once(
        s, team_id=TEAM, recipient="U0000LATER", kind="digest", subject="weekly", local_day=FRI, text="later",
        blocks=[], thread_ts=None, next_attempt_at=now + timedelta(hours=1), created_at=now,
    ))
    lines = status_lines(monkeypatch, capsys, tmp_path, database_url)
    assert lines[-1] == "2 pending or failed message(s)."
    failed_line = next(line for line in lines if OWNER in line)
    assert failed_line.startswith("failed ")
    assert f"reminder    {TEAM} → {OWNER} day {FRI} attempts {MAX_ATTEMPTS} error: some_new_error" in failed_line
    pending_line = next(line for line in lines if "U0000LATER" in line)
    assert pending_line.startswith("pending  digest      T") and "attempts 0" in pending_line and "error" not in pending_line


@pytest.mark.parametrize("down", [{"status": 503}, {"status": 500}, {"error": "internal_error"},
                                  {"error": "service_unavailable"}, {"status": 502}])
def test_messages_wait_out_a_long_outage_and_then_go(world: World, down: dict[str, Any]) -> None:
    """Slack down for two hours: tried again every ten minutes at most,
    whatever the count of tries, and sent once it is back."""
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", times=1_000, **down)
    client = plain_client(world)
    start, waits = world.clock.now(), []
    while world.clock.now() < start + timedelta(hours=2):
        run(world, client)
        current = row(world, row_id)
        assert current.status == outbox.PENDING
        waits.append((current.next_attempt_at - world.clock.now()).total_seconds())
        world.clock.set(current.next_attempt_at)
    assert waits[:6] == [30, 60, 120, 240, 480, 600] and set(waits[6:]) == {600}
    world.fake._failures.clear()  # Slack is back
    assert run(world, client).sent == 1
    assert len(world.fake.calls_to("chat.postMessage")) == len(waits) + 1
    assert row(world, row_id).status == outbox.SENT


class SlowDuringOutage:
    """A client whose every post takes ten minutes of the world's clock (a send
    waiting for its timeout while Slack is down), and that stops a test
    before it would go on for ever."""

    def __init__(self, world: World, client: WebClient) -> None:
        self.world, self.client, self.posts = world, client, 0

    def chat_postMessage(self, **params: Any) -> Any:  # noqa: N802 (slack_sdk's name)
        self.posts += 1
        assert self.posts <= 20, "a round that never ends"
        self.world.clock.advance(minutes=10)
        return self.client.chat_postMessage(**params)


def test_a_round_sends_only_what_was_due_when_it_began(world: World) -> None:
    """Each failed send slow enough for the first row to be due again before
    the last was tried: the round went on for as long as Slack was down, and
    the tick planned nothing meanwhile (the day's reminders, the digests)."""
    rows = queue(world, USERS[:3])
    world.fake.outage(status=503)
    report = run(world, SlowDuringOutage(world, plain_client(world)))
    assert (report.sent, report.retried) == (0, 3)
    assert [row(world, row_id).status for row_id in rows] == [outbox.PENDING] * 3
    world.fake.recover()
    world.clock.advance(seconds=30)  # the last one's first wait
    assert run(world, plain_client(world)).sent == 3  # the next round


def test_a_round_stops_when_its_time_is_up(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch_module, "DISPATCH_BUDGET", timedelta(seconds=0.5))
    queue(world, USERS)
    client = plain_client(world)

    class Slow:
        def chat_postMessage(self, **params: Any) -> Any:  # noqa: N802 (slack_sdk's name)
            wall.sleep(0.3)
            return client.chat_postMessage(**params)

    assert run(world, Slow()).sent == 2  # the second began before the half second was up
    assert run(world, Slow()).sent == 2 and run(world, client).sent == 1


def test_a_post_whose_answer_is_cut_off_is_tried_a_few_times_not_for_a_day(world: World) -> None:
    """Slack posted it, and the answer was cut off: the http.client error
    escaped the dispatcher, the row stayed "sending", and every lapse of its
    claim posted it again (144 times in six hours), past every limit."""
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", times=1_000, cut=True)
    for _ in range(50):
        run(world, production_client(world))
        current = row(world, row_id)
        if current.status == outbox.FAILED:
            break
        assert current.status == outbox.PENDING
        world.clock.set(current.next_attempt_at)
    assert row(world, row_id).status == outbox.FAILED
    assert row(world, row_id).last_error.startswith("IncompleteRead")  # type: ignore[union-attr]
    assert len(world.fake.calls_to("chat.postMessage")) == MAX_ATTEMPTS


def test_a_post_whose_answer_never_came_is_tried_a_few_times_not_for_a_day(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack slow to answer, past the client's timeout, after posting: taken
    for an outage, one DM went out some 150 times in a day."""
    monkeypatch.setattr(app_module, "WEB_API_TIMEOUT_SECONDS", 0.3)
    (row_id,) = queue(world, [OWNER])
    with world.fake.hold("chat.postMessage"):
        for _ in range(20):
            run(world, production_client(world))
            current = row(world, row_id)
            if current.status == outbox.FAILED:
                break
            world.clock.set(current.next_attempt_at)
    gave_up = row(world, row_id)
    assert (gave_up.status, gave_up.attempts) == (outbox.FAILED, MAX_ATTEMPTS)
    assert gave_up.last_error.startswith("TimeoutError")  # type: ignore[union-attr]
    assert len(world.fake.calls_to("chat.postMessage")) == MAX_ATTEMPTS


def test_a_slack_that_takes_no_connection_is_waited_out(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A network that drops the connection's first packet: the call's time runs
    out while connecting (TimeoutError from URLError), nothing went out, and
    the row waits the outage out instead of using up its tries."""
    monkeypatch.setattr(app_module, "WEB_API_TIMEOUT_SECONDS", 0.3)
    full = socket.create_server(("127.0.0.1", 0), backlog=0)  # never accepts: its queue fills
    waiting = [socket.socket() for _ in range(3)]
    for connection in waiting:  # what the queue holds, and then some
        connection.setblocking(False)
        connection.connect_ex(full.getsockname())
    settings = Settings(_env_file=None, slack_bot_token="xoxb-x",  # type: ignore[call-arg]
                        slack_api_url=f"http://127.0.0.1:{full.getsockname()[1]}/api/")
    (row_id,) = queue(world, [OWNER])
    try:
        for _ in range(MAX_ATTEMPTS + 2):
            run(world, web_client(settings))
            current = row(world, row_id)
            assert current.status == outbox.PENDING, current.last_error
            world.clock.set(current.next_attempt_at)
    finally:
        for connection in (*waiting, full):
            connection.close()
    assert row(world, row_id).attempts == MAX_ATTEMPTS + 2


def test_a_message_gives_up_an_outage_a_day_after_it_was_written(world: World) -> None:
    row_id = queue_review_dm(world)
    world.fake.outage(status=503)
    client = plain_client(world)
    start = world.clock.now()
    for _ in range(500):  # a day of tries ten minutes apart is some 150
        if row(world, row_id).status != outbox.PENDING:
            break
        world.clock.set(max(row(world, row_id).next_attempt_at, world.clock.now()))
        run(world, client)
    gave_up = row(world, row_id)
    assert gave_up.status == outbox.FAILED
    assert start + OUTAGE_PATIENCE <= world.clock.now() <= start + OUTAGE_PATIENCE + timedelta(minutes=10)
    world.fake.recover()
    run(world, client)
    (notice,) = notices(world)  # whoever's change wrote it is told, with the count of tries
    assert f"Slack did not take it in {gave_up.attempts} tries; the last answer was `internal_error`" in notice.text


def test_status_with_nothing_stuck(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    queue(world, [OWNER])
    run(world, plain_client(world))
    assert status_lines(monkeypatch, capsys, tmp_path, database_url) == ["0 pending or failed message(s)."]


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "user_not_found",
                                   "restricted_action_read_only_channel", "ekm_access_denied"])
def test_a_permanent_error_fails_at_once(world: World, error: str) -> None:
    ids = queue(world, [OWNER, USERS[0]])
    world.fake.fail("chat.postMessage", error=error)
    report = run(world, plain_client(world))
    assert (report.sent, report.failed, report.retried) == (1, 1, 0)
    gone = row(world, ids[0])
    assert (gone.status, gone.attempts) == (outbox.FAILED, 1)
    assert gone.last_error is not None and gone.last_error.startswith(error)
    world.clock.advance(days=1)
    run(world, plain_client(world))
    assert len(world.fake.calls_to("chat.postMessage")) == 2


@pytest.mark.parametrize("error", ["invalid_auth", "account_inactive", "token_revoked", "missing_scope"])
def test_messages_wait_out_slack_refusing_the_app_and_go_once_it_is_mended(world: World, error: str) -> None:
    """A token refused for ten minutes (rotated, a bad deploy) failed every
    message in five tries, for good: the morning's DMs and the week's digest
    were lost without a word. Now a round stops at the first refusal and
    the messages wait, using up no try, as they do an outage."""
    ids = queue(world, [OWNER, USERS[0], USERS[1]])
    world.fake.fail("chat.postMessage", error=error, times=3)
    client = plain_client(world)
    assert run(world, client).retried == 1
    assert len(world.fake.calls_to("chat.postMessage")) == 1  # the others would be refused alike
    for _ in range(2):  # refused again, a tick ten minutes later each
        world.clock.advance(minutes=10)
        run(world, client)
    assert [row(world, row_id).status for row_id in ids] == [outbox.PENDING] * 3
    assert row(world, ids[0]).attempts == 0
    world.clock.advance(minutes=10)
    assert run(world, client).sent == 3
    assert notices(world) == []


def test_a_message_gives_up_slack_refusing_the_app_a_day_after_it_was_written(world: World) -> None:
    row_id = queue_review_dm(world)
    world.fake.fail("chat.postMessage", error="invalid_auth", times=1000)
    client = plain_client(world)
    start = world.clock.now()
    while row(world, row_id).status == outbox.PENDING:
        world.clock.set(max(row(world, row_id).next_attempt_at, world.clock.now()))
        run(world, client)
    assert row(world, row_id).status == outbox.FAILED
    assert start + OUTAGE_PATIENCE <= world.clock.now() <= start + OUTAGE_PATIENCE + timedelta(minutes=10)
    (notice,) = notices(world)
    assert "(Slack refused it: `invalid_auth`)" in notice.text


def test_a_transient_ok_false_error_is_retried(world: World) -> None:
    (row_id,) = queue(world, [OWNER])
    world.fake.fail("chat.postMessage", error="internal_error")
    assert run(world, plain_client(world)).retried == 1
    assert row(world, row_id).status == outbox.PENDING
    world.clock.advance(seconds=30)
    assert run(world, plain_client(world)).sent == 1


# ---------------------------------------------------------------- a change's DM given up: its requester is told

REQUESTER = USERS[0]


def queue_review_dm(world: World, *, recipient: str = OWNER, requested_by: str = REQUESTER) -> int:
    """A DM some change wrote (as ``direct_messages.queue`` does), due now."""
    world.do(lambda s: ensure_workspace(s, world.actor(ADMIN, Role.ADMIN)))
    now = world.clock.now()
    row_id = world.do(lambda s: outbox.insert_once(
        s, team_id=TEAM, recipient=recipient, kind="review", subject="POAM-7 abc", local_day=FRI,
        text="Please verify POAM-7", blocks=[], next_attempt_at=now, created_at=now, requested_by=requested_by,
    ))
    assert row_id is not None
    return row_id


def notices(world: World) -> list[OutboxMessage]:
    return [r for r in world.outbox() if r.kind == UNDELIVERED]


def test_a_change_dm_refused_for_good_tells_whoever_made_the_change(world: World) -> None:
    row_id = queue_review_dm(world)
    world.fake.fail("chat.postMessage", error="user_not_found")

    report = run(world, plain_client(world))

    assert (report.failed, report.sent) == (1, 1)  # given up, and the requester told in the same run
    assert row(world, row_id).status == outbox.FAILED
    (notice,) = notices(world)
    assert (notice.recipient, notice.status, notice.requested_by) == (REQUESTER, outbox.SENT, None)
    told = world.fake.calls_to("chat.postMessage")[-1].params
    assert told["channel"] == REQUESTER
    assert f"could not deliver my message to <@{OWNER}> (Slack refused it: `user_not_found`)" in told["text"]
    assert "they have not been told" in told["text"] and told["text"].endswith(">Please verify POAM-7")
    world.clock.advance(days=1)
    run(world, plain_client(world))
    assert len(world.fake.calls_to("chat.postMessage")) == 2  # told once


def test_a_change_dm_out_of_tries_tells_whoever_made_the_change(world: World) -> None:
    row_id = queue_review_dm(world)
    world.do(lambda s: s.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row_id)  # type: ignore[call-overload]
                              .values(attempts=MAX_ATTEMPTS - 1)))
    world.fake.fail("chat.postMessage", error="some_new_error")

    assert run(world, plain_client(world)).failed == 1

    (notice,) = notices(world)
    assert f"Slack did not take it in {MAX_ATTEMPTS} tries; the last answer was `some_new_error`" in notice.text


def test_a_retry_tells_nobody_yet(world: World) -> None:
    queue_review_dm(world)
    world.fake.fail("chat.postMessage", status=500)
    assert run(world, plain_client(world)).retried == 1
    assert notices(world) == []


def test_a_notice_given_up_in_turn_tells_nobody(world: World) -> None:
    queue_review_dm(world)
    world.fake.fail("chat.postMessage", error="user_not_found", times=2)  # the DM, then the notice

    report = run(world, plain_client(world))

    assert (report.failed, report.sent) == (2, 0)
    assert [r.status for r in notices(world)] == [outbox.FAILED]
    assert len(world.fake.calls_to("chat.postMessage")) == 2


def test_a_message_nobody_asked_for_given_up_tells_nobody(world: World) -> None:
    queue(world, [OWNER])  # a reminder: the planner wrote it, no one's change
    world.fake.fail("chat.postMessage", error="user_not_found")
    assert run(world, plain_client(world)).failed == 1
    assert notices(world) == []


def test_a_digest_refused_in_its_channel_tells_the_admin_who_subscribed_it(world: World) -> None:
    """The bot not in the channel: the digest failed every week, and nobody knew."""
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    world.fake.fail("chat.postMessage", error="not_in_channel")
    world.tick(utc(2026, 11, 23, 9, 0))  # Monday 09:00: the digest is due
    (digest,) = [r for r in world.outbox() if r.kind == "digest"]
    assert (digest.status, digest.requested_by) == (outbox.FAILED, ADMIN)
    (notice,) = notices(world)
    assert (notice.recipient, notice.status) == (ADMIN, outbox.SENT)
    assert notice.text.startswith(f":warning: I could not post in <#{DIGEST_CHANNEL}> (Slack refused it: "
                                  "`not_in_channel`). Invite me there with `/invite @POA&M`. It said:\n>Weekly")


@pytest.mark.parametrize("configured", [False, True])
def test_a_digest_refused_after_its_subscriber_left_tells_the_admins(world: World, configured: bool) -> None:
    """The DM saying so went to the admin who subscribed it, gone from Slack:
    nobody read it, and the channel lost its digest every week. The other
    admin is granted the role, or named in POAM_ADMINS."""
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    if configured:
        world.scheduler.settings = world.scheduler.settings.model_copy(update={"poam_admins": frozenset({"U0ADMIN002"})})
    else:
        world.grant("U0ADMIN002", Role.ADMIN)
    world.do(lambda s: people.remember_person(s, team_id=TEAM, user_id=ADMIN, tz=ZoneInfo("UTC"), name=None,
                                              clock=world.clock, left=True))
    world.fake.fail("chat.postMessage", error="not_in_channel")
    world.tick(utc(2026, 11, 23, 9, 0))
    (notice,) = notices(world)
    assert (notice.recipient, notice.status) == ("U0ADMIN002", outbox.SENT)
    assert notice.text.startswith(f":warning: I could not post in <#{DIGEST_CHANNEL}>")


def test_send_now_leaves_telling_to_the_answer(world: World) -> None:
    """Given up at the first try, right after the ack, the requester reads it in
    the answer (``direct_messages.send_queued``): no DM says it again."""
    row_id = queue_review_dm(world)
    world.fake.fail("chat.postMessage", error="user_not_found")
    assert send_now(world.engine, plain_client(world), ids=[row_id], clock=world.clock) == [
        Unsent(OWNER, retrying=False)]
    assert notices(world) == []
    assert run(world, plain_client(world)).sent == 0


# ---------------------------------------------------------------- sent at once (a change's DMs)


def channels(world: World) -> list[str]:
    return [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")]


def test_send_now_sends_the_rows_it_is_given_and_no_other(world: World) -> None:
    ids = queue(world, [OWNER, USERS[0], USERS[1]])
    assert send_now(world.engine, plain_client(world), ids=ids[1:], clock=world.clock) == []
    assert channels(world) == [USERS[0], USERS[1]]
    assert [row(world, i).status for i in ids] == [outbox.PENDING, outbox.SENT, outbox.SENT]
    assert run(world, plain_client(world)).sent == 1  # the dispatcher sends the other, not these again
    assert channels(world) == [USERS[0], USERS[1], OWNER]


def test_send_now_leaves_what_slack_did_not_take_to_the_dispatcher(world: World) -> None:
    ids = queue(world, [OWNER, USERS[0]])
    world.fake.fail("chat.postMessage", status=500)
    world.fake.fail("chat.postMessage", error="user_not_found")
    unsent = send_now(world.engine, plain_client(world), ids=ids, clock=world.clock)
    assert unsent == [Unsent(OWNER, retrying=True), Unsent(USERS[0], retrying=False)]
    assert [row(world, i).status for i in ids] == [outbox.PENDING, outbox.FAILED]
    assert run(world, plain_client(world)).sent == 0  # backing off
    world.clock.advance(seconds=30)
    assert run(world, plain_client(world)).sent == 1
    assert channels(world) == [OWNER, USERS[0], OWNER]


def test_send_now_skips_rows_a_dispatcher_has_claimed_or_sent(world: World) -> None:
    ids = queue(world, [OWNER, USERS[0]])
    world.do(lambda s: outbox.claim(s, now=world.clock.now(), limit=1, hold=CLAIM_HOLD))  # a dispatcher has OWNER's
    assert send_now(world.engine, plain_client(world), ids=ids, clock=world.clock) == []
    assert channels(world) == [USERS[0]]
    assert send_now(world.engine, plain_client(world), ids=ids, clock=world.clock) == []
    assert channels(world) == [USERS[0]]
    assert [row(world, i).status for i in ids] == [outbox.SENDING, outbox.SENT]


class SlowSlack:
    """A client whose every send takes ``seconds`` of the fixed clock (a 429's
    wait, a timeout and its retries), and runs ``meanwhile`` during the second."""

    def __init__(self, world: World, seconds: int, meanwhile: Any) -> None:
        self.real, self.world, self.seconds, self.meanwhile, self.sends = plain_client(world), world, seconds, meanwhile, 0

    def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802 (slack_sdk's name)
        self.sends += 1
        self.world.clock.advance(seconds=self.seconds)
        if self.sends == 2:
            self.meanwhile()
        return self.real.chat_postMessage(**kwargs)


def test_send_now_claims_each_row_just_before_its_send(world: World) -> None:
    """Claimed together, the later rows' claims lapsed while Slack was slow with
    the first, and the scheduler's dispatcher sent them too."""
    ids = queue(world, USERS[:3])
    slow = SlowSlack(world, seconds=int(CLAIM_HOLD.total_seconds() * 0.6), meanwhile=lambda: run(world, plain_client(world)))
    assert send_now(world.engine, slow, ids=ids, clock=world.clock) == []  # type: ignore[arg-type]
    assert sorted(channels(world)) == sorted(USERS[:3])  # each once: the dispatcher took the third, send_now did not
    assert {row(world, i).status for i in ids} == {outbox.SENT}


# ---------------------------------------------------------------- killed mid-batch


class Killable:
    """A client that dies (KeyboardInterrupt) at the ``die_at``-th send: before
    Slack sees it, or just after Slack accepted it (``after_send``)."""

    def __init__(self, real: WebClient, die_at: int, *, after_send: bool = False) -> None:
        self.real, self.die_at, self.after_send, self.sends = real, die_at, after_send, 0

    def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802 (slack_sdk's name)
        self.sends += 1
        if self.sends == self.die_at and not self.after_send:
            raise KeyboardInterrupt
        answer = self.real.chat_postMessage(**kwargs)
        if self.sends == self.die_at:
            raise KeyboardInterrupt
        return answer


def test_a_dispatcher_killed_mid_batch_delivers_the_rest_after_restart_without_duplicates(world: World) -> None:
    ids = queue(world, USERS)
    with pytest.raises(KeyboardInterrupt):
        run(world, Killable(plain_client(world), die_at=3))
    sent = [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")]
    assert sent == USERS[:2]
    # Rows are claimed one at a time: only the one being sent when it died is held.
    assert [row(world, i).status for i in ids] == [outbox.SENT] * 2 + [outbox.SENDING] + [outbox.PENDING] * 2

    # Restarted at once: the rest go out; the dead dispatcher's one claim still holds.
    assert run(world, plain_client(world)).sent == 2
    world.clock.advance(seconds=CLAIM_HOLD.total_seconds() - 1)
    assert run(world, plain_client(world)).sent == 0
    world.clock.advance(seconds=2)
    assert run(world, plain_client(world)).sent == 1
    sent = [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")]
    assert sorted(sent) == sorted(USERS)  # each exactly once
    assert {row(world, i).status for i in ids} == {outbox.SENT}


def test_the_documented_duplicate_window_is_one_message_per_death(world: World) -> None:
    """Killed after Slack accepted a message but before it was marked sent: that
    message (and only it) goes out again — the window the dispatcher documents."""
    queue(world, USERS)
    with pytest.raises(KeyboardInterrupt):
        run(world, Killable(plain_client(world), die_at=2, after_send=True))
    world.clock.advance(seconds=CLAIM_HOLD.total_seconds() + 1)
    run(world, plain_client(world))
    sent = [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")]
    assert sorted(sent) == sorted(USERS + [USERS[1]])


class CutAfterSend:
    """A client that, once Slack accepted its first message, cuts the database's
    connections (``proxy``) for ``seconds``."""

    def __init__(self, real: WebClient, proxy: CuttableProxy, seconds: float) -> None:
        self.real, self.proxy, self.seconds, self.sends = real, proxy, seconds, 0

    def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802 (slack_sdk's name)
        answer = self.real.chat_postMessage(**kwargs)
        self.sends += 1
        if self.sends == 1:
            self.proxy.cut()
            threading.Timer(self.seconds, self.proxy.restore).start()
        return answer


def test_a_message_slack_took_is_marked_sent_once_the_database_is_back(world: World, database_url: str) -> None:
    """The database goes away between Slack taking a message and its mark: the
    mark is tried again until it is back, instead of the dispatcher failing and
    the message going a second time once its claim lapses."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server behind a proxy")
    ids = queue(world, USERS[:2])
    url = make_url(database_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    try:
        report = dispatch(engine, CutAfterSend(plain_client(world), proxy, seconds=1.5), clock=world.clock,
                          pacer=Pacer(interval=0))
    finally:
        engine.dispose()
        proxy.close()
    assert report.sent == 2
    assert [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")] == USERS[:2]
    assert [row(world, i).status for i in ids] == [outbox.SENT] * 2


def test_a_message_slack_took_is_marked_sent_after_a_failover(world: World, database_url: str) -> None:
    """Between Slack taking a message and its mark, the database the pooled
    connection reaches turns read-only (a failover's old primary): the mark
    is tried again on a new connection, not given up."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL read-only transactions")
    ids = queue(world, USERS[:2])
    engine = make_engine(database_url, pool_size=1, max_overflow=0)  # one connection: the one the mark gets

    class ReadOnlyAfterSend:
        def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802 (slack_sdk's name)
            answer = plain_client(world).chat_postMessage(**kwargs)
            if len(world.fake.calls_to("chat.postMessage")) == 1:
                with unit_of_work(engine, read_only=True) as session:  # autocommit: the SET stays
                    session.connection().exec_driver_sql("SET SESSION default_transaction_read_only = on")
            return answer

    try:
        report = dispatch(engine, ReadOnlyAfterSend(), clock=world.clock, pacer=Pacer(interval=0))  # type: ignore[arg-type]
    finally:
        engine.dispose()
    assert report.sent == 2
    assert [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")] == USERS[:2]
    assert [row(world, i).status for i in ids] == [outbox.SENT] * 2


def fail_commit(monkeypatch: pytest.MonkeyPatch, world: World, number: int, error: Exception, *,
                after: bool) -> None:
    """The ``number``-th commit from now fails with ``error``: before it is
    made, or (``after``) once it is made, as when its answer is lost."""
    commit, commits = world.engine.dialect.do_commit, [0]

    def failing(dbapi_connection: Any) -> None:
        commits[0] += 1
        if commits[0] == number and not after:
            raise error
        commit(dbapi_connection)
        if commits[0] == number:
            raise error

    monkeypatch.setattr(world.engine.dialect, "do_commit", failing)


def test_a_mark_whose_commit_answer_was_lost_is_known_as_sent(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mark was committed but its answer lost with the connection: tried
    again, it finds its own mark, and the message counts as sent."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a connection lost during a commit")
    (row_id,) = queue(world, [USERS[0]])
    fail_commit(monkeypatch, world, 2, psycopg.OperationalError("the connection was lost"), after=True)  # 1: the claim
    assert send_now(world.engine, plain_client(world), ids=[row_id], clock=world.clock) == []
    assert len(world.fake.calls_to("chat.postMessage")) == 1 and row(world, row_id).status == outbox.SENT


def test_a_busy_sqlite_database_is_waited_out_for_the_mark(world: World, database_url: str) -> None:
    """Another writer holds SQLite's lock past the mark's wait: the mark is tried again."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    (row_id,) = queue(world, [USERS[0]])
    other = sqlite3.connect(make_url(database_url).database or "", isolation_level=None, check_same_thread=False)

    class LockAfterSend:
        def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802 (slack_sdk's name)
            answer = plain_client(world).chat_postMessage(**kwargs)
            other.execute("BEGIN IMMEDIATE")
            threading.Timer(SETTLE_MAX_WAIT + 0.5, other.rollback).start()
            return answer

    try:
        assert send_now(world.engine, LockAfterSend(), ids=[row_id], clock=world.clock) == []  # type: ignore[arg-type]
    finally:
        other.close()
    assert row(world, row_id).status == outbox.SENT


def test_a_sqlite_error_that_cannot_pass_is_not_tried_again(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's errors")
    (row_id,) = queue(world, [USERS[0]])
    fail_commit(monkeypatch, world, 2, sqlite3.OperationalError("disk I/O error"), after=False)
    started = wall.monotonic()
    with pytest.raises(OperationalError, match="disk I/O error"):
        send_now(world.engine, plain_client(world), ids=[row_id], clock=world.clock)
    assert wall.monotonic() - started < SETTLE_PAUSES[0]  # no pause, no second try


# ---------------------------------------------------------------- pacing


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_the_pacer_keeps_an_interval_per_channel() -> None:
    clock = FakeTime()
    pacer = Pacer(interval=1.0, sleep=clock.sleep, monotonic=clock.monotonic)
    pacer.wait("C1")
    pacer.wait("C2")
    assert clock.slept == []
    clock.now += 0.25
    pacer.wait("C1")
    assert clock.slept == [0.75]
    clock.now += 5
    pacer.wait("C1")
    pacer.wait("C2")
    assert clock.slept == [0.75]
    pacer.wait("C2")
    assert clock.slept == [0.75, 1.0]
    assert PER_CHANNEL_INTERVAL == 1.0 and Pacer().interval == 1.0  # about one message a second


def test_dispatch_spaces_messages_to_one_channel(world: World) -> None:
    queue(world, ["C0BUSY0001", "C0BUSY0001", "C0QUIET001", "C0BUSY0001"])
    clock = FakeTime()
    sends: list[tuple[str, float]] = []

    class Recording:
        def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802
            sends.append((kwargs["channel"], clock.now))
            clock.now += 0.1  # a send takes a while
            return plain_client(world).chat_postMessage(**kwargs)

    report = run(world, Recording(), Pacer(interval=1.0, sleep=clock.sleep, monotonic=clock.monotonic))
    assert report.sent == 4
    busy = [at for channel, at in sends if channel == "C0BUSY0001"]
    assert [round(b - a, 6) for a, b in zip(busy, busy[1:], strict=False)] == [1.0, 1.0]  # one a second
    assert clock.slept == [0.9, 0.8]  # the quiet channel waited for nothing


def test_the_scheduler_paces_by_default(world: World) -> None:
    scheduler = Scheduler(
        engine=world.engine, client=plain_client(world), settings=world.scheduler.settings, clock=world.clock
    )
    assert scheduler.pacer.interval == PER_CHANNEL_INTERVAL


# ---------------------------------------------------------------- a slow batch and a second dispatcher


def test_a_slow_batch_is_not_sent_twice_by_a_second_scheduler(world: World, database_url: str) -> None:
    world.at(world.clock.now() - timedelta(days=1))
    for user in USERS[:3]:
        overdue_item(world, user)
    world.at(world.clock.now() + timedelta(days=1))
    other = make_scheduler(world.engine, world.fake, world.clock, database_url)
    ticked: list[Any] = []

    class Slow:
        """Slack takes 70 s to answer each message; meanwhile the other replica ticks once."""

        def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802
            world.clock.advance(seconds=70)
            if not ticked and world.clock.now() - start > LEASE_TTL:
                ticked.append(other.tick())
            return plain_client(world).chat_postMessage(**kwargs)

    world.scheduler.client = Slow()  # type: ignore[assignment]
    start = world.clock.now()
    world.scheduler.tick()
    assert ticked  # the other replica ticked in the middle (the first renews its lease per message)
    sent = [c.params["channel"] for c in world.fake.calls_to("chat.postMessage")]
    assert sorted(sent) == sorted(USERS[:3])


# ---------------------------------------------------------------- housekeeping


def _settled(world: World, rows: list[tuple[str, timedelta]]) -> None:
    """One message per (status, age): due ``age`` ago and, when sent, sent then."""
    world.do(lambda s: ensure_workspace(s, world.actor(ADMIN, Role.ADMIN)))
    now = world.clock.now()

    def insert(session: Any) -> None:
        for n, (status, age) in enumerate(rows):
            row_id = outbox.insert_once(
                session, team_id=TEAM, recipient=USERS[0], kind="reminder", subject=f"old:{n}", local_day=FRI,
                text="x", blocks=[], thread_ts=None, next_attempt_at=now - age, created_at=now - age - timedelta(days=1),
            )
            session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id) == row_id)
                .values(status=status, sent_at=now - age if status == outbox.SENT else None)
            )

    world.do(insert)


def test_messages_sent_or_given_up_on_30_days_ago_are_forgotten_and_no_other(world: World) -> None:
    keep = outbox.KEEP_DELIVERED
    _settled(world, [
        (outbox.SENT, keep + timedelta(minutes=1)),
        (outbox.FAILED, keep + timedelta(minutes=1)),
        (outbox.SENT, keep - timedelta(minutes=1)),
        (outbox.FAILED, keep - timedelta(minutes=1)),
        (outbox.SENDING, keep * 3),  # a dispatcher holds it (or died holding it): still to send
    ])
    assert world.do(lambda s: outbox.forget_delivered(s, now=world.clock.now())) == 2
    assert [row.subject for row in world.outbox()] == ["old:2", "old:3", "old:4"]


def test_a_message_planned_long_ago_and_sent_lately_is_kept(world: World) -> None:
    """A message that waited out a long outage counts from its sending."""
    _settled(world, [(outbox.SENT, timedelta(days=1))])
    world.do(lambda s: s.exec(update(OutboxMessage).values(next_attempt_at=world.clock.now() - timedelta(days=90))))
    assert world.do(lambda s: outbox.forget_delivered(s, now=world.clock.now())) == 0


def test_the_scheduler_forgets_a_long_history_in_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "FORGET_BATCH", 2)
    monkeypatch.setattr(scheduler_module, "FORGET_BATCHES_PER_TICK", 2)
    _settled(world, [(outbox.SENT, timedelta(days=40 + n)) for n in range(5)] + [(outbox.SENT, timedelta(days=1))])
    world.tick()  # two batches of two: the oldest four
    assert [row.subject for row in world.outbox()] == ["old:0", "old:5"]
    world.tick()
    assert [row.subject for row in world.outbox()] == ["old:5"]


def test_the_notice_quotes_a_long_message_without_cutting_a_mention_or_an_entity_in_half() -> None:
    assert _quotable("short") == "short"
    mention_at_the_cut = "x" * (QUOTED_CHARS - 8) + "<@U0000OWNER> and more"
    assert _quotable(mention_at_the_cut) == "x" * (QUOTED_CHARS - 8) + "…"
    entity_at_the_cut = "y" * (QUOTED_CHARS - 3) + "&amp; more"
    assert _quotable(entity_at_the_cut) == "y" * (QUOTED_CHARS - 3) + "…"
    plain = "z" * (QUOTED_CHARS + 50)
    assert _quotable(plain) == "z" * (QUOTED_CHARS - 1) + "…"
