"""What the bot knows about people: time zone, name and reminder preferences."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, literal, or_, update
from sqlmodel import Session, col, select

from bot.poam import audit
from bot.poam.actor import Actor, Role
from bot.poam.clock import Clock
from bot.poam.errors import InvalidInput
from bot.poam.presence import unreachable
from bot.poam.roles import role_holders
from bot.poam.systems import ensure_workspace
from bot.store.counters import lock_workspace
from bot.store.dialects import upsert_insert
from bot.store.models import Person, Workspace
from bot.store.types import UTCDateTime


def remember_person(
    session: Session, *, team_id: str, user_id: str, tz: ZoneInfo, name: str | None, clock: Clock,
    seen_at: datetime | None = None, known_only: bool = False, left: bool = False, slack_admin: bool | None = None,
    bot: bool | None = None,
) -> None:
    """Record the time zone (the reminder planner's only source) and the name
    (the exports') Slack reported for a user at ``seen_at`` (default: now);
    an unknown name keeps the one on record. ``left``: Slack says they are
    deactivated (``left_at`` keeps when it first said so); otherwise they are
    active, and a ``left_at`` on record is cleared. ``slack_admin``: whether
    Slack says they are a workspace admin or owner, ``bot`` whether a bot
    (None: it did not say).

    What Slack said later stays: a ``users.info`` answer asked for before a
    ``user_change`` event was handled (in this process or another) may tell
    of the person before the change; each write is one statement that checks
    ``slack_seen_at`` as it writes, so that two processes cannot interleave.
    Nothing is recorded for a workspace that has no POA&M yet; with
    ``known_only`` (profile change events, which come for everyone), only
    people already on record are updated, and only when something changed
    (or their record has no ``slack_seen_at`` yet).
    """
    if session.get(Workspace, team_id) is None:
        return
    at = seen_at or clock.now()
    known = {"tz": tz.key, **({"name": name} if name else {}),
             **({"slack_admin": slack_admin} if slack_admin is not None else {}),
             **({"is_bot": bot} if bot is not None else {})}
    left_at = col(Person.left_at)
    changes = {**known, "slack_seen_at": at, "updated_at": clock.now(),
               "left_at": func.coalesce(left_at, literal(at, UTCDateTime(timezone=True))) if left else None}
    on_record = col(Person.slack_seen_at)
    not_later = on_record.is_(None) | (on_record <= at)
    if known_only:
        differs = [col(getattr(Person, key)).is_distinct_from(value) for key, value in known.items()]
        differs.append(left_at.is_(None) if left else left_at.is_not(None))
        session.exec(  # type: ignore[call-overload]
            update(Person)
            .where(col(Person.team_id) == team_id, col(Person.user_id) == user_id, not_later,
                   or_(on_record.is_(None), *differs))
            .values(**changes)
        )
        return
    statement = upsert_insert(session, Person).values(
        team_id=team_id, user_id=user_id, **{**changes, "left_at": at if left else None}
    )
    session.exec(  # type: ignore[call-overload]
        statement.on_conflict_do_update(index_elements=["team_id", "user_id"], set_=changes, where=not_later)
    )


def mark_bot(session: Session, *, team_id: str, user_id: str, now: datetime) -> None:
    """Record that Slack refused a DM to ``user_id`` as to a bot
    (``cannot_dm_bot``): named before the bot knew bots (or before its
    look-up), it gets no more reminders and is refused from now on."""
    statement = upsert_insert(session, Person).values(team_id=team_id, user_id=user_id, is_bot=True, updated_at=now)
    session.exec(statement.on_conflict_do_update(  # type: ignore[call-overload]
        index_elements=["team_id", "user_id"], set_={"is_bot": True, "updated_at": now}
    ))


def recorded_zone(session: Session, *, team_id: str, user_id: str) -> ZoneInfo | None:
    """The time zone Slack last reported for someone, as on record; None when
    none is (or this machine does not know it)."""
    name = session.exec(select(Person.tz).where(Person.team_id == team_id, Person.user_id == user_id)).first()
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def preferences(session: Session, actor: Actor) -> Person:
    """The actor's reminder preferences (the defaults when never set)."""
    return session.get(Person, (actor.team_id, actor.user_id)) or Person(
        team_id=actor.team_id, user_id=actor.user_id, updated_at=actor.now()
    )


def set_preferences(
    session: Session, actor: Actor, *, remind_at: time | None = None, on: bool | None = None
) -> Person:
    """Change when (and whether) the actor gets their morning DM."""
    if remind_at is not None and remind_at.second:
        raise InvalidInput("Give the time as hours and minutes, like 08:30.")
    ensure_workspace(session, actor)
    # The workspace row before the person's (PostgreSQL), as a departure takes them (``user_events``).
    lock_workspace(session, team_id=actor.team_id)
    person = session.get(Person, (actor.team_id, actor.user_id))
    if person is None:
        person = Person(team_id=actor.team_id, user_id=actor.user_id, updated_at=actor.now())
        session.add(person)
    if person.tz is None:
        # Only fills a gap: the actor's zone may be the workspace default used
        # when Slack could not answer, which must not replace one Slack gave.
        person.tz = actor.tz.key
    changes: dict[str, object] = {}
    if remind_at is not None and remind_at != person.remind_at:
        changes["remind_at"] = {"from": f"{person.remind_at:%H:%M}", "to": f"{remind_at:%H:%M}"}
        person.remind_at = remind_at
    if on is not None and on != person.reminders_on:
        changes["reminders_on"] = {"from": person.reminders_on, "to": on}
        person.reminders_on = on
    person.updated_at = actor.now()
    session.flush()
    if changes:  # "who changed what, when, from what to what" (DOMAIN.md), settings included
        audit.record(session, actor, action="reminders.changed", details=changes)
    return person


def admins(session: Session, *, team_id: str, configured: Collection[str] = ()) -> set[str]:
    """The workspace's POA&M admins who would read a DM: granted, ``configured``
    (``POAM_ADMINS``), or Slack's workspace admins and owners as far as
    Slack described them; none who left or is a bot."""
    granted = role_holders(session, team_id=team_id, role=Role.ADMIN)
    slack_admins = session.exec(
        select(Person.user_id).where(Person.team_id == team_id, col(Person.slack_admin))
    ).all()
    everyone = {*granted, *slack_admins, *configured}
    return everyone - unreachable(session, team_id=team_id, user_ids=everyone)
