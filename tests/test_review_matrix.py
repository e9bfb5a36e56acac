"""Every (role, action, state) of the review workflow: allowed or refused, on
SQLite and PostgreSQL.

The expected outcomes below are written by hand from ``DOMAIN.md`` ("Who does
what", "Rules that matter", "Lifecycle") and issue 4 ("Separation of
duties"), never read off the code. Where the code disagrees with a sound
reading of those documents the cell is marked as a known bug (strict xfail) in
:data:`KNOWN_BUGS` rather than bent to match.

How it runs fast: one engine per backend for the whole module (SQLite from
the migrated template copy, PostgreSQL truncated once). Each case acts on an
item freshly taken through the domain operations to its state (see
:func:`build`). The action runs in its own unit of work like a real request.
A refusal is caught *inside* that unit of work, so the unit commits, and the
item's rows, the workspace row (which holds the audit chain's head) and the
audit event count must be exactly as before; only an item proven untouched
that way is handed to a later case, since it is then indistinguishable from a
freshly built one. An item an action was allowed on is never reused, and the
allowed action must have written exactly one audit event.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, func, select

from bot.poam import audit
from bot.poam.actor import Actor, Role, Rules
from bot.poam.clock import FixedClock
from bot.poam.errors import AlreadyClaimed, AlreadyDecided, InvalidState, PermissionDenied, PoamError
from bot.poam.items import assign_item, claim_item, log_item, release_item, set_plan
from bot.poam.lifecycle import Status
from bot.poam.milestones import add_milestone, complete_milestone
from bot.poam.review import (
    Deviation,
    accept_risk,
    approve_plan,
    decide,
    reject_fix,
    request_deviation,
    request_extension,
    set_vendor,
    submit_fix,
    verify_fix,
    withdraw_request,
)
from bot.poam.severity import Severity
from bot.poam.systems import add_system
from bot.store.engine import make_engine, unit_of_work
from bot.store.models import AuditEvent, Item, Workspace

TEAM = "T0MATRIX"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # the conftest clock: Friday 2026-11-20
DETECTED = date(2026, 11, 1)  # a Moderate finding: due 2027-01-30 (FedRAMP, 90 days)
SYSTEM = "Payroll"

# The nine roles of the matrix (the acting user of a case).
OWNER = "owner"  # the item's point of contact, no role
ANYONE = "anyone"  # a team member with no role and no part in the item
VERIFIER = "verifier"  # holds the verifier role, never touched the item
COMPLETER = "completer"  # verifier who completed M1 while owner; an admin then reassigned the item
SUBMITTER = "submitter"  # verifier who submitted the fix while owner; an admin then reassigned the item
AO = "ao"  # holds the AO role
SYSTEM_AO = "system_ao"  # no role, but the AO named on the item's information system
AO_OWNER = "ao_owner"  # holds the AO role and owns the item
ADMIN = "admin"  # admin role only

ROLES = (OWNER, ANYONE, VERIFIER, COMPLETER, SUBMITTER, AO, SYSTEM_AO, AO_OWNER, ADMIN)

USERS = {
    OWNER: "U0OWNER",
    ANYONE: "U0ANYONE",
    VERIFIER: "U0VERIFIER",
    COMPLETER: "U0COMPLETER",
    SUBMITTER: "U0SUBMITTER",
    AO: "U0AO",
    SYSTEM_AO: "U0SYSAO",
    AO_OWNER: "U0AOOWNER",
    ADMIN: "U0ADMIN",
}
ROLE_GRANTS = {
    OWNER: (),
    ANYONE: (),
    VERIFIER: (Role.VERIFIER,),
    COMPLETER: (Role.VERIFIER,),
    SUBMITTER: (Role.VERIFIER,),
    AO: (Role.AO,),
    SYSTEM_AO: (),
    AO_OWNER: (Role.AO,),
    ADMIN: (Role.ADMIN,),
}
# People who only help build the states; none of them acts in a case.
LOGGER = "U0LOGGER"
HELPER_VERIFIER = "U0HELPERV"
HELPER_AO = "U0HELPERAO"
NEW_OWNER = "U0NEWOWNER"

CLOCK = FixedClock(NOW)


def actor(user_id: str, *roles: Role) -> Actor:
    return Actor(team_id=TEAM, user_id=user_id, roles=frozenset(roles), tz=ZoneInfo("UTC"), clock=CLOCK, rules=Rules())


def role_actor(role: str) -> Actor:
    return actor(USERS[role], *ROLE_GRANTS[role])


# ---------------------------------------------------------------- states

OPEN = "open"  # unowned (its last owner released it)
IN_PROGRESS = "in_progress"
PENDING_DEVIATION = "pending_deviation"  # in progress, the owner's risk adjustment request waits on the AO
PENDING_EXTENSION = "pending_extension"  # in progress, the owner's extension request waits on the AO
PENDING_VERIFICATION = "pending_verification"
RISK_ACCEPTED = "risk_accepted"
CLOSED_REMEDIATED = "closed_remediated"
CLOSED_FALSE_POSITIVE = "closed_false_positive"

STATES = (
    OPEN, IN_PROGRESS, PENDING_DEVIATION, PENDING_EXTENSION,
    PENDING_VERIFICATION, RISK_ACCEPTED, CLOSED_REMEDIATED, CLOSED_FALSE_POSITIVE,
)


def build(session: Session, state: str, owner: str) -> int:
    """One item taken to ``state`` by the domain operations; ``owner`` is its final owner.

    The shared history: logged by someone else into the system whose AO is
    SYSTEM_AO; COMPLETER claims it, writes the plan, adds two milestones and
    completes M1; an admin reassigns it to SUBMITTER, who submits the fix; an
    admin reassigns it to ``owner`` (pending verification). From there a
    separate verifier verifies it (closed, remediated) or sends it back (in
    progress), after which the owner releases it (open), asks for a risk
    adjustment or an extension (pending), or a separate AO accepts the risk, or
    approves the owner's false positive request (closed, false positive).
    """
    admin = role_actor(ADMIN)
    item = log_item(
        session, actor(LOGGER), title="Outdated OpenSSL on web-01", severity=Severity.MODERATE,
        detected_on=DETECTED, system_name=SYSTEM,
    )
    number = item.number
    completer, submitter = role_actor(COMPLETER), role_actor(SUBMITTER)
    claim_item(session, completer, number=number)
    set_plan(session, completer, number=number, plan="Upgrade OpenSSL to 3.0.15 on web-01.")
    add_milestone(session, completer, number=number, description="Patch staging", due_on=date(2026, 12, 10))
    add_milestone(session, completer, number=number, description="Patch production", due_on=date(2027, 1, 15))
    complete_milestone(session, completer, number=number, milestone=1)
    assign_item(session, admin, number=number, owner_id=USERS[SUBMITTER])
    submit_fix(session, submitter, number=number, evidence="Scan of 2026-11-19 is clean.")
    assign_item(session, admin, number=number, owner_id=USERS[owner])
    if state == PENDING_VERIFICATION:
        return number
    verifier = actor(HELPER_VERIFIER, Role.VERIFIER)
    if state == CLOSED_REMEDIATED:
        verify_fix(session, verifier, number=number, note="Rescanned: clean.")
        return number
    reject_fix(session, verifier, number=number, reason="The production host still reports 1.1.1.")
    owner_actor = role_actor(owner)
    if state == OPEN:
        release_item(session, owner_actor, number=number)
    elif state == PENDING_DEVIATION:
        request_deviation(
            session, owner_actor, number=number, deviation=Deviation.RISK_ADJUSTMENT,
            rationale="Only reachable from the admin VLAN.", adjusted_severity=Severity.LOW,
        )
    elif state == PENDING_EXTENSION:
        request_extension(session, owner_actor, number=number, due_on=date(2027, 3, 1), reason="Vendor patch slipped.")
    elif state == RISK_ACCEPTED:
        accept_risk(
            session, actor(HELPER_AO, Role.AO), number=number, until=date(2027, 3, 1),
            rationale="Compensating WAF rule in place.",
        )
    elif state == CLOSED_FALSE_POSITIVE:
        request_deviation(
            session, owner_actor, number=number, deviation=Deviation.FALSE_POSITIVE,
            rationale="The scanner misreads the backported package version.",
        )
        decide(session, actor(HELPER_AO, Role.AO), number=number, approve=True, reason="Agreed.")
    else:
        assert state == IN_PROGRESS, state
    return number


# What each state must look like once built (checked once per state and backend).
BUILT = {
    OPEN: (Status.OPEN, False),
    IN_PROGRESS: (Status.IN_PROGRESS, True),
    PENDING_DEVIATION: (Status.IN_PROGRESS, True),
    PENDING_EXTENSION: (Status.IN_PROGRESS, True),
    PENDING_VERIFICATION: (Status.PENDING_VERIFICATION, True),
    RISK_ACCEPTED: (Status.RISK_ACCEPTED, True),
    CLOSED_REMEDIATED: (Status.CLOSED, True),
    CLOSED_FALSE_POSITIVE: (Status.CLOSED, True),
}


# ---------------------------------------------------------------- actions

Operation = Callable[[Session, Actor, int], object]

ACTIONS: dict[str, Operation] = {
    "claim": lambda s, a, n: claim_item(s, a, number=n),
    "release": lambda s, a, n: release_item(s, a, number=n),
    "assign": lambda s, a, n: assign_item(s, a, number=n, owner_id=NEW_OWNER),
    "set_plan": lambda s, a, n: set_plan(s, a, number=n, plan="Replace web-01 with a hardened image."),
    "add_milestone": lambda s, a, n: add_milestone(s, a, number=n, description="Rescan", due_on=date(2026, 12, 20)),
    "submit": lambda s, a, n: submit_fix(s, a, number=n, evidence="Rescan attached."),
    "verify": lambda s, a, n: verify_fix(s, a, number=n, note="Confirmed."),
    "reject_fix": lambda s, a, n: reject_fix(s, a, number=n, reason="Still vulnerable."),
    "approve_plan": lambda s, a, n: approve_plan(s, a, number=n),
    "deviate_fp": lambda s, a, n: request_deviation(
        s, a, number=n, deviation=Deviation.FALSE_POSITIVE, rationale="Backported fix."
    ),
    "deviate_ra": lambda s, a, n: request_deviation(
        s, a, number=n, deviation=Deviation.RISK_ADJUSTMENT, rationale="Internal only.",
        adjusted_severity=Severity.LOW,
    ),
    "deviate_or": lambda s, a, n: request_deviation(
        s, a, number=n, deviation=Deviation.OPERATIONAL_REQUIREMENT, rationale="Legacy payroll needs it.",
        until=date(2027, 3, 1),
    ),
    "extend": lambda s, a, n: request_extension(s, a, number=n, due_on=date(2027, 3, 15), reason="Vendor delay."),
    "decide_approve": lambda s, a, n: decide(s, a, number=n, approve=True, reason="Fine."),
    "decide_reject": lambda s, a, n: decide(s, a, number=n, approve=False, reason="Not convincing."),
    "accept_risk": lambda s, a, n: accept_risk(s, a, number=n, until=date(2027, 2, 1), rationale="WAF in place."),
    "vendor": lambda s, a, n: set_vendor(s, a, number=n, product="Acme Appliance", checkin=True),
    "withdraw": lambda s, a, n: withdraw_request(s, a, number=n),
}


# ---------------------------------------------------------------- the expected outcomes, by hand
#
#   A  allowed
#   P  PermissionDenied   (who: the role may not do this to this item)
#   S  InvalidState       (when: the lifecycle does not allow it now)
#   D  AlreadyDecided     (nothing of that kind is waiting; someone decided it)
#   C  AlreadyClaimed     (the item has an owner)
#   Several letters: the action breaks several rules at once, and a refusal
#   naming any one of them is right (e.g. a non-owner submitting a closed item).
#
# Columns are the states in STATES order; rows the roles in ROLES order.
# "owner" in the open column is the user who owned the item until they
# released it, and "ao_owner" there is an AO who owned it before: neither owns
# it now.

COLUMNS = "open  prog  pdev  pext  pver  racc  clsr  clfp"

EXPECTED_TEXT: dict[str, str] = {
    # Anyone claims an unowned item; an owned one is someone's (C); a closed
    # item never reopens (S).
    "claim": """
        owner      A     C     C     C     C     C     CS    CS
        anyone     A     C     C     C     C     C     CS    CS
        verifier   A     C     C     C     C     C     CS    CS
        completer  A     C     C     C     C     C     CS    CS
        submitter  A     C     C     C     C     C     CS    CS
        ao         A     C     C     C     C     C     CS    CS
        system_ao  A     C     C     C     C     C     CS    CS
        ao_owner   A     C     C     C     C     C     CS    CS
        admin      A     C     C     C     C     C     CS    CS
    """,
    # The owner or an admin gives up an item being worked on (back to open),
    # or one whose risk is accepted (accepted still: releasing it must not end
    # the acceptance). Not while the fix waits on verification, not an open
    # or closed one.
    "release": """
        owner      PS    A     A     A     S     A     S     S
        anyone     PS    P     P     P     PS    PS    PS    PS
        verifier   PS    P     P     P     PS    PS    PS    PS
        completer  PS    P     P     P     PS    PS    PS    PS
        submitter  PS    P     P     P     PS    PS    PS    PS
        ao         PS    P     P     P     PS    PS    PS    PS
        system_ao  PS    P     P     P     PS    PS    PS    PS
        ao_owner   PS    A     A     A     S     A     S     S
        admin      S     A     A     A     S     A     S     S
    """,
    # Admins assign owners, on any item still on the open POA&M.
    "assign": """
        owner      P     P     P     P     P     P     PS    PS
        anyone     P     P     P     P     P     P     PS    PS
        verifier   P     P     P     P     P     P     PS    PS
        completer  P     P     P     P     P     P     PS    PS
        submitter  P     P     P     P     P     P     PS    PS
        ao         P     P     P     P     P     P     PS    PS
        system_ao  P     P     P     P     P     P     PS    PS
        ao_owner   P     P     P     P     P     P     PS    PS
        admin      A     A     A     A     A     A     S     S
    """,
    # The owner writes and updates the plan (an unowned item has nobody who
    # may); not while the fix is under verification, never once closed. A
    # risk-accepted item stays open for re-review, so its plan can be kept up.
    "set_plan": """
        owner      P     A     A     A     S     A     S     S
        anyone     P     P     P     P     PS    P     PS    PS
        verifier   P     P     P     P     PS    P     PS    PS
        completer  P     P     P     P     PS    P     PS    PS
        submitter  P     P     P     P     PS    P     PS    PS
        ao         P     P     P     P     PS    P     PS    PS
        system_ao  P     P     P     P     PS    P     PS    PS
        ao_owner   P     A     A     A     S     A     S     S
        admin      P     P     P     P     PS    P     PS    PS
    """,
    # Milestones: exactly like the plan.
    "add_milestone": """
        owner      P     A     A     A     S     A     S     S
        anyone     P     P     P     P     PS    P     PS    PS
        verifier   P     P     P     P     PS    P     PS    PS
        completer  P     P     P     P     PS    P     PS    PS
        submitter  P     P     P     P     PS    P     PS    PS
        ao         P     P     P     P     PS    P     PS    PS
        system_ao  P     P     P     P     PS    P     PS    PS
        ao_owner   P     A     A     A     S     A     S     S
        admin      P     P     P     P     PS    P     PS    PS
    """,
    # The owner submits from in_progress only, and not while another request
    # waits on the AO (one pending request at a time).
    "submit": """
        owner      PS    A     S     S     S     S     S     S
        anyone     PS    P     PS    PS    PS    PS    PS    PS
        verifier   PS    P     PS    PS    PS    PS    PS    PS
        completer  PS    P     PS    PS    PS    PS    PS    PS
        submitter  PS    P     PS    PS    PS    PS    PS    PS
        ao         PS    P     PS    PS    PS    PS    PS    PS
        system_ao  PS    P     PS    PS    PS    PS    PS    PS
        ao_owner   PS    A     S     S     S     S     S     S
        admin      PS    P     PS    PS    PS    PS    PS    PS
    """,
    # A verifier, and a separate one: never the owner, the submitter or a
    # milestone completer; admins and AOs get no bypass. Only a fix that waits
    # on verification can be verified.
    "verify": """
        owner      PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        anyone     PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        verifier   SD    SD    SD    SD    A     SD    SD    SD
        completer  PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        submitter  PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        ao         PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        system_ao  PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        ao_owner   PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        admin      PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
    """,
    # Sending a fix back: the same separate verifier.
    "reject_fix": """
        owner      PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        anyone     PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        verifier   SD    SD    SD    SD    A     SD    SD    SD
        completer  PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        submitter  PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        ao         PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        system_ao  PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        ao_owner   PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
        admin      PSD   PSD   PSD   PSD   P     PSD   PSD   PSD
    """,
    # The AO (by role, or named on the system) agrees with a plan; never on an
    # item they own or owned before (ao_owner in the open column: they worked
    # on it, as a verifier may not either). Plan approval is a flag separate
    # from the lifecycle, so any item still on the open POA&M that has a plan
    # qualifies (every state here has one, unapproved); a closed item never
    # changes.
    "approve_plan": """
        owner      P     P     P     P     P     P     PS    PS
        anyone     P     P     P     P     P     P     PS    PS
        verifier   P     P     P     P     P     P     PS    PS
        completer  P     P     P     P     P     P     PS    PS
        submitter  P     P     P     P     P     P     PS    PS
        ao         A     A     A     A     A     A     S     S
        system_ao  A     A     A     A     A     A     S     S
        ao_owner   P     P     P     P     P     P     PS    PS
        admin      P     P     P     P     P     P     PS    PS
    """,
    # Deviation requests: the owner, from open|in_progress, one pending request
    # at a time. (An open item here has no owner, so nobody may.) The item is
    # Moderate, so an operational requirement is possible.
    "deviate_fp": """
        owner      P     A     S     S     S     S     S     S
        anyone     P     P     PS    PS    PS    PS    PS    PS
        verifier   P     P     PS    PS    PS    PS    PS    PS
        completer  P     P     PS    PS    PS    PS    PS    PS
        submitter  P     P     PS    PS    PS    PS    PS    PS
        ao         P     P     PS    PS    PS    PS    PS    PS
        system_ao  P     P     PS    PS    PS    PS    PS    PS
        ao_owner   P     A     S     S     S     S     S     S
        admin      P     P     PS    PS    PS    PS    PS    PS
    """,
    "deviate_ra": """
        owner      P     A     S     S     S     S     S     S
        anyone     P     P     PS    PS    PS    PS    PS    PS
        verifier   P     P     PS    PS    PS    PS    PS    PS
        completer  P     P     PS    PS    PS    PS    PS    PS
        submitter  P     P     PS    PS    PS    PS    PS    PS
        ao         P     P     PS    PS    PS    PS    PS    PS
        system_ao  P     P     PS    PS    PS    PS    PS    PS
        ao_owner   P     A     S     S     S     S     S     S
        admin      P     P     PS    PS    PS    PS    PS    PS
    """,
    "deviate_or": """
        owner      P     A     S     S     S     S     S     S
        anyone     P     P     PS    PS    PS    PS    PS    PS
        verifier   P     P     PS    PS    PS    PS    PS    PS
        completer  P     P     PS    PS    PS    PS    PS    PS
        submitter  P     P     PS    PS    PS    PS    PS    PS
        ao         P     P     PS    PS    PS    PS    PS    PS
        system_ao  P     P     PS    PS    PS    PS    PS    PS
        ao_owner   P     A     S     S     S     S     S     S
        admin      P     P     PS    PS    PS    PS    PS    PS
    """,
    # Extension requests: like deviations. A risk-accepted item's deadline
    # does not run, and a submitted fix already waits on a verifier.
    "extend": """
        owner      P     A     S     S     S     S     S     S
        anyone     P     P     PS    PS    PS    PS    PS    PS
        verifier   P     P     PS    PS    PS    PS    PS    PS
        completer  P     P     PS    PS    PS    PS    PS    PS
        submitter  P     P     PS    PS    PS    PS    PS    PS
        ao         P     P     PS    PS    PS    PS    PS    PS
        system_ao  P     P     PS    PS    PS    PS    PS    PS
        ao_owner   P     A     S     S     S     S     S     S
        admin      P     P     PS    PS    PS    PS    PS    PS
    """,
    # The AO decides a pending deviation or extension request: never on an
    # item they own or owned before, or a request they made (ao_owner is both
    # here); admins get no bypass. Without such a request there is nothing to
    # decide.
    "decide_approve": """
        owner      PSD   PSD   P     P     PSD   PSD   PSD   PSD
        anyone     PSD   PSD   P     P     PSD   PSD   PSD   PSD
        verifier   PSD   PSD   P     P     PSD   PSD   PSD   PSD
        completer  PSD   PSD   P     P     PSD   PSD   PSD   PSD
        submitter  PSD   PSD   P     P     PSD   PSD   PSD   PSD
        ao         SD    SD    A     A     SD    SD    SD    SD
        system_ao  SD    SD    A     A     SD    SD    SD    SD
        ao_owner   PSD   PSD   P     P     PSD   PSD   PSD   PSD
        admin      PSD   PSD   P     P     PSD   PSD   PSD   PSD
    """,
    "decide_reject": """
        owner      PSD   PSD   P     P     PSD   PSD   PSD   PSD
        anyone     PSD   PSD   P     P     PSD   PSD   PSD   PSD
        verifier   PSD   PSD   P     P     PSD   PSD   PSD   PSD
        completer  PSD   PSD   P     P     PSD   PSD   PSD   PSD
        submitter  PSD   PSD   P     P     PSD   PSD   PSD   PSD
        ao         SD    SD    A     A     SD    SD    SD    SD
        system_ao  SD    SD    A     A     SD    SD    SD    SD
        ao_owner   PSD   PSD   P     P     PSD   PSD   PSD   PSD
        admin      PSD   PSD   P     P     PSD   PSD   PSD   PSD
    """,
    # The AO accepts the residual risk of an open or in-progress item they do
    # not own and never owned; not over a pending request (decide it first)
    # nor a fix waiting on verification; an accepted risk is re-reviewed by
    # the same command, to a new date ("risk_accepted ──expiry or
    # re-review──>"); closed is final.
    "accept_risk": """
        owner      P     P     PS    PS    PS    P     PS    PS
        anyone     P     P     PS    PS    PS    P     PS    PS
        verifier   P     P     PS    PS    PS    P     PS    PS
        completer  P     P     PS    PS    PS    P     PS    PS
        submitter  P     P     PS    PS    PS    P     PS    PS
        ao         A     A     S     S     S     A     S     S
        system_ao  A     A     S     S     S     A     S     S
        ao_owner   P     P     PS    PS    PS    P     PS    PS
        admin      P     P     PS    PS    PS    P     PS    PS
    """,
    # The owner records the vendor dependency and check-ins while the item is
    # worked on or risk-accepted (waiting on a vendor is a classic reason).
    "vendor": """
        owner      P     A     A     A     S     A     S     S
        anyone     P     P     P     P     PS    P     PS    PS
        verifier   P     P     P     P     PS    P     PS    PS
        completer  P     P     P     P     PS    P     PS    PS
        submitter  P     P     P     P     PS    P     PS    PS
        ao         P     P     P     P     PS    P     PS    PS
        system_ao  P     P     P     P     PS    P     PS    PS
        ao_owner   P     A     A     A     S     A     S     S
        admin      P     P     P     P     PS    P     PS    PS
    """,
    # The owner takes back their pending deviation or extension request.
    "withdraw": """
        owner      PSD   SD    A     A     SD    SD    SD    SD
        anyone     PSD   PSD   P     P     PSD   PSD   PSD   PSD
        verifier   PSD   PSD   P     P     PSD   PSD   PSD   PSD
        completer  PSD   PSD   P     P     PSD   PSD   PSD   PSD
        submitter  PSD   PSD   P     P     PSD   PSD   PSD   PSD
        ao         PSD   PSD   P     P     PSD   PSD   PSD   PSD
        system_ao  PSD   PSD   P     P     PSD   PSD   PSD   PSD
        ao_owner   PSD   SD    A     A     SD    SD    SD    SD
        admin      PSD   PSD   P     P     PSD   PSD   PSD   PSD
    """,
}

ERRORS: dict[str, type[PoamError]] = {
    "P": PermissionDenied,
    "S": InvalidState,
    "D": AlreadyDecided,
    "C": AlreadyClaimed,
}


def _parse(text: dict[str, str]) -> dict[tuple[str, str, str], str]:
    assert COLUMNS.split() == ["open", "prog", "pdev", "pext", "pver", "racc", "clsr", "clfp"]
    table: dict[tuple[str, str, str], str] = {}
    for action, grid in text.items():
        rows = [line.split() for line in grid.strip().splitlines()]
        assert [row[0] for row in rows] == list(ROLES), action
        for role, *cells in rows:
            assert len(cells) == len(STATES), (action, role)
            for state, cell in zip(STATES, cells, strict=True):
                assert cell == "A" or set(cell) <= set(ERRORS), (action, role, state, cell)
                table[(role, action, state)] = cell
    return table


EXPECTED = _parse(EXPECTED_TEXT)
assert set(EXPECTED_TEXT) == set(ACTIONS)
assert len(EXPECTED) == len(ROLES) * len(ACTIONS) * len(STATES)

# Cells where the code disagrees with the table: bugs in bot/, reported, not fixed.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _status_after(action: str, before: str) -> str:
    """The lifecycle of DOMAIN.md: an allowed action's resulting status."""
    return {
        "claim": Status.IN_PROGRESS,
        "release": Status.RISK_ACCEPTED if before == Status.RISK_ACCEPTED else Status.OPEN,
        "assign": Status.IN_PROGRESS if before == Status.OPEN else before,
        "submit": Status.PENDING_VERIFICATION,
        "verify": Status.CLOSED,
        "reject_fix": Status.IN_PROGRESS,
        "accept_risk": Status.RISK_ACCEPTED,
    }.get(action, before)


