"""Information systems: every POA&M item belongs to one.

A workspace starts with a default system, created the first time the workspace
is used (read or written); admins add more with ``/poam system add`` and
change one's impact level, organization, authorizing official or FedRAMP
package ID with ``/poam system set``.
"""

from __future__ import annotations

import re
from enum import StrEnum

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from bot.poam import audit
from bot.poam.actor import Actor, check_user_id
from bot.poam.errors import InvalidCombination, InvalidInput, NotFound
from bot.poam.permissions import require_admin
from bot.poam.presence import require_present
from bot.poam.text import clean_text
from bot.store import counters
from bot.store.engine import writes_together
from bot.store.models import InfoSystem, Workspace, table_of
from bot.store.rows import Columns, rows_of

DEFAULT_SYSTEM_NAME = "Default"
MAX_SYSTEM_NAME = 80
#: A system's columns :func:`change_system` sets, by the names its audit events use (as ``system.added``'s).
_CHANGE_NAMES = {"impact": "impact", "organization": "organization", "ao_user_id": "ao", "fedramp_id": "fedramp_id"}
#: A FedRAMP package ID as the FedRAMP Marketplace lists a system: ``F1234567890``
#: (FedRAMP's OSCAL template has ``F00000000``; its access request form, ``FR12345678``).
_FEDRAMP_ID = re.compile(r"FR?[0-9]{6,12}", re.ASCII)


class Impact(StrEnum):
    """FIPS 199 impact level of a system (FedRAMP baseline)."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"

    @classmethod
    def parse(cls, text: str) -> Impact:
        word = text.strip().lower()
        if word == "medium":
            return cls.MODERATE
        try:
            return cls(word)
        except ValueError:
            raise InvalidInput(f"`{text}` is not an impact level; use low, moderate or high.") from None


def fedramp_id(text: str) -> str:
    """A FedRAMP package ID, upper-cased (``f1234567890`` → ``F1234567890``):
    an OSCAL POA&M names its system by it (``system-id``)."""
    cleaned = text.strip().upper()
    if not _FEDRAMP_ID.fullmatch(cleaned) or not cleaned.isascii():
        raise InvalidInput(
            f"`{text.strip()[:40]}` is not a FedRAMP package ID; it looks like F1234567890 "
            "(the FedRAMP Marketplace lists it).", field="fedramp_id",
        )
    return cleaned


def ensure_workspace(session: Session, actor: Actor) -> None:
    """Create the actor's workspace and its default system the first time it is used.

    A plain read first, so the common case writes nothing (a read-only unit of
    work on SQLite must not turn into a write).
    """
    if session.get(Workspace, actor.team_id) is not None:
        return
    with writes_together(session):  # perhaps in a read-only unit of work
        if counters.insert_workspace_if_missing(session, team_id=actor.team_id, now=actor.now()):
            # The bot's, not the first user's: they asked for no system.
            _new_system(session, actor.as_the_bot(), name=DEFAULT_SYSTEM_NAME, impact=Impact.MODERATE, default=True)


def _new_system(
    session: Session,
    actor: Actor,
    *,
    name: str,
    impact: Impact,
    organization: str | None = None,
    ao_user_id: str | None = None,
    fedramp: str | None = None,
    default: bool = False,
) -> InfoSystem:
    system = InfoSystem(
        team_id=actor.team_id,
        name=name,
        name_key=name.lower(),
        impact=impact,
        organization=organization,
        ao_user_id=ao_user_id,
        fedramp_id=fedramp,
        is_default=default,
        created_by=actor.user_id,
        created_at=actor.now(),
    )
    session.add(system)
    details: dict[str, object] = {"system": name, "impact": impact}
    details.update({"default": True} if default else {"organization": organization, "ao": ao_user_id})
    if fedramp is not None:
        details["fedramp_id"] = fedramp
    audit.record(session, actor, action="system.added", details=details)
    return system


# Built once, Core not ORM: most requests look up a system, and only read it.
_SYSTEM_TABLE = table_of(InfoSystem)
_DEFAULT_SYSTEM = sa_select(_SYSTEM_TABLE).where(
    _SYSTEM_TABLE.c.team_id == bindparam("team_id"), _SYSTEM_TABLE.c.is_default
)
_SYSTEM_NAMED = sa_select(_SYSTEM_TABLE).where(
    _SYSTEM_TABLE.c.team_id == bindparam("team_id"), _SYSTEM_TABLE.c.name_key == bindparam("name_key")
)


def system_named(session: Session, *, team_id: str, name: str | None) -> Columns | None:
    """The workspace's system called ``name`` (any case), or its default one, as a row."""
    query, params = (
        (_DEFAULT_SYSTEM, {"team_id": team_id})
        if name is None
        else (_SYSTEM_NAMED, {"team_id": team_id, "name_key": name.strip().lower()})
    )
    return rows_of(session).execute(query, params).first()


