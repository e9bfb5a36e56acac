"""Which channels get the weekly digest (admins decide)."""

from __future__ import annotations

from datetime import time

from sqlmodel import Session, col, select

from bot.poam import audit
from bot.poam.actor import Actor
from bot.poam.errors import InvalidInput
from bot.poam.permissions import require_admin
from bot.poam.systems import ensure_workspace
from bot.store import counters
from bot.store.models import DigestSubscription

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def subscribe(
    session: Session, actor: Actor, *, channel_id: str, weekday: int | None = None, post_at: time | None = None
) -> DigestSubscription:
    """This channel gets the weekly digest (on ``weekday``, 0 = Monday, at ``post_at``
    in the workspace's time zone); what is not given stays as it was, or
    for a new subscription is Monday at 09:00."""
    require_admin(actor, "subscribe channels to the digest")
    if not channel_id or channel_id[0] not in "CG":
        raise InvalidInput("Subscribe from the channel that should get the digest.")
    ensure_workspace(session, actor)
    # One change of a workspace's subscriptions at a time: two at once each read
    # the row as it was, and the trail recorded what neither left (PostgreSQL).
    counters.lock_workspace(session, team_id=actor.team_id)
    found = session.get(DigestSubscription, (actor.team_id, channel_id), populate_existing=True)
    before = None if found is None else (WEEKDAYS[found.weekday], f"{found.post_at:%H:%M}")
    if found is None:
        found = DigestSubscription(team_id=actor.team_id, channel_id=channel_id, created_by=actor.user_id, created_at=actor.now())
        session.add(found)  # Monday at 09:00 unless given (the model's defaults)
    if weekday is not None:
        found.weekday = weekday
    if post_at is not None:
        found.post_at = post_at
    after = (WEEKDAYS[found.weekday], f"{found.post_at:%H:%M}")
    if after == before:  # as it was: nothing changed, nothing to record
        return found
    session.flush()
    details: dict[str, object] = {"channel": channel_id, "weekday": after[0], "at": after[1]}
    if before is not None:  # a change of an existing subscription: from what
        details.update(weekday={"from": before[0], "to": after[0]}, at={"from": before[1], "to": after[1]})
    audit.record(session, actor, action="digest.subscribed", details=details)
    return found


def unsubscribe(session: Session, actor: Actor, *, channel_id: str) -> None:
    require_admin(actor, "unsubscribe channels from the digest")
    counters.lock_workspace(session, team_id=actor.team_id)  # as subscribe: one change at a time
    found = session.get(DigestSubscription, (actor.team_id, channel_id), populate_existing=True)
    if found is None:
        raise InvalidInput("This channel does not get the digest.")
    session.delete(found)
    audit.record(session, actor, action="digest.unsubscribed", details={"channel": channel_id})


def subscribed_team(session: Session, *, channel_id: str) -> str:
    """The workspace a channel is subscribed in (for ``poam-bot digest --channel``)."""
    found = session.exec(select(DigestSubscription.team_id).where(DigestSubscription.channel_id == channel_id)
                         .order_by(col(DigestSubscription.team_id)).limit(2)).all()
    if not found:
        raise InvalidInput(f"{channel_id} is not subscribed to the digest; pass --team to choose the workspace.")
    if len(found) > 1:  # a channel shared between workspaces keeps one id in each
        raise InvalidInput(f"{channel_id} is subscribed in more than one workspace; pass --team to choose one.")
    return found[0]
