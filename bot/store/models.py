"""The tables.

Every row carries the workspace (``team_id``) and every query filters by it.
Enumerated values (status, severity, role…) are stored as short strings; the
domain owns their meaning (``bot.poam``), so this layer stays free of it.
Timestamps are :class:`UTCDateTime` (aware UTC); due and detection dates are
plain dates.

Any change here needs a new Alembic revision in ``bot/store/migrations``;
``tests/test_migrations.py`` fails when the two drift apart.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime

TEAM_ID = 32
USER_ID = 32
SIGNATURE = 80  # "v0=" and 64 hex digits of HMAC-SHA256, with room
SUBJECT = 64  # what an outbox message is about


def table_of(model: type[SQLModel]) -> sa.Table:
    """A table model's Core ``Table``, for statements on plain rows (SQLModel
    sets ``__table__`` on the class without declaring it to type checkers)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


def _team_fk() -> Any:
    return Field(foreign_key="workspaces.team_id", sa_type=sa.String(TEAM_ID))


def _timestamp(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class Workspace(SQLModel, table=True):
    """One Slack workspace: its counters and the head of its audit chain.

    The counters are bumped with one ``UPDATE … RETURNING``; the row lock that
    takes serialises id allocation and audit appends within a workspace.
    """

    __tablename__ = "workspaces"

    team_id: str = Field(sa_type=sa.String(TEAM_ID), primary_key=True)
    last_item_number: int = Field(default=0)
    audit_seq: int = Field(default=0)
    audit_head: str = Field(default="", sa_type=sa.String(64))
    created_at: datetime = _timestamp()


class InfoSystem(SQLModel, table=True):
    """An information system whose POA&M the workspace keeps."""

    __tablename__ = "systems"
    __table_args__ = (sa.UniqueConstraint("team_id", "name_key", name="uq_systems_team_name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    name: str = Field(sa_type=sa.String(80))
    name_key: str = Field(sa_type=sa.String(80))
    impact: str = Field(sa_type=sa.String(10))
    organization: str | None = Field(default=None, sa_type=sa.String(200))
    ao_user_id: str | None = Field(default=None, sa_type=sa.String(USER_ID))
    #: Its FedRAMP package ID (``F1234567890``): OSCAL's ``system-id`` when set.
    fedramp_id: str | None = Field(default=None, sa_type=sa.String(24))
    is_default: bool = Field(default=False)
    created_by: str = Field(sa_type=sa.String(USER_ID))
    created_at: datetime = _timestamp()


class Item(SQLModel, table=True):
    """A POA&M item (a weakness being remediated), FedRAMP Rev 5 fields."""

    __tablename__ = "items"
    __table_args__ = (
        sa.UniqueConstraint("team_id", "number", name="uq_items_team_number"),
        sa.Index("ix_items_team_status_due", "team_id", "status", "due_on"),
        sa.Index("ix_items_team_owner_status", "team_id", "owner_id", "status"),
        sa.Index("ix_items_team_fingerprint", "team_id", "fingerprint"),
        # The weekly digest's counts (by status and rating; logged, closed, open a week ago).
        sa.Index("ix_items_team_status_rating", "team_id", "status", "severity", "adjusted_severity"),
        sa.Index("ix_items_team_created_closed", "team_id", "created_at", "closed_at"),
        sa.Index("ix_items_team_closed", "team_id", "closed_at"),
        # Partial indexes for the morning DM (bot/reminders/messages.py) and
        # review.waiting_on. SQLite uses one only when the query repeats its
        # WHERE terms as written, and tests a boolean as `= 1`. Plans awaiting
        # the authorizing official: status first, so that closed items whose
        # plan was never approved stay out of the scan.
        sa.Index("ix_items_team_plan_pending", "team_id", "status", "updated_at",
                 sqlite_where=sa.text("plan_approved_at IS NULL AND remediation_plan IS NOT NULL"),
                 postgresql_where=sa.text("plan_approved_at IS NULL AND remediation_plan IS NOT NULL")),
        sa.Index("ix_items_team_vendor", "team_id", "status",
                 sqlite_where=sa.text("vendor_dependency = 1"), postgresql_where=sa.text("vendor_dependency")),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    number: int
    system_id: int = Field(foreign_key="systems.id")
    title: str = Field(sa_type=sa.String(300))
    description: str | None = Field(default=None, sa_type=sa.Text)
    source: str = Field(sa_type=sa.String(20))
    source_identifier: str | None = Field(default=None, sa_type=sa.String(200))
    #: The scanner or tool that found it ("Nessus"), for an imported item whose file names one.
    detector: str | None = Field(default=None, sa_type=sa.String(100))
    assets: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    cves: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    severity: str = Field(sa_type=sa.String(10))
    adjusted_severity: str | None = Field(default=None, sa_type=sa.String(10))
    status: str = Field(sa_type=sa.String(24))
    owner_id: str | None = Field(default=None, sa_type=sa.String(USER_ID))
    detected_on: date
    scheduled_completion_on: date
    due_on: date
    remediation_plan: str | None = Field(default=None, sa_type=sa.Text)
    resources_required: str | None = Field(default=None, sa_type=sa.Text)
    vendor_dependency: bool = Field(default=False)
    vendor_product: str | None = Field(default=None, sa_type=sa.String(200))
    last_vendor_checkin_on: date | None = None
    origin_channel_id: str | None = Field(default=None, sa_type=sa.String(32))
    origin_thread_ts: str | None = Field(default=None, sa_type=sa.String(32))
    source_message_url: str | None = Field(default=None, sa_type=sa.String(500))
    created_by: str = Field(sa_type=sa.String(USER_ID))
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    closed_at: datetime | None = _timestamp(nullable=True)
    closure: str | None = Field(default=None, sa_type=sa.String(20))
    plan_approved_by: str | None = Field(default=None, sa_type=sa.String(USER_ID))
    plan_approved_at: datetime | None = _timestamp(nullable=True)
    risk_accepted_until: date | None = None
    snoozed_until: date | None = None
    fingerprint: str | None = Field(default=None, sa_type=sa.String(64))
    last_seen_at: datetime | None = _timestamp(nullable=True)
    version: int = Field(default=1)
    #: The number of the closed item whose weakness this one is, found again
    #: (a closed item never reopens): set by an import that finds it.
    recurs_number: int | None = None


class ItemControl(SQLModel, table=True):
    """One security control (e.g. ``AC-2``) an item concerns; a row each so
    ``/poam list control:AC-2`` is an indexed lookup."""

    __tablename__ = "item_controls"
    __table_args__ = (sa.Index("ix_item_controls_team_control", "team_id", "control"),)

    item_id: int = Field(foreign_key="items.id", primary_key=True)
    control: str = Field(sa_type=sa.String(32), primary_key=True)
    team_id: str = _team_fk()
    position: int


class Milestone(SQLModel, table=True):
    """A planned milestone. ``planned_due_on`` is the date first planned and
    never changes; moves change ``due_on`` and leave a MilestoneChange."""

    __tablename__ = "milestones"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "number", name="uq_milestones_item_number"),
        # The morning DM's milestones due this week or late (partial, like the items' ones).
        sa.Index("ix_milestones_team_open_due", "team_id", "due_on",
                 sqlite_where=sa.text("completed_at IS NULL"), postgresql_where=sa.text("completed_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    item_id: int = Field(foreign_key="items.id", index=True)
    number: int
    description: str = Field(sa_type=sa.Text)
    planned_due_on: date
    due_on: date
    completed_at: datetime | None = _timestamp(nullable=True)
    completed_by: str | None = Field(default=None, sa_type=sa.String(USER_ID))
    created_by: str = Field(sa_type=sa.String(USER_ID))
    created_at: datetime = _timestamp()


class MilestoneChange(SQLModel, table=True):
    """A FedRAMP "Milestone Changes" entry: ``(##) Update|Complete date : why``."""

    __tablename__ = "milestone_changes"
    __table_args__ = (sa.UniqueConstraint("item_id", "seq", name="uq_milestone_changes_item_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    item_id: int = Field(foreign_key="items.id", index=True)
    milestone_id: int = Field(foreign_key="milestones.id")
    seq: int
    kind: str = Field(sa_type=sa.String(10))
    old_due_on: date | None = None
    new_due_on: date | None = None
    reason: str = Field(sa_type=sa.Text)
    changed_by: str = Field(sa_type=sa.String(USER_ID))
    changed_at: datetime = _timestamp()


class ReviewRequest(SQLModel, table=True):
    """Something asked of a verifier or the authorizing official, and its decision.

    ``kind`` is verification, deviation (``deviation`` says fp, ra or or),
    extension or risk_acceptance; ``status`` is pending, approved, rejected or
    withdrawn. An item has at most one pending request at a time.
    """

    __tablename__ = "review_requests"
    __table_args__ = (
        sa.Index("ix_review_requests_team_status", "team_id", "status"),
        sa.Index("ix_review_requests_item", "item_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    item_id: int = Field(foreign_key="items.id")
    kind: str = Field(sa_type=sa.String(20))
    deviation: str | None = Field(default=None, sa_type=sa.String(4))
    status: str = Field(sa_type=sa.String(12))
    text: str | None = Field(default=None, sa_type=sa.Text)
    adjusted_severity: str | None = Field(default=None, sa_type=sa.String(10))
    until_on: date | None = None
    new_due_on: date | None = None
    requested_by: str = Field(sa_type=sa.String(USER_ID))
    requested_at: datetime = _timestamp()
    decided_by: str | None = Field(default=None, sa_type=sa.String(USER_ID))
    decided_at: datetime | None = _timestamp(nullable=True)
    decision_note: str | None = Field(default=None, sa_type=sa.Text)


class RoleGrant(SQLModel, table=True):
    """A role given to a user in a workspace (verifier, ao, admin)."""

    __tablename__ = "role_grants"
    __table_args__ = (
        sa.UniqueConstraint("team_id", "user_id", "role", name="uq_role_grants_team_user_role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    user_id: str = Field(sa_type=sa.String(USER_ID))
    role: str = Field(sa_type=sa.String(16))
    granted_by: str = Field(sa_type=sa.String(USER_ID))
    granted_at: datetime = _timestamp()


#: One sequence number per event of a workspace's chain.
AUDIT_SEQ_UNIQUE = "uq_audit_events_team_seq"


class AuditEvent(SQLModel, table=True):
    """One entry of a workspace's append-only, hash-chained audit trail."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.UniqueConstraint("team_id", "seq", name=AUDIT_SEQ_UNIQUE),
        sa.Index("ix_audit_events_team_item", "team_id", "item_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    seq: int
    item_id: int | None = Field(default=None, foreign_key="items.id")
    actor_id: str = Field(sa_type=sa.String(USER_ID))
    action: str = Field(sa_type=sa.String(40))
    at: datetime = _timestamp()
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    prev_hash: str = Field(sa_type=sa.String(64))
    hash: str = Field(sa_type=sa.String(64))


class Person(SQLModel, table=True):
    """What the bot knows about someone: their time zone and name (learnt from
    Slack whenever they use the bot, or a change names them: ``named_people``)
    and their reminder preferences."""

    __tablename__ = "people"

    team_id: str = Field(foreign_key="workspaces.team_id", sa_type=sa.String(TEAM_ID), primary_key=True)
    user_id: str = Field(sa_type=sa.String(USER_ID), primary_key=True)
    tz: str | None = Field(default=None, sa_type=sa.String(64))
    #: The name Slack shows for them (exports write it beside their id).
    name: str | None = Field(default=None, sa_type=sa.String(200))
    #: When Slack described them as ``tz`` and ``name`` say (``remember_person``).
    slack_seen_at: datetime | None = _timestamp(nullable=True)
    #: When Slack first said they were deactivated; None while they are active.
    left_at: datetime | None = _timestamp(nullable=True)
    #: Slack said they are a workspace admin or owner (a POA&M admin: told when someone leaves).
    slack_admin: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    #: Slack said they are a bot (an app's user, Slackbot): never an owner, AO or role holder.
    is_bot: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    remind_at: time = Field(default=time(9, 0))
    reminders_on: bool = Field(default=True)
    updated_at: datetime = _timestamp()


class DigestSubscription(SQLModel, table=True):
    """A channel that gets the weekly digest."""

    __tablename__ = "digest_subscriptions"

    team_id: str = Field(foreign_key="workspaces.team_id", sa_type=sa.String(TEAM_ID), primary_key=True)
    channel_id: str = Field(sa_type=sa.String(32), primary_key=True)
    weekday: int = Field(default=0)  # Monday
    post_at: time = Field(default=time(9, 0))
    created_by: str = Field(sa_type=sa.String(USER_ID))
    created_at: datetime = _timestamp()


class OutboxMessage(SQLModel, table=True):
    """A message planned for sending. The unique key makes planning the same
    reminder twice a no-op; the dispatcher claims, sends and marks rows."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("team_id", "recipient", "kind", "subject", "local_day", name="uq_outbox_once"),
        sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),
        # What the planner already planned for a day: without it, every tick
        # reads the workspace's whole sending history.
        sa.Index("ix_outbox_team_kind_day", "team_id", "kind", "local_day"),
        # An item's posts still to go, for a post written before its thread began.
        sa.Index("ix_outbox_item", "team_id", "item_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = _team_fk()
    recipient: str = Field(sa_type=sa.String(32))
    kind: str = Field(sa_type=sa.String(16))
    subject: str = Field(sa_type=sa.String(SUBJECT))
    local_day: date
    text: str = Field(sa_type=sa.Text)
    blocks: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    thread_ts: str | None = Field(default=None, sa_type=sa.String(32))
    status: str = Field(sa_type=sa.String(10))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _timestamp()
    claimed_until: datetime | None = _timestamp(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.String(500))
    created_at: datetime = _timestamp()
    sent_at: datetime | None = _timestamp(nullable=True)
    #: Who made the change that wrote this message (a review DM): told by DM
    #: when the dispatcher gives it up (``bot.reminders.dispatch``).
    requested_by: str | None = Field(default=None, sa_type=sa.String(32))
    #: The item whose thread a channel post goes into (``bot.commands.thread_posts``):
    #: read at sending time, when the post was written before the thread began.
    item_number: int | None = None


class ImportedFile(SQLModel, table=True):
    """A file imported into a system, by its SHA-256: the same file again is
    the same scan, which finds nothing new, closed items' weaknesses
    included, even when it gives no date to tell it by (``imports``)."""

    __tablename__ = "imported_files"

    team_id: str = Field(foreign_key="workspaces.team_id", sa_type=sa.String(TEAM_ID), primary_key=True)
    system_id: int = Field(foreign_key="systems.id", primary_key=True)
    digest: str = Field(sa_type=sa.String(64), primary_key=True)
    imported_at: datetime = _timestamp()


class HandledRequest(SQLModel, table=True):
    """A signed Slack request that tried to change something (saved or
    refused), kept a while so that the same request sent again (a replay within
    Slack's five minutes) changes nothing (``bot.store.replays``)."""

    __tablename__ = "handled_requests"
    __table_args__ = (sa.Index("ix_handled_requests_handled_at", "handled_at"),)

    team_id: str = Field(sa_type=sa.String(TEAM_ID), primary_key=True)
    signature: str = Field(sa_type=sa.String(SIGNATURE), primary_key=True)
    handled_at: datetime = _timestamp()


class SchedulerLease(SQLModel, table=True):
    """Which process may plan and dispatch now; taken over when it lapses."""

    __tablename__ = "scheduler_leases"

    name: str = Field(sa_type=sa.String(32), primary_key=True)
    holder: str = Field(sa_type=sa.String(64))
    expires_at: datetime = _timestamp()
