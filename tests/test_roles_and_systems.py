"""Roles (grant, revoke, list, load_actor) and information systems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.poam import audit
from bot.poam.actor import SYSTEM_ACTOR, Actor, Role, Rules
from bot.poam.clock import FixedClock
from bot.poam.deadlines import DOD_CAT
from bot.poam.errors import InvalidCombination, InvalidInput, NotFound, PermissionDenied, PoamError
from bot.poam.roles import grant_role, list_roles, load_actor, revoke_role
from bot.poam.systems import (
    DEFAULT_SYSTEM_NAME,
    Impact,
    add_system,
    change_system,
    ensure_workspace,
    find_system,
    list_systems,
)
from bot.store.engine import unit_of_work
from bot.store.models import InfoSystem, RoleGrant, Workspace
from tests.db import assert_refused, events, run, snapshot, statements

TEAM = "T0001"
OTHER_TEAM = "T0002"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
ALICE = "U00000ALICE"
BOB = "U000000BOB"
ADMIN = "U0000ADMIN"


# ---------------------------------------------------------------- helpers


def grants(engine: Engine, team: str = TEAM) -> list[tuple[str, str, str]]:
    with unit_of_work(engine) as session:
        return [
            (g.user_id, g.role, g.granted_by)
            for g in session.exec(
                select(RoleGrant)
                .where(RoleGrant.team_id == team)
                .order_by(col(RoleGrant.user_id), col(RoleGrant.role))
            )
        ]


def actor_from_db(
    engine: Engine, clock: FixedClock, user_id: str, team: str = TEAM, **kwargs: Any
) -> Actor:
    """The actor as a request loads it, with its roles read in that unit of work
    (they are read when first needed, and cannot be after the unit ends)."""
    kwargs.setdefault("tz", ZoneInfo("UTC"))
    kwargs.setdefault("rules", Rules())

    def load(session: Session) -> Actor:
        actor = load_actor(session, team_id=team, user_id=user_id, clock=clock, **kwargs)
        return replace(actor, roles=frozenset(actor.roles))

    return run(engine, load)


# ---------------------------------------------------------------- load_actor


def test_load_actor_without_grants(engine: Engine, clock: FixedClock) -> None:
    rules = Rules(id_prefix="VULN", deadlines=DOD_CAT)
    tz = ZoneInfo("Europe/Paris")
    actor = actor_from_db(engine, clock, BOB, tz=tz, rules=rules)
    assert actor == Actor(team_id=TEAM, user_id=BOB, roles=frozenset(), tz=tz, clock=clock, rules=rules)
    assert not actor.is_admin
    assert actor.today().isoformat() == "2026-11-20"
    # Loading an actor writes nothing, not even the workspace.
    assert snapshot(engine)["workspaces"] == []


def test_load_actor_admin_by_configuration(engine: Engine, clock: FixedClock) -> None:
    settings = Settings(_env_file=None, poam_admins=f"{ADMIN}, U0000OTHER")  # type: ignore[call-arg]
    assert settings.poam_admins == frozenset({ADMIN, "U0000OTHER"})
    configured = actor_from_db(engine, clock, ADMIN, configured_admins=settings.poam_admins)
    assert configured.roles == frozenset({Role.ADMIN}) and configured.is_admin
    other = actor_from_db(engine, clock, BOB, configured_admins=settings.poam_admins)
    assert other.roles == frozenset() and not other.is_admin


def test_load_actor_workspace_admin_flag(engine: Engine, clock: FixedClock) -> None:
    assert actor_from_db(engine, clock, BOB, workspace_admin=True).roles == frozenset({Role.ADMIN})
    assert actor_from_db(engine, clock, BOB, workspace_admin=False).roles == frozenset()


def test_load_actor_with_grants(engine: Engine, clock: FixedClock, admin: Actor) -> None:
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.AO))
    run(engine, lambda s: grant_role(s, admin, user_id=ALICE, role=Role.ADMIN))
    bob = actor_from_db(engine, clock, BOB)
    assert bob.roles == frozenset({Role.VERIFIER, Role.AO})
    assert {Role.VERIFIER, Role.AO} <= bob.roles and not bob.is_admin
    assert actor_from_db(engine, clock, BOB, workspace_admin=True).roles == frozenset(Role)
    alice = actor_from_db(engine, clock, ALICE)
    assert alice.roles == frozenset({Role.ADMIN}) and alice.is_admin
    # Grants belong to one workspace.
    assert actor_from_db(engine, clock, BOB, team=OTHER_TEAM).roles == frozenset()
    assert not actor_from_db(engine, clock, ALICE, team=OTHER_TEAM).is_admin


def test_load_actor_reads_the_grants_only_when_a_check_needs_them(
    engine: Engine, clock: FixedClock, admin: Actor
) -> None:
    """Most requests check no role: they must not pay for the grants query."""
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))

    def load(session: Session, user_id: str, **kwargs: Any) -> Actor:
        return load_actor(session, team_id=TEAM, user_id=user_id, tz=ZoneInfo("UTC"), clock=clock, rules=Rules(), **kwargs)

    with unit_of_work(engine, read_only=True) as session, statements(engine) as seen:
        bob = load(session, BOB)
        configured = load(session, ADMIN, configured_admins={ADMIN})
        assert configured.is_admin and seen == []  # known without reading
        assert Role.VERIFIER in bob.roles and not bob.is_admin and Role.AO not in bob.roles
        assert len(seen) == 1 and "role_grants" in seen[0][0]  # read once, then kept
        assert sorted(bob.roles) == [Role.VERIFIER] and len(seen) == 1
    with unit_of_work(engine, read_only=True) as session:
        unchecked = load(session, BOB)
    with pytest.raises(RuntimeError, match="after its unit of work ended"):
        _ = Role.VERIFIER in unchecked.roles


def test_an_admin_grants_and_revokes_their_own_review_roles(engine: Engine, clock: FixedClock, admin: Actor) -> None:
    """The change's own grant is no role a check relied on: reading the grants
    again once the change holds its audit slot (a role taken away meanwhile
    refuses it, on PostgreSQL) must not refuse it."""
    run(engine, lambda s: grant_role(s, admin, user_id=ALICE, role=Role.ADMIN))

    def as_alice(change: Callable[[Session, Actor], object]) -> None:
        with unit_of_work(engine) as session:
            alice = load_actor(session, team_id=TEAM, user_id=ALICE, tz=ZoneInfo("UTC"), clock=clock, rules=Rules())
            change(session, alice)

    for role in (Role.VERIFIER, Role.AO):
        as_alice(lambda s, alice, role=role: grant_role(s, alice, user_id=ALICE, role=role))
    assert actor_from_db(engine, clock, ALICE).roles == frozenset(Role)
    as_alice(lambda s, alice: revoke_role(s, alice, user_id=ALICE, role=Role.VERIFIER))
    assert actor_from_db(engine, clock, ALICE).roles == frozenset({Role.ADMIN, Role.AO})
    assert [e.action for e in events(engine)][-3:] == ["role.granted", "role.granted", "role.revoked"]


def test_admin_by_any_source_can_act(engine: Engine, clock: FixedClock, admin: Actor) -> None:
    flagged = actor_from_db(engine, clock, "U0000OWNER", workspace_admin=True)
    run(engine, lambda s: grant_role(s, flagged, user_id=ALICE, role=Role.ADMIN))
    granted = actor_from_db(engine, clock, ALICE)
    run(engine, lambda s: add_system(s, granted, name="Payroll"))
    configured = actor_from_db(engine, clock, BOB, configured_admins={BOB})
    run(engine, lambda s: grant_role(s, configured, user_id="U0000CAROL", role=Role.VERIFIER))
    assert [(e.action, e.actor_id) for e in events(engine)] == [
        ("system.added", SYSTEM_ACTOR),  # the default system, on first use
        ("role.granted", "U0000OWNER"),
        ("system.added", ALICE),
        ("role.granted", BOB),
    ]


# ---------------------------------------------------------------- grant / revoke


def test_grant_role(engine: Engine, admin: Actor, clock: FixedClock) -> None:
    grant = run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))
    assert (grant.team_id, grant.user_id, grant.role, grant.granted_by, grant.granted_at) == (
        TEAM, BOB, "verifier", ADMIN, NOW,
    )
    assert grants(engine) == [(BOB, "verifier", ADMIN)]
    logged = events(engine)
    # First use of the workspace: its default system, then the grant.
    assert [(e.seq, e.action, e.actor_id, e.item_id) for e in logged] == [
        (1, "system.added", SYSTEM_ACTOR, None),
        (2, "role.granted", ADMIN, None),
    ]
    assert logged[1].details == {"user": BOB, "role": "verifier"}
    clock.advance(minutes=5)
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.AO))
    assert grants(engine) == [(BOB, "ao", ADMIN), (BOB, "verifier", ADMIN)]
    assert [e.action for e in events(engine)] == ["system.added", "role.granted", "role.granted"]
    assert events(engine)[-1].at == datetime(2026, 11, 20, 15, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("role", "name"),
    [(Role.VERIFIER, "a verifier"), (Role.AO, "an authorizing official"), (Role.ADMIN, "an admin")],
)
def test_grant_twice_is_refused(engine: Engine, admin: Actor, role: Role, name: str) -> None:
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=role))
    assert_refused(
        engine, lambda s: grant_role(s, admin, user_id=BOB, role=role), InvalidInput, f"That person is already {name}."
    )


def test_grant_refusals(engine: Engine, admin: Actor, alice: Actor) -> None:
    # Refused before the workspace exists: nothing is created at all.
    assert_refused(
        engine, lambda s: grant_role(s, alice, user_id=BOB, role=Role.VERIFIER), PermissionDenied,
        "Only a POA&M admin can change roles.",
    )
    assert_refused(
        engine, lambda s: grant_role(s, admin, user_id="bob", role=Role.VERIFIER), InvalidInput,
        "`bob` is not a Slack user id; mention the person, like @jane.",
    )
    assert snapshot(engine)["workspaces"] == []
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))
    # A verifier (or an AO) is not an admin.
    verifier = Actor(TEAM, BOB, frozenset({Role.VERIFIER, Role.AO}), ZoneInfo("UTC"), admin.clock)
    assert_refused(
        engine, lambda s: grant_role(s, verifier, user_id=ALICE, role=Role.AO), PermissionDenied,
        "Only a POA&M admin can change roles.",
    )
    assert_refused(
        engine, lambda s: grant_role(s, alice, user_id=ALICE, role=Role.ADMIN), PermissionDenied,
        "Only a POA&M admin can change roles.",
    )


def test_revoke_role(engine: Engine, admin: Actor) -> None:
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.AO))
    assert run(engine, lambda s: revoke_role(s, admin, user_id=BOB, role=Role.VERIFIER)) is None
    assert grants(engine) == [(BOB, "ao", ADMIN)]
    last = events(engine)[-1]
    assert (last.action, last.actor_id, last.item_id, last.details) == (
        "role.revoked", ADMIN, None, {"user": BOB, "role": "verifier"},
    )
    assert len(events(engine)) == 4


def test_revoke_refusals(engine: Engine, admin: Actor, alice: Actor, clock: FixedClock) -> None:
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))
    run(engine, lambda s: grant_role(s, admin, user_id=ALICE, role=Role.ADMIN))
    assert_refused(
        engine, lambda s: revoke_role(s, admin, user_id=BOB, role=Role.AO), InvalidInput,
        "That person is not an authorizing official (by grant).",
    )
    assert_refused(
        engine, lambda s: revoke_role(s, admin, user_id="U0000NOBODY", role=Role.VERIFIER), InvalidInput,
        "That person is not a verifier (by grant).",
    )
    granted_alice = actor_from_db(engine, clock, ALICE)
    assert granted_alice.is_admin
    # A configured admin has no grant to take away.
    assert_refused(
        engine, lambda s: revoke_role(s, granted_alice, user_id=ADMIN, role=Role.ADMIN), InvalidInput,
        "That person is not an admin (by grant).",
    )
    assert_refused(
        engine, lambda s: revoke_role(s, admin, user_id="nobody", role=Role.AO), InvalidInput,
        "`nobody` is not a Slack user id; mention the person, like @jane.",
    )
    assert_refused(
        engine, lambda s: revoke_role(s, granted_alice, user_id=ALICE, role=Role.ADMIN), InvalidInput,
        "You cannot remove your own admin role; ask another admin.",
    )
    plain_bob = actor_from_db(engine, clock, BOB)
    assert_refused(
        engine, lambda s: revoke_role(s, plain_bob, user_id=BOB, role=Role.VERIFIER), PermissionDenied,
        "Only a POA&M admin can change roles.",
    )
    # Another admin may take alice's admin role; alice may drop a non-admin role of her own.
    run(engine, lambda s: grant_role(s, admin, user_id=ALICE, role=Role.VERIFIER))
    run(engine, lambda s: revoke_role(s, granted_alice, user_id=ALICE, role=Role.VERIFIER))
    run(engine, lambda s: revoke_role(s, admin, user_id=ALICE, role=Role.ADMIN))
    assert grants(engine) == [(BOB, "verifier", ADMIN)]
    assert not actor_from_db(engine, clock, ALICE).is_admin


def test_revoke_on_a_new_workspace_writes_nothing(engine: Engine, admin: Actor) -> None:
    assert_refused(
        engine, lambda s: revoke_role(s, admin, user_id=BOB, role=Role.VERIFIER), InvalidInput,
        "That person is not a verifier (by grant).",
    )
    assert snapshot(engine)["workspaces"] == []


def test_list_roles(engine: Engine, admin: Actor, alice: Actor, make_actor: Callable[..., Actor]) -> None:
    assert run(engine, lambda s: list_roles(s, alice)) == {}
    run(engine, lambda s: grant_role(s, admin, user_id=ALICE, role=Role.VERIFIER))
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.ADMIN))
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.AO))
    other_admin = make_actor(ADMIN, Role.ADMIN, team=OTHER_TEAM)
    run(engine, lambda s: grant_role(s, other_admin, user_id="U0000CAROL", role=Role.AO))
    before = snapshot(engine)
    roles = run(engine, lambda s: list_roles(s, alice))
    assert snapshot(engine) == before
    # Sorted by user, then role; the configured admin (not granted) is not listed.
    assert list(roles.items()) == [
        (BOB, [Role.ADMIN, Role.AO, Role.VERIFIER]),
        (ALICE, [Role.VERIFIER]),
    ]
    assert all(isinstance(role, Role) for user_roles in roles.values() for role in user_roles)
    assert run(engine, lambda s: list_roles(s, make_actor(BOB, team=OTHER_TEAM))) == {"U0000CAROL": [Role.AO]}


# ---------------------------------------------------------------- systems


def test_default_system_on_first_use(engine: Engine, alice: Actor) -> None:
    systems = run(engine, lambda s: list_systems(s, alice))
    assert [(x.name, x.name_key, x.impact, x.is_default, x.created_by, x.created_at) for x in systems] == [
        (DEFAULT_SYSTEM_NAME, "default", "moderate", True, SYSTEM_ACTOR, NOW),  # the bot's, not Alice's
    ]
    with unit_of_work(engine) as session:
        workspace = session.get(Workspace, TEAM)
        assert workspace is not None
        assert (workspace.last_item_number, workspace.audit_seq, workspace.created_at) == (0, 1, NOW)
    (event,) = events(engine)
    assert (event.seq, event.action, event.actor_id, event.item_id) == (1, "system.added", SYSTEM_ACTOR, None)
    assert event.details == {"system": "Default", "impact": "moderate", "default": True}
    # Later uses do not create another default system or event.
    for _ in range(3):
        run(engine, lambda s: ensure_workspace(s, alice))
        assert run(engine, lambda s: find_system(s, alice, name=None)).id == systems[0].id
        run(engine, lambda s: list_systems(s, alice))
    assert len(events(engine)) == 1
    with unit_of_work(engine) as session:
        assert len(session.exec(select(InfoSystem)).all()) == 1


def test_default_system_on_first_use_in_a_read_only_unit(engine: Engine, alice: Actor) -> None:
    # /poam log without a title and /poam list read only; on PostgreSQL such a
    # unit has no transaction, so the first use writes its rows together.
    with unit_of_work(engine, read_only=True) as session:
        assert [system.name for system in list_systems(session, alice)] == [DEFAULT_SYSTEM_NAME]
    assert [(event.seq, event.action) for event in events(engine)] == [(1, "system.added")]
    with unit_of_work(engine) as session:
        workspace = session.get(Workspace, TEAM)
        assert workspace is not None and workspace.audit_seq == 1


def test_each_workspace_has_its_own_default(engine: Engine, alice: Actor, make_actor: Callable[..., Actor]) -> None:
    ours = run(engine, lambda s: find_system(s, alice, name=None))
    theirs = run(engine, lambda s: find_system(s, make_actor(ALICE, team=OTHER_TEAM), name="default"))
    assert ours.id != theirs.id
    assert (ours.team_id, theirs.team_id) == (TEAM, OTHER_TEAM)
    assert [e.seq for e in events(engine, OTHER_TEAM)] == [1]


def test_add_system(engine: Engine, admin: Actor) -> None:
    payroll = run(
        engine,
        lambda s: add_system(
            s, admin, name="  Payroll  ", impact=Impact.HIGH, organization=" Acme Corp ", ao_user_id="U00000AO"
        ),
    )
    assert (payroll.name, payroll.name_key, payroll.impact, payroll.organization, payroll.ao_user_id) == (
        "Payroll", "payroll", "high", "Acme Corp", "U00000AO",
    )
    assert (payroll.is_default, payroll.created_by, payroll.created_at, payroll.team_id) == (False, ADMIN, NOW, TEAM)
    logged = events(engine)
    assert [(e.seq, e.action) for e in logged] == [(1, "system.added"), (2, "system.added")]
    assert logged[1].details == {"system": "Payroll", "impact": "high", "organization": "Acme Corp", "ao": "U00000AO"}
    run(engine, lambda s: add_system(s, admin, name="zeta"))
    run(engine, lambda s: add_system(s, admin, name="Alpha", impact=Impact.LOW))
    listed = run(engine, lambda s: list_systems(s, admin))
    assert [(x.name, x.impact, x.is_default) for x in listed] == [
        ("Default", "moderate", True),
        ("Alpha", "low", False),
        ("Payroll", "high", False),
        ("zeta", "moderate", False),
    ]
    assert events(engine)[-1].details == {"system": "Alpha", "impact": "low", "organization": None, "ao": None}
    assert len(events(engine)) == 4
    cloud = run(engine, lambda s: add_system(s, admin, name="Cloud", fedramp=" f1603047866 "))
    assert cloud.fedramp_id == "F1603047866"
    assert run(engine, lambda s: add_system(s, admin, name="Other", fedramp="fr12345678")).fedramp_id == "FR12345678"
    assert events(engine)[-2].details == {"system": "Cloud", "impact": "moderate", "organization": None, "ao": None,
                                          "fedramp_id": "F1603047866"}
    with unit_of_work(engine) as session:
        assert audit.verify_chain(session, team_id=TEAM).ok


def test_change_system(engine: Engine, admin: Actor) -> None:
    run(engine, lambda s: add_system(s, admin, name="Payroll", ao_user_id="U00000AO"))
    system, changes = run(engine, lambda s: change_system(
        s, admin, name=" payroll ", impact=Impact.HIGH, organization=" Acme ", ao_user_id="U0000AO2"
    ))
    assert (system.name, system.impact, system.organization, system.ao_user_id) == ("Payroll", "high", "Acme", "U0000AO2")
    assert changes == {"impact": {"from": "moderate", "to": "high"}, "organization": {"from": None, "to": "Acme"},
                       "ao": {"from": "U00000AO", "to": "U0000AO2"}}
    assert (events(engine)[-1].action, events(engine)[-1].details) == ("system.changed", {"system": "Payroll", **changes})
    # Only what is named changes; the AO and the organization can be removed.
    system, changes = run(engine, lambda s: change_system(s, admin, name="Payroll", remove_ao=True))
    assert (system.impact, system.organization, system.ao_user_id) == ("high", "Acme", None)
    assert changes == {"ao": {"from": "U0000AO2", "to": None}}
    system, changes = run(engine, lambda s: change_system(s, admin, name="Payroll", remove_organization=True))
    assert (system.organization, changes) == (None, {"organization": {"from": "Acme", "to": None}})
    system, changes = run(engine, lambda s: change_system(s, admin, name="Payroll", fedramp="f1603047866"))
    assert (system.fedramp_id, changes) == ("F1603047866", {"fedramp_id": {"from": None, "to": "F1603047866"}})
    system, changes = run(engine, lambda s: change_system(s, admin, name="Payroll", remove_fedramp=True))
    assert (system.fedramp_id, changes) == (None, {"fedramp_id": {"from": "F1603047866", "to": None}})
    # The same settings again: nothing written.
    before = snapshot(engine)
    assert run(engine, lambda s: change_system(s, admin, name="Payroll", impact=Impact.HIGH, remove_ao=True))[1] == {}
    assert snapshot(engine) == before
    with unit_of_work(engine) as session:
        assert audit.verify_chain(session, team_id=TEAM).ok


SAY_WHAT = (
    "Say what to change: `impact:`, `org:`, `ao:` or `fedramp:` (`none` removes an organization, an AO "
    "or a FedRAMP package ID)."
)


def test_change_system_refusals(
    engine: Engine, admin: Actor, alice: Actor, make_actor: Callable[..., Actor]
) -> None:
    run(engine, lambda s: add_system(s, admin, name="Payroll", ao_user_id="U00000AO"))
    outsider = make_actor(ADMIN, Role.ADMIN, team=OTHER_TEAM)
    run(engine, lambda s: list_systems(s, outsider))  # its workspace exists
    before = snapshot(engine)
    cases: list[tuple[Actor, dict[str, Any], type[PoamError], str]] = [
        (alice, {"impact": Impact.LOW}, PermissionDenied, "Only a POA&M admin can change a system."),
        (admin, {}, InvalidCombination, SAY_WHAT),
        (admin, {"organization": "  "}, InvalidCombination, SAY_WHAT),
        (admin, {"ao_user_id": "U0000AO2", "remove_ao": True}, InvalidCombination,
         "Give one value for each setting, or `none` to remove it."),
        (admin, {"organization": "Acme", "remove_organization": True}, InvalidCombination,
         "Give one value for each setting, or `none` to remove it."),
        (admin, {"fedramp": "F1603047866", "remove_fedramp": True}, InvalidCombination,
         "Give one value for each setting, or `none` to remove it."),
        (admin, {"fedramp": "1603047866"}, InvalidInput,
         "`1603047866` is not a FedRAMP package ID; it looks like F1234567890 (the FedRAMP Marketplace lists it)."),
        (admin, {"ao_user_id": "@carol"}, InvalidInput,
         "`@carol` is not a Slack user (AO) id; mention the person, like @jane."),
        (admin, {"organization": "o" * 201}, InvalidInput, "The organization is 201 characters long; the limit is 200."),
        (admin, {"name": "Payrol", "impact": Impact.LOW}, NotFound,
         "There is no system called `Payrol`; `/poam systems` lists them."),
        # Another workspace's admin cannot reach this one's system by its name.
        (outsider, {"remove_ao": True}, NotFound,
         "There is no system called `Payroll`; `/poam systems` lists them."),
    ]
    for actor, arguments, error, message in cases:
        arguments = {"name": "Payroll", **arguments}
        assert_refused(engine, lambda s, a=actor, kw=arguments: change_system(s, a, **kw), error, message)
    assert snapshot(engine) == before


def test_find_system(engine: Engine, admin: Actor, alice: Actor, make_actor: Callable[..., Actor]) -> None:
    payroll = run(engine, lambda s: add_system(s, admin, name="Payroll"))
    for name in ("Payroll", "payroll", "  PAYROLL "):
        assert run(engine, lambda s, name=name: find_system(s, alice, name=name)).id == payroll.id
    assert run(engine, lambda s: find_system(s, alice, name=None)).name == "Default"
    assert_refused(
        engine, lambda s: find_system(s, alice, name="Payrol"), NotFound,
        "There is no system called `Payrol`; `/poam systems` lists them.",
    )
    outsider = make_actor(ALICE, team=OTHER_TEAM)
    run(engine, lambda s: list_systems(s, outsider))
    assert_refused(
        engine, lambda s: find_system(s, outsider, name="Payroll"), NotFound,
        "There is no system called `Payroll`; `/poam systems` lists them.",
    )
    assert [x.name for x in run(engine, lambda s: list_systems(s, outsider))] == ["Default"]


def test_add_system_refusals(engine: Engine, admin: Actor, alice: Actor) -> None:
    # A refused non-admin writes nothing, even on a workspace's first use.
    assert_refused(
        engine, lambda s: add_system(s, alice, name="Payroll"), PermissionDenied, "Only a POA&M admin can add a system."
    )
    assert snapshot(engine)["workspaces"] == []
    run(engine, lambda s: add_system(s, admin, name="Payroll"))
    cases: list[tuple[dict[str, Any], type[PoamError], str]] = [
        ({"name": "payroll"}, InvalidInput, "A system called `payroll` already exists."),
        ({"name": " PAYROLL "}, InvalidInput, "A system called `PAYROLL` already exists."),
        ({"name": "default"}, InvalidInput, "A system called `default` already exists."),
        ({"name": "   "}, InvalidInput, "The system name is missing."),
        ({"name": "n" * 81}, InvalidInput, "The system name is 81 characters long; the limit is 80."),
        (
            {"name": "HR", "organization": "o" * 201},
            InvalidInput,
            "The organization is 201 characters long; the limit is 200.",
        ),
        (
            {"name": "HR", "ao_user_id": "@carol"},
            InvalidInput,
            "`@carol` is not a Slack user (AO) id; mention the person, like @jane.",
        ),
        *(
            ({"name": "HR", "fedramp": package}, InvalidInput,
             f"`{package}` is not a FedRAMP package ID; it looks like F1234567890 (the FedRAMP Marketplace lists it).")
            for package in ("none", "FEDRAMP", "F12345", "F1603-047866", "F" + "1" * 13, "FX12345678", "1603047866")
        ),
    ]
    for arguments, error, message in cases:
        assert_refused(engine, lambda s, arguments=arguments: add_system(s, admin, **arguments), error, message)
    assert_refused(
        engine, lambda s: add_system(s, alice, name="HR"), PermissionDenied, "Only a POA&M admin can add a system."
    )
    assert [x.name for x in run(engine, lambda s: list_systems(s, alice))] == ["Default", "Payroll"]


def test_add_system_name_at_the_limit(engine: Engine, admin: Actor) -> None:
    name = "Ü" * 80
    system = run(engine, lambda s: add_system(s, admin, name=name))
    assert system.name == name and system.name_key == "ü" * 80
    assert run(engine, lambda s: find_system(s, admin, name="ü" * 80)).id == system.id


def test_system_name_key_fits_its_column(engine: Engine, admin: Actor) -> None:
    with unit_of_work(engine) as session:
        try:
            system = add_system(session, admin, name="İ" * 80)
        except InvalidInput:
            return
    assert len(system.name_key) <= 80


@pytest.mark.parametrize(
    ("text", "impact"),
    [("low", Impact.LOW), (" Moderate ", Impact.MODERATE), ("medium", Impact.MODERATE), ("HIGH", Impact.HIGH)],
)
def test_impact_parse(text: str, impact: Impact) -> None:
    assert Impact.parse(text) is impact


@pytest.mark.parametrize("text", ["extreme", "", "mod"])
def test_impact_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Impact.parse(text)
    assert raised.value.message == f"`{text}` is not an impact level; use low, moderate or high."
