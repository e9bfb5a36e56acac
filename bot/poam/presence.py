"""Whether someone named for work is a person still in Slack.

Slack takes a message to a deactivated person without an error, so an item
assigned to them, a system whose AO they are named or a role given to them
would wait on nobody; so would one given to a bot. Who left and who is a bot
is known from Slack (``Person.left_at``, ``Person.is_bot``,
``reminders.departures``); someone the bot has no record of is taken as
a person here (their record comes after the change: ``commands.named_people``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import Session, col, select

from bot.poam.actor import Actor
from bot.poam.errors import InvalidInput
from bot.store.counters import lock_workspace
from bot.store.models import Person

#: Slackbot's user id: Slack describes it as no bot (``is_bot`` false).
SLACKBOT = "USLACKBOT"


def unreachable(session: Session, *, team_id: str, user_ids: Collection[str | None]) -> set[str]:
    """Those of ``user_ids`` nobody would reach: Slack said they were
    deactivated (nobody reads what they are sent) or are bots (Slack refuses
    a DM to one; Slackbot too), so none is asked, told or waited on."""
    wanted = {user for user in user_ids if user}
    if not wanted:
        return set()
    return {SLACKBOT} & wanted | set(session.exec(
        select(Person.user_id).where(Person.team_id == team_id, col(Person.user_id).in_(wanted),
                                     col(Person.left_at).is_not(None) | col(Person.is_bot))
    ).all())


def left_at(session: Session, *, team_id: str, user_id: str) -> datetime | None:
    """When Slack first said ``user_id`` was deactivated; None while they are here (or unknown)."""
    return session.exec(
        select(col(Person.left_at)).where(Person.team_id == team_id, Person.user_id == user_id)
    ).first()


def require_present(session: Session, actor: Actor, user_id: str, *, as_what: str) -> None:
    """Refuse ``user_id`` as ``as_what`` ("the owner") once Slack said they
    were deactivated, or are a bot.

    Read holding the workspace row (PostgreSQL), as the telling of a
    departure does (``commands.user_events``): a change naming someone whose
    departure is being recorded meanwhile is either refused, or done before
    what they held is read for the admins' note, never neither. A change of
    an item locks the item first (``items.load_item``), as every item change
    does before its audit event takes the workspace row."""
    lock_workspace(session, team_id=actor.team_id)
    record = session.exec(
        select(col(Person.left_at), col(Person.is_bot)).where(Person.team_id == actor.team_id,
                                                               Person.user_id == user_id)
    ).first()
    left, bot = record if record is not None else (None, False)
    if bot or user_id == SLACKBOT:
        raise InvalidInput(f"That is a bot, not a person: nobody would do what {as_what} is asked; choose a person.")
    if left is not None:
        raise InvalidInput(
            f"That person was deactivated in Slack (on {left.astimezone(actor.tz):%Y-%m-%d}), so nobody would "
            f"hear what {as_what} is asked; choose someone who is still here."
        )
