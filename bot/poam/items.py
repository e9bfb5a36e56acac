"""Operations on POA&M items: log, claim, release, assign, plan, snooze, history.

Each operation is one function taking the session, the acting user and
keyword-only arguments; it checks permissions and the lifecycle, writes one
audit event and raises a typed error (``bot.poam.errors``) when it refuses.
The caller owns the transaction (``bot.store.engine.unit_of_work``).

Reading an item with its details (``/poam show``, the exports) is in
``bot.poam.item_details``; lists of items (``/poam list``, the App Home) are
in ``bot.poam.item_lists``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple, NoReturn

from sqlalchemy import bindparam, case, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.poam import audit, fields
from bot.poam.actor import Actor, check_user_id
from bot.poam.dates import MAX_YEAR, MIN_YEAR
from bot.poam.errors import AlreadyClaimed, InvalidInput, InvalidState, NotFound, about
from bot.poam.lifecycle import Action, Status, moves, transition
from bot.poam.permissions import require_admin, require_owner, require_owner_or_admin
from bot.poam.presence import require_present
from bot.poam.refs import MAX_NUMBER
from bot.poam.severity import Severity
from bot.poam.systems import find_system
from bot.poam.text import clean_text, clip
from bot.store import counters
from bot.store.models import AuditEvent, Item, ItemControl, table_of
from bot.store.rows import rows_of

MAX_TITLE = 300
MAX_DESCRIPTION = 10_000
MAX_PLAN = 10_000
MAX_RESOURCES = 2_000
MAX_DETECTOR = 100


# ---------------------------------------------------------------- loading


# Built once: these run in nearly every request, and building a statement
# (and its cache key) costs more CPU than running it on an indexed lookup.
_ITEM_BY_NUMBER = select(Item).where(Item.team_id == bindparam("team_id"), Item.number == bindparam("number"))
_ITEM_BY_NUMBER_FOR_UPDATE = _ITEM_BY_NUMBER.with_for_update()


def item_description(parts: Sequence[str], note: str | None = None) -> str | None:
    """``parts`` joined and cut to what an item keeps, then ``note`` whole (it
    says what the item lacks, so the cut falls in the parts)."""
    if note is not None:
        parts = [clip("\n\n".join(parts), MAX_DESCRIPTION - len(note) - 2), note] if parts else [note]
    return clip("\n\n".join(parts), MAX_DESCRIPTION) if parts else None


def load_item(
    session: Session, actor: Actor, *, number: int, for_update: bool = False, fresh: bool = False
) -> Item:
    """Item ``number`` of the actor's workspace, or :class:`NotFound`.

    ``for_update`` locks the row (PostgreSQL) so read-modify-write operations
    on one item run one after the other. ``fresh`` overwrites a copy the
    session already holds with what the row says now.
    """
    check_number(number)
    query = _ITEM_BY_NUMBER_FOR_UPDATE if for_update else _ITEM_BY_NUMBER
    if fresh:
        query = query.execution_options(populate_existing=True)
    item = session.exec(query, params={"team_id": actor.team_id, "number": number}).first()  # type: ignore[call-overload]
    if item is None:
        raise no_such_item(actor, number)
    return item  # type: ignore[no-any-return]


def check_number(number: int) -> None:
    if not 1 <= number <= MAX_NUMBER:
        raise NotFound(f"There is no item {number} in this workspace.")


def no_such_item(actor: Actor, number: int) -> NotFound:
    return NotFound(f"There is no item {actor.rules.label(number)} in this workspace.")


def withdraw_plan_approval(item: Item) -> dict[str, str]:
    """A plan changed after the AO approved it needs approval again.

    Returns audit details saying so (empty when the plan was not approved).
    """
    if item.plan_approved_at is None:
        return {}
    item.plan_approved_at = None
    item.plan_approved_by = None
    return {"plan_approval": "withdrawn"}


def touch(item: Item, actor: Actor) -> None:
    """Mark ``item`` as changed now (its FedRAMP "Status Date") and bump its version."""
    item.updated_at = actor.now()
    item.version += 1


# ---------------------------------------------------------------- log


def log_item(
    session: Session,
    actor: Actor,
    *,
    title: str,
    severity: Severity,
    description: str | None = None,
    controls: Sequence[str] = (),
    source: fields.Source = fields.Source.SELF,
    source_identifier: str | None = None,
    assets: Sequence[str] = (),
    cves: Sequence[str] = (),
    detected_on: date | None = None,
    due_on: date | None = None,
    owner_id: str | None = None,
    system_name: str | None = None,
    origin_channel_id: str | None = None,
    origin_thread_ts: str | None = None,
    source_message_url: str | None = None,
) -> Item:
    """Log a new finding. Anyone may; the due date defaults from the deadline policy.

    A due date later than the policy allows is refused: that is an extension,
    which only the authorizing official may grant.
    """
    with about("title"):
        title = clean_text(title, field="The title", limit=MAX_TITLE)
    with about("description"):
        description = clean_text(description, field="The description", limit=MAX_DESCRIPTION, required=False)
    with about("source_identifier"):
        source_identifier = clean_text(
            source_identifier, field="The source identifier", limit=200, required=False
        )
    with about("controls"):
        control_ids = fields.controls(controls)
    with about("assets"):
        asset_ids = fields.assets(assets)
    with about("cves"):
        cve_ids = fields.cves(cves)
    if owner_id is not None:
        with about("owner_id"):
            check_user_id(owner_id, what="user (owner)")
            require_present(session, actor, owner_id, as_what="the owner")
    origin_channel_id = clean_text(origin_channel_id, field="The channel id", limit=32, required=False)
    origin_thread_ts = clean_text(origin_thread_ts, field="The message timestamp", limit=32, required=False)
    source_message_url = clean_text(source_message_url, field="The message link", limit=500, required=False)
    today = actor.today()
    detected_on = detected_on or today
    if detected_on > today:
        raise InvalidInput(
            f"The detection date {detected_on} is in the future; today is {today}.", field="detected_on"
        )
    if detected_on.year < MIN_YEAR:  # as typed dates and imports are held (the form's picker goes back to year 1)
        raise InvalidInput(f"The detection date {detected_on} is before {MIN_YEAR}; dates must fall between "
                           f"{MIN_YEAR} and {MAX_YEAR}.", field="detected_on")
    deadline = actor.rules.deadlines.due_date(severity=severity, detected_on=detected_on)
    due_on = due_on or deadline
    if due_on < detected_on:
        raise InvalidInput(
            f"The due date {due_on} is before the detection date {detected_on}.", field="due_on"
        )
    if due_on > deadline:
        raise InvalidInput(
            f"The due date {due_on} is later than the {severity} deadline ({deadline}, "
            f"{actor.rules.deadlines.days_for(severity)} days from detection); "
            "a later date needs an extension approved by the authorizing official.",
            field="due_on",
        )
    system = find_system(session, actor, name=system_name)
    now = actor.now()
    item = Item(
        team_id=actor.team_id,
        number=counters.next_item_number(session, team_id=actor.team_id),
        system_id=system.id,  # type: ignore[arg-type]
        title=title,
        description=description,
        source=source,
        source_identifier=source_identifier,
        assets=asset_ids,
        cves=cve_ids,
        severity=severity,
        status=Status.IN_PROGRESS if owner_id else Status.OPEN,
        owner_id=owner_id,
        detected_on=detected_on,
        scheduled_completion_on=due_on,
        due_on=due_on,
        origin_channel_id=origin_channel_id,
        origin_thread_ts=origin_thread_ts,
        source_message_url=source_message_url,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    session.flush()
    session.add_all(
        ItemControl(item_id=item.id, control=control, team_id=actor.team_id, position=position)  # type: ignore[arg-type]
        for position, control in enumerate(control_ids)
    )
    audit.record(
        session,
        actor,
        action="item.logged",
        item_id=item.id,
        details={
            "number": item.number,
            "title": title,
            "severity": severity,
            "system": system.name,
            "controls": control_ids,
            "source": source,
            "assets": asset_ids,
            "cves": cve_ids,
            "detected_on": detected_on,
            "due_on": due_on,
            "owner": owner_id,
        },
    )
    return item


# ---------------------------------------------------------------- ownership


_ITEMS = table_of(Item)


class ClaimedItem(NamedTuple):
    """What a claim returns: the columns it wrote, and those its answer and its
    thread post name; no more (on PostgreSQL each column read costs a Python
    object or two). A caller needing another one adds it here."""

    id: int
    number: int
    title: str
    owner_id: str
    status: str
    version: int
    updated_at: datetime
    origin_channel_id: str | None
    origin_thread_ts: str | None


_CLAIM_MOVES = moves(Action.CLAIM)
#: The status a claim found, by the one it left (each leaves a different one).
_CLAIMED_FROM = {after: before for before, after in _CLAIM_MOVES.items()}
assert len(_CLAIMED_FROM) == len(_CLAIM_MOVES)
_CLAIM = (
    update(_ITEMS)
    .where(_ITEMS.c.team_id == bindparam("workspace"), _ITEMS.c.number == bindparam("claimed_number"),
           _ITEMS.c.owner_id.is_(None), _ITEMS.c.status.in_([str(s) for s in _CLAIM_MOVES]))
    .values(owner_id=bindparam("new_owner"), version=_ITEMS.c.version + 1, updated_at=bindparam("changed_at"),
            snoozed_until=None,
            status=case({str(before): str(after) for before, after in _CLAIM_MOVES.items()}, value=_ITEMS.c.status))
    .returning(*(_ITEMS.c[name] for name in ClaimedItem._fields))
)


def claim_item(session: Session, actor: Actor, *, number: int) -> ClaimedItem:
    """Become the owner of an unowned item.

    One conditional UPDATE decides the race: of any number of simultaneous
    claimers exactly one matches ``owner_id IS NULL``; the others are told who
    won with :class:`AlreadyClaimed`. The UPDATE returns the row it wrote, so a
    claim that wins reads nothing else about the item (no ORM object, one
    statement less than reading it first).
    """
    check_number(number)
    row = rows_of(session).execute(
        _CLAIM, {"workspace": actor.team_id, "claimed_number": number, "new_owner": actor.user_id,
                 "changed_at": actor.now()},
    ).first()
    if row is None:  # read afresh: a copy this unit of work holds may predate the winner's claim
        _refuse_claim(actor, load_item(session, actor, number=number, fresh=True))
    claimed = ClaimedItem._make(row)
    loaded = session.identity_map.get(session.identity_key(Item, claimed.id))
    if loaded is not None:  # an earlier step of this unit of work read it as an object: show it the claim
        for name, value in claimed._asdict().items():
            set_committed_value(loaded, name, value)
    audit.record(
        session,
        actor,
        action="item.claimed",
        item_id=claimed.id,
        details={"owner": {"from": None, "to": actor.user_id},
                 **status_change(_CLAIMED_FROM[Status(claimed.status)], claimed.status)},
    )
    return claimed


def _refuse_claim(actor: Actor, item: Item) -> NoReturn:
    """Why a claim failed: a closed item is closed whoever owns it, as every
    other subcommand says; else who owns it."""
    label = actor.rules.label(item.number)
    if item.status == Status.CLOSED or item.owner_id is None:
        transition(Action.CLAIM, item.status, item_label=label)
        raise AlreadyClaimed(f"{label} can no longer be claimed.", owner_id=None)
    if item.owner_id == actor.user_id:
        raise AlreadyClaimed(f"You already own {label}.", owner_id=item.owner_id)
    raise AlreadyClaimed(f"{label} is already claimed by someone else.", owner_id=item.owner_id)


def release_item(session: Session, actor: Actor, *, number: int) -> Item:
    """Give an item up (its owner, or an admin): it is unowned again, and
    open (one whose risk is accepted stays so)."""
    item = load_item(session, actor, number=number, for_update=True)
    require_owner_or_admin(actor, item, "release it")
    was, item.status = item.status, transition(Action.RELEASE, item.status, item_label=actor.rules.label(number))
    previous, item.owner_id = item.owner_id, None
    touch(item, actor)
    audit.record(
        session, actor, action="item.released", item_id=item.id,
        details={"owner": {"from": previous, "to": None}, **status_change(was, item.status), **_unsnoozed(item)},
    )
    return item


def assign_item(session: Session, actor: Actor, *, number: int, owner_id: str) -> Item:
    """Set an item's owner (admins only)."""
    require_admin(actor, "assign owners")
    check_user_id(owner_id, what="user (owner)")
    item = load_item(session, actor, number=number, for_update=True)  # the item, then the workspace row, as
    require_present(session, actor, owner_id, as_what="the owner")  # every item change takes them
    label = actor.rules.label(number)
    if item.owner_id == owner_id:
        raise InvalidInput(f"{label} is already owned by that person.")
    was, item.status = item.status, transition(Action.ASSIGN, item.status, item_label=label)
    previous, item.owner_id = item.owner_id, owner_id
    touch(item, actor)
    audit.record(
        session, actor, action="item.assigned", item_id=item.id,
        details={"owner": {"from": previous, "to": owner_id}, **status_change(was, item.status), **_unsnoozed(item)},
    )
    return item


