"""Units of work: how long a request waits for another writer, on each database."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from bot import cores
from bot.store import engine as engines
from bot.store import sqlite_checkpoints
from bot.store.engine import is_busy, make_engine, unit_of_work, wait_for_checkpoints, writes_together
from bot.store.models import Workspace
from tests.db import plain_postgresql


def test_sqlite_max_wait_applies_to_its_unit_of_work_only(engine: Engine) -> None:
    """A request's short wait for a writer must not stick to the pooled
    connection it used, nor a job's long wait to the next request."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite busy timeout")

    def busy_ms(**options: float) -> int:
        with unit_of_work(engine, read_only=True, **options) as session:
            return session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()  # type: ignore[no-any-return]

    assert [busy_ms(max_wait=2.0), busy_ms(), busy_ms(max_wait=0.25), busy_ms(max_wait=0.25), busy_ms()] == [
        2000, 15000, 250, 250, 15000
    ]


def test_postgresql_lock_timeout_is_the_units_max_wait(engine: Engine) -> None:
    """Requests wait at most their max_wait for a lock (readers wait only for a
    schema change); jobs may wait as long as it takes."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL lock timeout")

    def lock_timeout(**options: Any) -> str:
        with unit_of_work(engine, **options) as session:
            return session.connection().exec_driver_sql("SHOW lock_timeout").scalar()  # type: ignore[no-any-return]

    assert [lock_timeout(max_wait=2.0), lock_timeout(max_wait=2.0, read_only=True), lock_timeout()] == ["2s", "2s", "0"]
    assert [lock_timeout(max_wait=0.5), lock_timeout(max_wait=0.5, read_only=True)] == ["500ms", "500ms"]


def test_postgresql_lock_timeout_outlives_a_rollback(engine: Engine) -> None:
    """The timeout is set for the pooled connection, outside any transaction, so a
    unit of work that fails does not take it back for the next one."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL lock timeout")
    with pytest.raises(RuntimeError), unit_of_work(engine, max_wait=2.0) as session:
        session.connection().exec_driver_sql("SELECT 1")
        raise RuntimeError("the unit of work fails")
    with unit_of_work(engine, max_wait=2.0) as session:
        assert session.connection().exec_driver_sql("SHOW lock_timeout").scalar() == "2s"


def test_postgresql_writers_begin_without_a_round_trip(engine: Engine) -> None:
    """Once a pooled connection has the unit's lock timeout, a writer's transaction
    starts with its own first statement: nothing is sent when it begins."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL lock timeout")
    with unit_of_work(engine, max_wait=2.0) as session:
        pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with plain_postgresql(engine.url) as observer, unit_of_work(engine, max_wait=2.0) as session:
        assert session.connection().connection.dbapi_connection.info.backend_pid == pid
        last_query = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert last_query == ("COMMIT",)  # the previous unit's end, nothing since


def test_no_engine_events(engine: Engine) -> None:
    """How transactions begin is the dialect's business here: an engine event
    would put every statement of every request on SQLAlchemy's slower path."""
    with unit_of_work(engine) as session:
        assert session.connection().execute(text("SELECT 1")).scalar() == 1
    assert not engine._has_events