# ---------------------------------------------------------------- the world of one backend


@dataclass
class World:
    """One backend's engine, and the items ready for cases, by (state, owner).

    Every item is built by :func:`build` and handed to one case at a time. An
    item goes back to its pool only after a case whose refusal was proven to
    leave it exactly as built (same rows, same workspace row and audit count),
    so it is indistinguishable from a fresh one; after an allowed action, or
    a refusal that changed anything, it is never used again. (Building a
    fresh item for each of the 1,296 cases takes minutes on PostgreSQL.)
    """

    engine: Engine
    pools: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    built: int = 0

    def take(self, state: str, owner: str) -> int:
        pool = self.pools.setdefault((state, owner), [])
        if pool:
            return pool.pop()
        with unit_of_work(self.engine) as session:
            number = build(session, state, owner)
        self.built += 1
        status, owned = BUILT[state]
        item = fetch(self.engine, number)
        assert (item.status, item.owner_id) == (status, USERS[owner] if owned else None)
        return number

    def give_back(self, state: str, owner: str, number: int) -> None:
        self.pools[(state, owner)].append(number)


def _owner_for(role: str) -> str:
    """The "AO who owns the item" acts on items owned by themselves; everyone else on OWNER's."""
    return AO_OWNER if role == AO_OWNER else OWNER


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("matrix") / "poam.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate_all(url)
    engine = make_engine(url)
    with unit_of_work(engine) as session:
        add_system(session, role_actor(ADMIN), name=SYSTEM, ao_user_id=USERS[SYSTEM_AO])
    yield World(engine)
    engine.dispose()


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


