"""Planning: what to send, to whom, today — written to the outbox at most once.

Each tick looks at every workspace: people whose reminder time has come (in
their own time zone, on weekdays) get one aggregated DM if anything is due;
unclaimed items older than three days get one nudge in their thread;
subscribed channels get the weekly digest at its hour. The outbox's unique
key (workspace, recipient, kind, subject, local day) makes planning the same
message twice a no-op, whichever process or tick does it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from bot.blockkit.blocks import section
from bot.poam.actor import Rules
from bot.poam.clock import Clock
from bot.poam.lifecycle import NOT_CLOSED, Status
from bot.poam.roles import load_actor
from bot.reminders.digest import digest_message
from bot.reminders.messages import needing_attention, reminder_message
from bot.store import outbox
from bot.store.models import (
    DigestSubscription,
    InfoSystem,
    Item,
    OutboxMessage,
    Person,
    RoleGrant,
    Workspace,
)

DEFAULT_REMIND_AT = time(9, 0)
NUDGE_AFTER = timedelta(days=3)


class Kind:
    REMINDER = "reminder"
    NUDGE = "nudge"
    DIGEST = "digest"


#: What the planner writes (and :func:`restated` writes again).
PLANNED_KINDS = frozenset({Kind.REMINDER, Kind.NUDGE, Kind.DIGEST})


@dataclass(frozen=True)
class Planned:
    team_id: str
    recipient: str
    kind: str
    subject: str
    local_day: date
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    #: Who is told when Slack refuses it for good (``dispatch``): the admin who subscribed a channel.
    requested_by: str | None = None


def _zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else default
    except (ZoneInfoNotFoundError, ValueError):
        return default


def _already(session: Session, team_id: str, kind: str, days: set[date]) -> set[tuple[str, str, date]]:
    return set(
        session.exec(
            select(col(OutboxMessage.recipient), col(OutboxMessage.subject), col(OutboxMessage.local_day)).where(
                OutboxMessage.team_id == team_id, OutboxMessage.kind == kind, col(OutboxMessage.local_day).in_(days)
            )
        ).all()
    )


def _people_to_remind(session: Session, team_id: str, *, utc_today: date) -> set[str]:
    """Owners with something due, verifiers, authorizing officials: everyone
    else has nothing to hear. Local days run from the UTC day before to the
    one after, and what needs attention only grows with the day, so the
    latest of them covers every time zone."""
    # PostgreSQL still reads the owned items once here: finished milestones
    # keep their past dates, so it expects most open ones to be due. Looking
    # each due item up by id instead is estimated so costly that it gets
    # JIT-compiled, which takes longer than the read.
    owners = session.exec(
        select(Item.owner_id)
        .where(
            Item.team_id == team_id,
            col(Item.status).in_(NOT_CLOSED),
            col(Item.owner_id).is_not(None),
            col(Item.id).in_(needing_attention(team_id, utc_today + timedelta(days=1))),
        )
        .distinct()
    ).all()
    roles = session.exec(select(RoleGrant.user_id).where(RoleGrant.team_id == team_id).distinct()).all()
    aos = session.exec(
        select(InfoSystem.ao_user_id).where(InfoSystem.team_id == team_id, col(InfoSystem.ao_user_id).is_not(None))
    ).all()
    return {user for user in (*owners, *roles, *aos) if user}


def plan_reminders(
    session: Session, *, team_id: str, clock: Clock, rules: Rules, default_tz: ZoneInfo
) -> Iterator[Planned]:
    now = clock.now()
    people = {p.user_id: p for p in session.exec(select(Person).where(Person.team_id == team_id))}
    utc_today = now.date()
    # The latest local day each person had their DM for: one who moved west
    # since (Auckland to Honolulu) is a day behind it, and gets no second today.
    latest: dict[str, date] = {}
    for recipient, _, day in _already(session, team_id, Kind.REMINDER,
                                      {utc_today - timedelta(days=1), utc_today, utc_today + timedelta(days=1)}):
        latest[recipient] = max(day, latest.get(recipient, day))
    for user_id in sorted(_people_to_remind(session, team_id, utc_today=utc_today)):
        person = people.get(user_id)
        if not _wants_reminders(person):
            continue
        tz = _zone(person.tz if person else None, default_tz)
        local = now.astimezone(tz)
        remind_at = person.remind_at if person else DEFAULT_REMIND_AT
        if local.weekday() >= 5 or local.time() < remind_at or latest.get(user_id, date.min) >= local.date():
            continue
        actor = load_actor(session, team_id=team_id, user_id=user_id, tz=tz, clock=clock, rules=rules)
        message = reminder_message(session, actor)
        if message is not None:
            text, blocks = message
            yield Planned(team_id, user_id, Kind.REMINDER, "daily", local.date(), text, blocks)


def _wants_reminders(person: Person | None) -> bool:
    """Not turned off, deactivated in Slack (``departures``) or a bot: a DM would be read by nobody."""
    return person is None or person.reminders_on and person.left_at is None and not person.is_bot


def plan_nudges(session: Session, *, team_id: str, clock: Clock, rules: Rules) -> Iterator[Planned]:
    """One nudge, ever, in the thread of each item left unclaimed for three days.

    Only items younger than the outbox keeps sent messages: the nudge of an
    older one (sent at three days) may have been forgotten since, and would be
    planned again every time it was."""
    now = clock.now()
    unclaimed = session.exec(
        select(Item).where(
            Item.team_id == team_id,
            Item.status == Status.OPEN,
            col(Item.owner_id).is_(None),
            col(Item.origin_channel_id).is_not(None),
            col(Item.created_at) <= now - NUDGE_AFTER,
            col(Item.created_at) > now - outbox.KEEP_DELIVERED,
        )
    ).all()
    if not unclaimed:
        return
    done = _already(session, team_id, Kind.NUDGE, {item.created_at.date() for item in unclaimed})
    for item in unclaimed:
        subject = f"item:{item.id}"
        if (item.origin_channel_id, subject, item.created_at.date()) in done:
            continue
        yield Planned(
            team_id, str(item.origin_channel_id), Kind.NUDGE, subject, item.created_at.date(),
            *_nudge(item, now=now, rules=rules), thread_ts=item.origin_thread_ts,
        )


def _nudge(item: Item, *, now: datetime, rules: Rules) -> tuple[str, list[dict[str, Any]]]:
    label = rules.label(item.number)
    text = f":wave: *{label}* has waited {(now - item.created_at).days} days for an owner. `/poam claim {label}` takes it."
    return text, [section(text)]


def plan_digests(session: Session, *, team_id: str, clock: Clock, rules: Rules) -> Iterator[Planned]:
    """A channel's digest once a week (its local Monday to Sunday, in
    ``rules.timezone``), on its day and at its time: moved to a later day
    after this week's went out, it waits for the next week. One missed (no
    tick ran from its time to midnight: the scheduler was down; or moved to
    a day already past before this week's went out) goes out later that
    week, unless the channel subscribed after it was due."""
    local = clock.now().astimezone(rules.timezone)
    subscriptions = session.exec(select(DigestSubscription).where(DigestSubscription.team_id == team_id)).all()
    monday = local.date() - timedelta(days=local.weekday())
    week = {monday + timedelta(days=offset) for offset in range(7)}
    done = {channel for channel, subject, _ in _already(session, team_id, Kind.DIGEST, week) if subject == "weekly"}
    message: tuple[str, list[dict[str, Any]]] | None = None  # the same for every channel: built once
    for subscription in subscriptions:
        due_at = datetime.combine(monday + timedelta(days=subscription.weekday), subscription.post_at,
                                  tzinfo=rules.timezone)
        due = local.weekday() == subscription.weekday and local.time() >= subscription.post_at or (
            local.weekday() > subscription.weekday and subscription.created_at <= due_at)
        if not due or subscription.channel_id in done:
            continue
        message = message or digest_message(session, team_id=team_id, clock=clock, rules=rules)
        yield Planned(team_id, subscription.channel_id, Kind.DIGEST, "weekly", local.date(), *message,
                      requested_by=subscription.created_by)


def restated(session: Session, row: OutboxMessage, *, clock: Clock, rules: Rules,
             default_tz: ZoneInfo) -> tuple[str, list[dict[str, Any]]] | None:
    """What a planned message that waited (Slack down, rate limited) says now
    (``dispatch.RESTATE_AFTER``), from what is true now; None when it has
    nothing to say any more. Sent as planned, it told an owner of an item
    reassigned or closed meanwhile that it was overdue, DMed someone who had
    turned reminders off, nudged a channel to claim a claimed item, and
    posted a digest in a channel unsubscribed meanwhile. A morning DM is for
    its own day (the next morning's says it all). Only for rows the planner
    wrote (:data:`PLANNED_KINDS`): a change's DMs say what the change did."""
    if row.kind == Kind.REMINDER:
        person = session.exec(select(Person).where(Person.team_id == row.team_id,
                                                   Person.user_id == row.recipient)).first()
        tz = _zone(person.tz if person else None, default_tz)
        if not _wants_reminders(person) or clock.now().astimezone(tz).date() != row.local_day:
            return None
        return reminder_message(session, load_actor(session, team_id=row.team_id, user_id=row.recipient, tz=tz,
                                                    clock=clock, rules=rules))
    if row.kind == Kind.NUDGE:
        item = session.get(Item, int(row.subject.removeprefix("item:")))
        if item is None or item.team_id != row.team_id or item.status != Status.OPEN or item.owner_id is not None:
            return None
        return _nudge(item, now=clock.now(), rules=rules)
    assert row.kind == Kind.DIGEST, row.kind
    subscribed = session.exec(select(DigestSubscription.channel_id).where(
        DigestSubscription.team_id == row.team_id, DigestSubscription.channel_id == row.recipient)).first()
    return digest_message(session, team_id=row.team_id, clock=clock, rules=rules) if subscribed else None


def plan(session: Session, *, clock: Clock, rules: Rules, default_tz: ZoneInfo) -> list[Planned]:
    """Everything due for sending now, across workspaces, not yet planned."""
    planned: list[Planned] = []
    for team_id in session.exec(select(Workspace.team_id).order_by(col(Workspace.team_id))).all():
        planned += plan_reminders(session, team_id=team_id, clock=clock, rules=rules, default_tz=default_tz)
        planned += plan_nudges(session, team_id=team_id, clock=clock, rules=rules)
        planned += plan_digests(session, team_id=team_id, clock=clock, rules=rules)
    return planned


def enqueue(session: Session, planned: list[Planned], *, now: datetime) -> int:
    """Write planned messages to the outbox; returns how many were new. A
    person's new morning DM supersedes an earlier one still waiting."""
    reminded: dict[tuple[str, date], list[str]] = {}  # by workspace and local day: a statement each
    for reminder in (p for p in planned if p.kind == Kind.REMINDER):
        reminded.setdefault((reminder.team_id, reminder.local_day), []).append(reminder.recipient)
    for (team_id, day), recipients in reminded.items():
        outbox.supersede(session, team_id=team_id, recipients=recipients, kind=Kind.REMINDER, day=day)
    return sum(
        outbox.insert_once(
            session,
            team_id=p.team_id,
            recipient=p.recipient,
            kind=p.kind,
            subject=p.subject,
            local_day=p.local_day,
            text=p.text,
            blocks=p.blocks,
            thread_ts=p.thread_ts,
            requested_by=p.requested_by,
            next_attempt_at=now,
            created_at=now,
        ) is not None
        for p in planned
    )
