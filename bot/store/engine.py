"""Engines and units of work.

One database session per request or job, committed or rolled back in one
place: :func:`unit_of_work`. SQLite gets foreign keys, WAL and a busy timeout,
and its write transactions start with ``BEGIN IMMEDIATE``: a deferred
transaction that reads first and writes later fails at once with
``database is locked`` when another writer got there in between (the busy
timeout does not apply to that upgrade), which concurrent claims would hit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 15_000
_READ_ONLY = "poam_read_only"
_BUSY_MS = "poam_busy_ms"
_PG_LOCK_NOT_AVAILABLE = "55P03"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"))
        return engine
    engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
    _configure_postgresql(engine)
    return engine


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        record.info[_BUSY_MS] = SQLITE_BUSY_TIMEOUT_MS
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        busy_ms, current = options.get(_BUSY_MS, SQLITE_BUSY_TIMEOUT_MS), connection.connection.info
        if current.get(_BUSY_MS) != busy_ms:  # a pooled connection keeps the last one set
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {busy_ms}")
            current[_BUSY_MS] = busy_ms
        connection.exec_driver_sql("BEGIN" if options.get(_READ_ONLY, False) else "BEGIN IMMEDIATE")


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        busy_ms = options.get(_BUSY_MS)
        # Without a cap (jobs, the CLI) wait as long as it takes; readers never
        # wait for writers on PostgreSQL, so they skip the extra round trip.
        if busy_ms is not None and not options.get(_READ_ONLY, False):
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(busy_ms)}")


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is another writer holding what this unit of work needed
    for longer than its ``max_wait``: nothing was written, trying again may work."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.orig
    return (
        getattr(cause, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        or getattr(cause, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE
    )


@contextmanager
def unit_of_work(engine: Engine, *, read_only: bool = False, max_wait: float | None = None) -> Iterator[Session]:
    """A session committed when the block ends normally, rolled back otherwise.

    ``read_only`` lets SQLite readers run beside a writer instead of queueing
    behind it; it does not stop writes (PostgreSQL ignores it). ``max_wait``
    caps how long it waits for another writer (SQLite's busy timeout,
    PostgreSQL's lock timeout): requests that must answer within Slack's 3
    seconds fail fast and cleanly (:func:`is_busy`) instead of waiting on.
    """
    options: dict[str, Any] = {}
    if read_only:
        options[_READ_ONLY] = True
    if max_wait is not None:
        options[_BUSY_MS] = int(max_wait * 1000)
    bind = engine.execution_options(**options) if options else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
