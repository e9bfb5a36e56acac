"""Operations on POA&M items: log, claim, release, assign, plan, show, list, history.

Each operation is one function taking the session, the acting user and
keyword-only arguments; it checks permissions and the lifecycle, writes one
audit event and raises a typed error (``bot.poam.errors``) when it refuses.
The caller owns the transaction (``bot.store.engine.unit_of_work``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple, NoReturn

from sqlalchemy import (
    Connection,
    Date,
    Integer,
    bindparam,
    case,
    cast,
    literal,
    literal_column,
    null,
    union_all,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col, func, select

from bot.poam import audit, fields
from bot.poam.actor import Actor, check_user_id
from bot.poam.errors import AlreadyClaimed, InvalidInput, InvalidState, NotFound, about
from bot.poam.lifecycle import ACTIVE, NOT_CLOSED, Action, Status, transition
from bot.poam.permissions import require_admin, require_owner, require_owner_or_admin
from bot.poam.refs import MAX_NUMBER
from bot.poam.severity import Severity
from bot.poam.systems import find_system
from bot.poam.text import clean_text
from bot.store import counters
from bot.store.models import (
    AuditEvent,
    InfoSystem,
    Item,
    ItemControl,
    Milestone,
    MilestoneChange,
    ReviewRequest,
    Workspace,
)
from bot.store.rows import Columns, rows_of

MAX_TITLE = 300
MAX_DESCRIPTION = 10_000
MAX_PLAN = 10_000
MAX_RESOURCES = 2_000
MAX_PAGE = 200


# ---------------------------------------------------------------- loading


# Built once: these run in nearly every request, and building a statement
# (and its cache key) costs more CPU than running it on an indexed lookup.
_ITEM_BY_NUMBER = select(Item).where(Item.team_id == bindparam("team_id"), Item.number == bindparam("number"))
_ITEM_BY_NUMBER_FOR_UPDATE = _ITEM_BY_NUMBER.with_for_update()


def load_item(
    session: Session, actor: Actor, *, number: int, for_update: bool = False, fresh: bool = False
) -> Item:
    """Item ``number`` of the actor's workspace, or :class:`NotFound`.

    ``for_update`` locks the row (PostgreSQL) so read-modify-write operations
    on one item run one after the other. ``fresh`` overwrites a copy the
    session already holds with what the row says now.
    """
    _check_number(number)
    query = _ITEM_BY_NUMBER_FOR_UPDATE if for_update else _ITEM_BY_NUMBER
    if fresh:
        query = query.execution_options(populate_existing=True)
    item = session.exec(query, params={"team_id": actor.team_id, "number": number}).first()  # type: ignore[call-overload]
    if item is None:
        raise _no_such_item(actor, number)
    return item  # type: ignore[no-any-return]


def _check_number(number: int) -> None:
    if not 1 <= number <= MAX_NUMBER:
        raise NotFound(f"There is no item {number} in this workspace.")


def _no_such_item(actor: Actor, number: int) -> NotFound:
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
    origin_channel_id = clean_text(origin_channel_id, field="The channel id", limit=32, required=False)
    origin_thread_ts = clean_text(origin_thread_ts, field="The message timestamp", limit=32, required=False)
    source_message_url = clean_text(source_message_url, field="The message link", limit=500, required=False)
    today = actor.today()
    detected_on = detected_on or today
    if detected_on > today:
        raise InvalidInput(
            f"The detection date {detected_on} is in the future; today is {today}.", field="detected_on"
        )
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


_ITEMS = Item.__table__  # type: ignore[attr-defined]
_CLAIM = (
    update(_ITEMS)
    .where(_ITEMS.c.team_id == bindparam("workspace"), _ITEMS.c.number == bindparam("claimed_number"),
           _ITEMS.c.owner_id.is_(None), _ITEMS.c.status == Status.OPEN)
    .values(owner_id=bindparam("new_owner"), status=bindparam("new_status"), version=_ITEMS.c.version + 1,
            updated_at=bindparam("changed_at"))
    .returning(*_ITEMS.c)
)


def claim_item(session: Session, actor: Actor, *, number: int) -> Columns:
    """Become the owner of an unowned item; the claimed item as a row.

    One conditional UPDATE decides the race: of any number of simultaneous
    claimers exactly one matches ``owner_id IS NULL``; the others are told who
    won with :class:`AlreadyClaimed`. The UPDATE returns the row it wrote, so a
    claim that wins reads nothing else about the item (no ORM object, one
    statement less than reading it first).
    """
    _check_number(number)
    now = actor.now()
    claimed = rows_of(session).execute(
        _CLAIM,
        {"workspace": actor.team_id, "claimed_number": number, "new_owner": actor.user_id,
         "new_status": transition(Action.CLAIM, Status.OPEN, item_label=actor.rules.label(number)),
         "changed_at": now},
    ).first()
    if claimed is None:  # read afresh: a copy this unit of work holds may predate the winner's claim
        _refuse_claim(actor, load_item(session, actor, number=number, fresh=True))
    loaded = session.identity_map.get(session.identity_key(Item, claimed.id))
    if loaded is not None:  # an earlier step of this unit of work read it as an object: show it the claim
        for name, value in claimed._mapping.items():
            set_committed_value(loaded, name, value)
    audit.record(
        session,
        actor,
        action="item.claimed",
        item_id=claimed.id,
        details={"owner": {"from": None, "to": actor.user_id}},
    )
    return claimed


def _refuse_claim(actor: Actor, item: Item) -> NoReturn:
    label = actor.rules.label(item.number)
    if item.owner_id == actor.user_id:
        raise AlreadyClaimed(f"You already own {label}.", owner_id=item.owner_id)
    if item.owner_id is not None:
        raise AlreadyClaimed(f"{label} is already claimed by someone else.", owner_id=item.owner_id)
    transition(Action.CLAIM, item.status, item_label=label)
    raise AlreadyClaimed(f"{label} can no longer be claimed.", owner_id=None)


def release_item(session: Session, actor: Actor, *, number: int) -> Item:
    """Give an item up (its owner, or an admin): it is open and unowned again."""
    item = load_item(session, actor, number=number, for_update=True)
    require_owner_or_admin(actor, item, "release it")
    item.status = transition(Action.RELEASE, item.status, item_label=actor.rules.label(number))
    previous, item.owner_id = item.owner_id, None
    touch(item, actor)
    audit.record(
        session, actor, action="item.released", item_id=item.id,
        details={"owner": {"from": previous, "to": None}},
    )
    return item


def assign_item(session: Session, actor: Actor, *, number: int, owner_id: str) -> Item:
    """Set an item's owner (admins only)."""
    require_admin(actor, "assign owners")
    check_user_id(owner_id, what="user (owner)")
    item = load_item(session, actor, number=number, for_update=True)
    label = actor.rules.label(number)
    if item.owner_id == owner_id:
        raise InvalidInput(f"{label} is already owned by that person.")
    item.status = transition(Action.ASSIGN, item.status, item_label=label)
    previous, item.owner_id = item.owner_id, owner_id
    touch(item, actor)
    audit.record(
        session, actor, action="item.assigned", item_id=item.id,
        details={"owner": {"from": previous, "to": owner_id}},
    )
    return item


