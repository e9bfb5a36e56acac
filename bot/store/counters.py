"""Per-workspace counters, bumped atomically.

Each bump is one ``UPDATE … RETURNING`` on the workspace's row. The row lock
it takes is held to the end of the transaction, so two transactions never get
the same number, and audit appends within a workspace are serialised in the
order their transactions commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, text, update
from sqlmodel import Session

from bot.store.dialects import upsert_insert
from bot.store.models import Workspace, table_of

# Built once: these run in every write, and building a statement costs more
# CPU than running it. Core table statements skip the ORM's bulk-update step.
_WORKSPACES = table_of(Workspace)
_THIS_WORKSPACE = _WORKSPACES.c.team_id == bindparam("workspace")
_BUMP_ITEM_NUMBER = (
    update(_WORKSPACES)
    .where(_THIS_WORKSPACE)
    .values(last_item_number=_WORKSPACES.c.last_item_number + bindparam("count"))
    .returning(_WORKSPACES.c.last_item_number)
)
_BUMP_AUDIT_SEQ = (
    update(_WORKSPACES)
    .where(_THIS_WORKSPACE)
    .values(audit_seq=_WORKSPACES.c.audit_seq + bindparam("count"))
    .returning(_WORKSPACES.c.audit_seq, _WORKSPACES.c.audit_head)
)
#: Binds ``workspace`` and ``new_head``; ``bot.poam.audit`` adds the event's
#: INSERT to it on PostgreSQL.
SET_AUDIT_HEAD = update(_WORKSPACES).where(_THIS_WORKSPACE).values(audit_head=bindparam("new_head"))
#: One import of a workspace at a time (PostgreSQL; :func:`serialize_imports`).
_IMPORT_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('poam-bot import'), hashtext(:team))")


def insert_workspace_if_missing(session: Session, *, team_id: str, now: datetime) -> bool:
    """Create the workspace row unless it exists; True when this call created it."""
    statement = (
        upsert_insert(session, Workspace)
        .values(team_id=team_id, last_item_number=0, audit_seq=0, audit_head="", created_at=now)
        .on_conflict_do_nothing(index_elements=["team_id"])
        .returning(Workspace.team_id)
    )
    # A row comes back only when the insert happened (rowcount is not reliable here).
    return session.exec(statement).first() is not None  # type: ignore[call-overload]


def next_item_number(session: Session, *, team_id: str) -> int:
    """The next item number of the workspace; never handed out twice."""
    return reserve_item_numbers(session, team_id=team_id, count=1).start


def reserve_item_numbers(session: Session, *, team_id: str, count: int) -> range:
    """``count`` consecutive item numbers in one statement (bulk imports)."""
    last = session.execute(_BUMP_ITEM_NUMBER, {"workspace": team_id, "count": count}).scalar_one()
    return range(last - count + 1, last + 1)


def next_audit_slot(session: Session, *, team_id: str, count: int = 1) -> tuple[int, str]:
    """Reserve the next ``count`` audit sequence numbers; returns the first and
    the chain's head hash (the hash the first new event must follow)."""
    last, head = session.execute(_BUMP_AUDIT_SEQ, {"workspace": team_id, "count": count}).one()
    return last - count + 1, head


def set_audit_head(session: Session, *, team_id: str, head: str) -> None:
    session.execute(SET_AUDIT_HEAD, {"workspace": team_id, "new_head": head})


def serialize_imports(session: Session, *, team_id: str) -> None:
    """Let one import of the workspace's findings run at a time, until the
    transaction ends: two imports of one scan would each miss the other's new
    items. An advisory lock only imports take, not the workspace row: every
    item change locks its item and then the workspace row (its audit event),
    and an import updates items, so taking the row first would deadlock.

    SQLite needs no lock here: its write transactions already run one at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_IMPORT_LOCK, {"team": team_id})



def lock_workspace(session: Session, *, team_id: str) -> None:
    """Hold the workspace row until the transaction ends, so check-then-insert
    operations (a new role grant, a new system name) run one at a time.

    SQLite needs no lock here: its write transactions already run one at a time.
    """
    session.exec(select(Workspace.team_id).where(Workspace.team_id == team_id).with_for_update())  # type: ignore[call-overload,arg-type]
