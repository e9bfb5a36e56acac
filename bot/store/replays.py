"""Replayed Slack requests: each signed request changes something at most once.

Bolt refuses a request whose signature is wrong or whose timestamp is more
than five minutes off, but the very same request sent again within those
five minutes passes both checks. A request that changes something records
its signature (``X-Slack-Signature``, an HMAC of its timestamp and body) in
the transaction of its change (or, when the change fails, just after its
answer: ``SlackRequest.transaction``): the same request again finds it there,
within its own transaction, and changes nothing, on any worker or replica.
Transactions that only read record nothing, and cost nothing more. Slack
never sends one request twice with the same signature (an event it retries
is signed again), so nothing real is refused. Records older than
:data:`KEEP` are deleted by the scheduler's tick (:func:`forget_handled`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from bot.store.dialects import upsert_insert
from bot.store.models import HandledRequest, table_of

#: Longer than Slack's five minutes, with room for clocks that disagree.
KEEP = timedelta(minutes=10)
#: How long a saved form is remembered (:func:`record_form_saved`): a form
#: Slack said it could not send may stay open a long while before Submit is
#: pressed again.
FORM_KEEP = timedelta(days=1)
_FORM = "view:"


def record_handled(session: Session, *, team_id: str, signature: str, now: datetime) -> bool:
    """Record that this request is being handled; False when it was before
    (a replay: the caller must change nothing). It runs in every change's
    transaction: a Core insert of the table, not the ORM's (0.2 ms more)."""
    table = table_of(HandledRequest)
    statement = (
        upsert_insert(session, table)
        .on_conflict_do_nothing(index_elements=["team_id", "signature"])
        .returning(table.c.signature)  # rowcount is -1 here on psycopg
    )
    inserted = session.connection().execute(statement, {"team_id": team_id, "signature": signature, "handled_at": now})
    return inserted.first() is not None


def record_form_saved(session: Session, *, team_id: str, view_id: str, now: datetime) -> bool:
    """Record that the form ``view_id`` is being saved; False when it was
    before. Pressing Submit again (after Slack said it could not connect, when
    the save took longer than its 3 seconds) is a new request with a new
    signature, of the same view: it must not log a second finding. Kept a day
    (:data:`FORM_KEEP`)."""
    return record_handled(session, team_id=team_id, signature=f"{_FORM}{view_id}", now=now)


def form_saved(session: Session, *, team_id: str, view_id: str) -> bool:
    """Whether the form ``view_id`` was saved (:func:`record_form_saved`), read without recording it."""
    return session.get(HandledRequest, (team_id, f"{_FORM}{view_id}")) is not None


def forget_handled(session: Session, *, now: datetime) -> None:
    """Delete the records no replay can match any more (every workspace's:
    the scheduler tick's housekeeping)."""
    handled_at, key = col(HandledRequest.handled_at), col(HandledRequest.signature)
    session.exec(delete(HandledRequest).where(  # type: ignore[call-overload]
        (handled_at < now - FORM_KEEP) | ((handled_at < now - KEEP) & ~key.startswith(_FORM))
    ))