# ---------------------------------------------------------------- plan


def set_plan(
    session: Session, actor: Actor, *, number: int, plan: str, resources: str | None = None
) -> Item:
    """Set the overall remediation plan and, when given, the resources required (owner only)."""
    plan = clean_text(plan, field="The plan", limit=MAX_PLAN)
    resources = clean_text(resources, field="The resources", limit=MAX_RESOURCES, required=False)
    item = load_item(session, actor, number=number, for_update=True)
    require_owner(actor, item, "set its plan")
    transition(Action.EDIT_PLAN, item.status, item_label=actor.rules.label(number))
    changes: dict[str, object] = {"plan": {"from": item.remediation_plan, "to": plan}}
    item.remediation_plan = plan
    if resources is not None:
        changes["resources"] = {"from": item.resources_required, "to": resources}
        item.resources_required = resources
    changes.update(withdraw_plan_approval(item))
    touch(item, actor)
    audit.record(session, actor, action="item.plan_set", item_id=item.id, details=changes)
    return item


# ---------------------------------------------------------------- reading


class MilestoneRow(NamedTuple):
    """A milestone as item details hold it (cards, the App Home, exports)."""

    id: int
    item_id: int
    number: int
    description: str
    planned_due_on: date
    due_on: date
    completed_at: datetime | None
    completed_by: str | None
    created_by: str
    created_at: datetime