def status_change(was: str, now: str) -> dict[str, object]:
    """Audit details of a change of status (none when it stayed)."""
    return {} if was == now else {"status": {"from": str(was), "to": str(now)}}


def _unsnoozed(item: Item) -> dict[str, object]:
    """End the snooze of an item changing hands (the owner who set it is
    leaving; the next one must hear of it): the audit details saying so."""
    if item.snoozed_until is None:
        return {}
    previous, item.snoozed_until = item.snoozed_until, None
    return {"snoozed_until": {"from": previous, "to": None}}


# ---------------------------------------------------------------- plan


def set_plan(
    session: Session, actor: Actor, *, number: int, plan: str, resources: str | None = None
) -> Item:
    """Set the overall remediation plan and, when given, the resources required (owner only)."""
    plan = clean_text(plan, field="The plan", limit=MAX_PLAN)
    resources = clean_text(resources, field="The resources", limit=MAX_RESOURCES, required=False)
    item = load_item(session, actor, number=number, for_update=True)
    require_owner(actor, item, "set its plan")
    label = actor.rules.label(number)
    transition(Action.EDIT_PLAN, item.status, item_label=label)
    changes: dict[str, object] = {}
    if plan != item.remediation_plan:
        changes["plan"] = {"from": item.remediation_plan, "to": plan}
        item.remediation_plan = plan
    if resources is not None and resources != item.resources_required:
        changes["resources"] = {"from": item.resources_required, "to": resources}
        item.resources_required = resources
    if not changes:  # sent again: an approval of the plan stands
        raise InvalidInput(f"The plan of {label} is already that; nothing was changed.")
    changes.update(withdraw_plan_approval(item))
    touch(item, actor)
    audit.record(session, actor, action="item.plan_set", item_id=item.id, details=changes)
    return item


