"""Pages of ``/poam list`` on a workspace with many items: every page holds
exactly what sorting the whole list would put there, the count stops at
``COUNT_LIMIT``, and a first page reads about as much of a large list as of a
small one."""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from bot.commands import metadata
from bot.commands.views.cards import item_list
from bot.poam import item_lists
from bot.poam.actor import Actor, Rules
from bot.poam.clock import FixedClock
from bot.poam.errors import InvalidInput
from bot.poam.item_lists import Direction, Position, Scope, is_overdue, list_items
from bot.poam.lifecycle import ACTIVE, Status
from bot.poam.severity import Severity
from bot.poam.systems import add_system
from bot.store.engine import unit_of_work
from bot.store.models import InfoSystem, Item, ItemControl
from tests.db import TEAM, assert_refused, run
from tests.test_items import ALICE, BOB, TODAY, log

SCOPE_STATUSES = {
    Scope.MINE: set(Status) - {Status.CLOSED},
    Scope.OPEN: set(Status) - {Status.CLOSED},
    Scope.OVERDUE: set(ACTIVE),
    Scope.UNCLAIMED: {Status.OPEN},
    Scope.REVIEW: {Status.PENDING_VERIFICATION},
    Scope.CLOSED: {Status.CLOSED},
    Scope.ALL: set(Status),
}


def scatter(engine: Engine, actor: Actor, count: int, *, seed: int) -> None:
    """``count`` items logged by ``actor``, a third of them in a second system
    (Payroll), with one or two of three controls; then given random statuses,
    owners, severities (some adjusted) and due dates, many of them equal and
    on either side of today."""
    chooser = random.Random(seed)
    for number in range(1, count + 1):
        log(engine, actor, controls=chooser.sample(["AC-2", "SI-2", "CM-6"], chooser.randint(1, 2)),
            system_name="Payroll" if number % 3 == 0 else None)
    table = Item.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for number in range(1, count + 1):
            status = chooser.choice(list(Status))
            owner = None if status is Status.OPEN else chooser.choice([ALICE, BOB])
            connection.execute(
                sa.update(table)
                .where(table.c.team_id == TEAM, table.c.number == number)
                .values(status=status, owner_id=owner, severity=chooser.choice(list(Severity)).value,
                        adjusted_severity=chooser.choice([None, None, None, *Severity]),
                        due_on=TODAY + timedelta(days=chooser.randint(-6, 6)))
            )


def expected(engine: Engine, actor: Actor, scope: Scope, **filters: Any) -> list[int]:
    """The list's item numbers in order, by sorting all of the workspace's items here."""
    with unit_of_work(engine, read_only=True) as session:
        every = session.execute(sa.select(Item).where(Item.team_id == TEAM)).scalars().all()
        systems = dict(session.execute(sa.select(InfoSystem.id, InfoSystem.name).where(InfoSystem.team_id == TEAM)).all())
        controls = {item_id: control for item_id, control in session.execute(
            sa.select(ItemControl.item_id, ItemControl.control).where(ItemControl.control == filters.get("control")))}
    system = None if filters.get("every_system") else filters.get("system_name", "Default")
    kept = [
        item for item in every
        if item.status in SCOPE_STATUSES[scope]
        and (scope is not Scope.MINE or item.owner_id == actor.user_id)
        and (scope is not Scope.UNCLAIMED or item.owner_id is None)
        and (scope is not Scope.OVERDUE or is_overdue(item, today=TODAY))
        and ("severity" not in filters or (item.adjusted_severity or item.severity) == filters["severity"])
        and ("owner_id" not in filters or item.owner_id == filters["owner_id"])
        and ("control" not in filters or item.id in controls)
        and (system is None or systems[item.system_id] == system)
    ]
    kept.sort(key=lambda item: (not is_overdue(item, today=TODAY), item.due_on, item.number))
    return [item.number for item in kept]


def page_numbers(engine: Engine, actor: Actor, **kwargs: Any) -> list[int]:
    page = run(engine, lambda s: list_items(s, actor, **kwargs))
    return [line.number for line in page.items]


