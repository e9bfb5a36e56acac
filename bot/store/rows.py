"""Plain Core rows on a session's connection, for reads that need no ORM object.

Building ORM objects cost several times the CPU of the query itself on the
request paths (README "Performance"); a row has the same attribute names as
the model and is read-only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Row
from sqlmodel import Session

#: A model's columns as a Core row: its attribute names, read-only.
Columns = Row[Any]
T = TypeVar("T")
#: Values per IN list (:func:`in_chunks`): a statement takes at most 32,766
#: parameters on SQLite (as usually built), 65,535 on psycopg.
IN_LIST_SIZE = 1000


def rows_of(session: Session) -> Connection:
    """The session's connection, for statements that return plain rows. Pending
    ORM changes are flushed first, as the session would before a query of its own."""
    session.flush()
    return session.connection()


def in_chunks(values: Sequence[T], size: int | None = None) -> Iterator[Sequence[T]]:
    """``values`` in consecutive slices of ``size`` (:data:`IN_LIST_SIZE`): one
    statement per slice where they go into an IN list (or are a bulk
    statement's rows), however many there are."""
    step = size or IN_LIST_SIZE
    for start in range(0, len(values), step):
        yield values[start:start + step]
