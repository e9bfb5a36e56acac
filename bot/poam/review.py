"""The review workflow: independent verification, and the authorizing official's
decisions on plans, deviations, extensions and residual risk.

A fix counts only when a separate person verifies it; a plan, a deviation, an
extension or an accepted risk counts only when the authorizing official (AO)
decides it. Every request and every decision is a :class:`ReviewRequest` row
(who asked, who decided, when, what, why) and an audit event.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, String, bindparam, cast, literal_column, null, or_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.poam import audit
from bot.poam.actor import SYSTEM_ACTOR, Actor, Role, Rules
from bot.poam.clock import Clock
from bot.poam.errors import (
    AlreadyDecided,
    InvalidCombination,
    InvalidInput,
    InvalidState,
    NotFound,
)
from bot.poam.items import load_item, status_change, touch
from bot.poam.lifecycle import Action, Status, allowed_from, transition
from bot.poam.permissions import (
    Remediators,
    is_authorizing_official,
    is_separate_verifier,
    may_decide,
    require_authorizing_official,
    require_owner,
    require_verifier,
)
from bot.poam.presence import unreachable
from bot.poam.roles import role_holders
from bot.poam.severity import Severity
from bot.poam.text import clean_text
from bot.store.models import AuditEvent, InfoSystem, Item, Milestone, ReviewRequest, table_of
from bot.store.rows import Columns, in_chunks

T = TypeVar("T")

MAX_TEXT = 4_000


class RequestKind(StrEnum):
    VERIFICATION = "verification"
    DEVIATION = "deviation"
    EXTENSION = "extension"
    RISK_ACCEPTANCE = "risk_acceptance"
    PLAN_APPROVAL = "plan_approval"


class Deviation(StrEnum):
    """FedRAMP deviation requests."""

    FALSE_POSITIVE = "fp"
    RISK_ADJUSTMENT = "ra"
    OPERATIONAL_REQUIREMENT = "or"

    @property
    def label(self) -> str:
        return {"fp": "false positive", "ra": "risk adjustment", "or": "operational requirement"}[self.value]

    @classmethod
    def named(cls, label: str) -> Deviation:
        """The deviation of a label, in any case (``Risk Adjustment``)."""
        return next(deviation for deviation in cls if deviation.label == " ".join(label.lower().split()))

    @classmethod
    def asked(cls, value: str | None) -> Deviation:
        """What a deviation request (``ReviewRequest.deviation``) asks for:
        every one names it (:func:`request_deviation` writes it)."""
        if value is None:
            raise ValueError("a deviation request that names no deviation")
        return cls(value)


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Closure(StrEnum):
    """Why a closed item closed."""

    REMEDIATED = "remediated"
    FALSE_POSITIVE = "false_positive"
    IMPORTED = "imported"  # closed before it came to this tool (a workbook's closed tab)


# ---------------------------------------------------------------- lookups


def pending_request(session: Session, item: Item) -> ReviewRequest | None:
    return session.exec(
        select(ReviewRequest).where(
            ReviewRequest.team_id == item.team_id,
            ReviewRequest.item_id == item.id,
            ReviewRequest.status == RequestStatus.PENDING,
        )
    ).first()


def requests_of(session: Session, item: Item) -> list[ReviewRequest]:
    """Every request and decision about ``item``, oldest first."""
    return list(
        session.exec(
            select(ReviewRequest)
            .where(ReviewRequest.team_id == item.team_id, ReviewRequest.item_id == item.id)
            .order_by(col(ReviewRequest.id))
        ).all()
    )


#: The audit actions that set an item's owner: ``item.logged`` names its
#: first one (or None), the others ``{"from": …, "to": …}``.
_OWNERSHIP_ACTIONS = ("item.logged", "item.claimed", "item.released", "item.assigned")


_OWNER, _SUBMITTER, _COMPLETER = "owner", "submitter", "completer"


def _worked_on(part: str, table: Any, user: Any, details: Any, *conditions: Any, many: bool) -> Any:
    """One part of :data:`_WORKED_ON`: (part, item id, user, audit details) of
    one item's rows of ``table`` (``many``: of several items')."""
    item = table.c.item_id.in_(bindparam("item_ids", expanding=True)) if many else table.c.item_id == bindparam("item_id")
    return sa_select(
        literal_column(f"'{part}'", String).label("part"), table.c.item_id, user.label("user"), details,
    ).where(table.c.team_id == bindparam("team_id"), item, *conditions)


_AUDIT_TABLE, _REQUEST_TABLE, _MILESTONE_TABLE = table_of(AuditEvent), table_of(ReviewRequest), table_of(Milestone)


def _worked_on_statement(*, many: bool) -> Any:
    """Who worked on one item (``many``: on several), in one statement (a card
    reads it while a fix or a decision waits on its viewer)."""
    return union_all(
        _worked_on(_OWNER, _AUDIT_TABLE, cast(null(), String), _AUDIT_TABLE.c.details,
                   or_(*(_AUDIT_TABLE.c.action == action for action in _OWNERSHIP_ACTIONS)), many=many),
        _worked_on(_SUBMITTER, _REQUEST_TABLE, _REQUEST_TABLE.c.requested_by, cast(null(), JSON),
                   _REQUEST_TABLE.c.kind == RequestKind.VERIFICATION.value, many=many),
        _worked_on(_COMPLETER, _MILESTONE_TABLE, _MILESTONE_TABLE.c.completed_by, cast(null(), JSON),
                   _MILESTONE_TABLE.c.completed_by.is_not(None), many=many),
    )


_WORKED_ON, _WORKED_ON_MANY = _worked_on_statement(many=False), _worked_on_statement(many=True)


def remediators(session: Session, *, team_id: str, item_id: int, owner_id: str | None) -> Remediators:
    """Everyone who worked on the fix of item ``item_id`` (owned now by
    ``owner_id``): its owners, past ones read from its audit trail (an
    imported item's first owner is its owner until a change records it as
    ``from``), the submitters of its fixes, and the completers of its
    milestones."""
    rows = session.execute(_WORKED_ON, {"team_id": team_id, "item_id": item_id})
    return _remediators_from(rows, owner_id=owner_id)


def remediators_of_items(session: Session, *, items: Sequence[Item]) -> list[Remediators]:
    """:func:`remediators` of each of ``items`` (one workspace's), in their
    order, a statement per chunk of them."""
    if not items:
        return []
    rows: dict[int, list[Any]] = {}
    for chunk in in_chunks([item.id for item in items]):
        for row in session.execute(_WORKED_ON_MANY, {"team_id": items[0].team_id, "item_ids": chunk}):
            rows.setdefault(row.item_id, []).append(row)
    return [_remediators_from(rows.get(item.id or 0, []), owner_id=item.owner_id) for item in items]


def _remediators_from(rows: Iterable[Any], *, owner_id: str | None) -> Remediators:
    found: dict[str, set[object]] = {_OWNER: {owner_id}, _SUBMITTER: set(), _COMPLETER: set()}
    for part, _, user, details in rows:
        if part != _OWNER:
            found[part].add(user)
            continue
        owner = details.get("owner")
        found[_OWNER].update(owner.values() if isinstance(owner, dict) else [owner])
    owners, submitters, completers = (frozenset(u for u in found[part] if isinstance(u, str) and u)
                                      for part in (_OWNER, _SUBMITTER, _COMPLETER))
    return Remediators(owners=owners, submitters=submitters, completers=completers)


def _remediators_of(session: Session, item: Item) -> Remediators:
    assert item.id is not None  # a stored item's
    return remediators(session, team_id=item.team_id, item_id=item.id, owner_id=item.owner_id)


def _system(session: Session, item: Item) -> InfoSystem:
    system = session.get(InfoSystem, item.system_id)
    if system is None or system.team_id != item.team_id:
        raise NotFound("The item's information system is missing.")
    return system


def _no_pending(session: Session, actor: Actor, item: Item) -> None:
    waiting = pending_request(session, item)
    if waiting is not None:
        name = _request_name(waiting)
        article = "an" if name[0] in "aeiou" else "a"
        raise InvalidState(
            f"{actor.rules.label(item.number)} already waits on {article} {name}; "
            "that must be decided (or withdrawn) first."
        )


def _request_name(request: ReviewRequest) -> str:
    if request.kind == RequestKind.DEVIATION and request.deviation:
        return f"{Deviation(request.deviation).label} request"
    return {"verification": "verification", "extension": "extension request"}.get(request.kind, "decision")


def _new_request(session: Session, actor: Actor, item: Item, **fields: object) -> ReviewRequest:
    request = ReviewRequest(
        team_id=actor.team_id, item_id=item.id, requested_by=actor.user_id, requested_at=actor.now(), **fields  # type: ignore[arg-type]
    )
    session.add(request)
    session.flush()
    return request


def _decide(request: ReviewRequest, actor: Actor, status: RequestStatus, note: str | None) -> None:
    request.status = status
    request.decided_by = actor.user_id
    request.decided_at = actor.now()
    request.decision_note = note


def _decided_already(actor: Actor, item: Item, request: ReviewRequest | None, what: str) -> AlreadyDecided:
    label = actor.rules.label(item.number)
    if request is None:  # none of these kinds was ever made
        return AlreadyDecided(f"{label} has no {what} waiting; none was ever made.", decided_by=None)
    outcome = _OUTCOMES.get((request.kind, request.status), request.status)
    return AlreadyDecided(f"The {_request_name(request)} on {label} was already {outcome}.", decided_by=request.decided_by)


_OUTCOMES: dict[tuple[str, str], str] = {
    (RequestKind.VERIFICATION, RequestStatus.APPROVED): "verified",
    (RequestKind.VERIFICATION, RequestStatus.REJECTED): "sent back",
}


def _load_pending(
    session: Session, actor: Actor, item: Item, *, kinds: set[RequestKind], request_id: int | None, what: str
) -> ReviewRequest:
    """The item's pending request of one of ``kinds``; with ``request_id`` (a button),
    that very request, or :class:`AlreadyDecided` when it was decided meanwhile."""
    if request_id is not None:
        request = session.get(ReviewRequest, request_id)
        if request is None or request.team_id != actor.team_id or request.item_id != item.id:
            raise NotFound(f"That request does not belong to {actor.rules.label(item.number)}.")
        if RequestKind(request.kind) not in kinds:
            raise NotFound(f"That is not a {what} on {actor.rules.label(item.number)}.")
        if request.status != RequestStatus.PENDING:
            raise _decided_already(actor, item, request, what)
        return request
    request = pending_request(session, item)
    if request is None or RequestKind(request.kind) not in kinds:
        latest = next((r for r in reversed(requests_of(session, item)) if RequestKind(r.kind) in kinds), None)
        raise _decided_already(actor, item, latest, what)
    return request


# ---------------------------------------------------------------- plan approval


def approve_plan(session: Session, actor: Actor, *, number: int, seen_version: int | None = None) -> Item:
    """The AO agrees with the item's remediation plan (and milestones as they
    are). ``seen_version``: the item's version where they read the plan (a
    card's button): approving a plan changed since would approve what they
    never saw."""
    item = load_item(session, actor, number=number, for_update=True)
    label = actor.rules.label(number)
    require_authorizing_official(actor, item, _system(session, item), "approve its plan",
                                 remediators=_remediators_of(session, item))
    transition(Action.APPROVE_PLAN, item.status, item_label=label)
    if not item.remediation_plan:
        raise InvalidState(f"{label} has no plan yet; its owner sets one with `/poam plan`.")
    if item.plan_approved_at is not None:
        raise AlreadyDecided(f"The plan of {label} is already approved.", decided_by=item.plan_approved_by)
    if seen_version is not None and seen_version != item.version:
        raise InvalidState(f"{label} changed since you saw it, so its plan was not approved; "
                           f"`/poam show {label}` shows it as it is now.")
    item.plan_approved_by, item.plan_approved_at = actor.user_id, actor.now()
    request = _new_request(session, actor, item, kind=RequestKind.PLAN_APPROVAL, status=RequestStatus.APPROVED)
    _decide(request, actor, RequestStatus.APPROVED, None)
    touch(item, actor)
    _record_as_ao(session, actor, item, action="plan.approved", details={"plan": item.remediation_plan})
    return item


# ---------------------------------------------------------------- verification


def submit_fix(session: Session, actor: Actor, *, number: int, evidence: str | None = None) -> ReviewRequest:
    """The owner says the fix is done and asks for verification."""
    evidence = clean_text(evidence, field="The evidence", limit=MAX_TEXT, required=False)
    item = load_item(session, actor, number=number, for_update=True)
    require_owner(actor, item, "submit it for verification")
    after = transition(Action.SUBMIT, item.status, item_label=actor.rules.label(number))
    _no_pending(session, actor, item)
    item.status = after
    request = _new_request(
        session, actor, item, kind=RequestKind.VERIFICATION, status=RequestStatus.PENDING, text=evidence
    )
    touch(item, actor)
    audit.record(
        session, actor, action="fix.submitted", item_id=item.id,
        details={"request": request.id, "evidence": evidence, "status": {"from": "in_progress", "to": item.status}},
    )
    return request


def _verification(
    session: Session, actor: Actor, number: int, request_id: int | None, *, for_update: bool = True
) -> tuple[Item, ReviewRequest]:
    item = load_item(session, actor, number=number, for_update=for_update)
    request = _load_pending(
        session, actor, item, kinds={RequestKind.VERIFICATION}, request_id=request_id, what="fix to verify"
    )
    require_verifier(actor, item, submitter=request.requested_by, remediators=_remediators_of(session, item))
    return item, request


def verify_fix(
    session: Session, actor: Actor, *, number: int, note: str | None = None, request_id: int | None = None
) -> Item:
    """A separate verifier confirms the fix: the item closes as remediated."""
    note = clean_text(note, field="The note", limit=MAX_TEXT, required=False)
    item, request = _verification(session, actor, number, request_id)
    item.status = transition(Action.VERIFY, item.status, item_label=actor.rules.label(number))
    _decide(request, actor, RequestStatus.APPROVED, note)
    item.closure, item.closed_at = Closure.REMEDIATED, actor.now()
    touch(item, actor)
    audit.record(
        session, actor, action="fix.verified", item_id=item.id,
        details={"request": request.id, "note": note, "status": {"from": "pending_verification", "to": "closed"}},
    )
    return item


def may_verify(session: Session, actor: Actor, *, number: int, request_id: int | None = None) -> None:
    """Refuse as :func:`verify_fix` and :func:`reject_fix` would, reading
    only: before a form asks the verifier for their reason (a fix decided
    meanwhile, a verifier who worked on it)."""
    _verification(session, actor, number, request_id, for_update=False)


def reject_fix(
    session: Session, actor: Actor, *, number: int, reason: str, request_id: int | None = None
) -> Item:
    """A verifier sends the fix back to the owner, saying why."""
    reason = clean_text(reason, field="The reason", limit=MAX_TEXT)
    item, request = _verification(session, actor, number, request_id)
    item.status = transition(Action.REJECT_FIX, item.status, item_label=actor.rules.label(number))
    _decide(request, actor, RequestStatus.REJECTED, reason)
    touch(item, actor)
    audit.record(
        session, actor, action="fix.rejected", item_id=item.id,
        details={"request": request.id, "reason": reason, "status": {"from": "pending_verification", "to": "in_progress"}},
    )
    return item


# ---------------------------------------------------------------- requests to the AO


def _effective_severity(item: Item | Columns) -> Severity:
    return Severity(item.adjusted_severity or item.severity)


def due_after_adjustment(item: Item | Columns, adjusted: Severity, *, rules: Rules) -> date:
    """When ``item`` is due once its risk is adjusted to ``adjusted`` (what
    the AO is shown before deciding): by the deadline policy from detection,
    but a lower rating never takes away time already granted (an extension, a
    vendor's restart) and a higher one never gives more (a date set earlier
    than the policy's, a KEV's two weeks): that takes an extension."""
    by_policy = rules.deadlines.due_date(severity=adjusted, detected_on=item.detected_on)
    lowered = adjusted.rank > _effective_severity(item).rank
    return max(item.due_on, by_policy) if lowered else min(item.due_on, by_policy)


def check_deviation_shape(deviation: Deviation, *, adjusted_severity: Severity | None, until: date | None) -> None:
    """A risk adjustment, and it alone, names the adjusted severity; an
    operational requirement, and it alone, a re-review date. Checked before
    anything is read (the slash command checks it before it opens a
    transaction): the request is malformed whatever the item."""
    if deviation is Deviation.RISK_ADJUSTMENT and adjusted_severity is None:
        raise InvalidCombination("A risk adjustment needs the adjusted severity: `sev:low`.", field="adjusted_severity")
    if deviation is not Deviation.RISK_ADJUSTMENT and adjusted_severity is not None:
        raise InvalidCombination("Only a risk adjustment (ra) takes `sev:`.", field="adjusted_severity")
    if deviation is Deviation.OPERATIONAL_REQUIREMENT and until is None:
        raise InvalidCombination("An operational requirement needs a re-review date: `until:+6m`.", field="until")
    if deviation is not Deviation.OPERATIONAL_REQUIREMENT and until is not None:
        raise InvalidCombination("Only an operational requirement (or) takes `until:`.", field="until")


def request_deviation(
    session: Session,
    actor: Actor,
    *,
    number: int,
    deviation: Deviation,
    rationale: str,
    adjusted_severity: Severity | None = None,
    until: date | None = None,
) -> ReviewRequest:
    """The owner asks the AO for a false positive, a risk adjustment or an
    operational requirement (never for a High risk)."""
    check_deviation_shape(deviation, adjusted_severity=adjusted_severity, until=until)
    rationale = clean_text(rationale, field="The rationale", limit=MAX_TEXT)
    item = load_item(session, actor, number=number, for_update=True)
    label = actor.rules.label(number)
    require_owner(actor, item, "request a deviation")
    transition(Action.REQUEST, item.status, item_label=label)
    _no_pending(session, actor, item)
    if deviation is Deviation.RISK_ADJUSTMENT and adjusted_severity == _effective_severity(item):
        raise InvalidInput(f"{label} is already rated {adjusted_severity}.", field="adjusted_severity")
    if until is not None:  # an operational requirement (checked above)
        _refuse_or_for_high(actor, item)
        _check_future(actor, until, "The re-review date")
    request = _new_request(
        session, actor, item, kind=RequestKind.DEVIATION, deviation=deviation, status=RequestStatus.PENDING,
        text=rationale, adjusted_severity=adjusted_severity, until_on=until,
    )
    touch(item, actor)
    audit.record(
        session, actor, action="deviation.requested", item_id=item.id,
        details={"request": request.id, "deviation": deviation, "rationale": rationale,
                 "adjusted_severity": adjusted_severity, "until": until},
    )
    return request


def _refuse_or_for_high(actor: Actor, item: Item) -> None:
    if _effective_severity(item) in (Severity.HIGH, Severity.CRITICAL):
        raise InvalidInput(
            f"{actor.rules.label(item.number)} is a {_effective_severity(item)} risk; an operational "
            "requirement is never approved for a High risk."
        )


def _check_future(actor: Actor, day: date, what: str, *, field: str = "until") -> None:
    """Refuse ``day`` unless it is after today, the actor's and the
    workspace's (``Rules.timezone``: the day acceptances end by), wherever
    either is ahead: a date that is tomorrow for the actor may be today's end."""
    if day <= max(actor.today(), actor.rules.day(actor.now())):
        raise InvalidInput(f"{what} {day} is not in the future.", field=field)


