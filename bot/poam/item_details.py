"""Reading POA&M items with their details: ``/poam show``'s card and the exports.

An item's details (its system, controls, milestones, milestone changes and
review requests) are read as plain rows, for reading only, in a few
statements for any number of items. Apart from :mod:`bot.poam.items`, whose
operations change items: none of this changes anything, and how the rows are
read at once is a subject of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, Integer, bindparam, cast, literal_column, null, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from bot.poam.actor import Actor
from bot.poam.items import check_number, no_such_item
from bot.store.models import (
    InfoSystem,
    Item,
    ItemControl,
    Milestone,
    MilestoneChange,
    ReviewRequest,
    Workspace,
    table_of,
)
from bot.store.rows import Columns, rows_of

_ITEMS = table_of(Item)


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
    fedramp_id: str | None
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


_SYSTEM_TABLE = table_of(InfoSystem)
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
    check_number(number)
    params = {"team_id": actor.team_id, "number": number}
    row = rows_of(session).execute(_ITEM_WITH_SYSTEM_BY_NUMBER, params).first()
    if row is None:
        raise no_such_item(actor, number)
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
def _details_statement(sources: tuple[type[Any], ...], *, one: bool) -> Any:
    """One statement for the detail rows of the kinds ``sources``: a UNION ALL
    in which each row carries its kind and its own columns, the other kinds'
    columns NULL (typed, so that the first part gives every column its type).
    One item's kinds (a card's three, four with milestone changes) in one
    statement instead of one each: on PostgreSQL each statement cost about
    0.1 ms of CPU (``/poam show`` 0.84 → 0.70 ms in all,
    ``bench/request_cost.py``). For one item ``=`` (``IN`` with a list of ids
    is rendered again on every run)."""
    columns = [
        (kind, table_of(model).c[name])
        for kind, (row, model, _order) in enumerate(_DETAIL_SOURCES)
        if row in sources
        for name in row._fields
    ]
    parts = []
    for kind, (row, model, order) in enumerate(_DETAIL_SOURCES):
        if row not in sources:
            continue
        table = table_of(model)
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
    connection: Connection, sources: tuple[type[Any], ...], team_id: str, ids: list[int]
) -> dict[type, dict[int, list[Any]]]:
    """The detail rows of ``sources`` belonging to the items ``ids``: by kind of
    row, then by item, each item's in their order."""
    grouped: dict[type, dict[int, list[Any]]] = {row: {item_id: [] for item_id in ids} for row in sources}
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
def _detail_slices(sources: tuple[type[Any], ...]) -> dict[int, tuple[type[Any], int, int]]:
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
    ids = [_stored_id(item) for item in items]
    sources = _WITH_CHANGES if with_changes else _WITHOUT_CHANGES
    found = _details_by_item(rows_of(session), sources, items[0].team_id, ids)
    changes = found.get(ChangeRow) or {id_: [] for id_ in ids}
    return [
        ItemDetail(
            item=item,
            system=systems[item.system_id],
            controls=[row.control for row in found[_ControlRow][id_]],
            milestones=found[MilestoneRow][id_],
            changes=changes[id_],
            requests=found[RequestRow][id_],
        )
        for item, id_ in zip(items, ids, strict=True)
    ]


def _stored_id(item: Item | Columns) -> int:
    assert item.id is not None  # read from the database
    return item.id


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
        conditions = [col(Item.team_id) == team]
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