class ChangeRow(NamedTuple):
    """A milestone change as item details hold it (exports)."""

    id: int
    item_id: int
    milestone_id: int
    seq: int
    kind: str
    old_due_on: date | None
    new_due_on: date | None
    reason: str
    changed_by: str
    changed_at: datetime


class RequestRow(NamedTuple):
    """A review request as item details hold it (the card, exports)."""

    id: int
    item_id: int
    kind: str
    deviation: str | None
    status: str
    text: str | None
    adjusted_severity: str | None
    until_on: date | None
    new_due_on: date | None
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class _ControlRow(NamedTuple):
    item_id: int
    control: str


class SystemRow(NamedTuple):
    """A system's columns (those of ``InfoSystem``), as :class:`ItemDetail` carries them."""

    id: int
    team_id: str
    name: str
    name_key: str
    impact: str
    organization: str | None
    ao_user_id: str | None
    is_default: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class ItemDetail:
    """Everything ``/poam show`` and the exports need about one item.

    What belongs to the item is read as plain rows, not ORM objects: building
    those was a third of a 10k-item workbook export (README "Performance").
    ``/poam show`` reads the item itself as a row too (``show_item``); the
    exports pass the ORM items they page through. The system is always a row.
    """

    item: Item | Columns
    system: SystemRow
    controls: list[str]
    milestones: list[MilestoneRow]
    #: Empty when read without them (``with_changes=False``: the card, which
    #: does not show them); every export reads them.
    changes: list[ChangeRow]
    requests: list[RequestRow]


_SYSTEM_TABLE = InfoSystem.__table__  # type: ignore[attr-defined]
_SYSTEM_COLUMNS = tuple(_SYSTEM_TABLE.c[name] for name in SystemRow._fields)
#: The item's columns, then its system's, labelled apart (``system__id`` beside ``system_id``).
_ITEM_WITH_SYSTEM_BY_NUMBER = (
    sa_select(_ITEMS, *(column.label(f"system__{column.name}") for column in _SYSTEM_COLUMNS))
    .join_from(
        _ITEMS, _SYSTEM_TABLE, (_SYSTEM_TABLE.c.id == _ITEMS.c.system_id) & (_SYSTEM_TABLE.c.team_id == _ITEMS.c.team_id)
    )
    .where(_ITEMS.c.team_id == bindparam("team_id"), _ITEMS.c.number == bindparam("number"))
)
_ITEM_WIDTH = len(_ITEMS.c)


def show_item(session: Session, actor: Actor, *, number: int, with_changes: bool = True) -> ItemDetail:
    """Item ``number`` with its details, for reading only: the item is a row
    (``Columns``, read with its system in one statement), not an ORM object;
    its details in a second (:func:`_details_statement`). Or :class:`NotFound`.
    ``with_changes=False`` leaves ``changes`` empty (the card does not show
    them: a part of that statement less)."""
    _check_number(number)
    params = {"team_id": actor.team_id, "number": number}
    row = rows_of(session).execute(_ITEM_WITH_SYSTEM_BY_NUMBER, params).first()
    if row is None:
        raise _no_such_item(actor, number)
    system = SystemRow._make(row[_ITEM_WIDTH:])
    return _with_details(session, [row], {system.id: system}, with_changes=with_changes)[0]


