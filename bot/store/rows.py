"""Plain Core rows on a session's connection, for reads that need no ORM object.

Building ORM objects cost several times the CPU of the query itself on the
request paths (README "Performance"); a row has the same attribute names as
the model and is read-only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row
from sqlmodel import Session

#: A model's columns as a Core row: its attribute names, read-only.
Columns = Row[Any]


def rows_of(session: Session) -> Connection:
    """The session's connection, for statements that return plain rows. Pending
    ORM changes are flushed first, as the session would before a query of its own."""
    session.flush()
    return session.connection()
