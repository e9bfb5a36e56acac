"""Alembic environment: runs on the engine handed over in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.store.migrate import LOCK_WAIT_SECONDS, DanglingRows

target_metadata = SQLModel.metadata
#: PostgreSQL's advisory lock of a migration ("POAM" in ASCII).
MIGRATION_LOCK = 0x504F414D


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    """SQLite's foreign key checks, which every connection turns on
    (``bot.store.engine``): batch mode rebuilds a table by copying it and
    dropping the old one, which SQLite refuses while rows of another table
    point at it. Set outside any transaction (inside one it does nothing)."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(connection, on=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
                # SQLite's DDL is transactional too: every step in one transaction,
                # which the foreign key check below can still refuse whole.
                transactional_ddl=True,
            )
            with context.begin_transaction():
                if not sqlite:
                    # One migration at a time (two replicas starting): the second waits for the first
                    # and finds nothing left to do; both created the tables, and one failed.
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                    # An ALTER queued behind a long transaction holds up every reader meanwhile.
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'")
                context.run_migrations()
                if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                    raise DanglingRows(f"The migration changed nothing: rows of these tables would point at "
                                       f"nothing (table, row, parent): {[tuple(row[:3]) for row in broken[:5]]}")
            connection.commit()
        finally:
            if sqlite:
                _foreign_keys(connection, on=True)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `poam-bot migrate`")
run_migrations_online()