def request_extension(session: Session, actor: Actor, *, number: int, due_on: date, reason: str) -> ReviewRequest:
    """The owner asks the AO for a later completion date."""
    reason = clean_text(reason, field="The reason", limit=MAX_TEXT)
    item = load_item(session, actor, number=number, for_update=True)
    label = actor.rules.label(number)
    require_owner(actor, item, "request an extension")
    transition(Action.REQUEST, item.status, item_label=label)
    _no_pending(session, actor, item)
    if due_on <= item.due_on:
        raise InvalidInput(f"{due_on} is not later than the current due date {item.due_on}.", field="due_on")
    _check_future(actor, due_on, "The new due date", field="due_on")  # else it leaves the item overdue
    request = _new_request(
        session, actor, item, kind=RequestKind.EXTENSION, status=RequestStatus.PENDING, text=reason, new_due_on=due_on
    )
    touch(item, actor)
    audit.record(
        session, actor, action="extension.requested", item_id=item.id,
        details={"request": request.id, "due_on": {"from": item.due_on, "to": due_on}, "reason": reason},
    )
    return request


def withdraw_request(session: Session, actor: Actor, *, number: int) -> ReviewRequest:
    """The owner takes back a pending deviation or extension request."""
    item = load_item(session, actor, number=number, for_update=True)
    require_owner(actor, item, "withdraw its request")
    request = _load_pending(
        session, actor, item, kinds={RequestKind.DEVIATION, RequestKind.EXTENSION}, request_id=None, what="request"
    )
    _decide(request, actor, RequestStatus.WITHDRAWN, None)
    touch(item, actor)
    audit.record(
        session, actor, action="request.withdrawn", item_id=item.id,
        details={"request": request.id, "kind": request.kind, "deviation": request.deviation},
    )
    return request


