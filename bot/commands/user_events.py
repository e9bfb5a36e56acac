"""``user_change``: what Slack says of a person, as it changes.

Slack sends it for everyone in the workspace, for any change of profile. The
time zone and name of people on record are kept up to date; a person Slack
says is deactivated is recorded as having left (anyone, on record or not: an
imported owner may have no record yet), and the first time, whoever can hand
on what they held is told (``reminders.departures``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_bolt import App
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.commands.context import Services
from bot.commands.followup import after_ack
from bot.commands.users import SlackUser, described_at
from bot.poam import audit
from bot.poam.actor import SYSTEM_ACTOR, Actor
from bot.poam.clock import local_today
from bot.poam.presence import left_at
from bot.reminders.departures import tell_of_departure
from bot.reminders.people import remember_person
from bot.store.counters import lock_workspace
from bot.store.engine import may_pass, unit_of_work

log = logging.getLogger(__name__)
#: How long recording a change waits for another writer before it tries again later.
RECORD_MAX_WAIT = 5.0
#: The pauses before each try again (about ten minutes in all).
RECORD_PAUSES = (2.0, 10.0, 60.0, 180.0, 360.0)


def register(app: App, services: Services) -> None:
    @app.event("user_change")
    def on_user_change(event: dict[str, Any], body: dict[str, Any]) -> None:
        user = event.get("user") or {}
        # The workspace the event came for, which requests name: on Enterprise
        # Grid the user's own team_id is their home workspace, perhaps another.
        team_id = str(body.get("team_id") or user.get("team_id", ""))
        seen_at = described_at(body.get("event_time"), now=services.clock.now())
        known = services.users.remember(team_id=team_id, user=user, seen_at=seen_at)
        after_ack(services, record_change, services, team_id=team_id, user_id=str(user.get("id", "")), known=known)


def record_change(services: Services, *, team_id: str, user_id: str, known: SlackUser, tries: int = 0) -> None:
    """Record what the event said. Slack sends an event once it was answered,
    which it was before this runs: while the database refuses for a moment
    (busy, a connection lost), try again after :data:`RECORD_PAUSES`, on a
    timer, not holding an after-ack thread; a departure missed would tell
    nobody."""
    try:
        with unit_of_work(services.engine, max_wait=RECORD_MAX_WAIT) as session:
            record_person(session, services, team_id=team_id, user_id=user_id, known=known,
                          known_only=not known.deleted)
    except DBAPIError as failure:
        if tries >= len(RECORD_PAUSES) or not may_pass(failure):
            raise
        log.warning("could not record what Slack said of %s (%s); trying again in %.0f s", user_id,
                    str(failure.orig).strip(), RECORD_PAUSES[tries])
        again = threading.Timer(RECORD_PAUSES[tries], after_ack, (services, record_change, services),
                                {"team_id": team_id, "user_id": user_id, "known": known, "tries": tries + 1})
        again.daemon = True
        again.start()


def record_person(session: Session, services: Services, *, team_id: str, user_id: str, known: SlackUser,
                  known_only: bool = False) -> None:
    """Record what Slack said of someone (``remember_person``), and when it
    says for the first time that they left, tell those who can hand on what
    they held."""
    left_before = left_at(session, team_id=team_id, user_id=user_id)
    leaving_or_back = known.deleted or left_before is not None
    if leaving_or_back:
        # The workspace row held (PostgreSQL) while Slack says they left, or are
        # back, taken first, as a request takes it before its requester's
        # record: two copies of the event (Slack sends one again after a late
        # ack) see the change one after the other, and only the first tells
        # anyone; a change naming them that began before this
        # (``presence.require_present``) is in what they held.
        lock_workspace(session, team_id=team_id)
        left_before = left_at(session, team_id=team_id, user_id=user_id)
    remember_person(session, team_id=team_id, user_id=user_id, tz=known.tz, name=known.name,
                    seen_at=known.seen_at, clock=services.clock, known_only=known_only, left=known.deleted,
                    slack_admin=known.workspace_admin, bot=known.bot)
    left_now = left_at(session, team_id=team_id, user_id=user_id) if leaving_or_back else None
    if (left_before is None) == (left_now is None):
        return
    # Who may be named owner, AO or verifier changed: on the trail, as Slack's doing.
    settings = services.settings
    slack = Actor(team_id=team_id, user_id=SYSTEM_ACTOR, roles=frozenset(), tz=settings.timezone,
                  clock=services.clock, rules=settings.rules)
    audit.record(session, slack, action="person.left" if left_now else "person.returned", details={"person": user_id})
    if left_now is not None:
        tell_of_departure(session, team_id=team_id, user_id=user_id, rules=settings.rules,
                          configured_admins=settings.poam_admins, now=services.clock.now(),
                          local_day=local_today(services.clock, settings.timezone))