def find_system(session: Session, actor: Actor, *, name: str | None) -> Columns:
    """The system called ``name`` (any case), or the workspace's default one."""
    system = system_named(session, team_id=actor.team_id, name=name)
    if system is None:  # perhaps the workspace's first use: it has no default system yet
        ensure_workspace(session, actor)
        system = system_named(session, team_id=actor.team_id, name=name)
    if system is None:
        raise NotFound(f"There is no system called `{name}`; `/poam systems` lists them.")
    return system


def list_systems(session: Session, actor: Actor) -> list[InfoSystem]:
    ensure_workspace(session, actor)
    return list(
        session.exec(
            select(InfoSystem)
            .where(InfoSystem.team_id == actor.team_id)
            .order_by(col(InfoSystem.is_default).desc(), col(InfoSystem.name_key))
        ).all()
    )


def named_ao_of(session: Session, actor: Actor, *, user_id: str) -> list[str]:
    """The names of the systems that name ``user_id`` their authorizing official
    (who decides for them whatever their roles)."""
    return list(session.exec(
        select(InfoSystem.name)
        .where(InfoSystem.team_id == actor.team_id, InfoSystem.ao_user_id == user_id)
        .order_by(col(InfoSystem.name_key))
    ).all())


def add_system(
    session: Session,
    actor: Actor,
    *,
    name: str,
    impact: Impact = Impact.MODERATE,
    organization: str | None = None,
    ao_user_id: str | None = None,
    fedramp: str | None = None,
) -> InfoSystem:
    """Add an information system to the workspace (admins only); ``fedramp``
    is its FedRAMP package ID."""
    require_admin(actor, "add a system")
    ensure_workspace(session, actor)
    counters.lock_workspace(session, team_id=actor.team_id)
    name = clean_text(name, field="The system name", limit=MAX_SYSTEM_NAME)
    if len(name.lower()) > MAX_SYSTEM_NAME:  # a few letters grow when lower-cased (İ → i̇)
        raise InvalidInput(f"The system name is too long; the limit is {MAX_SYSTEM_NAME} characters.")
    organization = clean_text(organization, field="The organization", limit=200, required=False)
    if ao_user_id is not None:
        check_user_id(ao_user_id, what="user (AO)")
        require_present(session, actor, ao_user_id, as_what="the authorizing official")
    if fedramp is not None:
        fedramp = fedramp_id(fedramp)
    taken = session.exec(
        select(func.count())
        .select_from(InfoSystem)
        .where(InfoSystem.team_id == actor.team_id, InfoSystem.name_key == name.lower())
    ).one()
    if taken:
        raise InvalidInput(f"A system called `{name}` already exists.")
    return _new_system(session, actor, name=name, impact=impact, organization=organization, ao_user_id=ao_user_id,
                       fedramp=fedramp)


def change_system(
    session: Session,
    actor: Actor,
    *,
    name: str,
    impact: Impact | None = None,
    organization: str | None = None,
    ao_user_id: str | None = None,
    fedramp: str | None = None,
    remove_organization: bool = False,
    remove_ao: bool = False,
    remove_fedramp: bool = False,
) -> tuple[InfoSystem, dict[str, dict[str, object]]]:
    """Change a system's impact level, organization, authorizing official or
    FedRAMP package ID (admins only; ``remove_…`` leaves it without one).
    Returns the system and what changed, ``{"ao": {"from": old, "to": new},
    …}`` (empty: it already was so, and nothing is written)."""
    require_admin(actor, "change a system")
    organization = clean_text(organization, field="The organization", limit=200, required=False)
    if ao_user_id is not None:
        check_user_id(ao_user_id, what="user (AO)")
        require_present(session, actor, ao_user_id, as_what="the authorizing official")
    if fedramp is not None:
        fedramp = fedramp_id(fedramp)
    # Each setting: (its new value, or None; whether `none` removes it).
    given = {"organization": (organization, remove_organization), "ao_user_id": (ao_user_id, remove_ao),
             "fedramp_id": (fedramp, remove_fedramp)}
    if impact is None and all(value is None and not remove for value, remove in given.values()):
        raise InvalidCombination(
            "Say what to change: `impact:`, `org:`, `ao:` or `fedramp:` (`none` removes an organization, an AO "
            "or a FedRAMP package ID)."
        )
    if any(value is not None and remove for value, remove in given.values()):
        raise InvalidCombination("Give one value for each setting, or `none` to remove it.")
    found = find_system(session, actor, name=name)
    # As add_system: one change of a workspace's systems at a time, so each
    # records the value it replaced (read again under the lock).
    counters.lock_workspace(session, team_id=actor.team_id)
    system = session.get(InfoSystem, found.id)
    assert system is not None  # the row just found, in the same transaction
    wanted: dict[str, object] = {"impact": impact} if impact is not None else {}
    wanted.update({column: value for column, (value, remove) in given.items() if value is not None or remove})
    changes: dict[str, dict[str, object]] = {}
    for field, value in wanted.items():
        if getattr(system, field) != value:
            changes[_CHANGE_NAMES[field]] = {"from": getattr(system, field), "to": value}
            setattr(system, field, value)
    if changes:
        session.add(system)
        audit.record(session, actor, action="system.changed", details={"system": system.name, **changes})
    return system, changes