def decide(
    session: Session,
    actor: Actor,
    *,
    number: int,
    approve: bool,
    reason: str | None = None,
    request_id: int | None = None,
) -> ReviewRequest:
    """The AO approves or rejects the item's pending deviation or extension request."""
    reason = clean_text(reason, field="The reason", limit=MAX_TEXT, required=False)
    item = load_item(session, actor, number=number, for_update=True)
    request = _load_pending(
        session, actor, item, kinds={RequestKind.DEVIATION, RequestKind.EXTENSION}, request_id=request_id,
        what="request to decide",
    )
    require_authorizing_official(actor, item, _system(session, item), "decide it", requester=request.requested_by,
                                 remediators=_remediators_of(session, item))
    before = _decided_fields(item)
    if approve:
        _apply(actor, item, request)
    _decide(request, actor, RequestStatus.APPROVED if approve else RequestStatus.REJECTED, reason)
    touch(item, actor)
    after = _decided_fields(item)
    _record_as_ao(
        session, actor, item, action="request.approved" if approve else "request.rejected",
        details={
            "request": request.id, "kind": request.kind, "deviation": request.deviation, "reason": reason,
            **{key: {"from": before[key], "to": after[key]} for key in before if before[key] != after[key]},
        },
    )
    return request


def _record_as_ao(session: Session, actor: Actor, item: Item, *, action: str, details: dict[str, Any]) -> None:
    """Record an authorizing official's decision; then, holding the workspace
    row (its audit slot), refuse it if it rested on being the AO named on the
    item's system and an admin named another meanwhile (PostgreSQL: the system
    was read as committed before; a role taken away is ``audit``'s check)."""
    audit.record(session, actor, action=action, item_id=item.id, details=details)
    if session.get_bind().dialect.name != "postgresql" or Role.AO in actor.roles:
        return
    named = session.execute(sa_select(col(InfoSystem.ao_user_id)).where(
        col(InfoSystem.team_id) == item.team_id, col(InfoSystem.id) == item.system_id)).scalar()
    if named != actor.user_id:
        audit.refuse_changed_meanwhile(session)