#: What an item's details are read from: the row, its table, and its order within the item.
_DETAIL_SOURCES: tuple[tuple[type, type[SQLModel], str], ...] = (
    (_ControlRow, ItemControl, "position"),
    (MilestoneRow, Milestone, "number"),
    (RequestRow, ReviewRequest, "id"),
    (ChangeRow, MilestoneChange, "seq"),
)
#: The kinds a card reads (it does not show milestone changes), and an export's.
_WITHOUT_CHANGES = (_ControlRow, MilestoneRow, RequestRow)
_WITH_CHANGES = (*_WITHOUT_CHANGES, ChangeRow)


@cache
def _details_statement(sources: tuple[type, ...], *, one: bool) -> Any:
    """One statement for the detail rows of the kinds ``sources``: a UNION ALL
    in which each row carries its kind and its own columns, the other kinds'
    columns NULL (typed, so that the first part gives every column its type).
    One item's kinds (a card's three, four with milestone changes) in one
    statement instead of one each: on PostgreSQL each statement cost about
    0.1 ms of CPU (``/poam show`` 0.84 → 0.70 ms in all,
    ``bench/request_cost.py``). For one item ``=`` (``IN`` with a list of ids
    is rendered again on every run)."""
    columns = [
        (kind, model.__table__.c[name])  # type: ignore[attr-defined]
        for kind, (row, model, _order) in enumerate(_DETAIL_SOURCES)
        if row in sources
        for name in row._fields
    ]
    parts = []
    for kind, (row, model, order) in enumerate(_DETAIL_SOURCES):
        if row not in sources:
            continue
        table = model.__table__  # type: ignore[attr-defined]
        mine = table.c.item_id == bindparam("id") if one else table.c.item_id.in_(bindparam("ids", expanding=True))
        parts.append(
            sa_select(
                literal_column(str(kind), Integer).label("kind"),
                table.c.item_id.label("item"),
                table.c[order].label("place"),
                *(
                    (column if of == kind else cast(null(), column.type)).label(f"c{index}")
                    for index, (of, column) in enumerate(columns)
                ),
            ).where(table.c.team_id == bindparam("team_id"), mine)
        )
    return union_all(*parts).order_by(literal_column("kind"), literal_column("item"), literal_column("place"))


def _details_by_item(
    connection: Connection, sources: tuple[type, ...], team_id: str, ids: list[int | None]
) -> dict[type, dict[int, list[Any]]]:
    """The detail rows of ``sources`` belonging to the items ``ids``: by kind of
    row, then by item, each item's in their order."""
    grouped: dict[type, dict[int, list[Any]]] = {row: {item_id: [] for item_id in ids} for row in sources}  # type: ignore[misc]
    one = len(ids) == 1
    params = {"team_id": team_id, "id": ids[0]} if one else {"team_id": team_id, "ids": ids}
    # Several items (exports, in batches) read each kind on its own: there the
    # rows padded with the other kinds' columns cost more than the statements saved.
    for together in [sources] if one else [(row,) for row in sources]:
        slices = _detail_slices(together)
        for values in connection.execute(_details_statement(together, one=one), params):
            row, start, end = slices[values[0]]
            found = row._make(values[start:end])
            grouped[row][found.item_id].append(found)
    return grouped


@cache
def _detail_slices(sources: tuple[type, ...]) -> dict[int, tuple[type, int, int]]:
    """Where each kind's columns sit in a row of :func:`_details_statement`."""
    slices, start = {}, 3  # after kind, item and place
    for kind, (row, _model, _order) in enumerate(_DETAIL_SOURCES):
        if row in sources:
            slices[kind] = (row, start, start + len(row._fields))
            start += len(row._fields)
    return slices


_SYSTEMS = sa_select(*_SYSTEM_COLUMNS).where(
    _SYSTEM_TABLE.c.team_id == bindparam("team_id"), _SYSTEM_TABLE.c.id.in_(bindparam("ids", expanding=True))
)


def milestones_of(session: Session, *, team_id: str, item_ids: list[int]) -> dict[int, list[MilestoneRow]]:
    """The milestones of several items of one workspace, by item id, in their order."""
    if not item_ids:
        return {}
    return _details_by_item(rows_of(session), (MilestoneRow,), team_id, list(item_ids))[MilestoneRow]


