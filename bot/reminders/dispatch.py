"""Dispatch: claim outbox rows, send them, mark them sent — or retry, or give up.

Each row is claimed (committed) right before it is sent and marked sent in
its own transaction right after Slack accepts it, by the dispatcher or, for
the DMs a change wrote, by :func:`send_now` just after the change's ack (a
change's post in its item's thread is claimed as it is written, and sent by
:func:`send_claimed`). If
the process dies between Slack accepting a message and that mark, the row's
claim lapses (``CLAIM_HOLD``) and the message is sent again: that is the one
duplicate window, at most one message per death of a sending process. A
database that fails to take the mark is tried again while the claim holds
(:func:`_settle_sent`); one gone for longer opens the same window.

Slack's 429 answers are honoured: the Web API client waits a short
``Retry-After`` and retries twice itself (``bot.rate_limits``); if Slack still
says 429, or asks for a longer wait, the row waits ``Retry-After`` seconds
(up to an hour). While Slack is down (5xx answers, its own
``internal_error``-like errors, or no connection at all; a send that went
out and whose answer was lost may have been posted, and is tried
``MAX_ATTEMPTS`` times in all) a row is tried again
after growing waits of at most ``OUTAGE_RETRY_EVERY``, for
``OUTAGE_PATIENCE`` after it was written, however many tries that takes: an outage of an hour delays the
morning's DMs and the week's digests, and loses none. So does Slack refusing
the app itself (a revoked token, a scope missing: ``APP_REFUSALS``), until
an admin mends the install; a round stops at the first such refusal. Other failures back
off exponentially and a row becomes ``failed`` (with Slack's error) after
``MAX_ATTEMPTS`` tries, or at once for errors that cannot get better (the
channel is gone, the bot is not in it). A message someone's change wrote (a review DM, ``requested_by``) that
the dispatcher gives up brings that person a DM saying so: the ack had told
them it would keep trying. The dispatcher sends at most about one message a
second to any one channel.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from bot.blockkit.text import mention
from bot.poam.clock import Clock
from bot.poam.items import record_thread
from bot.poam.presence import unreachable
from bot.rate_limits import header, retry_after_seconds
from bot.reminders.people import admins, mark_bot
from bot.reminders.planner import PLANNED_KINDS
from bot.slack_http import TOKEN_REFUSALS
from bot.store import outbox
from bot.store.engine import may_pass, unit_of_work
from bot.store.models import Item, OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
#: The longest a row is put back for, after a failure or a 429.
LONGEST_PUT_BACK_SECONDS = 3600
CLAIM_HOLD = timedelta(minutes=2)
#: The longest one dispatch round sends for before the tick goes on (the next
#: tick sends the rest): planning and expiries must not wait out an outage.
DISPATCH_BUDGET = timedelta(minutes=2)
PER_CHANNEL_INTERVAL = 1.0
#: Refusals of one message that trying again cannot change: the channel is
#: gone, closed to the bot or read-only (an announcement channel), the
#: workspace forbids the post, the message is malformed.
PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "user_not_found", "invalid_blocks", "msg_too_long",
     "msg_blocks_too_long", "cannot_dm_bot", "user_disabled", "restricted_action",
     "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
     "restricted_action_non_threadable_channel", "ekm_access_denied", "no_permission"}
)
#: Refusals of the app itself (its token, its scopes), not of one message:
#: every message fails alike until an admin mends the install, and none was
#: posted, so a message waits them out as it does an outage, using up no try.
APP_REFUSALS = TOKEN_REFUSALS | {"missing_scope"}
#: Slack's own errors while it is down or overloaded (``ok: false``, or with a 5xx status).
OUTAGE_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
#: How long after it was written a message waits out an outage, and how often it is tried meanwhile.
OUTAGE_PATIENCE = timedelta(hours=24)
OUTAGE_RETRY_EVERY = timedelta(minutes=10)
#: How a conversation's id begins (public, private, direct); a user's begins with U or W.
CHANNEL_PREFIXES = ("C", "G", "D")
#: The outbox kind of the DM telling someone their change's message was given up.
UNDELIVERED = "undelivered"
#: How long a post sent just after its change's ack waits for its item's
#: thread, begun by an earlier post on its way to Slack, and how often it
#: looks; a post put back is due again when the earlier one is, and at least
#: THREAD_RETRY later (the dispatcher's next tick, ``scheduler.TICK_SECONDS``).
THREAD_WAIT_SECONDS = 3.0
THREAD_POLL_SECONDS = 0.1
THREAD_RETRY = timedelta(seconds=5)
#: A post claimed as it was written is sent just after the ack only while this
#: much of its claim is left: the dispatcher sends it once the claim lapses,
#: and the two must not both send it (the after-ack work may have queued long).
CLAIM_LEFT_TO_SEND = timedelta(minutes=1)
#: How much of the given-up message that DM quotes.
QUOTED_CHARS = 600
#: A message Slack accepted is marked sent waiting at most SETTLE_MAX_WAIT
#: seconds for each lock; while the database refuses, it is tried again after
#: these pauses (the last one over and over) until only CLAIM_MARGIN of its
#: claim is left.
SETTLE_MAX_WAIT = 2.0
SETTLE_PAUSES = (0.5, 1.0, 2.0, 5.0)
CLAIM_MARGIN = timedelta(seconds=10)


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    withdrawn: int = 0


#: A planned message not sent within this of being written (it waited out
#: Slack) is written again from what is true when it goes (``restate``).
RESTATE_AFTER = timedelta(minutes=5)
#: What a waiting row says now; None when it has nothing to say any more.
Restate = Callable[[Session, OutboxMessage], tuple[str, list[dict[str, Any]]] | None]


@dataclass
class Pacer:
    """Keeps at least ``interval`` seconds between two messages to one channel."""

    interval: float = PER_CHANNEL_INTERVAL
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)

    def wait(self, channel: str) -> None:
        last = self._last.get(channel)
        if last is not None:
            remaining = self.interval - (self.monotonic() - last)
            if remaining > 0:
                self.sleep(remaining)
        self._last[channel] = self.monotonic()


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), LONGEST_PUT_BACK_SECONDS))


def _outage(error: Exception, response: SlackResponse | None, code: str | None) -> bool:
    """Whether ``error`` says Slack is down or unreachable (not that it refused
    the message), and so did not take it: a send whose answer timed out or
    was cut off may have been posted, and is tried again only ``MAX_ATTEMPTS``
    times in all (waiting out a day of those posted one DM 150 times)."""
    if response is None:  # urllib's way (and bot.slack_http's) of saying the request never went out:
        # refused, unreachable, no name; or a connection that took the call's whole time to open
        return isinstance(error, URLError) or isinstance(error, TimeoutError) and isinstance(error.__cause__, URLError)
    return response.status_code >= 500 or code in OUTAGE_ERRORS


def _retry_after(value: str | None) -> timedelta:
    """Slack's Retry-After in seconds, from one second (a 0 would spin) to an
    hour (a larger one is no wait Slack means), 30 when unreadable."""
    seconds = retry_after_seconds(value)
    return timedelta(seconds=30 if seconds is None else min(max(1, seconds), LONGEST_PUT_BACK_SECONDS))


@dataclass(frozen=True)
class Outcome:
    """How one send went: the row's new status, and Slack's error (or the
    failure's kind) when it failed; no error for a post waiting for its thread."""

    status: str
    error: str | None = None


def _send(client: WebClient, row: OutboxMessage) -> str | None:
    """Post ``row``; the new message's ``ts``."""
    response = client.chat_postMessage(
        channel=row.recipient, text=row.text, blocks=row.blocks or None, thread_ts=row.thread_ts,
        unfurl_links=False, unfurl_media=False,
    )
    return response.get("ts")


def _own_claim(session: Session, sent: OutboxMessage, *, marked_at: datetime | None = None) -> OutboxMessage | None:
    """The row of ``sent``, locked, while it is still under the claim ``sent``
    was sent with; None once that claim lapsed and someone else claimed or
    settled it (a send that outlasted its claim: its outcome is not ours to
    record, and is logged instead). A row this send already marked sent at
    ``marked_at`` is ours too: a mark tried again after its commit's answer
    was lost."""
    row = session.get(OutboxMessage, sent.id, with_for_update=True)
    assert row is not None
    if row.status == outbox.SENDING and row.claimed_until == sent.claimed_until:
        return row
    if marked_at is not None and row.status == outbox.SENT and row.sent_at == marked_at:
        return row
    log.warning("outbox row %s was claimed again while it was being sent (now %s): its outcome is not recorded",
                sent.id, row.status)
    return None


def _settle(engine: Engine, sent: OutboxMessage, *, now: datetime, error: Exception | None, tell_requester: bool,
            started_thread: str | None = None, max_wait: float | None = None,
            configured_admins: Collection[str] = ()) -> Outcome:
    """Record the outcome of one send, unless its claim lapsed meanwhile
    (:func:`_own_claim`). A row given up on whose requester is not told
    otherwise (``tell_requester``) queues :func:`_undelivered`, and a post
    that began its item's thread (``started_thread``: its ts) records it on
    the item, in the same transaction."""
    with unit_of_work(engine, max_wait=max_wait) as session:
        row = _own_claim(session, sent, marked_at=now if error is None else None)
        if row is None:
            return Outcome(outbox.SENDING)
        if error is None:
            row.status, row.sent_at, row.claimed_until, row.last_error = outbox.SENT, now, None, None
            if started_thread is not None and row.item_number is not None:
                record_thread(session, team_id=row.team_id, number=row.item_number, channel_id=row.recipient,
                              thread_ts=started_thread)
            return Outcome(row.status)
        response = error.response if isinstance(error, SlackApiError) else None
        code = response.get("error") if response is not None else None
        row.last_error = (f"{code or type(error).__name__}: {error}")[:500]
        row.claimed_until = None
        app_refused = code in APP_REFUSALS
        patient = now < row.created_at + OUTAGE_PATIENCE
        if response is not None and response.status_code == 429:
            row.status, row.next_attempt_at = outbox.PENDING, now + _retry_after(header(response.headers, "Retry-After"))
            row.attempts -= 1  # being rate limited is no failure: it does not use up the tries
        elif app_refused and patient:
            row.status, row.next_attempt_at = outbox.PENDING, now + OUTAGE_RETRY_EVERY
            row.attempts -= 1
        elif _outage(error, response, code) and patient:
            row.status, row.next_attempt_at = outbox.PENDING, now + min(_backoff(row.attempts), OUTAGE_RETRY_EVERY)
        elif code in PERMANENT_ERRORS or app_refused or row.attempts >= MAX_ATTEMPTS:
            row.status = outbox.FAILED
            if code == "cannot_dm_bot":
                mark_bot(session, team_id=row.team_id, user_id=row.recipient, now=now)
            if tell_requester and row.requested_by and row.requested_by != row.recipient:
                _undelivered(session, row, code=code or type(error).__name__, now=now,
                             configured_admins=configured_admins)
        else:
            row.status, row.next_attempt_at = outbox.PENDING, now + _backoff(row.attempts)
        return Outcome(row.status, code or type(error).__name__)


def _quotable(text: str) -> str:
    """``text`` cut to ``QUOTED_CHARS``, not inside a ``<…>`` (a mention, a
    link) or an ``&…;`` entity: a half one would show as garbage."""
    if len(text) <= QUOTED_CHARS:
        return text
    cut = text[: QUOTED_CHARS - 1]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = cut.rfind(opener)
        if start > cut.rfind(closer):
            cut = cut[:start]
    return cut + "…"


@dataclass(frozen=True)
class _Thread:
    """Where a post about an item goes: ``ready`` with the item's thread
    ``ts`` (None: this post begins it), or not ready until ``due``."""

    ready: bool
    ts: str | None = None
    due: datetime | None = None


def _item_thread(engine: Engine, row: OutboxMessage, *, now: Callable[[], datetime], wait: float) -> _Thread:
    """Where a post written before its item's thread began goes: into the
    thread once the item has one; at the top, beginning it, once no post
    written before it is still to go. One being sent at this moment (a
    follow-up may overtake the "logged" post on its way to Slack) is waited
    for, up to ``wait`` seconds; one waiting for its next try, or for the
    dispatcher, is not: this post waits until then (``_Thread.due``).

    The thread is read again after the earlier posts: on PostgreSQL a
    read-only unit of work reads each statement at its own moment, and the
    post that begins the thread is marked sent and its thread recorded in one
    commit, which may fall between the first two reads."""
    deadline = time.monotonic() + wait
    while True:
        with unit_of_work(engine, read_only=True) as session:
            thread_ts = _thread_of(session, row)
            if thread_ts is not None:
                return _Thread(ready=True, ts=thread_ts)
            earlier = outbox.earlier_unsent(session, row, now=now())
            if earlier is None:
                return _Thread(ready=True, ts=_thread_of(session, row))
        if not earlier.in_flight or time.monotonic() >= deadline:
            return _Thread(ready=False, due=earlier.due)
        time.sleep(THREAD_POLL_SECONDS)


def _thread_of(session: Session, row: OutboxMessage) -> str | None:
    return session.exec(  # type: ignore[no-any-return]
        select(Item.origin_thread_ts).where(Item.team_id == row.team_id, Item.number == row.item_number)
    ).first()


def _wait_for_thread(engine: Engine, sent: OutboxMessage, *, now: datetime, due: datetime | None) -> Outcome:
    """Put back a post whose thread is not there yet until the earlier post is
    due (``due``), and at least ``THREAD_RETRY``: claimed in turn, the earlier
    one goes first. Waiting uses up no try."""
    with unit_of_work(engine) as session:
        row = _own_claim(session, sent)
        if row is None:
            return Outcome(outbox.SENDING)
        row.status, row.claimed_until = outbox.PENDING, None
        row.next_attempt_at = max(now + THREAD_RETRY, due or now)
        row.attempts -= 1
        return Outcome(row.status)


def _restate(engine: Engine, claimed: OutboxMessage, restate: Restate) -> bool | None:
    """Write ``claimed`` again from what is true now (True), or withdraw it
    (False: given up, with the reason, as a superseded morning DM is); None
    when its claim lapsed meanwhile (not ours to send). Built in a read-only
    unit (on SQLite a write holds every other one back), recorded in a short
    one. One that fails to build (logged, with its traceback) goes as it was
    written: it held up every row behind it, claimed first again and again."""
    try:
        with unit_of_work(engine, read_only=True) as session:
            message = restate(session, claimed)
    except Exception:  # any failure of the rebuild: logged, and the row goes as planned
        log.exception("could not write outbox row %s again; sending it as it was written", claimed.id)
        return True
    with unit_of_work(engine) as session:
        row = _own_claim(session, claimed)
        if row is None:
            return None
        if message is None:
            row.status, row.claimed_until = outbox.FAILED, None
            row.last_error = "withdrawn: nothing to say any more (changed while it waited)"
            return False
        row.text, row.blocks = message
    claimed.text, claimed.blocks = message
    return True


def _undelivered(
    session: Session, row: OutboxMessage, *, code: str, now: datetime, configured_admins: Collection[str]
) -> None:
    """Queue a DM to whoever's change wrote ``row``, given up on with Slack's
    ``code``: who (or which channel) was not reached, why, and what the
    message said; to the workspace's admins instead when that person left
    (a channel subscribed by them loses its digest every week, and nobody
    read why). It has no requester itself, so giving it up in turn tells
    nobody."""
    assert row.requested_by is not None
    told = {row.requested_by} - unreachable(session, team_id=row.team_id, user_ids=[row.requested_by]) or admins(
        session, team_id=row.team_id, configured=configured_admins)
    why = (f"Slack refused it: `{code}`" if code in PERMANENT_ERRORS | APP_REFUSALS
           else f"Slack did not take it in {row.attempts} tries; the last answer was `{code}`")
    quoted = "\n".join(f">{line}" for line in _quotable(row.text).splitlines())
    if row.recipient.startswith(CHANNEL_PREFIXES):
        invite = " Invite me there with `/invite @POA&M`." if code == "not_in_channel" else ""
        what = f"I could not post in <#{row.recipient}> ({why}).{invite}"
    else:
        what = f"I could not deliver my message to {mention(row.recipient)} ({why}), so they have not been told. " \
               "Please tell them yourself."
    for recipient in sorted(told - {row.recipient}):
        outbox.insert_once(
            session, team_id=row.team_id, recipient=recipient, kind=UNDELIVERED, subject=f"outbox:{row.id}",
            local_day=row.local_day, next_attempt_at=now, created_at=now, text=f":warning: {what} It said:\n{quoted}",
        )


def _send_and_settle(engine: Engine, client: WebClient, row: OutboxMessage, *, clock: Clock,
                     tell_requester: bool = True, thread_wait: float = 0.0,
                     before_send: Callable[[], None] = lambda: None,
                     configured_admins: Collection[str] = ()) -> Outcome:
    """Send one claimed row and record how it went. ``tell_requester``:
    whether giving it up queues a DM to its requester (not when the caller
    tells them in its answer). A post about an item written before the item's
    thread began finds the thread first (:func:`_item_thread`, waiting up to
    ``thread_wait`` seconds for an earlier post being sent), or starts it.
    ``before_send`` runs just before Slack is called (the dispatcher's pacing)."""
    started = False
    if row.item_number is not None and row.thread_ts is None:
        thread = _item_thread(engine, row, now=clock.now, wait=thread_wait)
        if not thread.ready:
            return _wait_for_thread(engine, row, now=clock.now(), due=thread.due)
        row.thread_ts, started = thread.ts, thread.ts is None
    before_send()
    error: Exception | None = None
    ts = None
    try:
        ts = _send(client, row)
    except (SlackApiError, SlackClientError, OSError, HTTPException) as failure:  # HTTPException: an answer cut off
        error = failure
        log.warning("sending outbox row %s to %s failed: %s", row.id, row.recipient, failure)
    if error is None:
        return _settle_sent(engine, row, clock=clock, started_thread=ts if started else None)
    return _settle(engine, row, now=clock.now(), error=error, tell_requester=tell_requester,
                   configured_admins=configured_admins)


def _settle_sent(engine: Engine, sent: OutboxMessage, *, clock: Clock, started_thread: str | None) -> Outcome:
    """Mark ``sent``, which Slack accepted, as sent. While the database
    refuses (gone for a moment, a lock held past ``SETTLE_MAX_WAIT``), try
    again after ``SETTLE_PAUSES`` for as long as the row's claim holds, less
    ``CLAIM_MARGIN``: a row still marked as being sent when its claim lapses
    is sent again (the duplicate window)."""
    assert sent.claimed_until is not None
    now = clock.now()  # every try marks the same moment: a lost commit's mark is known again (_own_claim)
    deadline = time.monotonic() + (sent.claimed_until - now - CLAIM_MARGIN).total_seconds()
    pauses = itertools.chain(SETTLE_PAUSES, itertools.repeat(SETTLE_PAUSES[-1]))
    while True:
        try:
            return _settle(engine, sent, now=now, error=None, tell_requester=False,
                           started_thread=started_thread, max_wait=SETTLE_MAX_WAIT)
        except DBAPIError as failure:
            pause = min(next(pauses), deadline - time.monotonic())
            if pause <= 0 or not may_pass(failure):
                raise
            log.warning("could not mark outbox row %s sent (%s); trying again in %.1f s", sent.id,
                        str(failure.orig).strip(), pause)
            time.sleep(pause)


def send_claimed(engine: Engine, client: WebClient, row: OutboxMessage, *, clock: Clock) -> Outcome:
    """Send a row its writer claimed as it wrote it (a thread post, just
    after the change's ack: no second transaction to claim it), waiting up to
    ``THREAD_WAIT_SECONDS`` for its item's thread. The caller tells the user
    what failed. A row whose claim is nearly out (``CLAIM_LEFT_TO_SEND``) is
    left to the dispatcher."""
    assert row.claimed_until is not None
    if row.claimed_until - clock.now() < CLAIM_LEFT_TO_SEND:
        log.warning("outbox row %s waited too long after its ack: the dispatcher sends it", row.id)
        return Outcome(outbox.SENDING)
    return _send_and_settle(engine, client, row, clock=clock, tell_requester=False, thread_wait=THREAD_WAIT_SECONDS)


@dataclass(frozen=True)
class Unsent:
    """A row :func:`send_now` could not send, and whether it will be tried again."""

    recipient: str
    retrying: bool


def send_now(engine: Engine, client: WebClient, *, ids: Sequence[int], clock: Clock) -> list[Unsent]:
    """Send these rows at once (messages a change wrote in its own transaction),
    unless a dispatcher has claimed them already. What Slack does not take stays
    in the outbox: the dispatcher tries it again after the backoff, or it has
    failed for good (``PERMANENT_ERRORS``): the caller tells the requester so
    in its answer, and no DM says it again."""
    unsent = []
    for row_id in ids:  # claimed one at a time, right before its send, as dispatch() does
        with unit_of_work(engine) as session:
            rows = outbox.claim(session, now=clock.now(), limit=1, hold=CLAIM_HOLD, ids=[row_id])
        if not rows:
            continue
        (row,) = rows
        outcome = _send_and_settle(engine, client, row, clock=clock, tell_requester=False)
        if outcome.status != outbox.SENT:
            unsent.append(Unsent(row.recipient, retrying=outcome.status == outbox.PENDING))
    return unsent


def dispatch(
    engine: Engine,
    client: WebClient,
    *,
    clock: Clock,
    pacer: Pacer | None = None,
    still_leader: Callable[[], bool] = lambda: True,
    configured_admins: Collection[str] = (),
    restate: Restate | None = None,
) -> DispatchReport:
    """Send what was due when it began, for at most ``DISPATCH_BUDGET``.

    Rows are claimed one at a time, right before their send, so a claim never
    waits behind a slow batch long enough to lapse; ``still_leader`` is asked
    before each claim, and dispatch stops once this process lost the lease.
    What it puts back (a try that failed) waits for the next tick, and so does
    what the budget leaves: while Slack is down each send may take half a
    minute, and a round that went on until nothing was due (the first rows due
    again before the last were tried) planned nothing else meanwhile, so the
    day's other reminders and the week's digests were never written. A row
    written more than ``RESTATE_AFTER`` before is first written again
    (``restate``, the planner's) or withdrawn.
    """
    pacer = pacer or Pacer()
    report = DispatchReport()
    began, ends = clock.now(), time.monotonic() + DISPATCH_BUDGET.total_seconds()
    while still_leader() and time.monotonic() < ends:
        with unit_of_work(engine) as session:
            rows = outbox.claim(session, now=clock.now(), limit=1, hold=CLAIM_HOLD, due_by=began)
        if not rows:
            return report
        (row,) = rows
        if restate is not None and row.kind in PLANNED_KINDS and row.created_at < clock.now() - RESTATE_AFTER:
            restated = _restate(engine, row, restate)
            if restated is False:
                report.withdrawn += 1
            if not restated:
                continue
        outcome = _send_and_settle(engine, client, row, clock=clock, before_send=partial(pacer.wait, row.recipient),
                                   configured_admins=configured_admins)
        if outcome.status == outbox.SENT:
            report.sent += 1
        elif outcome.status == outbox.FAILED:
            report.failed += 1
        else:
            report.retried += 1
        if outcome.error in APP_REFUSALS:  # the next would be refused alike: they wait for the next tick
            log.error("Slack refuses the app (%s): messages wait until its install is mended", outcome.error)
            return report
    return report
