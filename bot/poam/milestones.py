"""Milestones of an item: add, complete, move.

A milestone's first planned date never changes. Completing or moving one,
or adding one after the plan was approved, writes a :class:`MilestoneChange`
(FedRAMP's "Milestone Changes" column) with who, when, the old and new dates
and why.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlmodel import Session, col, func, select

from bot.poam import audit
from bot.poam.actor import Actor
from bot.poam.errors import InvalidInput, InvalidState, NotFound, about
from bot.poam.items import load_item, touch, withdraw_plan_approval
from bot.poam.lifecycle import Action, transition
from bot.poam.permissions import require_owner
from bot.poam.review import RequestKind, RequestStatus
from bot.poam.text import clean_text
from bot.store.models import Item, Milestone, MilestoneChange, ReviewRequest

MAX_DESCRIPTION = 1_000
MAX_REASON = 2_000
MAX_MILESTONES = 50


class ChangeKind(StrEnum):
    """The FedRAMP words for a milestone change."""

    NEW = "new"
    UPDATE = "update"
    COMPLETE = "complete"


def completion_note(milestone: int) -> str:
    """The reason a milestone change of completing ``milestone`` gives when its note is blank."""
    return f"Milestone M{milestone} completed."


def editable_item(session: Session, actor: Actor, *, number: int, doing: str) -> Item:
    """The item, locked, if the actor may change its milestones now (else a refusal).

    Also what a form asks before it opens, so nobody fills one in to be refused.
    """
    item = load_item(session, actor, number=number, for_update=True)
    require_owner(actor, item, doing)
    transition(Action.EDIT_PLAN, item.status, item_label=actor.rules.label(number))
    return item


def _load_milestone(session: Session, actor: Actor, item: Item, milestone: int) -> Milestone:
    found = session.exec(
        select(Milestone).where(
            Milestone.team_id == actor.team_id,
            Milestone.item_id == item.id,
            Milestone.number == milestone,
        )
    ).first()
    if found is None:
        raise NotFound(f"{actor.rules.label(item.number)} has no milestone M{milestone}.")
    return found


def _check_due(actor: Actor, item: Item, due_on: date) -> None:
    today = actor.today()
    if due_on < today:
        raise InvalidInput(f"The milestone date {due_on} is in the past; today is {today}.", field="due_on")
    if due_on > item.due_on:
        raise InvalidInput(
            f"The milestone date {due_on} is after {actor.rules.label(item.number)}'s due date "
            f"({item.due_on}); a later date needs an extension approved by the authorizing official.",
            field="due_on",
        )


def open_after_due(session: Session, item: Item) -> list[Milestone]:
    """The item's open milestones dated after its due date: a raised rating's
    shorter deadline leaves them there (no milestone may be moved or added
    there), for the owner to move or to ask an extension for."""
    return list(session.exec(select(Milestone).where(
        Milestone.team_id == item.team_id, Milestone.item_id == item.id, col(Milestone.completed_at).is_(None),
        col(Milestone.due_on) > item.due_on,
    ).order_by(col(Milestone.number))))


def _record_change(
    session: Session,
    actor: Actor,
    item: Item,
    milestone: Milestone,
    *,
    kind: str,
    old_due_on: date | None,
    new_due_on: date | None,
    reason: str,
) -> MilestoneChange:
    last = session.exec(
        select(func.max(MilestoneChange.seq)).where(
            MilestoneChange.team_id == actor.team_id, MilestoneChange.item_id == item.id
        )
    ).one()
    change = MilestoneChange(
        team_id=actor.team_id,
        item_id=item.id,  # type: ignore[arg-type]
        milestone_id=milestone.id,  # type: ignore[arg-type]
        seq=(last or 0) + 1,
        kind=kind,
        old_due_on=old_due_on,
        new_due_on=new_due_on,
        reason=reason,
        changed_by=actor.user_id,
        changed_at=actor.now(),
    )
    session.add(change)
    return change


def _plan_ever_approved(session: Session, item: Item) -> bool:
    if item.plan_approved_at is not None:
        return True
    return session.exec(
        select(func.count()).where(
            ReviewRequest.team_id == item.team_id, ReviewRequest.item_id == item.id,
            ReviewRequest.kind == RequestKind.PLAN_APPROVAL, ReviewRequest.status == RequestStatus.APPROVED,
        )
    ).one() > 0


def add_milestone(
    session: Session, actor: Actor, *, number: int, description: str, due_on: date
) -> Milestone:
    """Add a milestone to an item (owner only). Before the authorizing official
    first approves its plan, the milestone is part of that plan (the
    template's Planned Milestones); after, it changes the plan, and is
    recorded as a "New" milestone change too."""
    with about("description"):
        description = clean_text(description, field="The milestone", limit=MAX_DESCRIPTION)
    item = editable_item(session, actor, number=number, doing="add milestones")
    _check_due(actor, item, due_on)
    count = session.exec(
        select(func.count(), func.max(Milestone.number)).where(
            Milestone.team_id == actor.team_id, Milestone.item_id == item.id
        )
    ).one()
    if count[0] >= MAX_MILESTONES:
        raise InvalidInput(f"{actor.rules.label(number)} already has {MAX_MILESTONES} milestones.")
    milestone = Milestone(
        team_id=actor.team_id,
        item_id=item.id,  # type: ignore[arg-type]
        number=(count[1] or 0) + 1,
        description=description,
        planned_due_on=due_on,
        due_on=due_on,
        created_by=actor.user_id,
        created_at=actor.now(),
    )
    session.add(milestone)
    if _plan_ever_approved(session, item):  # the approved plan is the baseline: later milestones change it
        session.flush()
        _record_change(session, actor, item, milestone, kind=ChangeKind.NEW, old_due_on=None, new_due_on=due_on,
                       reason=description)
    withdrawn = withdraw_plan_approval(item)
    touch(item, actor)
    audit.record(
        session, actor, action="milestone.added", item_id=item.id,
        details={"milestone": milestone.number, "description": description, "due_on": due_on, **withdrawn},
    )
    return milestone


def complete_milestone(
    session: Session, actor: Actor, *, number: int, milestone: int, note: str | None = None
) -> Milestone:
    """Mark a milestone done (owner only); records a "Complete" change."""
    note = clean_text(note, field="The note", limit=MAX_REASON, required=False)
    item = editable_item(session, actor, number=number, doing="complete milestones")
    found = _load_milestone(session, actor, item, milestone)
    if found.completed_at is not None:
        raise InvalidState(f"M{milestone} of {actor.rules.label(number)} is already complete.")
    found.completed_at = actor.now()
    found.completed_by = actor.user_id
    today = actor.today()
    _record_change(
        session, actor, item, found,
        kind=ChangeKind.COMPLETE, old_due_on=found.due_on, new_due_on=today,
        reason=note or completion_note(milestone),
    )
    touch(item, actor)
    audit.record(
        session, actor, action="milestone.completed", item_id=item.id,
        details={"milestone": milestone, "due_on": found.due_on, "completed_on": today, "note": note},
    )
    return found


def move_milestone(
    session: Session, actor: Actor, *, number: int, milestone: int, due_on: date, reason: str
) -> Milestone:
    """Move a milestone to a new date with a reason (owner only).

    The first planned date stays in ``planned_due_on``; the move is an
    "Update" milestone change.
    """
    reason = clean_text(reason, field="The reason", limit=MAX_REASON)
    item = editable_item(session, actor, number=number, doing="move milestones")
    found = _load_milestone(session, actor, item, milestone)
    if found.completed_at is not None:
        raise InvalidState(f"M{milestone} of {actor.rules.label(number)} is complete; it cannot move.")
    if due_on == found.due_on:
        raise InvalidInput(f"M{milestone} is already due {due_on}.", field="due_on")
    _check_due(actor, item, due_on)
    old = found.due_on
    found.due_on = due_on
    _record_change(
        session, actor, item, found, kind=ChangeKind.UPDATE, old_due_on=old, new_due_on=due_on, reason=reason
    )
    withdrawn = withdraw_plan_approval(item)
    touch(item, actor)
    audit.record(
        session, actor, action="milestone.moved", item_id=item.id,
        details={"milestone": milestone, "due_on": {"from": old, "to": due_on}, "reason": reason, **withdrawn},
    )
    return found