def _decided_fields(item: Item) -> dict[str, object]:
    """What an AO's decision may change on an item, for its audit event's from/to."""
    return {"status": item.status, "due_on": item.due_on, "adjusted_severity": item.adjusted_severity,
            "closure": item.closure, "risk_accepted_until": item.risk_accepted_until}


def _apply(actor: Actor, item: Item, request: ReviewRequest) -> None:
    """What an approved request changes on the item."""
    label = actor.rules.label(item.number)
    if request.kind == RequestKind.EXTENSION:
        transition(Action.APPROVE_EXTENSION, item.status, item_label=label)
        assert request.new_due_on is not None
        item.due_on = request.new_due_on  # the scheduled completion date stays as first set
        return
    match Deviation.asked(request.deviation):
        case Deviation.FALSE_POSITIVE:
            item.status = transition(Action.APPROVE_FALSE_POSITIVE, item.status, item_label=label)
            item.closure, item.closed_at = Closure.FALSE_POSITIVE, actor.now()
        case Deviation.RISK_ADJUSTMENT:
            transition(Action.APPROVE_RISK_ADJUSTMENT, item.status, item_label=label)
            assert request.adjusted_severity is not None
            adjusted = Severity(request.adjusted_severity)
            item.due_on = due_after_adjustment(item, adjusted, rules=actor.rules)
            item.adjusted_severity = adjusted
        case Deviation.OPERATIONAL_REQUIREMENT:
            _refuse_or_for_high(actor, item)
            assert request.until_on is not None
            if request.until_on <= actor.today():
                raise InvalidInput(
                    f"The re-review date {request.until_on} has passed; reject this and ask for a new date."
                )
            item.status = transition(Action.APPROVE_OPERATIONAL_REQUIREMENT, item.status, item_label=label)
            item.risk_accepted_until = request.until_on


