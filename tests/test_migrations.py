"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel, select

from bot.cli import main
from bot.poam import audit
from bot.poam.actor import Actor, Role
from bot.poam.items import log_item, set_plan
from bot.poam.milestones import add_milestone
from bot.poam.roles import grant_role
from bot.poam.severity import Severity
from bot.store.engine import dispose, make_engine, unit_of_work
from bot.store.migrate import DanglingRows, alembic_config, current_revision, head_revision, upgrade
from bot.store.models import Item
from tests.conftest import POSTGRES_URL
from tests.db import plain_postgresql


def test_migrated_database_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_database_is_at_the_newest_revision(engine: Engine) -> None:
    assert current_revision(engine) == head_revision(engine) is not None


#: Tables about the deployment, not about any workspace's POA&M.
DEPLOYMENT_TABLES = {"scheduler_leases"}


def test_every_table_is_scoped_by_workspace(engine: Engine) -> None:
    tables = inspect(engine).get_table_names()
    assert "items" in tables
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in DEPLOYMENT_TABLES:
            assert "team_id" in table.columns, f"{table.name} has no team_id"


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    with unit_of_work(engine, read_only=True) as session:  # a writer waits in steps of its own (test_engine)
        assert session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000


@contextmanager
def scratch_database(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own (migrations change the schema the other tests share), dropped after."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
        try:
            yield engine
        finally:
            dispose(engine)
        return
    if not POSTGRES_URL:
        pytest.skip("POAM_TEST_POSTGRES_URL is not set")
    admin_url, name = make_url(POSTGRES_URL), f"poam_test_mig_{uuid.uuid4().hex[:12]}"
    with plain_postgresql(admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(admin_url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with plain_postgresql(admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_migration_goes_down_and_up_again_with_data_in_it(
    backend: str, tmp_path: Path, make_actor: Callable[..., Actor]
) -> None:
    """SQLite refused a downgrade that rebuilt a table other rows point at
    (its foreign keys are on for every connection): the tables were only
    ever migrated empty."""
    with scratch_database(backend, tmp_path) as engine:
        upgrade(engine)
        owner, admin = make_actor("U0000OWNER"), make_actor("U0000ADMIN", Role.ADMIN)
        with unit_of_work(engine) as session:
            for n in range(1, 4):
                log_item(session, owner, title=f"Weakness {n}", severity=Severity.HIGH, owner_id=owner.user_id)
                set_plan(session, owner, number=n, plan="Patch it.")
                add_milestone(session, owner, number=n, description="Patch", due_on=date(2026, 12, 1))
            grant_role(session, admin, user_id="U00VERIFY1", role=Role.VERIFIER)
        first = ScriptDirectory.from_config(alembic_config(engine)).get_base()
        command.downgrade(alembic_config(engine), first)  # every step down, over tables with rows
        upgrade(engine)
        with unit_of_work(engine, read_only=True) as session:
            assert audit.verify_chain(session, team_id=owner.team_id).ok
            assert len(session.exec(select(Item)).all()) == 3


def test_a_migration_waits_a_few_seconds_for_a_table_in_use_then_gives_up_changing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Queued behind a long transaction (an export), the ALTER of 0018 held
    up every reader of the people table, the running bot's, for as long."""
    with scratch_database("postgresql", tmp_path) as engine:
        upgrade(engine, "0017")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
        with engine.connect() as reading:
            reading.exec_driver_sql("SELECT count(*) FROM people").scalar()  # a transaction reading it, still open
            assert main(["migrate"]) == 1
            assert "nothing was changed: run `poam-bot migrate` again" in capsys.readouterr().err
            assert current_revision(engine) == "0017"
        assert main(["migrate"]) == 0
        assert current_revision(engine) == head_revision(engine)


def test_migrations_at_once_all_end_with_the_schema_made_once(tmp_path: Path) -> None:
    """Replicas starting on a new PostgreSQL database each created its
    tables, and all but one failed on PostgreSQL's catalogue ("duplicate key
    value violates unique constraint pg_type_typname_nsp_index"). Processes,
    as replicas are: Alembic's context is one per process."""
    with scratch_database("postgresql", tmp_path) as engine:
        environment = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
        runs = [subprocess.Popen([sys.executable, "-m", "bot", "migrate"], env=environment, cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        answers = [run.communicate(timeout=120) for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], answers
        assert current_revision(engine) == head_revision(engine)


def test_a_sqlite_migration_that_leaves_rows_pointing_at_nothing_changes_nothing(tmp_path: Path) -> None:
    """Its steps committed one by one (SQLite's DDL taken as not
    transactional), the check came after them all, and the foreign key
    checks stayed off on the connection it returned to the pool."""
    with scratch_database("sqlite", tmp_path) as engine:
        upgrade(engine, "0016")
        with engine.connect() as connection:  # a row of a workspace gone, written with the checks off
            raw = connection.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA foreign_keys = OFF")
            raw.execute("INSERT INTO people (team_id, user_id, remind_at, reminders_on, updated_at) "
                        "VALUES ('T0000GONE', 'U0000ALICE', '09:00:00', 1, '2026-11-20 15:00:00')")
            raw.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(DanglingRows, match=r"would point at nothing \(table, row, parent\): \[\('people', "):
            upgrade(engine)  # 0017 rebuilds the people table
        assert current_revision(engine) == "0016"
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
