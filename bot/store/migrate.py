"""Alembic, driven from code: ``poam-bot migrate`` and the tests call these."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs against ``engine`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (the newest by default)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    """The newest revision this version of the code knows."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def require_current(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDate` unless the schema is at the newest revision."""
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        state = "has no POA&M schema yet" if current is None else f"is at schema revision {current}, not {head}"
        raise SchemaOutOfDate(f"The database {state}; run `poam-bot migrate`.")


class SchemaOutOfDate(Exception):
    """The database needs ``poam-bot migrate`` before this code can use it."""
