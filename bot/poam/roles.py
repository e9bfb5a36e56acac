"""Roles: who is a verifier, an authorizing official (AO) or an admin.

Admins are those named in ``POAM_ADMINS``, Slack workspace admins and owners
(the caller says so), and anyone granted the admin role.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from bot.poam import audit
from bot.poam.actor import Actor, Role, RolesOnUse, Rules, check_user_id
from bot.poam.clock import Clock
from bot.poam.errors import InvalidInput
from bot.poam.permissions import require_admin
from bot.poam.presence import require_present
from bot.poam.systems import ensure_workspace, named_ao_of
from bot.store import counters
from bot.store.models import RoleGrant
from bot.store.rows import rows_of

# Built once: it runs in every request that checks a role.
_GRANTED = select(RoleGrant.role).where(
    RoleGrant.team_id == bindparam("team_id"), RoleGrant.user_id == bindparam("user_id")
)


def load_actor(
    session: Session,
    *,
    team_id: str,
    user_id: str,
    tz: ZoneInfo,
    clock: Clock,
    rules: Rules,
    configured_admins: Collection[str] = (),
    workspace_admin: bool = False,
) -> Actor:
    """The acting user with their roles: granted ones plus admin by configuration.

    The grants are read when a check first needs them, in ``session``'s
    transaction: most requests (a list, a claim, most cards) check no role,
    and the grants query was a quarter of a ``/poam list``'s CPU.
    """
    known = frozenset({Role.ADMIN}) if workspace_admin or user_id in configured_admins else frozenset()
    transaction = session.get_transaction()

    def granted() -> frozenset[Role]:
        if session.get_transaction() is not transaction:
            raise RuntimeError("an actor's roles were first needed after its unit of work ended")
        # Plain rows, not through the ORM session: half the CPU.
        rows = rows_of(session).execute(_GRANTED, {"team_id": team_id, "user_id": user_id}).scalars()
        return known | {Role(role) for role in rows}

    return Actor(team_id=team_id, user_id=user_id, roles=RolesOnUse(known, granted), tz=tz, clock=clock, rules=rules)


def role_holders(session: Session, *, team_id: str, role: Role) -> list[str]:
    """Who is granted ``role`` in the workspace, by user id."""
    return list(session.exec(
        select(RoleGrant.user_id).where(RoleGrant.team_id == team_id, RoleGrant.role == role)
        .order_by(col(RoleGrant.user_id))
    ).all())


def list_roles(session: Session, actor: Actor) -> dict[str, list[Role]]:
    """Granted roles by user id (configured admins are not listed: they come from settings)."""
    by_user: dict[str, list[Role]] = defaultdict(list)
    for grant in session.exec(
        select(RoleGrant)
        .where(RoleGrant.team_id == actor.team_id)
        .order_by(col(RoleGrant.user_id), col(RoleGrant.role))
    ):
        by_user[grant.user_id].append(Role(grant.role))
    return dict(by_user)


def grant_role(session: Session, actor: Actor, *, user_id: str, role: Role) -> RoleGrant:
    """Give ``user_id`` a role (admins only)."""
    require_admin(actor, "change roles")
    check_user_id(user_id)
    ensure_workspace(session, actor)
    require_present(session, actor, user_id, as_what=role.noun)  # holding the workspace row: one grant at a time
    existing = _grant(session, actor, user_id, role)
    if existing is not None:
        raise InvalidInput(f"That person is already {role.noun}.")
    grant = RoleGrant(
        team_id=actor.team_id, user_id=user_id, role=role, granted_by=actor.user_id, granted_at=actor.now()
    )
    session.add(grant)
    audit.record(session, actor, action="role.granted", details={"user": user_id, "role": role})
    return grant


def revoke_role(session: Session, actor: Actor, *, user_id: str, role: Role) -> None:
    """Take a role away (admins only). An admin cannot drop their own admin role."""
    require_admin(actor, "change roles")
    check_user_id(user_id)
    if role == Role.ADMIN and user_id == actor.user_id:
        raise InvalidInput("You cannot remove your own admin role; ask another admin.")
    counters.lock_workspace(session, team_id=actor.team_id)
    existing = _grant(session, actor, user_id, role)
    if existing is None:
        named = named_ao_of(session, actor, user_id=user_id) if role == Role.AO else []
        raise InvalidInput(f"That person is not {role.noun} (by grant)." + (
            f" They still decide for {_listing(named)}, named there as the authorizing official"
            " (`/poam system set <name> ao:…` changes that)." if named else ""))
    session.delete(existing)
    audit.record(session, actor, action="role.revoked", details={"user": user_id, "role": role})


def _grant(session: Session, actor: Actor, user_id: str, role: Role) -> RoleGrant | None:
    return session.exec(
        select(RoleGrant).where(
            RoleGrant.team_id == actor.team_id, RoleGrant.user_id == user_id, RoleGrant.role == role
        )
    ).first()


def _listing(system_names: list[str]) -> str:
    """``the system Payroll`` or ``the systems Payroll, HR``."""
    return ("the system " if len(system_names) == 1 else "the systems ") + ", ".join(system_names)
