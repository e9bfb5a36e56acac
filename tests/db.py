"""Helpers for tests that call the domain on a real database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import URL, Engine, event, text
from sqlmodel import Session, SQLModel, col, select

from bot.poam.errors import PoamError
from bot.store.engine import unit_of_work
from bot.store.models import AuditEvent, Item

TEAM = "T0001"


def plain_postgresql(url: URL) -> psycopg.Connection[Any]:
    """An autocommit psycopg connection to ``url``'s server, outside any engine's pool."""
    return psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True)


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement run on ``engine`` inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


#: Which signed requests were handled (``bot.store.replays``): written for a
#: refused change too, so that its copy stays refused; not the POA&M's state.
NOT_STATE = frozenset({"handled_requests"})


#: Columns that change as a message already written is delivered, after the
#: ack of the request that wrote it (``bot.reminders.dispatch``): a snapshot
#: keeps the messages, not how far their sending has got.
DELIVERY = {"outbox": frozenset({"status", "attempts", "next_attempt_at", "claimed_until", "last_error", "sent_at"})}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the POA&M's state, in primary-key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(
                    sa.select(*(c for c in table.columns if c.name not in DELIVERY.get(table.name, ())))
                    .order_by(*table.primary_key.columns)
                )
            ]
            for table in SQLModel.metadata.sorted_tables
            if table.name not in NOT_STATE
        }


def assert_refused(
    engine: Engine,
    operation: Callable[[Session], object],
    error: type[PoamError] | tuple[type[PoamError], ...],
    message: str | None = None,
    *,
    exact_type: bool = True,
) -> PoamError:
    """``operation`` raises ``error`` (exactly that type unless ``exact_type`` is
    off; with exactly ``message`` when given) and changes nothing, even though
    the unit of work commits after the error is caught."""
    before = snapshot(engine)
    with unit_of_work(engine) as session, pytest.raises(error) as raised:
        operation(session)
    if exact_type and isinstance(error, type):
        assert type(raised.value) is error
    if message is not None:
        assert raised.value.message == message
        assert str(raised.value) == message
    assert raised.value.message
    assert snapshot(engine) == before
    return raised.value


def run(engine: Engine, operation: Callable[[Session], Any]) -> Any:
    """``operation`` in its own unit of work, like one request."""
    with unit_of_work(engine) as session:
        return operation(session)


def fetch(engine: Engine, number: int = 1, team: str = TEAM) -> Item:
    with unit_of_work(engine, read_only=True) as session:
        return session.exec(select(Item).where(Item.team_id == team, Item.number == number)).one()


def events(engine: Engine, team: str = TEAM) -> list[AuditEvent]:
    with unit_of_work(engine, read_only=True) as session:
        return list(
            session.exec(select(AuditEvent).where(AuditEvent.team_id == team).order_by(col(AuditEvent.seq))).all()
        )


def force(engine: Engine, number: int = 1, team: str = TEAM, **values: Any) -> None:
    """Put an item in a state no operation reaches (raw SQL)."""
    table = Item.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(sa.update(table).where(table.c.team_id == team, table.c.number == number).values(**values))


def wait_for_a_lock_wait(engine: Engine) -> None:
    """Until a PostgreSQL session waits for a lock; on SQLite, whose writers
    wait without showing it, half a second."""
    if engine.dialect.name != "postgresql":
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                       " AND datname = current_database()")).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("nothing waited for another transaction's lock")