# ---------------------------------------------------------------- threads, history, snoozing


def record_thread(session: Session, *, team_id: str, number: int, channel_id: str, thread_ts: str) -> bool:
    """Remember the channel message that starts an item's thread (first one wins).

    Presentation only, so no audit event: it changes nothing about the item.
    """
    result = session.exec(
        update(Item)  # type: ignore[call-overload]
        .where(
            col(Item.team_id) == team_id,
            col(Item.number) == number,
            col(Item.origin_channel_id) == channel_id,
            col(Item.origin_thread_ts).is_(None),
        )
        .values(origin_thread_ts=thread_ts)
    )
    return result.rowcount == 1  # type: ignore[no-any-return]


def item_history(session: Session, actor: Actor, *, number: int) -> list[AuditEvent]:
    """The item's audit trail, oldest first."""
    item = load_item(session, actor, number=number)
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.team_id == actor.team_id, AuditEvent.item_id == item.id)
            .order_by(col(AuditEvent.seq))
        ).all()
    )


MAX_SNOOZE_DAYS = 14


def snooze_item(session: Session, actor: Actor, *, number: int, days: int) -> Item:
    """No reminders about this item for ``days`` days (its owner only)."""
    if not 1 <= days <= MAX_SNOOZE_DAYS:
        raise InvalidInput(f"Snooze for 1 to {MAX_SNOOZE_DAYS} days.", field="days")
    item = load_item(session, actor, number=number, for_update=True)
    require_owner(actor, item, "snooze its reminders")
    if item.status == Status.CLOSED:
        raise InvalidState(f"{actor.rules.label(number)} is closed; it has no reminders to snooze.")
    until = actor.today() + timedelta(days=days)
    # Not touched: a reminder setting is no change to the POA&M item (its Status Date).
    previous, item.snoozed_until = item.snoozed_until, until
    audit.record(
        session, actor, action="item.snoozed", item_id=item.id, details={"snoozed_until": {"from": previous, "to": until}}
    )
    return item
