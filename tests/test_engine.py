"""Units of work: how long a request waits for another writer, on each database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from bot.store.engine import unit_of_work


def test_sqlite_max_wait_applies_to_its_unit_of_work_only(engine: Engine) -> None:
    """A request's short wait for a writer must not stick to the pooled
    connection it used, nor a job's long wait to the next request."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite busy timeout")

    def busy_ms(**options: float) -> int:
        with unit_of_work(engine, read_only=True, **options) as session:
            return session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()  # type: ignore[no-any-return]

    assert [busy_ms(max_wait=2.0), busy_ms(), busy_ms(max_wait=0.25), busy_ms(max_wait=0.25), busy_ms()] == [
        2000, 15000, 250, 250, 15000
    ]


def test_postgresql_lock_timeout_caps_request_writers_only(engine: Engine) -> None:
    """Readers never wait for writers on PostgreSQL; jobs may wait as long as it takes."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL lock timeout")

    def lock_timeout(**options: Any) -> str:
        with unit_of_work(engine, **options) as session:
            return session.connection().exec_driver_sql("SHOW lock_timeout").scalar()  # type: ignore[no-any-return]

    assert [lock_timeout(max_wait=2.0), lock_timeout(max_wait=2.0, read_only=True), lock_timeout()] == ["2s", "0", "0"]