# ---------------------------------------------------------------- helpers


def fetch(engine: Engine, number: int) -> Item:
    with unit_of_work(engine, read_only=True) as session:
        return session.exec(select(Item).where(Item.team_id == TEAM, Item.number == number)).one()


def item_snapshot(engine: Engine, number: int) -> dict[str, Any]:
    """The item's row, every row that hangs off it, the workspace row (audit
    head and counters), the workspace's audit event count and every table's
    row count."""
    tables = {table.name: table for table in SQLModel.metadata.sorted_tables}
    with engine.connect() as connection:
        items = tables["items"]
        row = connection.execute(
            sa.select(items).where(items.c.team_id == TEAM, items.c.number == number)
        ).one()
        item_id = row.id
        snap: dict[str, Any] = {f"items.{key}": value for key, value in row._mapping.items()}
        for name, table in tables.items():
            if "item_id" in table.c and name != "audit_events":
                snap[name] = [
                    tuple(r)
                    for r in connection.execute(
                        sa.select(table).where(table.c.item_id == item_id).order_by(*table.primary_key.columns)
                    )
                ]
        workspaces = tables["workspaces"]
        snap["workspaces"] = tuple(
            connection.execute(sa.select(workspaces).where(workspaces.c.team_id == TEAM)).one()
        )
        events = tables["audit_events"]
        snap["audit_events"] = connection.execute(
            sa.select(func.count()).select_from(events).where(events.c.team_id == TEAM)
        ).scalar_one()
        # And no table anywhere gained or lost a row (one statement for all of them).
        counts = connection.execute(
            sa.select(*(sa.select(func.count()).select_from(t).scalar_subquery().label(n) for n, t in tables.items()))
        ).one()
        snap["row_counts"] = dict(counts._mapping)
    return snap


