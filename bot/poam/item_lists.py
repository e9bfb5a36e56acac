"""Lists of POA&M items: the pages of ``/poam list`` and the App Home, and what is overdue.

Apart from :mod:`bot.poam.items`, whose operations change items: a page is
read as one-line rows by statements built once for each shape of list, most
of them merged from bands of an index, and that is a subject of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Date, Integer, bindparam, case, false, literal, tuple_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from bot.poam import fields
from bot.poam.actor import Actor, check_user_id
from bot.poam.errors import InvalidInput
from bot.poam.lifecycle import ACTIVE, NOT_CLOSED, Status
from bot.poam.severity import Severity
from bot.poam.systems import find_system
from bot.store.models import InfoSystem, Item, ItemControl
from bot.store.rows import Columns, rows_of

MAX_PAGE = 200


def control_filter(text: str) -> str:
    """The control a list is filtered by, as stored (``ac-2`` → ``AC-2``)."""
    found = fields.controls([text])
    if not found:
        raise InvalidInput("The control to filter by is empty; write it like AC-2.", field="control")
    if len(found) > 1:
        raise InvalidInput("A list is filtered by one control at a time; write it like AC-2.", field="control")
    return found[0]


class Scope(StrEnum):
    """The word after ``/poam list``."""

    MINE = "mine"
    OPEN = "open"
    OVERDUE = "overdue"
    UNCLAIMED = "unclaimed"
    REVIEW = "review"
    CLOSED = "closed"
    ALL = "all"


class Position(NamedTuple):
    """Where an item stands in a list's order: overdue first (``band`` 0, then
    1), then by due date and number. A page after (or before) a position reads
    on from it, so items claimed, closed or logged meanwhile shift nothing:
    no item is skipped or shown twice, as with an offset."""

    band: int
    due_on: date
    number: int


class Direction(StrEnum):
    """Which way a page reads from its :class:`Position`."""

    AFTER = "after"
    BEFORE = "before"


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
    """A page of a list. ``offset``: how many of the list's items come before it,
    as far as the page it was reached from knew. ``total`` counts the list's
    items, up to a limit (:data:`COUNT_LIMIT`, more for pages past it); when
    ``capped``, there are more than that. ``more_before`` / ``has_more``: items
    precede / follow it. ``ordered_on``: the day the list's order (overdue
    first) is reckoned on, the first page's, so that pages turned after
    midnight read on from where the last one stopped; ``today`` marks what is
    overdue now."""

    items: list[ItemLine]
    total: int
    offset: int
    today: date
    ordered_on: date
    capped: bool = False
    more_before: bool = False
    has_more: bool = False

    @property
    def total_text(self) -> str:
        """``57``, or ``1,000+`` when capped."""
        return f"{self.total:,}+" if self.capped else f"{self.total:,}"

    def is_overdue(self, item: ItemLine) -> bool:
        return is_overdue(item, today=self.today)

    def position(self, item: ItemLine) -> Position:
        """Where ``item`` stands in the list's order (on the day it is ordered on)."""
        return Position(0 if is_overdue(item, today=self.ordered_on) else 1, item.due_on, item.number)


def is_overdue(item: Item | ItemLine | Columns, *, today: date) -> bool:
    """Overdue is computed, never stored: an active item past its due date."""
    return item.status in ACTIVE and item.due_on < today


def overdue_condition(today: date | Any) -> Any:
    """:func:`is_overdue` as a SQL condition (``today`` a date or a bound parameter)."""
    return status_in(ACTIVE) & (col(Item.due_on) < today)


def current_rating() -> Any:
    """The severity an item goes by, as SQL: the adjusted one an approved risk
    adjustment set, else the original (the card's, the digest's, ``sev:``'s)."""
    return func.coalesce(col(Item.adjusted_severity), col(Item.severity))


