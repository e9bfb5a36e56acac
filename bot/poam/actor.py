"""The acting user: who asks, in which workspace, with which roles, when."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.poam.clock import Clock, local_today
from bot.poam.deadlines import FEDRAMP, DeadlinePolicy
from bot.poam.errors import InvalidInput
from bot.poam.refs import format_item_id

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")
_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,31}$")


#: The actor id of changes the bot makes by itself (expiries, a workspace's
#: default system), in the audit trail.
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Rules:
    """The deployment's conventions: the item id prefix, the deadline policy
    and the time zone of the dates the exports write."""

    id_prefix: str = "POAM"
    deadlines: DeadlinePolicy = FEDRAMP
    timezone: ZoneInfo = ZoneInfo("UTC")

    def day(self, moment: datetime) -> date:
        """The date of ``moment`` in the deployment's time zone (``POAM_TIMEZONE``):
        an export's dates are the same whoever runs it, wherever they are."""
        return moment.astimezone(self.timezone).date()

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


class RolesOnUse(Set[Role]):
    """A set of roles that calls ``load`` the first time it must know them all;
    asking for one of the ``known`` roles needs no load. It remembers which
    granted roles a check found held (:meth:`lost_since_relied_on`)."""

    __slots__ = ("_known", "_load", "_loaded", "_relied_on")

    def __init__(self, known: frozenset[Role], load: Callable[[], frozenset[Role]]) -> None:
        self._known = known
        self._load = load
        self._loaded: frozenset[Role] | None = None
        self._relied_on: set[Role] = set()

    def _roles(self) -> frozenset[Role]:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def __contains__(self, role: object) -> bool:
        if role in self._known:
            return True
        held = role in self._roles()
        if held:
            self._relied_on.add(role)  # type: ignore[arg-type]  # held: a Role
        return held

    def __iter__(self) -> Iterator[Role]:
        return iter(self._roles())

    def __len__(self) -> int:
        return len(self._roles())

    def __repr__(self) -> str:
        return f"RolesOnUse({set(self._loaded) if self._loaded is not None else 'not read yet'})"

    def lost_since_relied_on(self) -> bool:
        """Whether a granted role a check found held is granted no more, read
        again now (False when no check relied on one): ``audit`` asks, once its
        change holds the workspace row, which a change of roles holds too until
        it commits. Roles this very change grants or revokes (an admin's own
        verifier role) are no check's, and count for nothing."""
        return bool(self._relied_on) and not self._relied_on <= self._load()


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

    def as_the_bot(self) -> Actor:
        """The bot itself (:data:`SYSTEM_ACTOR`), with no roles, in this
        actor's workspace, time and rules: what it does on its own account."""
        return replace(self, user_id=SYSTEM_ACTOR, roles=frozenset())


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
