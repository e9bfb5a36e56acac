"""People who left: telling those who can hand their work on.

Slack takes a DM to a deactivated person without an error, and nobody reads
it; the bot knows someone left only when Slack says so, in a ``user_change``
event or a ``users.info`` answer (``remember_person`` keeps it as
``Person.left_at``). What they held then reaches nobody: the items they own
(their reminders), the systems they are the authorizing official of, the
review roles they hold. When they are first known to have left, the
workspace's admins and the AOs of their items' systems get one DM naming
what to hand on; the planner sends the person nothing more
(``planner.plan_reminders``), and the weekly digest lists owners who left
while they still own open items (:func:`owners_who_left`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.blockkit.blocks import sections
from bot.blockkit.text import escape, mention
from bot.poam.actor import Role, Rules
from bot.poam.lifecycle import NOT_CLOSED
from bot.poam.presence import unreachable
from bot.reminders.people import admins
from bot.store import outbox
from bot.store.models import InfoSystem, Item, Person, RoleGrant

log = logging.getLogger(__name__)

#: The outbox kind of the DM saying someone left.
KIND = "departure"
#: Items (and systems) named in that DM; the rest are counted.
NAMED_ITEMS = 10


@dataclass(frozen=True)
class Holdings:
    """What someone who left held that now reaches nobody."""

    #: The numbers of the first :data:`NAMED_ITEMS` open items they own, and how many they own.
    items: list[int]
    item_count: int
    #: The names of the systems they are the named AO of.
    systems: list[str]
    #: The review roles granted to them.
    roles: list[Role]

    @property
    def anything(self) -> bool:
        return bool(self.item_count or self.systems or self.roles)


def _owned(team_id: str, user_id: str, *, in_systems_of: str | None = None) -> tuple[Any, ...]:
    """Their open items; with ``in_systems_of``, those in the systems that AO is named for."""
    owned = (Item.team_id == team_id, Item.owner_id == user_id, col(Item.status).in_(NOT_CLOSED))
    if in_systems_of is None:
        return owned
    return (*owned, col(Item.system_id).in_(
        select(InfoSystem.id).where(InfoSystem.team_id == team_id, InfoSystem.ao_user_id == in_systems_of)
    ))


def holdings(session: Session, *, team_id: str, user_id: str, in_systems_of: str | None = None) -> Holdings:
    owned = _owned(team_id, user_id, in_systems_of=in_systems_of)
    item_count = session.exec(select(func.count()).select_from(Item).where(*owned)).one()
    items = session.exec(select(Item.number).where(*owned).order_by(col(Item.number)).limit(NAMED_ITEMS)).all()
    if in_systems_of is not None:  # an AO is told of the items they answer for, no more
        return Holdings(list(items), item_count, [], [])
    systems = session.exec(
        select(InfoSystem.name).where(InfoSystem.team_id == team_id, InfoSystem.ao_user_id == user_id)
        .order_by(col(InfoSystem.name))
    ).all()
    roles = session.exec(
        select(RoleGrant.role).where(RoleGrant.team_id == team_id, RoleGrant.user_id == user_id)
    ).all()
    return Holdings(list(items), item_count, list(systems), sorted(Role(role) for role in roles))


def tell_of_departure(
    session: Session, *, team_id: str, user_id: str, rules: Rules, configured_admins: Collection[str],
    now: datetime, local_day: date,
) -> int:
    """Queue the DM saying ``user_id`` left to the workspace's admins (granted,
    configured, or Slack's workspace admins and owners the bot has seen: all
    they held, and how to hand it on) and to the named AOs
    of their items' systems who are not admins (the items they answer for:
    only an admin reassigns), none of whom left; nothing when they held
    nothing. Returns how many were queued (once a day each, whoever else
    queues it)."""
    held = holdings(session, team_id=team_id, user_id=user_id)
    if not held.anything:
        return 0
    present_admins = admins(session, team_id=team_id, configured=configured_admins) - {user_id}
    item_aos = {ao for ao in session.exec(
        select(InfoSystem.ao_user_id).distinct().where(
            col(InfoSystem.id).in_(select(Item.system_id).where(*_owned(team_id, user_id))),
        )
    ).all() if ao} - present_admins - {user_id}
    item_aos -= unreachable(session, team_id=team_id, user_ids=item_aos)
    messages = {admin: departure_message(user_id, held, rules, admin=True) for admin in present_admins}
    for ao in item_aos:
        messages[ao] = departure_message(
            user_id, holdings(session, team_id=team_id, user_id=user_id, in_systems_of=ao), rules, admin=False)
    if not messages:
        log.warning("%s left Slack holding POA&M work in %s, and there is no admin or AO to tell", user_id, team_id)
    return sum(
        outbox.insert_once(session, team_id=team_id, recipient=recipient, kind=KIND, subject=f"person:{user_id}",
                           local_day=local_day, text=lines[0], blocks=sections(lines), next_attempt_at=now,
                           created_at=now) is not None
        for recipient, lines in sorted(messages.items())
    )


def departure_message(user_id: str, held: Holdings, rules: Rules, *, admin: bool) -> list[str]:
    """What an admin (everything they held, with the commands that hand it
    on) or an AO (the open items in their systems) is told."""
    lines = [f":wave: {mention(user_id)} is no longer active in Slack (deactivated), "
             "so nothing the POA&M asks of them reaches anyone:"]
    if held.item_count:
        labels = ", ".join(rules.label(number) for number in held.items)
        more = f" and {held.item_count - len(held.items)} more" if held.item_count > len(held.items) else ""
        where = "" if admin else " in the systems you are the authorizing official of"
        how = (f"`/poam assign {rules.label(held.items[0])} @someone` hands one on." if admin
               else "An admin hands them on with `/poam assign`.")
        lines.append(f"• they own {held.item_count} open item{'s' if held.item_count != 1 else ''}{where}: "
                     f"{labels}{more}. {how}")
    for name in held.systems[:NAMED_ITEMS]:  # a message of a hundred systems is one Slack refuses
        lines.append(f"• they are the authorizing official of *{escape(name)}*. "
                     f"`/poam system set {escape(name)} ao:@someone` names another.")
    if len(held.systems) > NAMED_ITEMS:
        lines.append(f"• and of {len(held.systems) - NAMED_ITEMS} more systems: `/poam systems` lists every "
                     "system with its AO.")
    for role in held.roles:  # their id as typed: Slack offers no mention of someone deactivated
        lines.append(f"• they are {role.noun}: `/poam role {user_id} -{role.value}` takes it back.")
    return lines


def owners_who_left(session: Session, *, team_id: str, limit: int) -> tuple[list[tuple[str, int]], int]:
    """Up to ``limit`` people who left and still own open items, with how
    many each (most first), and how many such people there are."""
    owned = (
        select(Item.owner_id, func.count().label("open_items"))
        .join(Person, (col(Person.team_id) == col(Item.team_id)) & (col(Person.user_id) == col(Item.owner_id)))
        .where(Item.team_id == team_id, col(Item.status).in_(NOT_CLOSED), col(Person.left_at).is_not(None))
        .group_by(Item.owner_id)
    )
    rows = session.exec(owned.order_by(func.count().desc(), col(Item.owner_id)).limit(limit)).all()
    total = session.exec(select(func.count()).select_from(owned.subquery())).one()
    return [(str(owner), count) for owner, count in rows], total
