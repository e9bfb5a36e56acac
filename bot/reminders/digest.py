"""The weekly digest: where a workspace's POA&M stands, posted even when quiet."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from bot.blockkit.blocks import context, day, fields_section, header, lines_within, section, sections
from bot.blockkit.text import clip, escape, mention
from bot.poam.actor import Rules
from bot.poam.audit import ANCHOR_PREFIX, Anchor
from bot.poam.clock import Clock, local_today
from bot.poam.item_lists import current_rating, overdue_condition
from bot.poam.lifecycle import ACTIVE, NOT_CLOSED, Status
from bot.poam.review import Closure, RequestKind, RequestStatus, plan_awaits_approval
from bot.poam.severity import Severity
from bot.reminders.departures import owners_who_left
from bot.reminders.messages import SOON
from bot.store.models import InfoSystem, Item, ReviewRequest, Workspace

WEEK = timedelta(days=7)
LIST_LIMIT = 10


def _open_at(moment: Any) -> Any:
    """Items that were on the open POA&M at ``moment``."""
    return (col(Item.created_at) <= moment) & or_(col(Item.closed_at).is_(None), col(Item.closed_at) > moment)


def digest_message(session: Session, *, team_id: str, clock: Clock, rules: Rules) -> tuple[str, list[dict[str, Any]]]:
    """The workspace's digest, its week and days in ``rules.timezone``."""
    tz = rules.timezone
    # In the workspace's zone: a week back is the same local time a week ago
    # (the last digest's), an hour more or less than 168 across a clock change.
    now, today = clock.now().astimezone(tz), local_today(clock, tz)
    team = Item.team_id == team_id
    rating = current_rating()
    by_status: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    for status, severity, count in session.exec(
        select(Item.status, rating, func.count()).where(team, col(Item.status).in_(NOT_CLOSED)).group_by(Item.status, rating)
    ):
        by_status[Status(status).label] += count
        by_severity[severity] += count
    open_count = sum(by_status.values())
    is_overdue = (overdue_condition(today),)
    # The seven days from today (to the day before next week's digest: each item falls due in one digest's week).
    is_due_soon = (col(Item.status).in_(ACTIVE), col(Item.due_on) >= today, col(Item.due_on) < today + SOON)
    overdue_count = session.exec(select(func.count()).select_from(Item).where(team, *is_overdue)).one()
    due_soon_count = session.exec(select(func.count()).select_from(Item).where(team, *is_due_soon)).one()
    overdue = session.exec(select(Item).where(team, *is_overdue).order_by(col(Item.due_on)).limit(LIST_LIMIT)).all()
    due_soon = session.exec(select(Item).where(team, *is_due_soon).order_by(col(Item.due_on)).limit(LIST_LIMIT)).all()
    # A closed history brought in by an import (a workbook's closed rows) was
    # neither logged nor closed this week, whenever it came.
    not_history = or_(col(Item.closure).is_(None), col(Item.closure) != Closure.IMPORTED)
    logged = session.exec(
        select(func.count()).select_from(Item).where(team, col(Item.created_at) > now - WEEK, not_history)
    ).one()
    closed = session.exec(
        select(func.count()).select_from(Item).where(team, col(Item.closed_at) > now - WEEK, not_history)
    ).one()
    plans_waiting = session.exec(select(func.count()).select_from(Item).where(team, plan_awaits_approval())).one()
    open_last_week = session.exec(
        select(func.count()).select_from(Item).where(Item.team_id == team_id, _open_at(now - WEEK))
    ).one()
    pending = Counter(
        session.exec(
            select(ReviewRequest.kind).where(
                ReviewRequest.team_id == team_id, ReviewRequest.status == RequestStatus.PENDING
            )
        ).all()
    )

    def line(item: Item, tail: str) -> str:
        owner = mention(item.owner_id) if item.owner_id else "_unclaimed_"
        return f"• *{rules.label(item.number)}* {escape(clip(item.title, 100))} — {tail} · {owner}"

    def capped(lines: list[str], shown: int, total: int) -> list[str]:
        return lines[:shown] + ([f"…and {total - shown} more."] if total > shown else [])

    change = open_count - open_last_week
    blocks: list[dict[str, Any]] = [
        header(f"Weekly POA&M digest · {day(today)}"),
        fields_section(
            [
                ("Open items", f"{open_count} ({'+' if change >= 0 else ''}{change} since last week)"),
                ("Overdue", str(overdue_count)),
                ("Logged this week", str(logged)),
                ("Closed this week", str(closed)),
                ("By status", ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "—"),
                ("By severity", ", ".join(f"{s.value} {by_severity[s.value]}" for s in Severity if by_severity[s.value]) or "—"),
                ("Waiting on verification", str(pending[RequestKind.VERIFICATION])),
                ("Waiting on a decision", str(pending[RequestKind.DEVIATION] + pending[RequestKind.EXTENSION])),
                ("Plans awaiting approval", str(plans_waiting)),
                *_by_system(session, team_id=team_id, today=today),
            ]
        ),
    ]
    left, left_count = owners_who_left(session, team_id=team_id, limit=LIST_LIMIT)
    lists = [[line(i, f"{(today - i.due_on).days}d overdue") for i in overdue],
             [line(i, f"due {day(i.due_on)}") for i in due_soon],
             [f"• {mention(owner)} · {count} open item{'s' if count != 1 else ''}" for owner, count in left]]
    shown = lines_within(lists, most=LIST_LIMIT)  # titles of many escaped characters would outgrow a message
    if overdue:
        blocks += sections(["*Overdue*", *capped(lists[0], shown[0], overdue_count)])
    else:
        blocks.append(section(":white_check_mark: Nothing overdue."))
    if due_soon:
        blocks += sections(["*Due this week*", *capped(lists[1], shown[1], due_soon_count)])
    else:
        blocks.append(section("Nothing falls due this week."))
    if left:
        blocks += sections([
            "*Owners no longer in Slack* (deactivated: their reminders reach nobody; `/poam assign` hands an item on)",
            *capped(lists[2], shown[2], left_count),
        ])
    workspace = session.get(Workspace, team_id)
    if workspace is not None and workspace.audit_seq:  # kept in the channel's history, outside the database
        anchor = Anchor(team_id, workspace.audit_seq, workspace.audit_head[:ANCHOR_PREFIX])
        blocks.append(context(f"Audit trail head: `{anchor}`. `poam-bot audit verify --anchor {anchor}` "
                              "checks that the trail still holds it as it was."))
    return f"Weekly POA&M digest: {open_count} open, {overdue_count} overdue", blocks


def _by_system(session: Session, *, team_id: str, today: date) -> list[tuple[str, str]]:
    """Each system's open and overdue items, where the workspace has several:
    the digest counts them all, and `/poam list` the default one unless told.
    Counted apart from the workspace's counts, which its indexes answer alone."""
    systems = session.exec(
        select(InfoSystem.id, InfoSystem.name).where(InfoSystem.team_id == team_id).order_by(col(InfoSystem.name_key))
    ).all()
    if len(systems) < 2:
        return []

    def by_system(*where: Any) -> Counter[int | None]:
        return Counter(dict(session.exec(select(col(Item.system_id), func.count()).where(
            Item.team_id == team_id, *where).group_by(col(Item.system_id))).all()))

    open_items, overdue = by_system(col(Item.status).in_(NOT_CLOSED)), by_system(overdue_condition(today))
    lines = [f"{escape(name)}: {open_items[system_id]} open · {overdue[system_id]} overdue"
             for system_id, name in systems[:LIST_LIMIT]]
    if len(systems) > LIST_LIMIT:
        lines.append(f"…and {len(systems) - LIST_LIMIT} more.")
    return [("By system", "\n".join(lines))]
