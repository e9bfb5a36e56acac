"""The morning DM: one message with everything that needs this person today.

For everyone: their milestones due within 7 days, their overdue items and
those due within 7 days (one with no milestone had no word before it was late), fixes
waiting on them as verifier, vendor check-ins older than 30 days. For an
authorizing official also: plans and requests awaiting them, risk acceptances
ending within 30 days, and items more than 7 days overdue (escalation).
Snoozed items are left out. Nothing due → no message.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, or_, union
from sqlmodel import Session, col, select

from bot.blockkit.blocks import day, header, lines_within, section, sections
from bot.blockkit.text import clip, escape, mention
from bot.poam import review
from bot.poam.actor import Actor, Role
from bot.poam.item_lists import overdue_condition
from bot.poam.lifecycle import ACTIVE, NOT_CLOSED, Action, Status, allowed_from
from bot.store.models import InfoSystem, Item, Milestone
from bot.store.rows import in_chunks

#: What is "due this week", in the morning DM and the digest alike: the seven days from today.
SOON = timedelta(days=7)
VENDOR_CHECKIN_EVERY = timedelta(days=30)
RISK_ENDING = timedelta(days=30)
ESCALATE_AFTER = timedelta(days=7)
LIST_LIMIT = 10
#: Where ``/poam vendor`` may record a check-in.
VENDOR_STATUSES = allowed_from(Action.VENDOR)


def _line(actor: Actor, item: Item, tail: str) -> str:
    return f"• *{actor.rules.label(item.number)}* {escape(clip(item.title, 120))} — {tail}"


def _capped(lines: list[str], shown: int) -> list[str]:
    if len(lines) <= shown:
        return lines
    return lines[:shown] + ["…and more: `/poam list`."]


def _not_snoozed(actor: Actor) -> Any:
    return or_(col(Item.snoozed_until).is_(None), col(Item.snoozed_until) < actor.today())


def _sections(titled: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """A section per title with lines, each list cut to what the message has room for."""
    shown = lines_within([lines for _, lines in titled], most=LIST_LIMIT)
    return [block for (title, lines), count in zip(titled, shown, strict=True) if lines
            for block in sections([f"*{title}*", *_capped(lines, count)])]


def needing_attention(team_id: str, today: date) -> CompoundSelect:
    """The ids of the items with something for their owner's DM on ``today``:
    overdue or due within a week, a milestone due within a week (or late), or
    a vendor check-in due.

    A UNION of three sets, each read from its own index
    (``ix_items_team_status_due``, ``ix_milestones_team_open_due``,
    ``ix_items_team_vendor``), so the cost follows the work due, not the size
    of the POA&M: as one OR on the items, the databases walk every owned item
    instead. The partial indexes are used only while these terms stay as written.
    """
    due_soon = select(Item.id).where(Item.team_id == team_id, overdue_condition(today + SOON))  # or overdue
    milestone_soon = select(Milestone.item_id).where(
        Milestone.team_id == team_id, col(Milestone.completed_at).is_(None), col(Milestone.due_on) < today + SOON
    )
    vendor_due = select(Item.id).where(
        Item.team_id == team_id,
        col(Item.vendor_dependency),
        col(Item.status).in_(NOT_CLOSED),
        or_(col(Item.last_vendor_checkin_on).is_(None), col(Item.last_vendor_checkin_on) < today - VENDOR_CHECKIN_EVERY),
    )
    return union(due_soon, milestone_soon, vendor_due)


def reminder_message(session: Session, actor: Actor) -> tuple[str, list[dict[str, Any]]] | None:
    """The DM's text and blocks, or None when nothing needs this person."""
    today = actor.today()
    mine = session.exec(
        select(Item)
        .where(
            Item.team_id == actor.team_id,
            Item.owner_id == actor.user_id,
            col(Item.status).in_(ACTIVE | {Status.RISK_ACCEPTED}),
            _not_snoozed(actor),
            col(Item.id).in_(needing_attention(actor.team_id, today)),
        )
        .order_by(col(Item.due_on))
    ).all()
    by_id = {item.id: item for item in mine}
    overdue = [_line(actor, i, f"due {day(i.due_on)}, *{(today - i.due_on).days}d overdue*")
               for i in mine if i.status in ACTIVE and i.due_on < today]
    # Milestones of the items whose dates count: not while a risk is accepted (as the card says).
    milestones = sorted((  # an IN list per chunk: one person may own tens of thousands of items
        milestone
        for chunk in in_chunks([item_id for item_id, item in by_id.items() if item.status in ACTIVE])
        for milestone in session.exec(select(Milestone).where(
            Milestone.team_id == actor.team_id,
            col(Milestone.item_id).in_(chunk),
            col(Milestone.completed_at).is_(None),
            col(Milestone.due_on) < today + SOON,
        ))
    ), key=lambda milestone: milestone.due_on)
    upcoming = [
        _line(actor, by_id[m.item_id], f"M{m.number} {escape(clip(m.description, 100))}, "
              + ("*due today*" if m.due_on == today else f"*late since {day(m.due_on)}*" if m.due_on < today else f"due {day(m.due_on)}"))
        for m in milestones
    ]
    with_milestones = {milestone.item_id for milestone in milestones}  # listed there already
    due_soon = [_line(actor, i, "*due today*" if i.due_on == today else f"due {day(i.due_on)}")
                for i in mine if i.status in ACTIVE and today <= i.due_on < today + SOON and i.id not in with_milestones]
    vendor = [
        _line(actor, i, "last vendor check-in " + (day(i.last_vendor_checkin_on) if i.last_vendor_checkin_on else "never")
              + f" — `/poam vendor {actor.rules.label(i.number)} checkin` (or `shipped`)")
        for i in mine
        if i.vendor_dependency and (i.last_vendor_checkin_on is None or i.last_vendor_checkin_on < today - VENDOR_CHECKIN_EVERY)
        and i.status in VENDOR_STATUSES  # not while a fix waits on its verifier: the command would refuse
    ]
    waiting = review.waiting_on(session, actor, limit=LIST_LIMIT + 1)
    to_verify = [_line(actor, item, f"fix submitted by {mention(r.requested_by)}") for item, r in waiting.verifications]
    to_decide = [_line(actor, item, f"request from {mention(r.requested_by)}") for item, r in waiting.decisions]
    plans = [_line(actor, item, "plan awaiting your approval") for item in waiting.plans]
    ending, escalations = _ao_lines(session, actor) if waiting.is_ao else ([], [])

    blocks = _sections([
        ("Milestones due this week", upcoming),
        ("Overdue", overdue),
        ("Due this week", due_soon),
        ("Waiting on you to verify", to_verify),
        ("Waiting on your decision", to_decide),
        ("Plans to approve", plans),
        ("Risk acceptances ending within 30 days", ending),
        ("Escalations: more than 7 days overdue", escalations),
        ("Vendor check-ins due", vendor),
    ])
    if not blocks:
        return None
    example = actor.rules.label(mine[0].number if mine else 12)  # an id as this deployment writes them
    intro = [header(f"Your POA&M for {day(today)}"), section(
        f"Here is what needs you today. `/poam remind off` stops these; `/poam snooze {example} 3d` quiets one item.")]
    return f"Your POA&M for {day(today)}", intro + blocks


