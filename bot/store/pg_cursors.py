"""A psycopg cursor whose ``description`` is built only when someone reads it.

psycopg builds ``cursor.description`` anew on every access: one ``Column``
per column, each read from the result through libpq. SQLAlchemy asks for it
after every statement; once it knows a statement's columns (its compiled form
cached, the usual case on the request paths) it only checks that there is
one. It still reads the columns for what it has not cached: a statement's
first run, plain SQL strings, ``text()`` matched by name, insert sentinels.
For the card's item row (48 columns) the list cost about a fifth of the
statement's CPU on the bot's side (README "Performance").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import psycopg
from psycopg import Column, Cursor
from psycopg.pq.abc import PGresult


class _Description(Sequence[Column]):
    """psycopg's description of the result ``cursor`` holds now, built on first use.

    Read it while the cursor still holds that result, as SQLAlchemy does:
    once the cursor has run another statement, moved to another result
    (``nextset``, ``results()``, a ``stream()`` chunk) or been closed, reading
    it raises ``InterfaceError`` instead of describing the wrong result.
    """

    __slots__ = ("_columns", "_cursor", "_length", "_result")

    def __init__(self, cursor: LazyDescriptionCursor, result: PGresult) -> None:
        self._cursor = cursor
        self._result = result
        self._length: int = result.nfields
        self._columns: list[Column] | None = None

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Column: ...
    @overload
    def __getitem__(self, index: slice) -> list[Column]: ...
    def __getitem__(self, index: int | slice) -> Column | list[Column]:
        return self._built()[index]

    def __repr__(self) -> str:
        return repr(self._built())

    def _built(self) -> list[Column]:
        if self._columns is None:
            if self._cursor.pgresult is not self._result:
                raise psycopg.InterfaceError(
                    "a description was read after its cursor moved to another result or closed"
                )
            columns = self._cursor.psycopg_description()
            assert columns is not None  # the result has columns
            self._columns = columns
        return self._columns


class LazyDescriptionCursor(Cursor[Any]):
    """psycopg's client-side cursor, with ``description`` built on first use:
    a read-only sequence of psycopg's columns (what DBAPI asks of a
    description), not a list."""

    __slots__ = ()

    @property
    def description(self) -> Sequence[Column] | None:  # type: ignore[override]
        result = self.pgresult
        if result is None or not result.nfields:
            return super().description  # None, or psycopg's [] for a result of no columns
        return _Description(self, result)

    def psycopg_description(self) -> list[Column] | None:
        """The description as psycopg builds it, every column at once."""
        return super().description
