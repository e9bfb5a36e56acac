"""Engines and units of work.

One database session per request or job, committed or rolled back in one
place: :func:`unit_of_work`. SQLite gets foreign keys, WAL (checkpointed off
the request path: ``sqlite_checkpoints``) and a busy timeout for readers, and
its write transactions start with ``BEGIN IMMEDIATE``, waiting for the write
lock in short steps of their own (:func:`_begin_writing`): a deferred
transaction that reads first and writes later fails at once with ``database
is locked`` when another writer got there in between (the busy timeout does
not apply to that upgrade), which concurrent claims would hit.

How a transaction begins (SQLite's ``BEGIN`` or ``BEGIN IMMEDIATE`` and busy
timeout, PostgreSQL's autocommit and lock timeout) is decided by the dialect's ``do_begin``,
which reads what the unit of work asked for from a context variable, not by
an engine ``begin`` event as in SQLAlchemy's recipe: any engine event puts
every statement of every connection on SQLAlchemy's slower event path, ~15%
of the CPU of a ``/poam show`` (README "Performance").

A pooled PostgreSQL connection is checked for a server hang-up (restart,
``pg_terminate_backend``, an idle timeout) by looking at its socket when it is
checked out, not by SQLAlchemy's ``pool_pre_ping``, which costs a round trip
(psycopg's empty query) on every request; a write the server refuses as
read-only replaces the pool's connections too (a failover's old primary). Its
connections' cursors build ``description`` only when something reads it
(``pg_cursors``).
"""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlmodel import Session

from bot.sockets import readable_now
from bot.store.lock_pauses import lock_pauses
from bot.store.pg_cursors import LazyDescriptionCursor
from bot.store.sqlite_checkpoints import WalCheckpoints

SQLITE_BUSY_TIMEOUT_MS = 15_000
_BUSY_MS = "poam_busy_ms"
_WRITES = "poam_writes"
_WAL = "poam_wal"
_PG_LOCK_NOT_AVAILABLE = "55P03"
#: PostgreSQL chose this transaction to end a deadlock: rolled back, it may be tried again.
_PG_DEADLOCK = "40P01"
_PG_READ_ONLY_TRANSACTION = "25006"
#: How long connecting to PostgreSQL may take (each host or address the URL
#: leads to), unless the URL (``?connect_timeout=``) or ``PGCONNECT_TIMEOUT``
#: says: psycopg's own limit is 130 s, through which a database host that drops
#: packets or never answers holds a request, or the dispatcher marking a
#: message sent.
PG_CONNECT_TIMEOUT_SECONDS = 5


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite:///…`` URL names; None for another database, or one
    in memory or named by a ``file:`` URI."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or name in (None, "", ":memory:") or name.startswith("file:"):
        return None
    return Path(name)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"))
        return engine
    if "connect_timeout" not in parsed.query and not os.environ.get("PGCONNECT_TIMEOUT"):
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS, **kwargs.get("connect_args", {})}
    engine = create_engine(parsed, **kwargs)
    _configure_postgresql(engine)
    return engine


@dataclass(frozen=True)
class _Begin:
    """How the transactions of the unit of work running in this context begin."""

    read_only: bool = False
    #: None: SQLite's default busy timeout, no PostgreSQL lock timeout.
    busy_ms: int | None = None
    #: Every statement sees the database as of the first (see unit_of_work).
    snapshot: bool = False


#: The checkpoints of the SQLite engines of this process, by engine.
_CHECKPOINTS: weakref.WeakKeyDictionary[Engine, WalCheckpoints] = weakref.WeakKeyDictionary()
_UNIT_BEGIN: ContextVar[_Begin | None] = ContextVar("poam_unit_begin", default=None)


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    database = engine.url.database or ""
    checkpoints = None if in_memory or database.startswith("file:") else WalCheckpoints(database)

    @event.listens_for(engine, "connect")  # a pool event: no cost per statement
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # do_begin (below) issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        record.info[_BUSY_MS] = SQLITE_BUSY_TIMEOUT_MS
        if not in_memory:
            record.info[_WAL] = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
            cursor.execute("PRAGMA synchronous = NORMAL")
        if checkpoints is not None:
            cursor.execute("PRAGMA wal_autocheckpoint = 0")
        cursor.close()

    def do_begin(connection: Any) -> None:
        begin = _UNIT_BEGIN.get() or _Begin()
        wait_ms = SQLITE_BUSY_TIMEOUT_MS if begin.busy_ms is None else begin.busy_ms
        connection.info[_WRITES] = not begin.read_only
        # In WAL mode a writer waits for the write lock in _begin_writing, not
        # in SQLite's busy handler. Without WAL (a database in memory, or a
        # file where WAL could not be set) its commit may wait for readers.
        waits_itself = not begin.read_only and connection.info.get(_WAL, False)
        busy_ms = 0 if waits_itself else wait_ms
        cursor = connection.cursor()
        try:
            if connection.info.get(_BUSY_MS) != busy_ms:  # a pooled connection keeps the last one set
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                connection.info[_BUSY_MS] = busy_ms
            if waits_itself:
                _begin_writing(cursor, wait_ms=wait_ms)
            else:
                cursor.execute("BEGIN" if begin.read_only else "BEGIN IMMEDIATE")
        finally:
            cursor.close()

    _replace_do_begin(engine, do_begin)
    if checkpoints is None:
        return
    _CHECKPOINTS[engine] = checkpoints
    commit = engine.dialect.do_commit

    def do_commit(connection: Any) -> None:
        commit(connection)
        if connection.info.get(_WRITES):
            checkpoints.after_write()

    engine.dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]


