"""The outbox: planned messages, inserted at most once, each claimed by one sender at a time."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from bot.store.dialects import upsert_insert
from bot.store.models import SUBJECT, OutboxMessage, SchedulerLease
from bot.store.rows import in_chunks

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
#: The kind of a change's post in its item's thread (``bot.commands.thread_posts``).
THREAD_POST = "thread"
#: How long a message stays once sent or given up on (``poam-bot remind
#: --status`` and anyone looking into a delivery read them; nothing plans for
#: a day that old again).
KEEP_DELIVERED = timedelta(days=30)
#: Rows one clean-up deletes: a first one after a long history holds
#: SQLite's write lock only briefly each time.
FORGET_BATCH = 1_000


def change_subject(label: str) -> str:
    """The subject of a message one change writes about item ``label``: the
    label and a random token, so that two changes of one item on one day
    (submitted, sent back, submitted again) never look like one message to the
    unique key."""
    return f"{label} {secrets.token_hex(6)}"[-SUBJECT:]


def insert_once(session: Session, **values: Any) -> int | None:
    """Plan a message unless the same (workspace, recipient, kind, subject, day)
    is planned already; the new row's id, None when it was planned before.
    Pending, with no try yet, unless ``values`` say otherwise."""
    statement = (
        upsert_insert(session, OutboxMessage)
        .values(**{"status": PENDING, "attempts": 0, "blocks": [], **values})
        .on_conflict_do_nothing(index_elements=["team_id", "recipient", "kind", "subject", "local_day"])
        .returning(OutboxMessage.id)
    )
    return session.exec(statement).scalar()  # type: ignore[call-overload,no-any-return]


def supersede(session: Session, *, team_id: str, recipients: Sequence[str], kind: str, day: date) -> None:
    """Give up ``recipients``' messages of ``kind`` of days before ``day``
    still waiting to be sent (Slack down since): the newer one says it all,
    and the older, sent late beside it, says "due today" of another day.
    One statement per :data:`bot.store.rows.IN_LIST_SIZE` recipients."""
    for chunk in in_chunks(list(recipients)):
        session.exec(
            update(OutboxMessage).where(
                col(OutboxMessage.team_id) == team_id, col(OutboxMessage.recipient).in_(chunk),
                col(OutboxMessage.kind) == kind, col(OutboxMessage.status) == PENDING,
                col(OutboxMessage.local_day) < day,
            ).values(status=FAILED, last_error=f"superseded by the one of {day.isoformat()}")
        )


def claim(
    session: Session, *, now: datetime, limit: int, hold: timedelta, ids: Sequence[int] | None = None,
    due_by: datetime | None = None,
) -> list[OutboxMessage]:
    """Take up to ``limit`` rows due for sending: pending ones whose time has
    come, and rows left "sending" by a dispatcher that died (claim expired);
    with ``ids``, only those of these rows; with ``due_by``, only those due
    by then (a dispatcher's round: what it put back meanwhile waits for the next).

    PostgreSQL skips rows another dispatcher has locked (``SKIP LOCKED``);
    SQLite's writers run one at a time anyway. The claim is committed by the
    caller before anything is sent.
    """
    by = min(now, due_by) if due_by is not None else now
    due = or_(
        (col(OutboxMessage.status) == PENDING) & (col(OutboxMessage.next_attempt_at) <= by),
        (col(OutboxMessage.status) == SENDING) & (col(OutboxMessage.claimed_until) < by),
    )
    if ids is not None:
        due = due & col(OutboxMessage.id).in_(ids)
    rows = list(
        session.exec(
            select(OutboxMessage)
            .where(due)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )
    for row in rows:
        row.status = SENDING
        row.claimed_until = now + hold
        row.attempts += 1
    session.flush()
    return rows


def forget_delivered(session: Session, *, now: datetime, limit: int = FORGET_BATCH) -> int:
    """Delete up to ``limit`` of the messages sent, or given up on, more than
    KEEP_DELIVERED ago (the scheduler's housekeeping); how many. When a
    message was given up on is its last try's due time. Messages still to
    send stay, however old."""
    cutoff = now - KEEP_DELIVERED
    done = (
        select(OutboxMessage.id)
        .where(
            col(OutboxMessage.status).in_((SENT, FAILED)),
            col(OutboxMessage.next_attempt_at) < cutoff,  # ix_outbox_status_next: a message is sent after it is due
            func.coalesce(OutboxMessage.sent_at, OutboxMessage.next_attempt_at) < cutoff,
        )
        .order_by(col(OutboxMessage.status), col(OutboxMessage.next_attempt_at))
        .limit(limit)
    )
    ids = list(session.exec(done).all())
    if ids:
        session.exec(delete(OutboxMessage).where(col(OutboxMessage.id).in_(ids)))  # type: ignore[call-overload]
    return len(ids)


def take_lease(session: Session, *, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Hold (or renew) the named lease until ``now + ttl``; False when another
    live holder has it. One conditional UPDATE decides, like a claim."""
    session.exec(
        upsert_insert(session, SchedulerLease)
        .values(name=name, holder=holder, expires_at=now + ttl)
        .on_conflict_do_nothing(index_elements=["name"])
    )  # type: ignore[call-overload]
    taken = session.exec(
        update(SchedulerLease)  # type: ignore[call-overload]
        .where(
            col(SchedulerLease.name) == name,
            or_(col(SchedulerLease.holder) == holder, col(SchedulerLease.expires_at) < now),
        )
        .values(holder=holder, expires_at=now + ttl)
    )
    return taken.rowcount == 1  # type: ignore[no-any-return]


@dataclass(frozen=True)
class EarlierPosts:
    """Posts written before another about the same item, still to be sent:
    whether one is being sent now (claimed, the claim running), else when the
    first of them is due (its next try, or when its lapsed claim ended)."""

    in_flight: bool
    due: datetime | None


def earlier_unsent(session: Session, row: OutboxMessage, *, now: datetime) -> EarlierPosts | None:
    """The posts written before ``row`` about the same item, to the same
    channel, that are still to be sent (pending, or being sent); None when
    none is. ``ix_outbox_item`` finds the item's posts."""
    found = session.exec(
        select(OutboxMessage.status, OutboxMessage.next_attempt_at, OutboxMessage.claimed_until).where(
            OutboxMessage.team_id == row.team_id,
            OutboxMessage.item_number == row.item_number,
            OutboxMessage.kind == row.kind,
            OutboxMessage.recipient == row.recipient,
            col(OutboxMessage.status).in_((PENDING, SENDING)),
            col(OutboxMessage.id) < row.id,
        )
    ).all()
    if not found:
        return None
    if any(status == SENDING and claimed_until is not None and claimed_until > now for status, _, claimed_until in found):
        return EarlierPosts(in_flight=True, due=None)
    waiting = [claimed_until if status == SENDING and claimed_until is not None else next_attempt_at
               for status, next_attempt_at, claimed_until in found]
    return EarlierPosts(in_flight=False, due=min(waiting))


def outbox_status(session: Session) -> list[OutboxMessage]:
    """Messages not sent yet, and those given up on, oldest first."""
    return list(
        session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.status).in_((PENDING, SENDING, FAILED)))
            .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
        ).all()
    )