# ---------------------------------------------------------------- risk acceptance


@dataclass(frozen=True)
class Acceptance:
    """What :func:`accept_risk` did: the item, and the date its acceptance ran
    to before, when this renewed one (None: newly accepted)."""

    item: Item
    renewed_from: date | None


def accept_risk(session: Session, actor: Actor, *, number: int, until: date, rationale: str) -> Acceptance:
    """The AO accepts the residual risk until a date; then the item is back in
    progress. On an item whose risk is accepted already, the AO's re-review
    (DOMAIN.md): the acceptance runs to the new date, later or sooner, so
    that one ending within 30 days need not lapse (and the item fall due)
    before it is renewed."""
    rationale = clean_text(rationale, field="The rationale", limit=MAX_TEXT)
    item = load_item(session, actor, number=number, for_update=True)
    label = actor.rules.label(number)
    require_authorizing_official(actor, item, _system(session, item), "accept its risk",
                                 remediators=_remediators_of(session, item))
    _check_future(actor, until, "The acceptance end date")
    _no_pending(session, actor, item)
    was, item.status = item.status, transition(Action.ACCEPT_RISK, item.status, item_label=label)
    renewed_from = item.risk_accepted_until if was == Status.RISK_ACCEPTED else None
    if renewed_from == until:
        raise InvalidInput(f"The risk of {label} is accepted until {until} already.")
    item.risk_accepted_until = until
    request = _new_request(
        session, actor, item, kind=RequestKind.RISK_ACCEPTANCE, status=RequestStatus.PENDING, text=rationale, until_on=until
    )
    _decide(request, actor, RequestStatus.APPROVED, rationale)
    touch(item, actor)
    if was == Status.RISK_ACCEPTED:
        _record_as_ao(session, actor, item, action="risk.renewed", details={
            "request": request.id, "until": {"from": renewed_from, "to": until}, "rationale": rationale})
    else:
        _record_as_ao(session, actor, item, action="risk.accepted", details={
            "request": request.id, "until": until, "rationale": rationale, **status_change(was, item.status)})
    return Acceptance(item, renewed_from)


