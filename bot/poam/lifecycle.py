"""An item's lifecycle as one explicit state machine.

Every operation that changes an item's status asks :func:`transition` for the
next state, so no path can skip a step (DOMAIN.md, "Lifecycle")::

    open --claim--> in_progress --submit--> pending_verification --verify--> closed
                        ^------------------reject_fix---------------|
    open|in_progress --request (deviation, extension)--> (pending AO decision)
        FP approved -> closed · RA approved -> new risk and due date
        OR approved -> risk_accepted · extension approved -> new due date
    open|in_progress --accept_risk--> risk_accepted --expire--> in_progress (open if unowned)
    risk_accepted --accept_risk (the AO's re-review: a new date)--> risk_accepted
    risk_accepted --claim (unowned), release--> risk_accepted
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

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
    SUBMIT = "submit"
    VERIFY = "verify"
    REJECT_FIX = "reject_fix"
    APPROVE_PLAN = "approve_plan"
    REQUEST = "request"
    APPROVE_FALSE_POSITIVE = "approve_false_positive"
    APPROVE_RISK_ADJUSTMENT = "approve_risk_adjustment"
    APPROVE_OPERATIONAL_REQUIREMENT = "approve_operational_requirement"
    APPROVE_EXTENSION = "approve_extension"
    ACCEPT_RISK = "accept_risk"
    EXPIRE = "expire"
    EXPIRE_UNOWNED = "expire_unowned"
    VENDOR = "vendor"

    @property
    def phrase(self) -> str:
        """What the action does, to finish "you cannot …"."""
        return _PHRASES[self]


_PHRASES = {
    Action.CLAIM: "claim it",
    Action.RELEASE: "release it",
    Action.ASSIGN: "assign it",
    Action.EDIT_PLAN: "change its plan or milestones",
    Action.SUBMIT: "submit it for verification",
    Action.VERIFY: "verify it",
    Action.REJECT_FIX: "send it back",
    Action.APPROVE_PLAN: "approve its plan",
    Action.REQUEST: "request a deviation or an extension",
    Action.APPROVE_FALSE_POSITIVE: "close it as a false positive",
    Action.APPROVE_RISK_ADJUSTMENT: "adjust its risk",
    Action.APPROVE_OPERATIONAL_REQUIREMENT: "accept it as an operational requirement",
    Action.APPROVE_EXTENSION: "extend it",
    Action.ACCEPT_RISK: "accept its risk",
    Action.EXPIRE: "end its risk acceptance",
    Action.EXPIRE_UNOWNED: "end its risk acceptance",
    Action.VENDOR: "record a vendor dependency",
}

_OPEN_OR_WORKED = (Status.OPEN, Status.IN_PROGRESS)


def _stay(*statuses: Status) -> dict[Status, Status]:
    return {status: status for status in statuses}


_TRANSITIONS: dict[Action, dict[Status, Status]] = {
    # An unowned item whose risk the AO accepted is claimed as it stands.
    Action.CLAIM: {Status.OPEN: Status.IN_PROGRESS, Status.RISK_ACCEPTED: Status.RISK_ACCEPTED},
    Action.RELEASE: {Status.IN_PROGRESS: Status.OPEN, Status.RISK_ACCEPTED: Status.RISK_ACCEPTED},
    Action.ASSIGN: {
        Status.OPEN: Status.IN_PROGRESS,
        Status.IN_PROGRESS: Status.IN_PROGRESS,
        Status.PENDING_VERIFICATION: Status.PENDING_VERIFICATION,
        Status.RISK_ACCEPTED: Status.RISK_ACCEPTED,
    },
    Action.EDIT_PLAN: _stay(Status.OPEN, Status.IN_PROGRESS, Status.RISK_ACCEPTED),
    Action.SUBMIT: {Status.IN_PROGRESS: Status.PENDING_VERIFICATION},
    Action.VERIFY: {Status.PENDING_VERIFICATION: Status.CLOSED},
    Action.REJECT_FIX: {Status.PENDING_VERIFICATION: Status.IN_PROGRESS},
    # Plan approval is a flag beside the lifecycle: any time before the item closes.
    Action.APPROVE_PLAN: _stay(Status.OPEN, Status.IN_PROGRESS, Status.PENDING_VERIFICATION, Status.RISK_ACCEPTED),
    Action.REQUEST: _stay(*_OPEN_OR_WORKED),
    Action.APPROVE_FALSE_POSITIVE: dict.fromkeys(_OPEN_OR_WORKED, Status.CLOSED),
    Action.APPROVE_RISK_ADJUSTMENT: _stay(*_OPEN_OR_WORKED),
    Action.APPROVE_OPERATIONAL_REQUIREMENT: dict.fromkeys(_OPEN_OR_WORKED, Status.RISK_ACCEPTED),
    Action.APPROVE_EXTENSION: _stay(*_OPEN_OR_WORKED),
    # From risk_accepted too: the AO's re-review renews it, or ends it sooner (DOMAIN.md).
    Action.ACCEPT_RISK: dict.fromkeys((*_OPEN_OR_WORKED, Status.RISK_ACCEPTED), Status.RISK_ACCEPTED),
    Action.EXPIRE: {Status.RISK_ACCEPTED: Status.IN_PROGRESS},
    Action.EXPIRE_UNOWNED: {Status.RISK_ACCEPTED: Status.OPEN},
    Action.VENDOR: _stay(Status.IN_PROGRESS, Status.RISK_ACCEPTED),
}


def moves(action: Action) -> Mapping[Status, Status]:
    """The status after ``action`` by the status it is taken in."""
    return MappingProxyType(_TRANSITIONS[action])


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
