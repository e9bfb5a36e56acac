"""A psycopg cursor whose ``description`` is built only when someone reads it.

psycopg builds ``cursor.description`` anew on every access: one ``Column``
per column, each read from the result through libpq. SQLAlchemy asks for it
after every statement, but once a statement's compiled form is cached it only
looks at whether it is ``None`` (it keeps the columns it learnt the first
time). For the card's item row (48 columns) that list cost about a quarter of
the statement's CPU on the bot's side (README "Performance").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import psycopg
from psycopg import Column, Cursor


class _Description(Sequence[Column]):
    """psycopg's description of the result ``cursor`` holds now, built on first use.

    Its length is known at once (SQLAlchemy checks it against the statement's
    columns). Read the columns before the cursor runs another statement, as
    SQLAlchemy does: after that they would describe another result.
    """

    __slots__ = ("_columns", "_cursor", "_length", "_result")

    def __init__(self, cursor: LazyDescriptionCursor, result: Any) -> None:
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
                raise psycopg.InterfaceError("a description was read after its cursor ran another statement")
            columns = self._cursor.psycopg_description()
            assert columns is not None  # the result has columns
            self._columns = columns
        return self._columns


class LazyDescriptionCursor(Cursor[Any]):
    """psycopg's client-side cursor, with ``description`` built on first use."""

    @property
    def description(self) -> list[Column] | None:
        result = self.pgresult
        if result is None or not result.nfields:
            return super().description  # None, or psycopg's [] for a result of no columns
        # A Sequence, not a list: psycopg's annotation is narrower than what
        # DBAPI asks of a description (a sequence of sequences).
        return _Description(self, result)  # type: ignore[return-value]

    def psycopg_description(self) -> list[Column] | None:
        """The description as psycopg builds it, every column at once."""
        return super().description