def item_details(session: Session, items: Sequence[Item | Columns], *, with_changes: bool = True) -> list[ItemDetail]:
    """Details of several items of one workspace in a few queries, not a few per
    item; without their milestone changes when ``with_changes`` is False."""
    if not items:
        return []
    params = {"team_id": items[0].team_id, "ids": list({item.system_id for item in items})}
    systems = {row.id: SystemRow._make(row) for row in rows_of(session).execute(_SYSTEMS, params)}
    return _with_details(session, items, systems, with_changes=with_changes)


def _with_details(
    session: Session, items: Sequence[Item | Columns], systems: dict[int, SystemRow], *, with_changes: bool
) -> list[ItemDetail]:
    """The items' details but their systems, which the caller has read."""
    ids = [item.id for item in items]
    sources = _WITH_CHANGES if with_changes else _WITHOUT_CHANGES
    found = _details_by_item(rows_of(session), sources, items[0].team_id, ids)
    changes = found.get(ChangeRow) or {id_: [] for id_ in ids}
    return [
        ItemDetail(
            item=item,
            system=systems[item.system_id],
            controls=[row.control for row in found[_ControlRow][item.id]],  # type: ignore[index]
            milestones=found[MilestoneRow][item.id],  # type: ignore[index]
            changes=changes[item.id],  # type: ignore[index]
            requests=found[RequestRow][item.id],  # type: ignore[index]
        )
        for item in items
    ]


class Scope(StrEnum):
    """The word after ``/poam list``."""

    MINE = "mine"
    OPEN = "open"
    OVERDUE = "overdue"
    UNCLAIMED = "unclaimed"
    REVIEW = "review"
    CLOSED = "closed"
    ALL = "all"


class ItemLine(NamedTuple):
    """The columns a one-line summary of an item shows (a ``/poam list`` page, the
    App Home): read as plain rows, since building a page of whole ``Item``
    objects cost twice the CPU of the query itself."""

    id: int
    number: int
    title: str
    severity: str
    adjusted_severity: str | None
    status: str
    closure: str | None
    risk_accepted_until: date | None
    due_on: date
    owner_id: str | None


_LINE_COLUMNS = tuple(getattr(Item, name) for name in ItemLine._fields)


@dataclass(frozen=True)
class ItemPage:
    """A page of a list. ``total`` counts the list's items, up to a limit
    (:data:`COUNT_LIMIT`, more for pages past it); when ``capped``, there are
    more than that."""

    items: list[ItemLine]
    total: int
    offset: int
    today: date
    capped: bool = False

    @property
    def total_text(self) -> str:
        """``57``, or ``1,000+`` when capped."""
        return f"{self.total:,}+" if self.capped else f"{self.total:,}"

    @property
    def has_more(self) -> bool:
        """Whether items follow this page (a capped count runs past its end)."""
        return self.offset + len(self.items) < self.total

    def is_overdue(self, item: ItemLine) -> bool:
        return is_overdue(item, today=self.today)


def is_overdue(item: Item | ItemLine | Columns, *, today: date) -> bool:
    """Overdue is computed, never stored: an active item past its due date."""
    return item.status in ACTIVE and item.due_on < today


def overdue_condition(today: date | Any) -> Any:
    """:func:`is_overdue` as a SQL condition (``today`` a date or a bound parameter)."""
    return col(Item.status).in_(ACTIVE) & (col(Item.due_on) < today)