def test_postgresql_statements_build_no_description_nobody_reads(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once SQLAlchemy has a statement's columns (its compiled form cached), it
    only asks whether there is a description: psycopg's columns are not built."""
    if engine.dialect.name != "postgresql":
        pytest.skip("psycopg cursors")
    statement = select(Workspace.team_id, Workspace.created_at).where(Workspace.team_id == "T1")
    with unit_of_work(engine, read_only=True) as session:
        session.connection().execute(statement).all()  # compiled and its columns learnt
    built = []
    init = psycopg.Column.__init__

    def counted(column: psycopg.Column, *args: Any) -> None:
        built.append(column)
        init(column, *args)

    monkeypatch.setattr(psycopg.Column, "__init__", counted)
    with unit_of_work(engine, read_only=True) as session:
        assert session.connection().execute(statement).all() == []
    assert built == []
    with unit_of_work(engine, read_only=True) as session:  # a new statement: its columns are read
        assert session.connection().execute(text("SELECT 1 AS one, 'x' AS ex")).mappings().one() == {"one": 1, "ex": "x"}
    assert [column.name for column in built] == ["one", "ex"]


def test_postgresql_description_read_late_is_psycopgs(engine: Engine) -> None:
    """Read, the description is psycopg's own; a statement with no result
    columns has psycopg's None or []; one read after the cursor moved on refuses."""
    if engine.dialect.name != "postgresql":
        pytest.skip("psycopg cursors")
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SELECT 1 AS one, 'x'::text AS ex, now() AS at")
        description = cursor.description
        assert len(description) == 3
        expected = cursor.psycopg_description()
        assert [(c.name, c.type_code) for c in description] == [(c.name, c.type_code) for c in expected]
        assert [c.name for c in description[-2:]] == ["ex", "at"] and description[0].name == "one"
        cursor.execute("SELECT 2 AS two")
        stale = cursor.description
        cursor.execute("SELECT ;")
        assert cursor.description == []
        with pytest.raises(psycopg.InterfaceError, match="after its cursor moved to another result or closed"):
            stale[0]
        cursor.execute("SET application_name = 'poam-test'")
        assert cursor.description is None
        connection.rollback()


def test_postgresql_cursor_factory_a_caller_chose_is_kept(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("psycopg cursors")
    chosen = make_engine(engine.url.render_as_string(hide_password=False), connect_args={"cursor_factory": psycopg.ClientCursor})
    try:
        with chosen.connect() as connection:
            assert type(connection.connection.dbapi_connection.cursor()) is psycopg.ClientCursor  # type: ignore[union-attr]
    finally:
        chosen.dispose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """The port of a listener the kernel completes connections for and nobody
    ever answers: a database host that hangs (psycopg alone waits 130 s)."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        yield listener.getsockname()[1]


def _connect_fails_within(url: str, seconds: float) -> BaseException:
    """Connect with a new engine for ``url``; what it raised, which it must within ``seconds``."""
    outcome: list[BaseException] = []

    def connect() -> None:
        engine = make_engine(url, poolclass=NullPool)
        try:
            engine.connect().close()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    started = time.monotonic()
    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    attempt.join(seconds)
    assert not attempt.is_alive(), f"still connecting after {seconds} s"
    assert outcome, "connected to a server that never answers"
    assert time.monotonic() - started >= 0.5  # it waited, not refused at once
    return outcome[0]


def test_postgresql_connect_gives_up_after_its_timeout(silent_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request or the dispatcher never waits on a hung database host for
    longer than the connect timeout (PG_CONNECT_TIMEOUT_SECONDS; 2 s here,
    the least psycopg takes)."""
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.setattr(engines, "PG_CONNECT_TIMEOUT_SECONDS", 2)
    failure = _connect_fails_within(f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/x", 4)
    assert isinstance(failure, OperationalError)


@pytest.mark.parametrize("url_query, environment", [("?connect_timeout=2", None), ("", "2")])
def test_postgresql_connect_timeout_set_by_the_url_or_environment_wins(
    silent_server: int, monkeypatch: pytest.MonkeyPatch, url_query: str, environment: str | None
) -> None:
    monkeypatch.setattr(engines, "PG_CONNECT_TIMEOUT_SECONDS", 60)
    if environment is None:
        monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("PGCONNECT_TIMEOUT", environment)
    failure = _connect_fails_within(f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/x{url_query}", 4)
    assert isinstance(failure, OperationalError)


def _backend_pid(engine: Engine) -> int:
    with unit_of_work(engine, read_only=True) as session:
        return session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()  # type: ignore[no-any-return]


def test_postgresql_checkout_sends_nothing_to_the_server(engine: Engine) -> None:
    """A request checks its pooled connection without a round trip (SQLAlchemy's
    pre-ping sent psycopg's empty query ``;``), and keeps the same connection while it is alive."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL connection checks")
    pid = _backend_pid(engine)
    with plain_postgresql(engine.url) as observer, unit_of_work(engine, read_only=True) as session:
        assert session.connection().connection.dbapi_connection.info.backend_pid == pid
        last_query = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert last_query == ("SELECT pg_backend_pid()",)  # the previous unit's statement, nothing since


def test_postgresql_replaces_a_connection_the_server_closed(engine: Engine) -> None:
    """After a restart or ``pg_terminate_backend`` the next unit of work gets a new
    connection instead of failing on the dead one."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL connection checks")
    pid = _backend_pid(engine)
    with plain_postgresql(engine.url) as observer:
        observer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while observer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)
    new_pid = _backend_pid(engine)
    assert new_pid != pid
    assert _backend_pid(engine) == new_pid


def _turn_read_only(engine: Engine) -> int:
    """Make the session of ``engine``'s pooled connection read-only, as a
    failover's old primary is to the connections made before it; its backend pid."""
    with unit_of_work(engine, read_only=True) as session:  # autocommit: the SET stays
        session.connection().exec_driver_sql("SET SESSION default_transaction_read_only = on")
        return session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()  # type: ignore[no-any-return]


def test_postgresql_replaces_connections_to_a_server_gone_read_only(engine: Engine) -> None:
    """A write refused as read-only fails that unit of work, and the next one
    connects anew instead of failing the same way until a restart."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL read-only transactions")
    one = make_engine(engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    try:
        old_pid = _turn_read_only(one)
        with pytest.raises(DBAPIError, match="read-only transaction") as refused:
            with unit_of_work(one) as session:
                session.add(_workspace("T0READONLY"))
        assert refused.value.connection_invalidated
        with unit_of_work(one) as session:
            session.add(_workspace("T0READONLY"))
        assert _backend_pid(one) != old_pid
    finally:
        one.dispose()
    assert _workspaces(engine, "T0READONLY") == ["T0READONLY"]


def _writer_can_begin(engine: Engine) -> bool:
    """Whether another connection could take SQLite's write lock right now."""
    other = sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_sqlite_transactions_begin_as_asked(engine: Engine) -> None:
    """Writers (units of work, and ``engine.begin()`` for jobs and migrations)
    take SQLite's write lock when they begin; readers do not, so a writer can
    commit while a reader is open."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite BEGIN IMMEDIATE")

    with unit_of_work(engine, read_only=True):
        assert _writer_can_begin(engine)
    with engine.begin():  # right after a reader: nothing of its mode is left over
        assert not _writer_can_begin(engine)
    with unit_of_work(engine):
        assert not _writer_can_begin(engine)
    assert _writer_can_begin(engine)


def test_sqlite_writer_tries_again_in_short_steps_until_the_lock_is_free(engine: Engine) -> None:
    """A writer waiting for SQLite's write lock tries again every millisecond or
    less (SQLite's busy handler sleeps 1, 2, 5, 10, 15… ms between tries, with
    the GIL released, so the bot would see one try), and gets in once the
    other writer is done."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite write lock")
    tries: list[str] = []
    with engine.connect() as connection:  # the engine's one pooled connection, traced
        connection.connection.dbapi_connection.set_trace_callback(tries.append)  # type: ignore[union-attr]
    other = sqlite3.connect(str(engine.url.database), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.1, other.rollback).start()
    try:
        with unit_of_work(engine, max_wait=5.0) as session:
            assert not _writer_can_begin(engine)
            assert session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    finally:
        other.close()
    begins = tries.count("BEGIN IMMEDIATE")
    assert begins >= 10, tries  # about 100 in the 0.1 s; one, had SQLite waited


def test_sqlite_writer_gives_up_after_its_max_wait(engine: Engine) -> None:
    """Another writer holding the lock past a unit's ``max_wait``: SQLite's busy
    error (:func:`is_busy`) after about that long, and nothing written."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite write lock")
    other = sqlite3.connect(str(engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError) as refused, unit_of_work(engine, max_wait=0.2):
            pytest.fail("the unit of work began while another writer held the lock")
        waited = time.monotonic() - started
    finally:
        other.rollback()
        other.close()
    assert is_busy(refused.value)
    assert 0.2 <= waited < 2.0
    with unit_of_work(engine, max_wait=0.2) as session:  # the lock free again: in at once
        assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1


def test_sqlite_reader_that_comes_to_write_after_another_writer_is_busy(engine: Engine) -> None:
    """A read-only unit that writes (a workspace's first use) after another
    writer committed gets SQLite's SQLITE_BUSY_SNAPSHOT: nothing written, and
    the request is answered "try again" (:func:`is_busy`), not "something went wrong"."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite snapshots")
    with pytest.raises(OperationalError) as refused, unit_of_work(engine, read_only=True) as session:
        session.connection().execute(select(Workspace.team_id)).all()  # its snapshot
        with unit_of_work(engine) as other:
            other.add(Workspace(team_id="T0WRITER1", created_at=datetime(2026, 12, 6, tzinfo=UTC)))
        session.add(Workspace(team_id="T0READER1", created_at=datetime(2026, 12, 6, tzinfo=UTC)))
        session.flush()
    assert refused.value.orig.sqlite_errorcode == sqlite3.SQLITE_BUSY_SNAPSHOT  # type: ignore[union-attr]
    assert is_busy(refused.value)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT team_id FROM workspaces ORDER BY team_id")).scalars().all() == ["T0WRITER1"]


def test_a_unit_of_work_begins_every_transaction_as_asked(engine: Engine) -> None:
    """A unit that commits midway begins its next transaction the same way."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite busy timeout")
    with unit_of_work(engine, read_only=True, max_wait=0.25) as session:
        session.commit()
        assert session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == 250
        assert _writer_can_begin(engine)  # it is still a reader
    with unit_of_work(engine) as session:
        session.commit()
        session.connection()
        assert not _writer_can_begin(engine)  # and a writer still a writer


def test_engine_begin_is_one_transaction(engine: Engine) -> None:
    """Outside a unit of work too, what a block wrote is undone when it fails."""
    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.execute(insert(Workspace.__table__), [Workspace(team_id="T0ROLLBACK", created_at=datetime(2026, 12, 1, tzinfo=UTC)).model_dump()])  # type: ignore[attr-defined]
        raise RuntimeError("fail after the insert")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM workspaces WHERE team_id = 'T0ROLLBACK'")).scalar() == 0


def _two_clocks(session: Any) -> tuple[datetime, datetime]:
    """``now()`` (when the transaction began) twice, 20 ms apart."""
    first = session.connection().exec_driver_sql("SELECT now()").scalar()
    time.sleep(0.02)
    return first, session.connection().exec_driver_sql("SELECT now()").scalar()


def test_postgresql_readers_run_without_a_transaction(engine: Engine) -> None:
    """No BEGIN and COMMIT round trips for a reader: each statement is its own
    transaction (as at READ COMMITTED it takes its own snapshot anyway). A
    writer is one transaction, also right after a reader on the same connection."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL transactions")
    with unit_of_work(engine, read_only=True) as session:
        first, second = _two_clocks(session)
        assert first < second
    with unit_of_work(engine, max_wait=2.0) as session:
        first, second = _two_clocks(session)
        assert first == second
    with unit_of_work(engine, read_only=True) as session:
        first, second = _two_clocks(session)
        assert first < second