def walk(engine: Engine, actor: Actor, *, limit: int, **filters: Any) -> list[list[int]]:
    """The list's pages, first to last by Next, each checked to come back by Previous."""
    pages, start = [], None
    while True:
        page = run(engine, lambda s, start=start: list_items(s, actor, limit=limit, start=start, **filters))
        pages.append(page)
        if not page.has_more:
            break
        assert len(page.items) == limit
        start = (Direction.AFTER, page.position(page.items[-1]))
    for before, page in zip(pages, pages[1:], strict=False):
        assert page.more_before
        back = run(engine, lambda s, page=page: list_items(
            s, actor, limit=limit, start=(Direction.BEFORE, page.position(page.items[0])), **filters))
        assert back.items == before.items and back.more_before == (before is not pages[0]) and back.has_more
    assert not pages[0].more_before
    return [[line.number for line in page.items] for page in pages]


@pytest.mark.parametrize("scope", list(Scope))
def test_every_page_holds_what_sorting_the_whole_list_puts_there(
    engine: Engine, alice: Actor, admin: Actor, scope: Scope
) -> None:
    run(engine, lambda s: add_system(s, admin, name="Payroll"))
    scatter(engine, alice, 60, seed=7)
    whole = expected(engine, alice, scope)
    assert whole, "the scattered items should fill every list"
    for limit in (1, 4, 7, 25):
        pages = walk(engine, alice, scope=scope, limit=limit)
        assert [number for page in pages for number in page] == whole, limit
        assert len(pages) == max(1, -(-len(whole) // limit)), limit
    assert page_numbers(engine, alice, scope=scope, limit=len(whole) + 5) == whole


@pytest.mark.parametrize(
    "filters",
    [{"severity": Severity.HIGH}, {"owner_id": BOB}, {"severity": Severity.LOW, "owner_id": ALICE},
     {"control": "AC-2"}, {"system_name": "Payroll"}, {"every_system": True},
     {"every_system": True, "severity": Severity.MODERATE, "control": "SI-2"}],
)
@pytest.mark.parametrize("scope", [Scope.OPEN, Scope.OVERDUE, Scope.ALL, Scope.CLOSED])
def test_filtered_pages_too(engine: Engine, alice: Actor, admin: Actor, scope: Scope, filters: dict[str, Any]) -> None:
    run(engine, lambda s: add_system(s, admin, name="Payroll"))
    scatter(engine, alice, 60, seed=11)
    whole = expected(engine, alice, scope, **filters)
    pages = walk(engine, alice, scope=scope, limit=3, **filters)
    assert [number for page in pages for number in page] == whole


@pytest.mark.parametrize("scope", [Scope.OPEN, Scope.MINE])  # a banded list and a sorted one
def test_items_changed_between_pages_shift_nothing_else(
    engine: Engine, alice: Actor, admin: Actor, scope: Scope
) -> None:
    """Paging by offset, an item of the first page closed before Next pulled the
    next page's first item onto the page already seen: it was never shown."""
    run(engine, lambda s: add_system(s, admin, name="Payroll"))
    scatter(engine, alice, 90, seed=3)
    whole = expected(engine, alice, scope)
    assert len(whole) > 10
    first = run(engine, lambda s: list_items(s, alice, scope=scope, limit=5))
    assert [line.number for line in first.items] == whole[:5]
    new = log(engine, alice).number
    table = Item.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:  # two items of the first page leave the list; one joins it, first
        connection.execute(sa.update(table).where(table.c.team_id == TEAM, table.c.number.in_(whole[:2]))
                           .values(status=Status.CLOSED, owner_id=ALICE))
        connection.execute(sa.update(table).where(table.c.team_id == TEAM, table.c.number == new)
                           .values(status=Status.IN_PROGRESS, owner_id=ALICE, due_on=TODAY - timedelta(days=30)))
    now = expected(engine, alice, scope)
    assert now[:4] == [new, *whole[2:5]]
    second = run(engine, lambda s: list_items(s, alice, scope=scope, limit=5, offset=5,
                                              start=(Direction.AFTER, first.position(first.items[-1]))))
    assert [line.number for line in second.items] == whole[5:10]
    back = run(engine, lambda s: list_items(s, alice, scope=scope, limit=5, offset=0,
                                            start=(Direction.BEFORE, second.position(second.items[0]))))
    # Four items now come before the second page: Previous shows the first page, whole.
    assert ([line.number for line in back.items], back.more_before, back.has_more) == (now[:5], False, True)


def test_pages_turned_after_midnight_read_on_in_the_first_pages_order(
    engine: Engine, alice: Actor, clock: FixedClock
) -> None:
    """Five items due today, three a page: after midnight they are overdue,
    at the list's head, and Next from the third read on from a place the
    order no longer had (nothing more), Previous from the fourth showed the
    third again. The buttons carry the first page's day."""
    for _ in range(5):
        log(engine, alice, due_on=TODAY)

    def turn(page: item_lists.ItemPage, query: metadata.ListPage, label: str) -> tuple[list[int], metadata.ListPage]:
        (button,) = [element for block in item_list(page, rules=Rules(), query=query, title="Open items")
                     if block["type"] == "actions" for element in block["elements"] if element["text"]["text"] == label]
        turned = metadata.load(metadata.ListPage, button["value"])
        found = run(engine, lambda s: list_items(s, alice, limit=3, start=turned.start(), offset=turned.offset,
                                                 ordered_on=turned.ordered_on()))
        return [line.number for line in found.items], turned

    first = run(engine, lambda s: list_items(s, alice, limit=3))
    assert [line.number for line in first.items] == [1, 2, 3]
    clock.advance(hours=9, minutes=1)  # 00:01 the next day, in UTC: everything is a day overdue
    numbers, query = turn(first, metadata.ListPage(scope="open", offset=0), "Next")
    assert numbers == [4, 5]
    second = run(engine, lambda s: list_items(s, alice, limit=3, start=query.start(), offset=3,
                                              ordered_on=query.ordered_on()))
    assert second.is_overdue(second.items[0])  # marked overdue as it is now
    assert turn(second, query, "Previous")[0] == [1, 2, 3]


def test_a_start_past_every_band_is_an_empty_page_not_an_error(engine: Engine, alice: Actor) -> None:
    log(engine, alice)
    table = Item.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(sa.update(table).values(due_on=TODAY - timedelta(days=3)))
    beyond = (Direction.AFTER, Position(1, TODAY, 1))  # an overdue list has no band 1
    page = run(engine, lambda s: list_items(s, alice, scope=Scope.OVERDUE, limit=5, start=beyond, offset=1))
    assert (page.items, page.total, page.has_more) == ([], 1, False)


def test_an_offset_past_any_list_is_refused(engine: Engine, alice: Actor) -> None:
    log(engine, alice)
    assert_refused(engine, lambda s: list_items(s, alice, offset=item_lists.MAX_OFFSET + 1), InvalidInput,
                   "A page's offset is 0 to 1,000,000,000.")
    page = run(engine, lambda s: list_items(s, alice, offset=item_lists.MAX_OFFSET, limit=item_lists.MAX_PAGE,
                                            start=(Direction.AFTER, Position(1, TODAY + timedelta(days=999), 1))))
    assert (page.items, page.total, page.capped) == ([], 1, False)


def test_the_count_stops_at_the_limit_and_the_list_still_pages_on(
    engine: Engine, alice: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_lists, "COUNT_LIMIT", 5)
    for _ in range(10):
        log(engine, alice)

    def page(offset: int, after: item_lists.ItemPage | None = None) -> item_lists.ItemPage:
        start = None if after is None else (Direction.AFTER, after.position(after.items[-1]))
        return run(engine, lambda s: list_items(s, alice, scope=Scope.ALL, limit=3, offset=offset, start=start))

    first = page(0)
    fourth_on = page(3, first)
    seventh_on = page(6, fourth_on)
    tenth_on = page(9, seventh_on)
    past = page(12, tenth_on)
    assert (first.total, first.capped, first.total_text, first.has_more) == (5, True, "5+", True)
    # Counted on past the page: to 10 (and one more, to know whether there is more).
    assert (fourth_on.total, fourth_on.capped, fourth_on.total_text, fourth_on.has_more) == (10, False, "10", True)
    assert (seventh_on.total, seventh_on.capped, seventh_on.has_more) == (10, False, True)
    assert (tenth_on.total, tenth_on.capped, tenth_on.total_text, tenth_on.has_more) == (10, False, "10", False)
    assert (past.items, past.total, past.capped) == ([], 10, False)
    query = metadata.ListPage(scope=Scope.ALL.value, offset=0)
    blocks = item_list(first, rules=Rules(), query=query, title="All items")
    assert blocks[0]["text"]["text"] == "*All items* (1–3 of 5+)"
    assert [e["text"]["text"] for e in blocks[-1]["elements"]] == ["Next"]


def test_a_first_page_reads_about_as_much_of_a_long_list_as_of_a_short_one(
    engine: Engine, alice: Actor, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted in SQLite's virtual machine steps (a progress handler), not in
    time: sorting the whole list, as a page once did, takes steps in
    proportion to the list. Both lists are longer than the count goes."""
    if engine.dialect.name != "sqlite":
        pytest.skip("counts SQLite's steps")
    monkeypatch.setattr(item_lists, "COUNT_LIMIT", 100)
    run(engine, lambda s: add_system(s, admin, name="Payroll"))
    log(engine, alice)

    def steps_of_first_pages() -> dict[Scope, int]:
        counted: dict[Scope, int] = {}
        for scope in (Scope.OPEN, Scope.OVERDUE, Scope.UNCLAIMED, Scope.ALL):
            with unit_of_work(engine, read_only=True) as session:
                dbapi: sqlite3.Connection = session.connection().connection.dbapi_connection  # type: ignore[assignment]
                steps = itertools.count()

                def step(steps: Iterator[int] = steps) -> int:
                    next(steps)
                    return 0  # go on

                dbapi.set_progress_handler(step, 100)
                try:
                    list_items(session, alice, scope=scope, limit=20)
                finally:
                    dbapi.set_progress_handler(None, 0)
            counted[scope] = next(steps)
        return counted

    add_items(engine, 300)
    short = steps_of_first_pages()
    add_items(engine, 3_000)
    long = steps_of_first_pages()
    assert all(long[scope] < 2 * short[scope] + 20 for scope in long), (short, long)


def add_items(engine: Engine, count: int) -> None:
    """``count`` more items, open or in progress, half of them overdue, in one insert."""
    with unit_of_work(engine, read_only=True) as session:
        template = session.execute(sa.select(Item).where(Item.team_id == TEAM)).scalars().first()
        last = session.execute(sa.select(sa.func.max(Item.number)).where(Item.team_id == TEAM)).scalar_one()
    assert template is not None, "log one item first: the others copy it"
    values = template.model_dump(exclude={"id"})
    rows = [
        {**values, "number": last + n, "status": Status.OPEN if n % 2 else Status.IN_PROGRESS,
         "owner_id": None if n % 2 else BOB, "due_on": date(2026, 11, 1) + timedelta(days=n % 40)}
        for n in range(1, count + 1)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(Item), rows)


@pytest.mark.parametrize("by_system", ["default", "named", None])
@pytest.mark.parametrize("filtered", [False, True])  # banded pages, and sorted ones
@pytest.mark.parametrize("start", [None, *((d, band) for d in Direction for band in (0, 1))])
@pytest.mark.parametrize("scope", list(Scope))
def test_a_list_statement_is_rendered_once_not_on_every_run(
    scope: Scope, start: tuple[Direction, int] | None, filtered: bool, by_system: str | None
) -> None:
    """A statement with an "expanding" parameter (``in_()`` of a plain list) is
    rendered into SQL again on every run, cached or not: a tenth of a page's CPU."""
    direction, start_band = start or (None, None)
    for statement in item_lists._list_statements(scope, by_system=by_system, by_severity=filtered,
                                                 by_owner=filtered, by_control=filtered,
                                                 direction=direction, start_band=start_band):
        assert "POSTCOMPILE" not in str(statement.compile(dialect=sa.dialects.sqlite.dialect()))
