"""Alembic, driven from code: ``poam-bot migrate`` and the tests call these."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: How long a migration waits for a lock on PostgreSQL before it gives up
#: (nothing changed): an ALTER queued behind a long transaction (an export,
#: say) would hold up every reader of its table for as long.
LOCK_WAIT_SECONDS = 5


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs against ``engine`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    """The newest revision this version of the code knows."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (the newest by default)."""
    _require_known(engine, current_revision(engine))
    command.upgrade(alembic_config(engine), revision)


def _require_known(engine: Engine, current: str | None) -> None:
    """Raise :class:`UnknownRevision` for a schema this code has no migration
    of: made by a newer poam-bot (a release rolled back), which no migration
    here can bring back."""
    if current is None:
        return
    try:
        ScriptDirectory.from_config(alembic_config(engine)).get_revision(current)
    except CommandError:
        raise UnknownRevision(
            f"The database is at schema revision {current}, which this poam-bot does not know: a newer version "
            "made it. Run that version (or newer), or restore a backup taken before it."
        ) from None


def require_current(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDate` unless the schema is at the newest revision."""
    current, head = current_revision(engine), head_revision(engine)
    _require_known(engine, current)
    if current != head:
        state = "has no POA&M schema yet" if current is None else f"is at schema revision {current}, not {head}"
        raise SchemaOutOfDate(f"The database {state}; run `poam-bot migrate`.")


class SchemaOutOfDate(Exception):
    """The database needs ``poam-bot migrate`` before this code can use it."""


class UnknownRevision(Exception):
    """The database was migrated by a newer version of the code than this one."""


class DanglingRows(Exception):
    """A migration would leave rows pointing at rows that do not exist (SQLite): it changed nothing."""