def test_a_snapshot_reader_sees_the_database_as_its_first_statement_did(engine: Engine) -> None:
    """A change committed between two of its statements is in neither (an
    export's items and their trail must agree); a plain reader on PostgreSQL
    sees it in the second. The snapshot's connection goes back to the pool as
    a plain reader's."""
    with unit_of_work(engine) as session:
        session.add(_workspace("T0BEFORE"))

    def count_between(**mode: bool) -> tuple[int, int]:
        with unit_of_work(engine, read_only=True, **mode) as session:
            first = session.execute(select(func.count()).select_from(Workspace)).scalar_one()
            with unit_of_work(engine) as other:
                other.add(_workspace(f"T0{len(mode)}{first}"))
            return first, session.execute(select(func.count()).select_from(Workspace)).scalar_one()

    first, second = count_between(snapshot=True)
    assert second == first
    first, second = count_between()
    assert second == (first + 1 if engine.dialect.name == "postgresql" else first)
    if engine.dialect.name == "postgresql":
        with unit_of_work(engine, read_only=True, snapshot=True) as session:
            assert session.execute(text("SHOW transaction_isolation")).scalar_one() == "repeatable read"
        with unit_of_work(engine, read_only=True) as session:
            first, second = _two_clocks(session)
            assert first < second  # each statement on its own again
            assert session.execute(text("SHOW transaction_isolation")).scalar_one() == "read committed"