def _begin_writing(cursor: Any, *, wait_ms: int) -> None:
    """``BEGIN IMMEDIATE``, tried again after short pauses for up to ``wait_ms``
    while another writer holds the lock (``lock_pauses``); then SQLite's busy
    error (:func:`is_busy`).

    SQLite's own busy handler sleeps far longer than a claim holds the lock
    (about half a millisecond): with two worker processes (``bench/load.py
    --workers 2``, 32 clients) one write in five waited over 1 ms for it and
    one in a hundred over 18 ms, holding a listener's turn all the while. A
    writer's connection has no busy timeout of its own: once it holds the
    write lock, nothing in a WAL database makes it wait again before its
    commit. When writers keep the lock busy without a
    break, the waits are shared out more evenly than by SQLite's handler,
    which let some threads in again and again while others starved: in a
    review's test the longest wait fell tenfold and the 99th percentile rose.
    """
    deadline = time.monotonic() + wait_ms / 1000
    for pause in lock_pauses():
        try:
            cursor.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            now = time.monotonic()
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or now >= deadline:
                raise
        time.sleep(min(pause, deadline - now))


def wait_for_checkpoints(engine: Engine) -> None:
    """Wait for the SQLite checkpoint of ``engine`` under way, if any (a thread
    of its own: ``sqlite_checkpoints``)."""
    checkpoints = _CHECKPOINTS.get(engine)
    if checkpoints is not None:
        checkpoints.join()


