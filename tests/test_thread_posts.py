"""An item's thread posts through the outbox (``bot.commands.thread_posts``).

Against the fake Slack Web API and the database of each backend, with a fixed
clock: a post written before its item's thread began waits for the post that
begins it, a post given up lets the next begin the thread, and posts a dead
process left are sent by the dispatcher into the right thread.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from bot.commands import thread_posts
from bot.reminders import dispatch
from bot.reminders.dispatch import CLAIM_HOLD, CLAIM_LEFT_TO_SEND, THREAD_RETRY, Outcome, send_claimed
from bot.store import outbox
from bot.store.models import OutboxMessage
from tests import test_reminders as harness
from tests.e2e.conftest import wait_for
from tests.test_dispatch import no_jitter, plain_client, production_client, run
from tests.test_reminders import OWNER, World

fake_api, fake, make_world, world = harness.fake_api, harness.fake, harness.make_world, harness.world
no_jitter = no_jitter  # a fixture of test_dispatch's, used here

CHANNEL = "C0THREADS1"


def posts(world: World) -> list[dict[str, object]]:
    return [call.params for call in world.fake.calls_to("chat.postMessage")]


def queue_two(world: World, number: int) -> tuple[OutboxMessage, OutboxMessage]:
    """The "logged" post and a follow-up, each written in its own transaction."""
    actor, item = world.actor(OWNER), world.item(number)
    first = world.do(lambda s: thread_posts.queue(s, actor, item, "logged"))
    second = world.do(lambda s: thread_posts.queue(s, actor, item, "claimed"))
    assert first is not None and second is not None
    return first, second


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "THREAD_WAIT_SECONDS", 0.3)


@pytest.fixture
def never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A post that waits for an earlier one fails the test: none is on its way."""

    def no_waiting(seconds: float) -> None:
        raise AssertionError("waited for a post that nobody is sending")

    monkeypatch.setattr(dispatch, "time", SimpleNamespace(monotonic=time.monotonic, sleep=no_waiting))


def test_a_post_written_before_the_thread_began_waits_for_it_then_goes_into_it(
    world: World, short_wait: None
) -> None:
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, claimed = queue_two(world, number)
    client = plain_client(world)

    # The follow-up is sent first: the post that begins the thread is still to go.
    assert send_claimed(world.engine, client, claimed, clock=world.clock) == Outcome(outbox.PENDING)
    assert posts(world) == []
    assert send_claimed(world.engine, client, logged, clock=world.clock) == Outcome(outbox.SENT)
    thread = world.item(number).origin_thread_ts
    assert thread is not None and not posts(world)[0].get("thread_ts")

    assert run(world, client).sent == 0  # put back for a while, not as a failed try
    world.clock.advance(seconds=THREAD_RETRY.total_seconds())
    assert run(world, client).sent == 1
    assert posts(world)[1]["thread_ts"] == thread and posts(world)[1]["text"] == "claimed"
    assert [(row.status, row.attempts) for row in world.outbox()] == [(outbox.SENT, 1), (outbox.SENT, 1)]


