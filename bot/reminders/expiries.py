"""Ending risk acceptances that ran out, a workspace at a time.

Each workspace's expiries are a transaction of their own: one workspace whose
change cannot be written (its audit trail out of step with its head, say)
must not hold back the others', nor the reminders the scheduler sends after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.poam.actor import Rules
from bot.poam.clock import Clock
from bot.poam.errors import PoamError
from bot.poam.review import Expired, expire_risk_acceptances, teams_with_ended_acceptances
from bot.store.engine import unit_of_work

log = logging.getLogger(__name__)


@dataclass
class Expiries:
    ended: list[Expired] = field(default_factory=list)
    #: The workspaces whose expiries failed, with why.
    failed: dict[str, str] = field(default_factory=dict)


def end_risk_acceptances(engine: Engine, *, clock: Clock, rules: Rules) -> Expiries:
    """End every workspace's risk acceptances past their last day in ``rules.timezone``."""
    with unit_of_work(engine, read_only=True) as session:
        teams = teams_with_ended_acceptances(session, clock=clock, rules=rules)
    done = Expiries()
    for team_id in teams:
        try:
            with unit_of_work(engine) as session:
                done.ended += expire_risk_acceptances(session, team_id=team_id, clock=clock, rules=rules)
        except PoamError as error:  # refused by the domain: the trail out of step, say; the next tick tries again
            log.error("risk acceptances of workspace %s could not end: %s", team_id, error.message)
            done.failed[team_id] = error.message
        except Exception as error:  # a database error (busy, say): logged with its traceback; the others go on
            log.exception("risk acceptances of workspace %s could not end", team_id)
            done.failed[team_id] = f"{type(error).__name__}: {error}"
    return done