def _back_to_work(item: Item) -> Action:
    """How an acceptance ends: back in progress, or open when nobody owns the item."""
    return Action.EXPIRE if item.owner_id else Action.EXPIRE_UNOWNED


def end_risk_acceptance(session: Session, actor: Actor, *, number: int, rationale: str) -> Item:
    """The AO's re-review ends an acceptance (or an approved operational
    requirement) now, not at its date: the item is back at work (DOMAIN.md:
    risk_accepted --expiry or re-review--> in_progress), open if unowned."""
    rationale = clean_text(rationale, field="The rationale", limit=MAX_TEXT)
    item = load_item(session, actor, number=number, for_update=True)
    label = actor.rules.label(number)
    require_authorizing_official(actor, item, _system(session, item), "end its risk acceptance",
                                 remediators=_remediators_of(session, item))
    was = item.status
    item.status = transition(_back_to_work(item), item.status, item_label=label)
    until, item.risk_accepted_until = item.risk_accepted_until, None
    touch(item, actor)
    _record_as_ao(session, actor, item, action="risk.ended", details={
        "until": {"from": until, "to": None}, "rationale": rationale, **status_change(was, item.status)})
    return item


@dataclass(frozen=True)
class Expired:
    team_id: str
    number: int
    until: date


def teams_with_ended_acceptances(session: Session, *, clock: Clock, rules: Rules) -> list[str]:
    """The workspaces with a risk acceptance past its last day (in ``rules.timezone``)."""
    today = rules.day(clock.now())
    ended = select(Item.team_id).where(Item.status == Status.RISK_ACCEPTED, col(Item.risk_accepted_until) < today)
    return sorted(set(session.exec(ended).all()))


def expire_risk_acceptances(
    session: Session, *, team_id: str, clock: Clock, rules: Rules
) -> list[Expired]:
    """Return the workspace's items whose risk acceptance (or OR approval) has
    run out to work.

    Run by the scheduler (and ``poam-bot review expire``), a workspace at a
    time. An acceptance "until D" holds through D in the workspace's zone
    (``rules.timezone``: ``POAM_TIMEZONE``); the item is back in progress the day after.
    """
    actor = Actor(team_id=team_id, user_id=SYSTEM_ACTOR, roles=frozenset(), tz=rules.timezone, clock=clock,
                  rules=rules)
    due = session.exec(
        select(Item)
        .where(Item.team_id == team_id, Item.status == Status.RISK_ACCEPTED,
               col(Item.risk_accepted_until) < actor.today())
        .order_by(col(Item.number))
        .with_for_update()
    ).all()
    expired = []
    for item in due:
        until = item.risk_accepted_until
        assert until is not None
        item.status = transition(_back_to_work(item), item.status, item_label=rules.label(item.number))
        item.risk_accepted_until = None
        touch(item, actor)
        audit.record(
            session, actor, action="risk.expired", item_id=item.id,
            details={"until": until, "status": {"from": "risk_accepted", "to": item.status}},
        )
        expired.append(Expired(item.team_id, item.number, until))
    return expired