def audit_count(engine: Engine) -> int:
    with unit_of_work(engine, read_only=True) as session:
        return session.exec(select(func.count()).select_from(AuditEvent).where(AuditEvent.team_id == TEAM)).one()


# ---------------------------------------------------------------- the matrix


def _cases() -> Iterator[Any]:
    for state in STATES:
        for action in ACTIONS:
            for role in ROLES:
                key = (role, action, state)
                marks = []
                if key in KNOWN_BUGS:
                    marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[key]))
                yield pytest.param(role, action, state, id=f"{state}-{action}-{role}", marks=marks)


@pytest.mark.parametrize(("role", "action", "state"), list(_cases()))
def test_matrix(world: World, role: str, action: str, state: str) -> None:
    expected = EXPECTED[(role, action, state)]
    engine = world.engine
    owner = _owner_for(role)
    number = world.take(state, owner)
    operation = ACTIONS[action]
    before = item_snapshot(engine, number)
    status_before = fetch(engine, number).status
    outcome: PoamError | None = None
    with unit_of_work(engine) as session:
        try:
            operation(session, role_actor(role), number)
        except PoamError as error:  # caught inside: the unit of work commits
            outcome = error
    if expected == "A":
        assert outcome is None, f"expected allowed, got {type(outcome).__name__}: {outcome}"
        after = fetch(engine, number)
        assert after.status == _status_after(action, status_before)
        assert audit_count(engine) == before["audit_events"] + 1  # exactly one event per operation
        return
    allowed_errors = tuple(ERRORS[letter] for letter in expected)
    assert outcome is not None, f"expected a refusal ({expected}), but it was allowed"
    assert type(outcome) in allowed_errors, f"expected {expected}, got {type(outcome).__name__}: {outcome}"
    assert outcome.message and outcome.message.endswith((".", "!", "?"))  # a sentence saying why
    after = item_snapshot(engine, number)
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert changed == {}, f"a refusal ({type(outcome).__name__}: {outcome}) changed the database"
    world.give_back(state, owner, number)  # proven untouched: as good as freshly built


def test_matrix_audit_chain_verifies(world: World) -> None:
    """After every case above, the workspace's hash chain is intact."""
    with unit_of_work(world.engine, read_only=True) as session:
        report = audit.verify_chain(session, team_id=TEAM)
        workspace = session.get(Workspace, TEAM)
    assert report.ok, str(report.broken)
    assert workspace is not None and report.events == workspace.audit_seq > 1