def dispose(engine: Engine) -> None:
    """Close ``engine``'s connections, and wait for its checkpoint under way:
    then nothing of this process has the database open (before copying a
    SQLite file, or forking)."""
    engine.dispose()
    wait_for_checkpoints(engine)


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")  # a pool event: no cost per statement
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info[_BUSY_MS] = None  # a new session has the server's lock_timeout
        if dbapi_connection.cursor_factory is psycopg.Cursor:  # not one a caller chose (connect_args)
            dbapi_connection.cursor_factory = LazyDescriptionCursor

    @event.listens_for(engine, "checkout")  # a pool event: no cost per statement
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if _server_hung_up(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")  # the pool connects anew

    def do_begin(connection: Any) -> None:
        begin = _UNIT_BEGIN.get() or _Begin()
        dbapi_connection = connection.dbapi_connection
        if connection.info.get(_BUSY_MS) != begin.busy_ms:  # a pooled connection keeps the last one set
            _set_lock_timeout(dbapi_connection, begin.busy_ms)
            connection.info[_BUSY_MS] = begin.busy_ms
        # A reader runs each statement on its own: no BEGIN and COMMIT round
        # trips (see unit_of_work). Setting the mode costs none; psycopg opens
        # a writer's transaction with its first statement.
        alone = begin.read_only and not begin.snapshot
        if dbapi_connection.autocommit != alone:
            dbapi_connection.autocommit = alone
        if begin.snapshot:  # psycopg sends BEGIN first
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    _replace_do_begin(engine, do_begin)
    _count_read_only_as_disconnect(engine)


def _count_read_only_as_disconnect(engine: Engine) -> None:
    """A write refused because the server is read-only (``25006``: the old
    primary of a failover, reached by connections made before it) is handled
    as a lost connection: SQLAlchemy replaces every connection of the pool made
    until then, so the next unit of work connects anew, where the address now
    leads to the primary. Without it the pool keeps those connections, and
    every write fails until the bot restarts."""
    is_disconnect = engine.dialect.is_disconnect

    def is_disconnect_or_read_only(error: Any, connection: Any, cursor: Any) -> bool:
        return getattr(error, "sqlstate", None) == _PG_READ_ONLY_TRANSACTION or is_disconnect(error, connection, cursor)

    engine.dialect.is_disconnect = is_disconnect_or_read_only  # type: ignore[method-assign,assignment]


def _set_lock_timeout(dbapi_connection: Any, busy_ms: int | None) -> None:
    """Set the session's ``lock_timeout`` (None: the server's own), outside any
    transaction so that no rollback undoes it. Once per pooled connection and
    value, instead of a ``SET LOCAL`` round trip at the start of every transaction."""
    dbapi_connection.autocommit = True
    value = "DEFAULT" if busy_ms is None else str(int(busy_ms))
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {value}")


def _server_hung_up(dbapi_connection: Any) -> bool:
    """Whether the server closed this idle connection. Between transactions a
    live PostgreSQL connection has nothing to read; one the server ended has its
    last message or the end of the stream waiting. Something else waiting (a
    rare asynchronous parameter report) only costs a new connection."""
    return bool(dbapi_connection.closed) or readable_now(dbapi_connection.fileno())


def _replace_do_begin(engine: Engine, do_begin: Any) -> None:
    """SQLAlchemy calls ``engine.dialect.do_begin(pooled DBAPI connection)`` when
    a connection begins; this engine's own dialect instance gets ours. Relies
    on that internal call: ``tests/test_engine.py`` checks the begin modes and
    timeouts on both databases, and fails if it stops being made."""
    engine.dialect.do_begin = do_begin  # type: ignore[method-assign]


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is another writer holding what this unit of work needed
    for longer than its ``max_wait``, or (SQLite's ``SQLITE_BUSY_SNAPSHOT``) a
    reader that came to write after another writer committed, or (PostgreSQL)
    a deadlock it was chosen to end: nothing was written, trying again may
    work. SQLite's extended codes count by their
    primary code."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.orig
    return (
        getattr(cause, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        or getattr(cause, "sqlstate", None) in (_PG_LOCK_NOT_AVAILABLE, _PG_DEADLOCK)
    )


def may_pass(failure: DBAPIError) -> bool:
    """Whether trying again may work: a connection the engine replaced (lost,
    or to a server gone read-only), PostgreSQL's operational errors (the
    server shutting down, a lock timeout) and SQLite's busy database. SQLite
    reports a missing table or a full disk as operational errors too; those do
    not pass."""
    if failure.connection_invalidated:
        return True
    return isinstance(failure, OperationalError) and (is_busy(failure) or not isinstance(failure.orig, sqlite3.Error))


@contextmanager
def unit_of_work(
    engine: Engine, *, read_only: bool = False, snapshot: bool = False, max_wait: float | None = None
) -> Iterator[Session]:
    """A session committed when the block ends normally, rolled back otherwise.

    ``read_only`` lets SQLite readers run beside a writer instead of queueing
    behind it. On PostgreSQL it runs each statement on its own, without a
    transaction: two round trips less per request, and no less consistent, as
    at READ COMMITTED every statement takes its own snapshot anyway. It does not
    stop writes; a reader that may write (a workspace's first use) puts those
    writes in :func:`writes_together`. ``snapshot``: every statement sees the
    database as the first did (PostgreSQL's REPEATABLE READ; a SQLite
    transaction always does), for a reader of many statements whose parts
    must agree, as an export's items, their requests and their audit trail;
    changes committed meanwhile would otherwise land between them. ``max_wait``
    caps how long it waits for another writer (on SQLite a writer's own tries
    for the write lock, :func:`_begin_writing`, and a reader's busy timeout;
    PostgreSQL's lock timeout, which there covers readers too: they wait only
    for a schema change): requests that must answer within Slack's 3
    seconds fail fast and cleanly (:func:`is_busy`) instead of waiting on.
    Both hold for every transaction the block begins in this context (a unit
    that commits midway begins the next one the same way); the first begins
    at once, not at the first statement.
    """
    busy_ms = None if max_wait is None else int(max_wait * 1000)
    token = _UNIT_BEGIN.set(_Begin(read_only=read_only, busy_ms=busy_ms, snapshot=snapshot))
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                session.connection()
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        _UNIT_BEGIN.reset(token)


@contextmanager
def writes_together(session: Session) -> Iterator[None]:
    """The block's writes all or none, flushed before it ends, in any unit of
    work: a read-only one on PostgreSQL has no transaction of its own (see
    :func:`unit_of_work`), so there the block gets one; elsewhere the unit's
    transaction already makes them so."""
    dbapi_connection = session.connection().connection.dbapi_connection
    assert dbapi_connection is not None  # the session's connection is open
    alone = session.get_bind().dialect.name == "postgresql" and dbapi_connection.autocommit
    with dbapi_connection.transaction() if alone else nullcontext():
        yield
        session.flush()