def _workspace(team_id: str) -> Workspace:
    return Workspace(team_id=team_id, created_at=datetime(2026, 12, 1, tzinfo=UTC))


def _workspaces(engine: Engine, *team_ids: str) -> list[str]:
    with unit_of_work(engine, read_only=True) as session:
        return list(session.execute(select(Workspace.team_id).where(Workspace.team_id.in_(team_ids))).scalars())  # type: ignore[attr-defined]


@pytest.mark.parametrize("read_only", [True, False])
def test_writes_together_are_all_or_nothing(engine: Engine, read_only: bool) -> None:
    """In a reader too (a workspace's first use): a failure inside the block
    leaves none of its writes, also those already flushed."""
    with pytest.raises(RuntimeError), unit_of_work(engine, read_only=read_only) as session:
        with writes_together(session):
            session.add(_workspace("T0FIRST"))
            session.flush()
            session.add(_workspace("T0SECOND"))
            raise RuntimeError("fail between the writes")
    assert _workspaces(engine, "T0FIRST", "T0SECOND") == []
    with unit_of_work(engine, read_only=read_only) as session, writes_together(session):
        session.add(_workspace("T0FIRST"))
        session.flush()
        session.add(_workspace("T0SECOND"))
    assert sorted(_workspaces(engine, "T0FIRST", "T0SECOND")) == ["T0FIRST", "T0SECOND"]


