"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from bot.store.engine import unit_of_work
from bot.store.migrate import current_revision, head_revision


def test_migrated_database_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
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
