"""Shared fixtures: a migrated database per test, on SQLite and (when
``POAM_TEST_POSTGRES_URL`` is set) on PostgreSQL, a fixed clock and actors."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from bot.poam.actor import Actor, Role, Rules
from bot.poam.clock import FixedClock
from bot.store.engine import dispose, make_engine, unit_of_work
from bot.store.migrate import upgrade
from tests.db import plain_postgresql

POSTGRES_URL = os.environ.get("POAM_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]
TEAM = "T0001"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "poam.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    dispose(engine)  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("POAM_TEST_POSTGRES_URL is not set")
    admin_url = make_url(POSTGRES_URL)
    name = f"poam_test_{uuid.uuid4().hex[:12]}"
    with plain_postgresql(admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database=name)
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    upgrade(engine)
    engine.dispose()
    yield rendered
    with plain_postgresql(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "poam.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    _truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A unit of work for tests that make one call; committed at the end."""
    with unit_of_work(engine) as session:
        yield session


@pytest.fixture
def clock() -> FixedClock:
    # A Friday afternoon in UTC; still Friday morning in New York.
    return FixedClock(datetime(2026, 11, 20, 15, 0, tzinfo=UTC))


ActorFactory = Callable[..., Actor]


@pytest.fixture
def make_actor(clock: FixedClock) -> ActorFactory:
    """``make_actor("U1", Role.ADMIN, team="T2", tz="America/New_York")``."""

    def make(
        user_id: str = "U0000OWNER",
        *roles: Role,
        team: str = TEAM,
        tz: str = "UTC",
        rules: Rules | None = None,
    ) -> Actor:
        return Actor(
            team_id=team,
            user_id=user_id,
            roles=frozenset(roles),
            tz=ZoneInfo(tz),
            clock=clock,
            rules=rules or Rules(),
        )

    return make


@pytest.fixture
def admin(make_actor: ActorFactory) -> Actor:
    return make_actor("U0000ADMIN", Role.ADMIN)


@pytest.fixture
def alice(make_actor: ActorFactory) -> Actor:
    return make_actor("U00000ALICE")


@pytest.fixture
def bob(make_actor: ActorFactory) -> Actor:
    return make_actor("U000000BOB")