def _main_file(engine: Engine) -> bytes:
    """The SQLite database file itself, without what its write-ahead log holds."""
    with open(engine.url.database or "", "rb") as file:
        return file.read()


def _fill(engine: Engine, pages: int) -> None:
    """One writer's commit of ``pages`` new pages of 4 KiB."""
    with unit_of_work(engine) as session:
        session.connection().exec_driver_sql(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {pages}) "
            "INSERT INTO filler SELECT randomblob(4096) FROM n"
        )


def test_sqlite_commits_leave_checkpoints_to_a_thread_of_their_own(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No commit copies the log back into the database file (SQLite's default
    does, in the commit that takes the log past 1,000 pages); a checkpoint on a
    thread of its own does, after a writer commits, at most every interval."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite checkpoints")
    monkeypatch.setattr(sqlite_checkpoints, "CHECKPOINT_INTERVAL", 3600.0)
    with unit_of_work(engine) as session:  # the engine's first writer starts one
        session.connection().exec_driver_sql("CREATE TABLE filler (page BLOB)")
    wait_for_checkpoints(engine)
    before = _main_file(engine)
    for _ in range(30):  # 1,500 pages in 30 commits
        _fill(engine, 50)
    wait_for_checkpoints(engine)
    assert _main_file(engine) == before  # all 1,500 pages are still in the log only
    monkeypatch.setattr(sqlite_checkpoints, "CHECKPOINT_INTERVAL", 0.0)
    with unit_of_work(engine) as session:  # the interval is over: this writer starts one
        session.connection().exec_driver_sql("DELETE FROM filler WHERE rowid = 1")
    wait_for_checkpoints(engine)
    assert len(_main_file(engine)) > len(before) + 1_000 * 4096


def _log_frames(engine: Engine) -> int:
    """Frames in the database's write-ahead log (a passive checkpoint's count;
    asked again while the checkpoint thread has the checkpoint lock)."""
    deadline = time.monotonic() + 5
    with closing(sqlite3.connect(engine.url.database or "", timeout=0)) as connection:
        while True:
            busy, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    assert busy == 0
    return int(frames)


