"""Engines and units of work.

One database session per request or job, committed or rolled back in one
place: :func:`unit_of_work`. SQLite gets foreign keys, WAL and a busy timeout,
and its write transactions start with ``BEGIN IMMEDIATE``: a deferred
transaction that reads first and writes later fails at once with
``database is locked`` when another writer got there in between (the busy
timeout does not apply to that upgrade), which concurrent claims would hit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 15_000
_READ_ONLY = "poam_read_only"
_BUSY_MS = "poam_busy_ms"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"))
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


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


@contextmanager
def unit_of_work(engine: Engine, *, read_only: bool = False, max_wait: float | None = None) -> Iterator[Session]:
    """A session committed when the block ends normally, rolled back otherwise.

    ``read_only`` lets SQLite readers run beside a writer instead of queueing
    behind it; it does not stop writes (PostgreSQL ignores it). ``max_wait``
    caps how long SQLite waits for another writer (requests that must answer
    within Slack's 3 seconds fail fast and cleanly instead of waiting 15).
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