def _ao_lines(session: Session, actor: Actor) -> tuple[list[str], list[str]]:
    """Risk acceptances ending soon and escalations, in the systems this AO answers for."""
    today = actor.today()
    scope = [col(Item.team_id) == actor.team_id]
    if Role.AO not in actor.roles:
        scope.append(
            col(Item.system_id).in_(
                select(InfoSystem.id).where(InfoSystem.team_id == actor.team_id, InfoSystem.ao_user_id == actor.user_id)
            )
        )
    ending = session.exec(
        select(Item)
        .where(*scope, Item.status == Status.RISK_ACCEPTED, col(Item.risk_accepted_until) <= today + RISK_ENDING)
        .order_by(col(Item.risk_accepted_until))
        .limit(LIST_LIMIT + 1)
    ).all()
    late = session.exec(
        select(Item)
        .where(*scope, col(Item.status).in_(ACTIVE), col(Item.due_on) < today - ESCALATE_AFTER)
        .order_by(col(Item.due_on))
        .limit(LIST_LIMIT + 1)
    ).all()
    # The command that renews one, where this AO may (not on an item they worked on).
    apart = [actor.user_id not in worked.everyone for worked in review.remediators_of_items(session, items=ending)]
    return (
        [_line(actor, i, f"accepted until {day(i.risk_accepted_until)}" + (
            escape(f" — `/poam accept-risk {actor.rules.label(i.number)} until:<date> <why>` renews it")
            if may else ""))
         for i, may in zip(ending, apart, strict=True) if i.risk_accepted_until],
        [_line(actor, i, f"{(today - i.due_on).days}d overdue, owner " + (mention(i.owner_id) if i.owner_id else "_none_")) for i in late],
    )