def test_a_follow_up_sent_while_the_first_post_is_on_its_way_goes_into_its_thread(
    world: World, no_jitter: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent just after its ack, a follow-up waits (up to THREAD_WAIT_SECONDS) for
    the thread of a first post that is being sent at that moment."""
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, claimed = queue_two(world, number)
    client = production_client(world)
    monkeypatch.setattr(dispatch, "THREAD_WAIT_SECONDS", 20.0)  # far more than the first post's second
    world.fake.fail("chat.postMessage", status=429, retry_after=1)  # the first post waits a second, then goes
    outcomes: list[Outcome] = []
    first = threading.Thread(target=lambda: outcomes.append(send_claimed(world.engine, client, logged,
                                                                         clock=world.clock)))
    first.start()
    try:
        wait_for(lambda: posts(world))  # the first post's first try is in
        assert send_claimed(world.engine, client, claimed, clock=world.clock) == Outcome(outbox.SENT)
    finally:
        first.join()
    assert outcomes == [Outcome(outbox.SENT)]
    thread = world.item(number).origin_thread_ts
    assert thread is not None
    assert [p.get("thread_ts") or None for p in posts(world)] == [None, None, thread]  # 429, the retry, the follow-up


def test_a_first_post_given_up_lets_the_next_begin_the_thread(world: World) -> None:
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, claimed = queue_two(world, number)
    client = plain_client(world)
    world.fake.fail("chat.postMessage", error="msg_too_long")

    assert send_claimed(world.engine, client, logged, clock=world.clock) == Outcome(outbox.FAILED, "msg_too_long")
    assert send_claimed(world.engine, client, claimed, clock=world.clock) == Outcome(outbox.SENT)

    assert not posts(world)[1].get("thread_ts")
    assert world.item(number).origin_thread_ts is not None  # the follow-up began it


def test_posts_a_dead_process_left_go_out_in_order_once_their_claim_lapses(world: World) -> None:
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    queue_two(world, number)  # written and claimed, never sent: the process died after the commit
    client = plain_client(world)
    assert run(world, client).sent == 0  # still claimed

    world.clock.advance(seconds=CLAIM_HOLD.total_seconds() + 1)
    assert run(world, client).sent == 2

    thread = world.item(number).origin_thread_ts
    assert [(p["text"], p.get("thread_ts") or None) for p in posts(world)] == [("logged", None), ("claimed", thread)]


def test_an_item_logged_from_a_message_replies_under_it(world: World) -> None:
    message = "1700000000.000500"
    number = world.log("Weak TLS ciphers", channel=CHANNEL, thread=message)
    logged, _ = queue_two(world, number)
    assert logged.thread_ts == message
    assert send_claimed(world.engine, plain_client(world), logged, clock=world.clock) == Outcome(outbox.SENT)
    assert posts(world)[0]["thread_ts"] == message
    assert world.item(number).origin_thread_ts == message


def test_an_item_logged_outside_any_channel_has_no_thread_posts(world: World) -> None:
    number = world.log("Weak TLS ciphers")
    actor, item = world.actor(OWNER), world.item(number)
    assert world.do(lambda s: thread_posts.queue(s, actor, item, "logged")) is None
    assert world.outbox() == []


def test_a_first_post_that_begins_the_thread_between_the_follow_ups_reads_is_seen(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a read-only unit reads each statement at its own moment:
    the first post may be marked sent, its thread recorded, just after the
    follow-up found no thread and before it looks for earlier posts. (Only
    the PostgreSQL run can show that race: SQLite's read sees one snapshot.)"""
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, claimed = queue_two(world, number)
    client = plain_client(world)
    real = outbox.earlier_unsent

    def first_post_goes_out_now(session: Any, row: OutboxMessage, *, now: Any) -> outbox.EarlierPosts | None:
        monkeypatch.setattr(outbox, "earlier_unsent", real)
        assert send_claimed(world.engine, client, logged, clock=world.clock) == Outcome(outbox.SENT)
        return real(session, row, now=now)

    monkeypatch.setattr(outbox, "earlier_unsent", first_post_goes_out_now)
    assert send_claimed(world.engine, client, claimed, clock=world.clock) == Outcome(outbox.SENT)

    thread = world.item(number).origin_thread_ts
    assert [(p["text"], p.get("thread_ts") or None) for p in posts(world)] == [("logged", None), ("claimed", thread)]


def test_a_post_whose_claim_is_nearly_out_is_left_to_the_dispatcher_and_sent_once(world: World) -> None:
    """The work after the ack may queue long (Slack slow, retries): a post it
    reaches late is not sent by it and by the dispatcher both."""
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, _ = queue_two(world, number)
    client = plain_client(world)
    world.clock.advance(seconds=(CLAIM_HOLD - CLAIM_LEFT_TO_SEND).total_seconds() + 1)

    assert send_claimed(world.engine, client, logged, clock=world.clock) == Outcome(outbox.SENDING)
    assert posts(world) == []
    world.clock.advance(seconds=CLAIM_LEFT_TO_SEND.total_seconds())
    assert run(world, client).sent == 2
    assert [p["text"] for p in posts(world)] == ["logged", "claimed"]


def test_a_follow_up_does_not_wait_for_a_first_post_waiting_for_its_next_try(world: World, never_waits: None) -> None:
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, claimed = queue_two(world, number)
    client = plain_client(world)
    world.fake.fail("chat.postMessage", status=500)
    assert send_claimed(world.engine, client, logged, clock=world.clock) == Outcome(outbox.PENDING, "internal_error")

    assert send_claimed(world.engine, client, claimed, clock=world.clock) == Outcome(outbox.PENDING)
    assert len(posts(world)) == 1  # the failed try only


def test_a_thread_post_the_dispatcher_gives_up_tells_its_writer(world: World) -> None:
    """Told "I will keep trying" after the ack, the writer hears by DM if the
    dispatcher later gives the post up."""
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, _ = queue_two(world, number)
    assert logged.requested_by == OWNER
    client = plain_client(world)
    world.fake.fail("chat.postMessage", status=500)
    assert send_claimed(world.engine, client, logged, clock=world.clock).status == outbox.PENDING
    world.clock.advance(minutes=1)
    world.fake.fail("chat.postMessage", error="is_archived")  # the channel is gone by the next try

    report = run(world, client)

    assert (report.failed, report.sent) == (1, 1)
    (told,) = [p for p in posts(world) if p["channel"] == OWNER]
    assert str(told["text"]).startswith(f":warning: I could not post in <#{CHANNEL}> (Slack refused it: `is_archived`).")
    assert str(told["text"]).endswith(">logged")


def test_a_send_that_outlasts_its_claim_does_not_overwrite_what_the_dispatcher_did(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    logged, _ = queue_two(world, number)
    client = plain_client(world)
    real_send = dispatch._send

    def slow_send(client_: Any, row: OutboxMessage) -> str | None:
        """Slack answers so late that the claim lapses and the dispatcher sends the post meanwhile."""
        monkeypatch.setattr(dispatch, "_send", real_send)
        world.clock.advance(seconds=CLAIM_HOLD.total_seconds() + 1)
        assert run(world, client).sent == 2
        world.fake.fail("chat.postMessage", status=429, retry_after=30)
        return real_send(client_, row)

    monkeypatch.setattr(dispatch, "_send", slow_send)
    assert send_claimed(world.engine, client, logged, clock=world.clock) == Outcome(outbox.SENDING)

    # The late 429 left the row as the dispatcher settled it (not put back to pending, tries not given back).
    assert [(r.status, r.attempts) for r in world.outbox()] == [(outbox.SENT, 2), (outbox.SENT, 2)]


def test_follow_ups_behind_a_first_post_waiting_for_its_next_try_wait_until_then(world: World) -> None:
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    actor, item = world.actor(OWNER), world.item(number)
    logged = world.do(lambda s: thread_posts.queue(s, actor, item, "logged"))
    assert logged is not None
    client = plain_client(world)
    world.fake.fail("chat.postMessage", status=500)
    assert send_claimed(world.engine, client, logged, clock=world.clock).status == outbox.PENDING
    follow_ups = [world.do(lambda s, n=n: thread_posts.queue(s, actor, item, f"change {n}")) for n in range(5)]
    for post in follow_ups:
        assert post is not None and send_claimed(world.engine, client, post, clock=world.clock) == Outcome(
            outbox.PENDING)
    first_due = next(r for r in world.outbox() if r.id == logged.id).next_attempt_at
    assert {r.next_attempt_at for r in world.outbox()} == {first_due}  # not every few seconds before it
    assert run(world, client).sent == 0

    world.clock.set(first_due)
    paced: list[float] = []
    report = dispatch.dispatch(world.engine, client, clock=world.clock,
                               pacer=dispatch.Pacer(interval=0.001, sleep=paced.append))

    assert report.sent == 6
    thread = world.item(number).origin_thread_ts
    assert [(p["text"], p.get("thread_ts") or None) for p in posts(world)[1:]] == [
        ("logged", None), *((f"change {n}", thread) for n in range(5))]
    assert len(paced) <= 5  # paced between the six sends only


def test_a_follow_up_does_not_wait_for_a_first_post_a_dead_process_left(world: World, never_waits: None) -> None:
    number = world.log("Weak TLS ciphers", channel=CHANNEL)
    actor, item = world.actor(OWNER), world.item(number)
    world.do(lambda s: thread_posts.queue(s, actor, item, "logged"))  # never sent: its claim lapses
    world.clock.advance(seconds=CLAIM_HOLD.total_seconds() + 1)
    claimed = world.do(lambda s: thread_posts.queue(s, actor, item, "claimed"))
    assert claimed is not None

    assert send_claimed(world.engine, plain_client(world), claimed, clock=world.clock) == Outcome(outbox.PENDING)
    assert posts(world) == []