def list_items(
    session: Session,
    actor: Actor,
    *,
    scope: Scope = Scope.OPEN,
    severity: Severity | None = None,
    control: str | None = None,
    owner_id: str | None = None,
    system_name: str | None = None,
    every_system: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> ItemPage:
    """A page of the workspace's items, overdue first, then by due date.

    ``system_name`` picks a system (the default one when None);
    ``every_system`` lists across all of them instead.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"A page holds 1 to {MAX_PAGE} items.")
    if offset < 0:
        raise InvalidInput("The page offset cannot be negative.")
    if offset > MAX_OFFSET:
        raise InvalidInput(f"The page offset is past any list (at most {MAX_OFFSET:,}).")
    today = actor.today()
    params: dict[str, object] = {"team_id": actor.team_id, "user_id": actor.user_id, "today": today,
                                 "severity": severity, "page_limit": limit, "page_offset": offset}
    if system_name is not None:
        params["name_key"] = system_name.strip().lower()
    if owner_id is not None:
        params["owner_id"] = check_user_id(owner_id, what="user (owner)")
    if control is not None:
        found = fields.controls([control])
        if not found:
            raise InvalidInput("The control to filter by is empty; write it like AC-2.", field="control")
        params["control"] = found[0]
    by_system = None if every_system else ("named" if system_name is not None else "default")
    counts_to = COUNT_LIMIT * ((offset + limit) // COUNT_LIMIT + 1)  # past the page's end
    params.update(band_limit=offset + limit, count_limit=counts_to + 1)  # one more: is there more?
    count, page = _list_statements(
        scope, by_system=by_system, by_severity=severity is not None,
        by_owner=owner_id is not None, by_control=control is not None, deep=offset + limit > BANDS_UP_TO,
    )
    connection = rows_of(session)
    rows = connection.execute(page, params).all()
    if rows:
        total = rows[0].total
    else:  # no row to carry the count: an unknown system, a first use, or past the end
        if not every_system:
            find_system(session, actor, name=system_name)  # NotFound, or the workspace set up
        total = 0 if offset == 0 else connection.execute(count, params).scalar_one()
    lines = [ItemLine._make(row[:-1]) for row in rows]
    return ItemPage(items=lines, total=min(total, counts_to), offset=offset, today=today, capped=total > counts_to)


_SYSTEM_IDS = {
    "default": sa_select(InfoSystem.id).where(InfoSystem.team_id == bindparam("team_id"), col(InfoSystem.is_default)),
    "named": sa_select(InfoSystem.id).where(
        InfoSystem.team_id == bindparam("team_id"), InfoSystem.name_key == bindparam("name_key")
    ),
}


#: How many of a list's items are counted, in steps of this past the page's
#: end: counting every open item of a large workspace cost more than the page.
COUNT_LIMIT = 1_000
#: Pages ending past this many items sort the list instead of merging bands:
#: each band reads up to the page's end, and deep in a long list (around the
#: 5,000th item at 100k, in bench/lists.py) sorting it once costs less.
BANDS_UP_TO = 2_000
#: No list is longer; the counts past a page must fit a 32-bit integer.
MAX_OFFSET = 1_000_000_000

#: The statuses each list shows.
_SCOPE_STATUSES: dict[Scope, frozenset[Status]] = {
    Scope.MINE: NOT_CLOSED,
    Scope.OPEN: NOT_CLOSED,
    Scope.OVERDUE: ACTIVE,
    Scope.UNCLAIMED: frozenset({Status.OPEN}),
    Scope.REVIEW: frozenset({Status.PENDING_VERIFICATION}),
    Scope.CLOSED: frozenset({Status.CLOSED}),
    Scope.ALL: frozenset(Status),
}


@cache
def _list_statements(
    scope: Scope, *, by_system: str | None, by_severity: bool, by_owner: bool, by_control: bool, deep: bool
) -> tuple[Any, Any]:
    """The count and page statements of one shape of list, built once and run
    with parameters (building them cost more CPU than running them).

    The page carries the count (an uncorrelated subquery: run once) and finds
    the system itself (``by_system``: the workspace's default one, one by
    name, or None for every system), so a page is one statement, not three.
    The count stops at ``count_limit`` items. A page is merged from bands
    (:func:`_banded_page`) unless the list is one person's (read through the
    owner index), filtered by control (SQLite would read the control's items
    again for every band), of a system named (a small one beside a large
    default system would make every band walk the large one's items), or
    ``deep``.
    """
    today = bindparam("today", type_=Date)
    conditions = [Item.team_id == bindparam("team_id")]
    if scope is Scope.MINE:
        conditions.append(Item.owner_id == bindparam("user_id"))
    if scope is Scope.UNCLAIMED:
        # As a function, so that no index on the owner applies: SQLite would
        # find every unclaimed item through one, then sort them all for a page.
        conditions.append(func.coalesce(Item.owner_id, "") == "")
    if by_system is not None:
        conditions.append(Item.system_id == _SYSTEM_IDS[by_system].scalar_subquery())
    if by_severity:
        conditions.append(Item.severity == bindparam("severity"))
    if by_owner:
        conditions.append(Item.owner_id == bindparam("owner_id"))
    if by_control:
        conditions.append(
            col(Item.id).in_(
                select(ItemControl.item_id).where(
                    ItemControl.team_id == bindparam("team_id"), ItemControl.control == bindparam("control")
                )
            )
        )
    statuses = _SCOPE_STATUSES[scope]
    overdue_only = scope is Scope.OVERDUE
    in_scope = [*conditions, overdue_condition(today) if overdue_only else col(Item.status).in_(statuses)]
    counted = sa_select(Item.id).where(*in_scope).limit(bindparam("count_limit", type_=Integer)).subquery()
    count = sa_select(func.count()).select_from(counted)
    total = count.scalar_subquery().correlate(None).label("total")
    if scope is Scope.MINE or by_owner or by_control or by_system == "named" or deep:
        page = (
            select(*_LINE_COLUMNS, total)
            .where(*in_scope)
            .order_by(case((overdue_condition(today), 0), else_=1), col(Item.due_on), col(Item.number))
        )
    else:
        page = _banded_page(statuses, conditions, today=today, overdue_only=overdue_only, total=total)
    page = page.limit(bindparam("page_limit", type_=Integer)).offset(bindparam("page_offset", type_=Integer))
    return count, page


def _banded_page(
    statuses: frozenset[Status], conditions: list[Any], *, today: Any, overdue_only: bool, total: Any
) -> Any:
    """A page of a large list (every open item, say), overdue first, then by due
    date: the first ``band_limit`` items of each status, overdue and not, are
    all a page can hold, and each such band is one range of
    ``ix_items_team_status_due`` read in order (an item is overdue when active
    and past its due date: :func:`is_overdue`), so the database reads those
    instead of sorting the whole list."""
    bands = []
    for status in sorted(statuses):
        if status in ACTIVE:
            ranges = [(0, col(Item.due_on) < today)] + ([] if overdue_only else [(1, col(Item.due_on) >= today)])
        else:
            ranges = [(1, None)]
        for band, due in ranges:
            bands.append(
                sa_select(*_LINE_COLUMNS, literal(band, Integer).label("band"))
                .where(*conditions, Item.status == status, *([] if due is None else [due]))
                .order_by(col(Item.due_on), col(Item.number))
                .limit(bindparam("band_limit", type_=Integer))
                .subquery()
                .select()
            )
    merged = union_all(*bands).subquery()
    return (
        sa_select(*(merged.c[name] for name in ItemLine._fields), total)
        .order_by(merged.c.band, merged.c.due_on, merged.c.number)
    )


def iter_item_details(
    session: Session, *, team_id: str | None = None, system_name: str | None = None, batch: int = 500
) -> Iterator[ItemDetail]:
    """Every item (of one workspace, or all) with its details, in batches, for exports.

    Ordered by workspace, then number. ``system_name`` keeps one system's items.
    """
    teams = select(Workspace.team_id).order_by(col(Workspace.team_id))
    if team_id is not None:
        teams = teams.where(Workspace.team_id == team_id)
    for team in session.exec(teams).all():
        conditions = [Item.team_id == team]
        if system_name is not None:
            conditions.append(
                col(Item.system_id).in_(
                    select(InfoSystem.id).where(
                        InfoSystem.team_id == team, InfoSystem.name_key == system_name.strip().lower()
                    )
                )
            )
        last_number = 0
        while True:
            chunk = session.exec(
                select(Item)
                .where(*conditions, Item.number > last_number)
                .order_by(col(Item.number))
                .limit(batch)
            ).all()
            if not chunk:
                break
            yield from item_details(session, chunk)
            last_number = chunk[-1].number


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
