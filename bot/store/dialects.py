"""The one place that picks PostgreSQL's or SQLite's ``INSERT`` (both have
``ON CONFLICT``, each in its own dialect module)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session


def upsert_insert(session: Session, table: Any) -> Any:
    """An ``INSERT`` into ``table`` that supports ``on_conflict_do_*`` on this database."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(table)
