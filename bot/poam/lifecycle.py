"""An item's lifecycle as one explicit state machine.

Every operation that changes an item's status asks :func:`transition` for the
next state, so no path can skip a step. The review workflow (verification, AO
decisions, risk acceptance) adds its actions to ``_TRANSITIONS``.
"""

from __future__ import annotations

from enum import StrEnum

from bot.poam.errors import InvalidState


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    PENDING_VERIFICATION = "pending_verification"
    RISK_ACCEPTED = "risk_accepted"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


#: Statuses whose due date still counts: an item in them can be overdue.
ACTIVE = frozenset({Status.OPEN, Status.IN_PROGRESS, Status.PENDING_VERIFICATION})
#: Every status but closed: the item is still on the open POA&M.
NOT_CLOSED = frozenset(Status) - {Status.CLOSED}


class Action(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    ASSIGN = "assign"
    EDIT_PLAN = "edit_plan"

    @property
    def phrase(self) -> str:
        """What the action does, to finish "you cannot …"."""
        return _PHRASES[self]


_PHRASES = {
    Action.CLAIM: "claim it",
    Action.RELEASE: "release it",
    Action.ASSIGN: "assign it",
    Action.EDIT_PLAN: "change its plan or milestones",
}


_TRANSITIONS: dict[Action, dict[Status, Status]] = {
    Action.CLAIM: {Status.OPEN: Status.IN_PROGRESS},
    Action.RELEASE: {Status.IN_PROGRESS: Status.OPEN},
    Action.ASSIGN: {
        Status.OPEN: Status.IN_PROGRESS,
        Status.IN_PROGRESS: Status.IN_PROGRESS,
        Status.PENDING_VERIFICATION: Status.PENDING_VERIFICATION,
        Status.RISK_ACCEPTED: Status.RISK_ACCEPTED,
    },
    Action.EDIT_PLAN: {
        Status.OPEN: Status.OPEN,
        Status.IN_PROGRESS: Status.IN_PROGRESS,
        Status.RISK_ACCEPTED: Status.RISK_ACCEPTED,
    },
}


def allowed_from(action: Action) -> frozenset[Status]:
    """The statuses in which ``action`` may be taken."""
    return frozenset(_TRANSITIONS[action])


def transition(action: Action, current: str, *, item_label: str) -> Status:
    """The status after ``action``; :class:`InvalidState` when not allowed now."""
    status = Status(current)
    after = _TRANSITIONS[action].get(status)
    if after is None:
        if status is Status.CLOSED:
            raise InvalidState(f"{item_label} is closed; a closed item never reopens.")
        raise InvalidState(f"{item_label} is {status.label}, so you cannot {action.phrase} now.")
    return after