def _start_a_long_log(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> sqlite3.Connection:
    """A filler table; checkpoints after every commit, starting the log over
    past 100 pages; and a reader that reads from the log (open: the caller
    closes it), so that only a checkpoint that waits for it can start the log
    over."""
    monkeypatch.setattr(sqlite_checkpoints, "CHECKPOINT_INTERVAL", 0.0)
    monkeypatch.setattr(sqlite_checkpoints, "RESTART_PAGES", 100)
    with unit_of_work(engine) as session:
        session.connection().exec_driver_sql("CREATE TABLE filler (page BLOB)")
    wait_for_checkpoints(engine)  # one at a time: the next commit starts the next
    monkeypatch.setattr(sqlite_checkpoints, "CHECKPOINT_INTERVAL", 3600.0)
    _fill(engine, 5)  # in the log only: no checkpoint for an hour
    reader = sqlite3.connect(engine.url.database or "", isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM filler").fetchone() == (5,)  # reads from the log
    monkeypatch.setattr(sqlite_checkpoints, "CHECKPOINT_INTERVAL", 0.0)
    return reader


def test_sqlite_writers_go_on_while_a_checkpoint_waits_for_a_reader(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint starting the log over waits for a reader that still needs
    the log without holding the write lock meanwhile (a busy timeout would
    hold it while it waits): writers go on, and once the reader is done the
    next writer starts the log over."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite checkpoints")
    monkeypatch.setattr(sqlite_checkpoints, "RESTART_WAIT_SECONDS", 60.0)
    reader = _start_a_long_log(engine, monkeypatch)
    try:
        _fill(engine, 150)  # starts a checkpoint that cannot start the log over while the reader reads
        for _ in range(20):  # 0.4 s of writers, each waiting at most 0.5 s for the lock
            with unit_of_work(engine, max_wait=0.5) as session:
                session.connection().exec_driver_sql("DELETE FROM filler WHERE rowid = (SELECT min(rowid) FROM filler)")
            time.sleep(0.02)
        assert _log_frames(engine) > 150  # not started over yet: the reader still reads from it
    finally:
        reader.close()
    wait_for_checkpoints(engine)
    _fill(engine, 5)
    wait_for_checkpoints(engine)
    assert 0 < _log_frames(engine) < 50


def _a_capped_log(engine: Engine, monkeypatch: pytest.MonkeyPatch, *, cap_wait: float) -> sqlite3.Connection:
    """``_start_a_long_log`` (SQLite only) with a cap of 120 pages, 20 ms of
    short tries, and ``cap_wait`` for the forced try."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite checkpoints")
    monkeypatch.setattr(sqlite_checkpoints, "RESTART_WAIT_SECONDS", 0.02)
    monkeypatch.setattr(sqlite_checkpoints, "LOG_CAP_PAGES", 120)
    monkeypatch.setattr(sqlite_checkpoints, "CAP_WAIT_SECONDS", cap_wait)
    return _start_a_long_log(engine, monkeypatch)


def test_sqlite_a_log_past_its_cap_is_started_over_even_if_writers_wait(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Readers that never leave the log alone for long would let it grow
    without end: past LOG_CAP_PAGES the checkpoint waits for them with the
    write lock held, so a writer then finishes only after the reader did."""
    reader = _a_capped_log(engine, monkeypatch, cap_wait=10.0)
    reader_done: list[float] = []

    def finish_reading() -> None:
        reader.close()
        reader_done.append(time.monotonic())

    timer = threading.Timer(0.5, finish_reading)
    timer.start()
    with caplog.at_level(logging.WARNING, logger="bot.store.sqlite_checkpoints"):
        try:
            _fill(engine, 150)  # its checkpoint gives up its short tries, then waits for the reader
            time.sleep(0.2)
            with unit_of_work(engine, max_wait=10.0) as session:
                session.connection().exec_driver_sql("DELETE FROM filler WHERE rowid = (SELECT min(rowid) FROM filler)")
            written = time.monotonic()
        finally:
            timer.join()
        wait_for_checkpoints(engine)
    assert reader_done and written >= reader_done[0]
    assert any("starting it over, writers waiting for readers" in record.getMessage() for record in caplog.records)
    _fill(engine, 5)
    wait_for_checkpoints(engine)
    assert 0 < _log_frames(engine) < 50  # started over


def test_sqlite_a_reader_that_outlasts_the_forced_wait_is_not_waited_for_again_at_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One long read (an export's) defeats the forced restart: writers are
    not made to wait for it again until the log has grown by another cap."""
    reader = _a_capped_log(engine, monkeypatch, cap_wait=0.2)

    def forced_tries() -> int:
        return sum("writers waiting for readers" in record.getMessage() for record in caplog.records)

    with caplog.at_level(logging.WARNING, logger="bot.store.sqlite_checkpoints"):
        try:
            _fill(engine, 150)  # past the cap: a forced try, defeated by the reader
            wait_for_checkpoints(engine)
            assert forced_tries() == 1
            assert any("next forced try past" in record.getMessage() for record in caplog.records)
            _fill(engine, 5)  # past the cap still, not past the raised one
            wait_for_checkpoints(engine)
            assert forced_tries() == 1
            _fill(engine, 150)  # past the raised cap
            wait_for_checkpoints(engine)
            assert forced_tries() == 2
        finally:
            reader.close()


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin to"
)
def test_a_checkpoint_started_in_a_pinned_worker_runs_on_any_core(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite copying its log needs no GIL: the checkpoint thread leaves the
    core a pinned worker's threads share (``bot.cores``)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite checkpoints")
    monkeypatch.setattr(sqlite_checkpoints, "RESTART_WAIT_SECONDS", 60.0)
    monkeypatch.setattr(cores, "_cores_before_pinning", None)
    every_core = os.sched_getaffinity(0)
    reader = _start_a_long_log(engine, monkeypatch)  # keeps the checkpoint below trying: no other runs meanwhile
    try:
        def pinned_writer() -> None:
            cores.pin_to(max(every_core))
            _fill(engine, 150)  # starts the checkpoint, on a thread that inherits the pinning

        writer = threading.Thread(target=pinned_writer)
        writer.start()
        writer.join()
        (checkpoint,) = [thread for thread in threading.enumerate() if thread.name == "poam-wal-checkpoint"]
        assert checkpoint.native_id is not None
        deadline = time.monotonic() + 5
        while os.sched_getaffinity(checkpoint.native_id) != every_core and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.sched_getaffinity(checkpoint.native_id) == every_core
    finally:
        reader.close()
    wait_for_checkpoints(engine)
