"""Dispatch: claim outbox rows, send them, mark them sent — or retry, or give up.

Each row is claimed (committed) right before it is sent and marked sent in
its own transaction right after Slack accepts it, by the dispatcher or, for
the DMs a change wrote, by :func:`send_now` just after the change's ack. If
the process dies between Slack accepting a message and that mark, the row's
claim lapses (``CLAIM_HOLD``) and the message is sent again: that is the one
duplicate window, at most one message per death of a sending process.

Slack's 429 answers are honoured: the Web API client waits ``Retry-After``
and retries twice itself; if Slack still says 429 the row waits
``Retry-After`` seconds. Other failures back off exponentially and a row
becomes ``failed`` (with Slack's error) after ``MAX_ATTEMPTS`` tries, or at
once for errors that cannot get better (the channel is gone, the bot is not
in it). A message someone's change wrote (a review DM, ``requested_by``) that
the dispatcher gives up brings that person a DM saying so: the ack had told
them it would keep trying. The dispatcher sends at most about one message a
second to any one channel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import Engine
from sqlmodel import Session

from bot.blockkit.text import clip, mention
from bot.poam.clock import Clock
from bot.store import outbox
from bot.store.engine import unit_of_work
from bot.store.models import OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CLAIM_HOLD = timedelta(minutes=2)
PER_CHANNEL_INTERVAL = 1.0
PERMANENT_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "user_not_found", "account_inactive",
     "invalid_blocks", "msg_too_long", "cannot_dm_bot", "user_disabled"}
)
#: The outbox kind of the DM telling someone their change's message was given up.
UNDELIVERED = "undelivered"
#: How much of the given-up message that DM quotes.
QUOTED_CHARS = 600


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


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
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _retry_after(header: str | None) -> timedelta:
    """Slack's Retry-After in seconds, at least one (a 0 would spin), 30 when unreadable."""
    try:
        return timedelta(seconds=max(1, int(header or "30")))
    except ValueError:
        return timedelta(seconds=30)


def _send(client: WebClient, row: OutboxMessage) -> None:
    client.chat_postMessage(
        channel=row.recipient, text=row.text, blocks=row.blocks or None, thread_ts=row.thread_ts,
        unfurl_links=False, unfurl_media=False,
    )


def _settle(engine: Engine, row_id: int, *, now: datetime, error: Exception | None, tell_requester: bool) -> str:
    """Record the outcome of one send; returns the row's new status. A row
    given up on whose requester is not told otherwise (``tell_requester``)
    queues :func:`_undelivered` in the same transaction."""
    with unit_of_work(engine) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        if error is None:
            row.status, row.sent_at, row.claimed_until, row.last_error = outbox.SENT, now, None, None
            return row.status
        response = getattr(error, "response", None)
        code = response.get("error") if isinstance(error, SlackApiError) else None
        row.last_error = (f"{code or type(error).__name__}: {error}")[:500]
        row.claimed_until = None
        if isinstance(error, SlackApiError) and response is not None and response.status_code == 429:
            row.status, row.next_attempt_at = outbox.PENDING, now + _retry_after(response.headers.get("Retry-After"))
            row.attempts -= 1  # being rate limited is no failure: it does not use up the tries
        elif code in PERMANENT_ERRORS or row.attempts >= MAX_ATTEMPTS:
            row.status = outbox.FAILED
            if tell_requester and row.requested_by and row.requested_by != row.recipient:
                _undelivered(session, row, code=code or type(error).__name__, now=now)
        else:
            row.status, row.next_attempt_at = outbox.PENDING, now + _backoff(row.attempts)
        return row.status


def _undelivered(session: Session, row: OutboxMessage, *, code: str, now: datetime) -> None:
    """Queue a DM to whoever's change wrote ``row``, given up on with Slack's
    ``code``: who was not reached, why, and what the message said. It has no
    requester itself, so giving it up in turn tells nobody."""
    why = (f"Slack refused it: `{code}`" if code in PERMANENT_ERRORS
           else f"Slack did not take it in {MAX_ATTEMPTS} tries; the last answer was `{code}`")
    quoted = "\n".join(f">{line}" for line in clip(row.text, QUOTED_CHARS).splitlines())
    outbox.insert_once(
        session, team_id=row.team_id, recipient=row.requested_by, kind=UNDELIVERED, subject=f"outbox:{row.id}",
        local_day=row.local_day, next_attempt_at=now, created_at=now,
        text=(f":warning: I could not deliver my message to {mention(row.recipient)} ({why}), so they have not "
              f"been told. Please tell them yourself. It said:\n{quoted}"),
    )


def _send_and_settle(engine: Engine, client: WebClient, row: OutboxMessage, *, clock: Clock,
                     tell_requester: bool = True) -> str:
    """Send one claimed row and record how it went; returns its new status.
    ``tell_requester``: whether giving it up queues a DM to its requester
    (not when the caller tells them in its answer)."""
    error: Exception | None = None
    try:
        _send(client, row)
    except (SlackApiError, SlackClientError, OSError) as failure:
        error = failure
        log.warning("sending outbox row %s to %s failed: %s", row.id, row.recipient, failure)
    return _settle(engine, row.id, now=clock.now(), error=error, tell_requester=tell_requester)  # type: ignore[arg-type]


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
        status = _send_and_settle(engine, client, row, clock=clock, tell_requester=False)
        if status != outbox.SENT:
            unsent.append(Unsent(row.recipient, retrying=status == outbox.PENDING))
    return unsent


def dispatch(
    engine: Engine,
    client: WebClient,
    *,
    clock: Clock,
    pacer: Pacer | None = None,
    still_leader: Callable[[], bool] = lambda: True,
) -> DispatchReport:
    """Send what is due until nothing is.

    Rows are claimed one at a time, right before their send, so a claim never
    waits behind a slow batch long enough to lapse; ``still_leader`` is asked
    before each claim, and dispatch stops once this process lost the lease.
    """
    pacer = pacer or Pacer()
    report = DispatchReport()
    while still_leader():
        with unit_of_work(engine) as session:
            rows = outbox.claim(session, now=clock.now(), limit=1, hold=CLAIM_HOLD)
        if not rows:
            return report
        (row,) = rows
        pacer.wait(row.recipient)
        status = _send_and_settle(engine, client, row, clock=clock)
        if status == outbox.SENT:
            report.sent += 1
        elif status == outbox.FAILED:
            report.failed += 1
        else:
            report.retried += 1
    return report
