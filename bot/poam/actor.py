"""The acting user: who asks, in which workspace, with which roles, when."""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.poam.clock import Clock, local_today
from bot.poam.deadlines import FEDRAMP, DeadlinePolicy
from bot.poam.errors import InvalidInput
from bot.poam.refs import format_item_id

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")
_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,31}$")


@dataclass(frozen=True)
class Rules:
    """The deployment's conventions: the item id prefix and the deadline policy."""

    id_prefix: str = "POAM"
    deadlines: DeadlinePolicy = FEDRAMP

    def label(self, number: int) -> str:
        """How users see item ``number``: ``POAM-12``."""
        return format_item_id(number, prefix=self.id_prefix)


class Role(StrEnum):
    VERIFIER = "verifier"
    AO = "ao"
    ADMIN = "admin"

    @property
    def noun(self) -> str:
        """The role in a sentence: "a verifier", "an authorizing official", "an admin"."""
        return {"verifier": "a verifier", "ao": "an authorizing official", "admin": "an admin"}[self.value]


@dataclass(frozen=True)
class Actor:
    """Built per request by the caller (Slack handler, CLI, importer), usually
    with :func:`bot.poam.roles.load_actor`. ``clock`` and ``tz`` give "now"
    and "today" as this user sees them, so the domain never reads the wall
    clock and relative dates follow the user's Slack time zone. ``roles`` is any
    set: :func:`~bot.poam.roles.load_actor` gives one that reads the grants
    only when a check first needs them.
    """

    team_id: str
    user_id: str
    roles: Set[Role]
    tz: ZoneInfo
    clock: Clock
    rules: Rules = field(default_factory=Rules)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return local_today(self.clock, self.tz)


def check_user_id(user_id: str, *, what: str = "user") -> str:
    """A Slack user id (``U…``/``W…``), or :class:`InvalidInput`."""
    if not _USER_ID.match(user_id):
        raise InvalidInput(f"`{user_id}` is not a Slack {what} id; mention the person, like @jane.")
    return user_id


def check_team_id(team_id: str) -> str:
    """A Slack workspace id (``T…``, or ``E…`` for an Enterprise Grid org)."""
    if not _TEAM_ID.match(team_id):
        raise InvalidInput(f"`{team_id}` is not a Slack workspace id (it starts with T).")
    return team_id