# ---------------------------------------------------------------- vendor dependency


def set_vendor(
    session: Session, actor: Actor, *, number: int, product: str | None = None, checkin: bool = False
) -> Item:
    """Mark the item as waiting on a vendor (and which product), and/or record a
    vendor check-in today (FedRAMP asks for one at least every 30 days)."""
    product = clean_text(product, field="The product name", limit=200, required=False)
    item = load_item(session, actor, number=number, for_update=True)
    require_owner(actor, item, "record its vendor dependency")
    transition(Action.VENDOR, item.status, item_label=actor.rules.label(number))
    changes: dict[str, object] = {}
    if not item.vendor_dependency:
        changes["dependency"] = {"from": False, "to": True}
        item.vendor_dependency = True
    if product is not None and product != item.vendor_product:
        changes["product"] = {"from": item.vendor_product, "to": product}
        item.vendor_product = product
    if checkin:
        changes["checkin"] = {"from": item.last_vendor_checkin_on, "to": actor.today()}
        item.last_vendor_checkin_on = actor.today()
    if not changes:
        raise InvalidInput(
            f"{actor.rules.label(number)} is already marked as vendor dependent; add `checkin` to record a check-in, "
            "or `shipped` when the vendor's fix is out."
        )
    touch(item, actor)
    audit.record(session, actor, action="vendor.updated", item_id=item.id, details=changes)
    return item


@dataclass(frozen=True)
class Shipped:
    """What :func:`vendor_shipped` did: the item, and the extension it asked
    the authorizing official for (None when the restart gives no later date)."""

    item: Item
    extension: ReviewRequest | None


def vendor_shipped(session: Session, actor: Actor, *, number: int) -> Shipped:
    """The vendor shipped the fix the item waited on: the dependency ends, and
    the remediation clock restarts today (DOMAIN.md): the item may be due when
    the deadline policy makes an item of its rating found today due. An owner
    never moves their own due date later, so that date is asked of the
    authorizing official as an extension, unless it is no later than the
    current one (or the item is risk accepted, on its own date). The
    scheduled completion date stays as first set."""
    item = load_item(session, actor, number=number, for_update=True)
    label = actor.rules.label(number)
    require_owner(actor, item, "record its vendor dependency")
    transition(Action.VENDOR, item.status, item_label=label)
    if not item.vendor_dependency:
        raise InvalidState(f"{label} is not marked as waiting on a vendor; `/poam vendor {label}` marks it.")
    today = actor.today()
    restarted = actor.rules.deadlines.due_date(severity=_effective_severity(item), detected_on=today)
    asks = restarted > item.due_on and item.status in allowed_from(Action.REQUEST)
    if asks:
        _no_pending(session, actor, item)  # before anything changes: one request at a time
    item.vendor_dependency = False
    touch(item, actor)
    audit.record(
        session, actor, action="vendor.shipped", item_id=item.id,
        details={"dependency": {"from": True, "to": False}, "shipped_on": today, "restarted_due_on": restarted},
    )
    if not asks:
        return Shipped(item, None)
    reason = f"The vendor's fix shipped on {today}: the remediation clock restarts, due {restarted} by the deadline policy."
    return Shipped(item, request_extension(session, actor, number=number, due_on=restarted, reason=reason))


# ---------------------------------------------------------------- who is asked


def verifiers_for(session: Session, item: Item, request: ReviewRequest) -> list[str]:
    """The verifiers who may verify this fix (every separation rule applied),
    still in Slack and no bots (``presence.unreachable``)."""
    excluded = {request.requested_by} | _remediators_of(session, item).everyone
    verifiers = [user for user in role_holders(session, team_id=item.team_id, role=Role.VERIFIER)
                 if user not in excluded]
    gone = unreachable(session, team_id=item.team_id, user_ids=verifiers)
    return [user for user in verifiers if user not in gone]


def deciders_for(session: Session, item: Item, request: ReviewRequest) -> list[str]:
    """Who should decide: the system's AO when they may, else every AO who
    may; none who left Slack or is a bot (a request put only to a named AO
    who left waited on nobody)."""
    excluded = {item.owner_id, request.requested_by} | _remediators_of(session, item).everyone
    system_ao = _system(session, item).ao_user_id
    aos = role_holders(session, team_id=item.team_id, role=Role.AO)
    gone = unreachable(session, team_id=item.team_id, user_ids=[system_ao, *aos])
    if system_ao and system_ao not in excluded and system_ao not in gone:
        return [system_ao]
    return [user for user in aos if user not in excluded and user not in gone]


@dataclass(frozen=True)
class WaitingOn:
    """What waits on one person as verifier or authorizing official."""

    verifications: list[tuple[Item, ReviewRequest]]
    decisions: list[tuple[Item, ReviewRequest]]
    plans: list[Item]
    is_ao: bool  # holds the AO role or is named AO of a system

    @property
    def total(self) -> int:
        return len(self.verifications) + len(self.decisions) + len(self.plans)