def status_in(statuses: Iterable[Status]) -> Any:
    """``items.status IN (…)`` with a parameter per status. ``in_()`` of a plain
    list binds one "expanding" parameter, which SQLAlchemy renders into the SQL
    again on every run of a cached statement (a tenth of a list page's CPU)."""
    values = sorted(status.value for status in statuses)
    assert values, "no status to match"  # an empty IN would be an expanding one again
    return col(Item.status).in_([literal(value) for value in values])


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
    start: tuple[Direction, Position] | None = None,
    offset: int = 0,
    ordered_on: date | None = None,
) -> ItemPage:
    """A page of the workspace's items, overdue first, then by due date: the
    first ``limit``, or those just after or before a ``start`` position (a
    page's last or first item). ``offset`` says how many items come before
    the page (shown, and how far the count goes); it moves nothing.
    ``ordered_on``: the day of the first page, when this one is turned to
    from it (the actor's today otherwise): at midnight, items due the day
    before join the overdue ones at the list's head, behind a reader who
    pages on from a place in the order of the day before.

    ``system_name`` picks a system (the default one when None);
    ``every_system`` lists across all of them instead.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"A page holds 1 to {MAX_PAGE} items.")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"A page's offset is 0 to {MAX_OFFSET:,}.")
    today = actor.today()
    ordered_on = ordered_on or today
    params: dict[str, object] = {"team_id": actor.team_id, "user_id": actor.user_id, "today": ordered_on,
                                 "severity": severity, "page_limit": limit + 1}  # one more: is there more?
    if system_name is not None:
        params["name_key"] = system_name.strip().lower()
    if owner_id is not None:
        params["owner_id"] = check_user_id(owner_id, what="user (owner)")
    if control is not None:
        params["control"] = control_filter(control)
    direction = None
    if start is not None:
        direction, position = start
        params.update(start_band=position.band, start_due=position.due_on, start_number=position.number)
    by_system = None if every_system else ("named" if system_name is not None else "default")
    counts_to = COUNT_LIMIT * ((offset + limit) // COUNT_LIMIT + 1)  # past the page's end
    params["count_limit"] = counts_to + 1  # one more: is there more?
    count, page = _list_statements(
        scope, by_system=by_system, by_severity=severity is not None, by_owner=owner_id is not None,
        by_control=control is not None, direction=direction, start_band=None if start is None else start[1].band,
    )
    connection = rows_of(session)
    rows = list(connection.execute(page, params).all())
    beyond = len(rows) > limit
    del rows[limit:]
    if direction is Direction.BEFORE:
        if not beyond:  # the list's start: a whole first page rather than what is left of one
            return list_items(session, actor, scope=scope, severity=severity, control=control, owner_id=owner_id,
                              system_name=system_name, every_system=every_system, limit=limit, ordered_on=ordered_on)
        rows.reverse()
    if rows:
        total = rows[0].total
    else:  # no row to carry the count: an unknown system, a first use, or past the end
        if not every_system:
            find_system(session, actor, name=system_name)  # NotFound, or the workspace set up
        total = 0 if start is None else connection.execute(count, params).scalar_one()
    lines = [ItemLine._make(row[:-1]) for row in rows]
    return ItemPage(
        items=lines, total=min(total, counts_to), offset=offset, today=today, ordered_on=ordered_on,
        capped=total > counts_to,
        more_before=beyond if direction is Direction.BEFORE else start is not None,
        has_more=beyond or direction is Direction.BEFORE,
    )


_SYSTEM_IDS = {
    "default": sa_select(col(InfoSystem.id)).where(
        col(InfoSystem.team_id) == bindparam("team_id"), col(InfoSystem.is_default)
    ),
    "named": sa_select(col(InfoSystem.id)).where(
        col(InfoSystem.team_id) == bindparam("team_id"), col(InfoSystem.name_key) == bindparam("name_key")
    ),
}


#: How many of a list's items are counted, in steps of this past the page's
#: end: counting every open item of a large workspace cost more than the page.
COUNT_LIMIT = 1_000
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
    scope: Scope, *, by_system: str | None, by_severity: bool, by_owner: bool, by_control: bool,
    direction: Direction | None, start_band: int | None,
) -> tuple[Any, Any]:
    """The count and page statements of one shape of list, built once and run
    with parameters (building them cost more CPU than running them).

    The page carries the count (an uncorrelated subquery: run once) and finds
    the system itself (``by_system``: the workspace's default one, one by
    name, or None for every system), so a page is one statement, not three.
    The count stops at ``count_limit`` items. A page reads ``page_limit`` items
    on from its start (``direction``; BEFORE reads backwards), merged from
    bands (:func:`_banded_page`) unless the list is one person's (read through
    the owner index), filtered by control (SQLite would read the control's
    items again for every band) or of a system named (a small one beside a
    large default system would make every band walk the large one's items).
    """
    today = bindparam("today", type_=Date)
    conditions = [col(Item.team_id) == bindparam("team_id")]
    if scope is Scope.MINE:
        conditions.append(col(Item.owner_id) == bindparam("user_id"))
    if scope is Scope.UNCLAIMED:
        # As a function, so that no index on the owner applies: SQLite would
        # find every unclaimed item through one, then sort them all for a page.
        conditions.append(func.coalesce(Item.owner_id, "") == "")
    if by_system is not None:
        conditions.append(col(Item.system_id) == _SYSTEM_IDS[by_system].scalar_subquery())
    if by_severity:
        conditions.append(current_rating() == bindparam("severity"))
    if by_owner:
        conditions.append(col(Item.owner_id) == bindparam("owner_id"))
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
    in_scope = [*conditions, overdue_condition(today) if overdue_only else status_in(statuses)]
    counted = sa_select(col(Item.id)).where(*in_scope).limit(bindparam("count_limit", type_=Integer)).subquery()
    count = sa_select(func.count()).select_from(counted)
    total = count.scalar_subquery().correlate(None).label("total")
    backwards = direction is Direction.BEFORE
    if scope is Scope.MINE or by_owner or by_control or by_system == "named":
        band = case((overdue_condition(today), 0), else_=1)
        key = (band, col(Item.due_on), col(Item.number))
        page = sa_select(*_LINE_COLUMNS, total).where(*in_scope)
        if direction is not None:
            page = page.where(_beyond(tuple_(*key), tuple_(*_START), backwards=backwards))
        page = page.order_by(*_ordered(key, backwards=backwards))
    else:
        page = _banded_page(statuses, conditions, today=today, overdue_only=overdue_only, total=total,
                            direction=direction, start_band=start_band)
    return count, page.limit(bindparam("page_limit", type_=Integer))


#: Where a page starts, as parameters.
_START = (bindparam("start_band", type_=Integer), bindparam("start_due", type_=Date),
          bindparam("start_number", type_=Integer))


def _beyond(value: Any, start: Any, *, backwards: bool) -> Any:
    return value < start if backwards else value > start


def _ordered(columns: Iterable[Any], *, backwards: bool) -> list[Any]:
    return [column.desc() if backwards else column for column in columns]


def _banded_page(
    statuses: frozenset[Status], conditions: list[Any], *, today: Any, overdue_only: bool, total: Any,
    direction: Direction | None, start_band: int | None,
) -> Any:
    """A page of a large list (every open item, say), overdue first, then by due
    date: the first ``page_limit`` items of each status, overdue and not, past
    the page's start, are all a page can hold, and each such band is one range
    of ``ix_items_team_status_due`` read in order (an item is overdue when
    active and past its due date: :func:`is_overdue`), so the database reads
    those instead of sorting the whole list. A band the start lies beyond is
    left out; the start's own is read from its due date on."""
    backwards = direction is Direction.BEFORE
    _, start_due, start_number = _START
    bands = []
    for status in sorted(statuses):
        if status in ACTIVE:
            ranges = [(0, col(Item.due_on) < today)] + ([] if overdue_only else [(1, col(Item.due_on) >= today)])
        else:
            ranges = [(1, None)]
        for band, due in ranges:
            within = [*conditions, col(Item.status) == status, *([] if due is None else [due])]
            if start_band is not None:
                if band > start_band if backwards else band < start_band:
                    continue  # wholly on the other side of the start
                if band == start_band:
                    # The due date's range first, which the index reads; then the number among equal dates.
                    within.append(col(Item.due_on) <= start_due if backwards else col(Item.due_on) >= start_due)
                    within.append(_beyond(tuple_(col(Item.due_on), col(Item.number)), tuple_(start_due, start_number),
                                          backwards=backwards))
            bands.append(
                sa_select(*_LINE_COLUMNS, literal(band, Integer).label("band"))
                .where(*within)
                .order_by(*_ordered((col(Item.due_on), col(Item.number)), backwards=backwards))
                .limit(bindparam("page_limit", type_=Integer))
                .subquery()
                .select()
            )
    if not bands:  # the start lies past every band (a crafted one: an overdue list's are all in band 0)
        return sa_select(*_LINE_COLUMNS, total).where(false())
    merged = union_all(*bands).subquery()
    return (
        sa_select(*(merged.c[name] for name in ItemLine._fields), total)
        .order_by(*_ordered((merged.c.band, merged.c.due_on, merged.c.number), backwards=backwards))
    )