def waiting_on(session: Session, actor: Actor, *, limit: int = 50) -> WaitingOn:
    """Pending verifications this actor may do, requests they may decide, and
    plans awaiting their approval (oldest first). The workspace's systems are
    read once (a statement a pending request made every Home and morning DM
    slow), and someone neither verifier nor AO reads no request at all."""
    systems = {system.id: system for system in session.exec(
        select(InfoSystem).where(InfoSystem.team_id == actor.team_id))}
    is_ao = Role.AO in actor.roles or any(system.ao_user_id == actor.user_id for system in systems.values())
    kinds = ([RequestKind.VERIFICATION] if Role.VERIFIER in actor.roles else []) + (
        [RequestKind.DEVIATION, RequestKind.EXTENSION] if is_ao else [])
    if not kinds:
        return WaitingOn([], [], [], is_ao=False)
    verifications: list[tuple[Item, ReviewRequest]] = []
    to_decide: list[tuple[Item, ReviewRequest]] = []
    pending = session.exec(
        select(Item, ReviewRequest)
        .join(ReviewRequest, col(ReviewRequest.item_id) == col(Item.id))
        .where(ReviewRequest.team_id == actor.team_id, ReviewRequest.status == RequestStatus.PENDING,
               col(ReviewRequest.kind).in_(kinds))
        .order_by(col(ReviewRequest.requested_at))
    ).all()
    for item, request in pending:
        if request.kind == RequestKind.VERIFICATION:
            verifications.append((item, request))
        elif is_authorizing_official(actor, systems[item.system_id]):
            to_decide.append((item, request))
    # Who worked on each item, a statement a page (not three an item: a Home
    # of 1,500 fixes pending took 1.7 s for a verifier apart from none).
    verifications = _first_apart_from_the_work(
        session, in_chunks(verifications, 2 * limit), item_of=lambda pair: pair[0], limit=limit,
        keeps=lambda pair, remediators: is_separate_verifier(actor, pair[0], submitter=pair[1].requested_by,
                                                             remediators=remediators),
    )
    decisions = _first_apart_from_the_work(
        session, in_chunks(to_decide, 2 * limit), item_of=lambda pair: pair[0], limit=limit,
        keeps=lambda pair, remediators: may_decide(
            actor, pair[0], systems[pair[0].system_id], requester=pair[1].requested_by, remediators=remediators),
    )
    return WaitingOn(verifications, decisions, _plans_for(session, actor, limit=limit) if is_ao else [], is_ao)


def _first_apart_from_the_work(
    session: Session, pages: Iterable[Sequence[T]], *, item_of: Callable[[T], Item], limit: int,
    keeps: Callable[[T, Remediators], bool],
) -> list[T]:
    """The first ``limit`` of ``pages``' entries that ``keeps`` (given who
    worked on each one's item), a page at a time: who worked on them is a
    statement per page, and most people want the first few."""
    found: list[T] = []
    for page in pages:
        worked_on = remediators_of_items(session, items=[item_of(entry) for entry in page])
        found += [entry for entry, remediators in zip(page, worked_on, strict=True) if keeps(entry, remediators)]
        if len(found) >= limit:
            break
    return found[:limit]


def plan_awaits_approval() -> Any:
    """An item whose plan waits on the AO, as SQL (:func:`awaits_plan_approval`)."""
    return (col(Item.status).in_(allowed_from(Action.APPROVE_PLAN)) & col(Item.remediation_plan).is_not(None)
            & col(Item.plan_approved_at).is_(None))


def awaits_plan_approval(item: Item | Columns) -> bool:
    """Whether ``item``'s plan waits on the AO: written, not approved, the item still on the open POA&M."""
    return bool(item.remediation_plan) and item.plan_approved_at is None and item.status in allowed_from(
        Action.APPROVE_PLAN)


def _plans_for(session: Session, actor: Actor, *, limit: int) -> list[Item]:
    """Plans awaiting this AO's approval, oldest first, those of items they
    worked on left out."""
    conditions = [
        col(Item.team_id) == actor.team_id,
        plan_awaits_approval(),
        or_(col(Item.owner_id).is_(None), col(Item.owner_id) != actor.user_id),
    ]
    if Role.AO not in actor.roles:  # only the systems naming them, filtered before the limit
        conditions.append(col(Item.system_id).in_(
            select(InfoSystem.id).where(col(InfoSystem.team_id) == actor.team_id, col(InfoSystem.ao_user_id) == actor.user_id)
        ))
    candidates = select(Item).where(*conditions).order_by(col(Item.updated_at), col(Item.id))

    def pages(size: int = 2 * limit) -> Iterator[list[Item]]:
        for offset in itertools.count(0, size):
            page = list(session.exec(candidates.offset(offset).limit(size)))
            yield page
            if len(page) < size:
                return

    return _first_apart_from_the_work(session, pages(), item_of=lambda item: item, limit=limit,
                                      keeps=lambda _, remediators: actor.user_id not in remediators.everyone)
