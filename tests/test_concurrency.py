"""Races, on both backends: many threads, each with its own unit of work (its
own connection and transaction, like concurrent Slack requests), released at
once by a barrier."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from bot.poam import audit
from bot.poam.actor import Actor, Role, Rules
from bot.poam.clock import SystemClock
from bot.poam.errors import AlreadyClaimed, InvalidInput
from bot.poam.item_lists import list_items
from bot.poam.items import claim_item, log_item
from bot.poam.lifecycle import Status
from bot.poam.milestones import add_milestone, move_milestone
from bot.poam.review import submit_fix, verify_fix
from bot.poam.roles import grant_role, load_actor, revoke_role
from bot.poam.severity import Severity
from bot.poam.systems import add_system, find_system, list_systems
from bot.store.engine import make_engine, unit_of_work
from bot.store.models import AuditEvent, InfoSystem, Item, Milestone, MilestoneChange, RoleGrant, Workspace
from tests.db import wait_for_a_lock_wait

TEAM = "T0001"
ADMIN = "U0000ADMIN"
JOIN_TIMEOUT = 60


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Like the shared fixture, with a pool wide enough that every thread holds a
    connection at the same time (the default pool of 5 + 10 would queue some)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        # A file database: threads get separate connections that really contend.
        assert url.database not in (None, "", ":memory:")
        assert Path(url.database).is_file()  # type: ignore[arg-type]
    engine = make_engine(database_url, pool_size=32, max_overflow=8, pool_timeout=JOIN_TIMEOUT)
    yield engine
    engine.dispose()


def race(count: int, work: Callable[[int], Any]) -> list[tuple[str, Any]]:
    """Run ``work(0) … work(count - 1)`` in ``count`` threads started together;
    each result is ("ok", value) or ("error", exception)."""
    barrier = threading.Barrier(count)
    results: list[tuple[str, Any]] = [("missing", None)] * count

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[index] = ("ok", work(index))
        except BaseException as error:  # noqa: BLE001 - reported to the test
            results[index] = ("error", error)

    threads = [threading.Thread(target=target, args=(i,), name=f"race-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert all(kind != "missing" for kind, _ in results)
    return results


def unexpected(results: list[tuple[str, Any]], *expected: type[BaseException]) -> list[BaseException]:
    return [value for kind, value in results if kind == "error" and not isinstance(value, expected)]


def all_events(engine: Engine, team: str = TEAM) -> list[AuditEvent]:
    with unit_of_work(engine) as session:
        return list(
            session.exec(select(AuditEvent).where(AuditEvent.team_id == team).order_by(col(AuditEvent.seq))).all()
        )


def chain_ok(engine: Engine, team: str = TEAM) -> audit.ChainReport:
    with unit_of_work(engine, read_only=True) as session:
        report = audit.verify_chain(session, team_id=team)
    assert report.ok, str(report.broken)
    return report


def user(index: int) -> str:
    return f"U0RACER{index:03d}"


# ---------------------------------------------------------------- claims


def test_twenty_simultaneous_claims_have_one_winner(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    reporter = make_actor(ADMIN)
    with unit_of_work(engine) as session:
        log_item(session, reporter, title="Contended finding", severity=Severity.HIGH)
    claimers = [make_actor(user(i)) for i in range(20)]

    def claim(index: int) -> str | None:
        with unit_of_work(engine) as session:
            return claim_item(session, claimers[index], number=1).owner_id

    results = race(20, claim)
    assert unexpected(results, AlreadyClaimed) == []
    winners = [value for kind, value in results if kind == "ok"]
    assert len(winners) == 1
    (winner,) = winners
    assert winner in {user(i) for i in range(20)}
    losers = [value for kind, value in results if kind == "error"]
    assert len(losers) == 19
    for error in losers:
        assert isinstance(error, AlreadyClaimed)
        assert error.owner_id == winner  # every loser is told who won
        assert error.message == "POAM-1 is already claimed by someone else."

    with unit_of_work(engine) as session:
        item = session.exec(select(Item).where(Item.team_id == TEAM, Item.number == 1)).one()
        assert (item.owner_id, item.status, item.version) == (winner, Status.IN_PROGRESS, 2)
    trail = all_events(engine)
    assert [e.action for e in trail] == ["system.added", "item.logged", "item.claimed"]
    assert (trail[-1].actor_id, trail[-1].details) == (
        winner, {"owner": {"from": None, "to": winner}, "status": {"from": "open", "to": "in_progress"}})
    assert chain_ok(engine).events == 3


def test_simultaneous_claims_of_different_items_all_win(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    reporter = make_actor(ADMIN)
    with unit_of_work(engine) as session:
        for n in range(12):
            log_item(session, reporter, title=f"Finding {n}", severity=Severity.LOW)
    claimers = [make_actor(user(i)) for i in range(12)]

    def claim(index: int) -> str | None:
        with unit_of_work(engine) as session:
            return claim_item(session, claimers[index], number=index + 1).owner_id

    results = race(12, claim)
    assert results == [("ok", user(i)) for i in range(12)]
    with unit_of_work(engine) as session:
        owners = {i.number: i.owner_id for i in session.exec(select(Item).where(Item.team_id == TEAM))}
    assert owners == {i + 1: user(i) for i in range(12)}
    assert chain_ok(engine).events == 1 + 12 + 12


# ---------------------------------------------------------------- numbering


def test_two_hundred_concurrent_logs_get_distinct_numbers(
    engine: Engine, make_actor: Callable[..., Actor]
) -> None:
    threads, total = 16, 200
    with unit_of_work(engine) as session:
        list_systems(session, make_actor(ADMIN))  # the workspace exists; its creation is tested below
    reporters = [make_actor(user(i)) for i in range(threads)]

    def log_many(index: int) -> list[int]:
        numbers = []
        for n in range(index, total, threads):  # 200 logs spread over 16 threads
            with unit_of_work(engine) as session:
                item = log_item(session, reporters[index], title=f"Finding {n}", severity=Severity.MODERATE)
                numbers.append(item.number)
        return numbers

    results = race(threads, log_many)
    assert unexpected(results) == []
    numbers = [number for _, chunk in results for number in chunk]
    assert sorted(numbers) == list(range(1, total + 1))

    with unit_of_work(engine) as session:
        items = session.exec(select(Item).where(Item.team_id == TEAM)).all()
        workspace = session.get(Workspace, TEAM)
        assert workspace is not None and workspace.last_item_number == total
    assert sorted(i.number for i in items) == list(range(1, total + 1))
    by_id = {i.id: i for i in items}
    trail = all_events(engine)
    assert [e.seq for e in trail] == list(range(1, total + 2))
    logged = [e for e in trail if e.action == "item.logged"]
    assert len(logged) == total
    # Each item has exactly one event, and the event names the item's own number and title.
    assert Counter(e.item_id for e in logged) == Counter({item_id: 1 for item_id in by_id})
    for entry in logged:
        item = by_id[entry.item_id]
        assert (entry.details["number"], entry.details["title"], entry.actor_id) == (
            item.number, item.title, item.created_by,
        )
    assert chain_ok(engine).events == total + 1


# ---------------------------------------------------------------- first use


def test_concurrent_first_use_creates_one_default_system(
    engine: Engine, make_actor: Callable[..., Actor]
) -> None:
    team = "T0BRANDNEW"
    admin = make_actor(ADMIN, Role.ADMIN, team=team)
    people = [make_actor(user(i), team=team) for i in range(8)]
    operations: list[Callable[[Any], Any]] = [
        lambda s: log_item(s, people[0], title="first", severity=Severity.HIGH),
        lambda s: log_item(s, people[1], title="second", severity=Severity.LOW),
        lambda s: log_item(s, people[2], title="third", severity=Severity.LOW),
        lambda s: list_systems(s, people[3]),
        lambda s: list_systems(s, people[4]),
        lambda s: grant_role(s, admin, user_id=user(5), role=Role.VERIFIER),
        lambda s: add_system(s, admin, name="Payroll"),
        lambda s: log_item(s, people[7], title="fourth", severity=Severity.LOW),
    ]

    def use(index: int) -> Any:
        with unit_of_work(engine) as session:
            return operations[index](session)

    results = race(len(operations), use)
    assert unexpected(results) == []
    with unit_of_work(engine) as session:
        systems = session.exec(select(InfoSystem).where(InfoSystem.team_id == team)).all()
        items = session.exec(select(Item).where(Item.team_id == team)).all()
        workspaces = session.exec(select(Workspace).where(Workspace.team_id == team)).all()
    assert len(workspaces) == 1
    assert sorted((s.name, s.is_default) for s in systems) == [("Default", True), ("Payroll", False)]
    default = next(s for s in systems if s.is_default)
    assert {i.system_id for i in items} == {default.id}
    assert sorted(i.number for i in items) == [1, 2, 3, 4]
    trail = all_events(engine, team)
    actions = Counter(e.action for e in trail)
    assert actions == Counter({"system.added": 2, "item.logged": 4, "role.granted": 1})
    assert trail[0].action == "system.added" and trail[0].details["default"] is True
    assert sum(1 for e in trail if e.details.get("default") is True) == 1
    assert chain_ok(engine, team).events == 7


# ---------------------------------------------------------------- milestones


def test_concurrent_milestone_edits_on_one_item(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    owner = make_actor(user(1))
    with unit_of_work(engine) as session:
        log_item(session, owner, title="Busy item", severity=Severity.HIGH, owner_id=user(1))
        add_milestone(session, owner, number=1, description="Anchor", due_on=date(2026, 12, 1))

    def edit(index: int) -> int:
        with unit_of_work(engine) as session:
            if index % 2:
                return add_milestone(
                    session, owner, number=1, description=f"Step {index}", due_on=date(2026, 12, 2)
                ).number
            move_milestone(
                session, owner, number=1, milestone=1, due_on=date(2026, 12, 2 + index), reason=f"move {index}"
            )
            return 0

    results = race(12, edit)
    assert unexpected(results) == []
    added = sorted(value for _, value in results if value)
    assert added == list(range(2, 8))  # M2..M7, no number handed out twice
    with unit_of_work(engine) as session:
        item = session.exec(select(Item).where(Item.team_id == TEAM)).one()
        changes = session.exec(select(MilestoneChange).order_by(col(MilestoneChange.seq))).all()
        anchor = session.exec(select(Milestone).where(Milestone.number == 1)).one()
    assert item.version == 1 + 1 + 12
    assert [c.seq for c in changes] == [1, 2, 3, 4, 5, 6]
    # The moves form one unbroken history: each starts where the previous one ended.
    assert changes[0].old_due_on == date(2026, 12, 1)
    for previous, change in zip(changes, changes[1:], strict=False):
        assert change.old_due_on == previous.new_due_on
    assert anchor.due_on == changes[-1].new_due_on
    assert anchor.planned_due_on == date(2026, 12, 1)
    assert chain_ok(engine).events == 3 + 12


# ---------------------------------------------------------------- duplicates


def _meet_after(engine: Engine, parties: int, *fragments: str, timeout: float = 1.0) -> None:
    """Make every thread wait, right after running the query that contains all
    ``fragments``, until all ``parties`` threads have run it: the worst
    interleaving of a check-then-insert, every time (not only when lucky).

    When the code serialises the check properly (a lock taken before it), the
    threads can never all meet: the first waits ``timeout`` seconds, breaks the
    barrier and everyone goes on. Only on PostgreSQL: SQLite write transactions
    are serialised by ``BEGIN IMMEDIATE`` anyway.
    """
    if engine.dialect.name != "postgresql":
        return
    barrier = threading.Barrier(parties, timeout=timeout)

    @event.listens_for(engine, "after_cursor_execute")
    def _meet(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if all(fragment in statement for fragment in fragments):
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass


def test_concurrent_duplicate_grants(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    """Regression: without the workspace lock, PostgreSQL let every grant pass the
    "already granted?" check and all but one failed with a raw IntegrityError."""
    admins = [make_actor(f"U0ADMIN{i:02d}", Role.ADMIN) for i in range(6)]
    with unit_of_work(engine) as session:
        list_systems(session, admins[0])
    _meet_after(engine, 6, "FROM role_grants")

    def grant(index: int) -> None:
        with unit_of_work(engine) as session:
            grant_role(session, admins[index], user_id="U000000BOB", role=Role.VERIFIER)

    results = race(6, grant)
    assert unexpected(results, InvalidInput) == []
    assert all(isinstance(value, InvalidInput) for kind, value in results if kind == "error")
    assert [kind for kind, _ in results].count("ok") == 1
    assert {str(value) for kind, value in results if kind == "error"} == {"That person is already a verifier."}
    with unit_of_work(engine) as session:
        assert len(session.exec(select(RoleGrant)).all()) == 1
    assert chain_ok(engine).events == 2


def test_concurrent_duplicate_systems(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    """Regression: like the grants, concurrent adds of one name once ended in a raw IntegrityError."""
    admin = make_actor(ADMIN, Role.ADMIN)
    with unit_of_work(engine) as session:
        list_systems(session, admin)
    _meet_after(engine, 6, "count(*)", "FROM systems")

    def add(index: int) -> None:
        with unit_of_work(engine) as session:
            add_system(session, admin, name="Payroll" if index % 2 else "PAYROLL")

    results = race(6, add)
    assert unexpected(results, InvalidInput) == []
    assert [kind for kind, _ in results].count("ok") == 1
    with unit_of_work(engine) as session:
        assert len(session.exec(select(InfoSystem)).all()) == 2
    assert chain_ok(engine).events == 2


# ---------------------------------------------------------------- readers beside writers


@pytest.mark.parametrize(
    "read",
    [
        lambda s, actor: list_items(s, actor).total,
        lambda s, actor: len(list_systems(s, actor)),
        lambda s, actor: find_system(s, actor, name=None).name,
    ],
    ids=["list_items", "list_systems", "find_system"],
)
def test_read_only_unit_survives_a_concurrent_write(
    request: pytest.FixtureRequest,
    engine: Engine,
    make_actor: Callable[..., Actor],
    clock: Any,
    read: Callable[[Any, Actor], Any],
) -> None:
    """What ``/poam list`` (and the log modal, the App Home) do: a read-only unit
    of work loads the actor, then reads, while another request logs an item."""
    with unit_of_work(engine) as session:
        list_systems(session, make_actor(ADMIN))  # the workspace already exists
    reader_started, writer_done = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def reader() -> None:
        try:
            with unit_of_work(engine, read_only=True) as session:
                actor = load_actor(
                    session, team_id=TEAM, user_id=user(1), tz=ZoneInfo("UTC"), clock=clock, rules=Rules()
                )
                reader_started.set()
                assert writer_done.wait(JOIN_TIMEOUT)
                outcome["value"] = read(session, actor)
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["error"] = error
            reader_started.set()

    thread = threading.Thread(target=reader)
    thread.start()
    assert reader_started.wait(JOIN_TIMEOUT)
    with unit_of_work(engine) as session:
        log_item(session, make_actor(user(2)), title="Logged meanwhile", severity=Severity.LOW)
    writer_done.set()
    thread.join(JOIN_TIMEOUT)
    assert not thread.is_alive()
    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["value"] in (0, 1, "Default")


def _refused_for_roles_changed_meanwhile(
    database_url: str, change: Callable[[Session], object], meanwhile: Callable[[], object]
) -> None:
    """Run ``change`` in a unit of work of its own, paused just after it read
    the acting user's roles while ``meanwhile`` runs and commits; it must be
    refused because those roles changed (PostgreSQL only: SQLite's writers run
    one at a time, and the race cannot open)."""
    from bot.poam.errors import PermissionDenied

    engine = make_engine(database_url)
    read, go_on = threading.Event(), threading.Event()

    @event.listens_for(engine, "after_cursor_execute")
    def pause(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM role_grants" in statement and not read.is_set():
            read.set()
            go_on.wait(JOIN_TIMEOUT)

    outcome: list[BaseException | None] = []

    def changing() -> None:
        try:
            with unit_of_work(engine) as session:
                change(session)
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome.append(error)

    thread = threading.Thread(target=changing)
    thread.start()
    try:
        assert read.wait(JOIN_TIMEOUT)
        meanwhile()
    finally:
        go_on.set()
        thread.join(JOIN_TIMEOUT)
        engine.dispose()
    (error,) = outcome
    assert isinstance(error, PermissionDenied) and error.message == audit.ROLES_CHANGED, error


def _actor_of(session: Session, user_id: str) -> Actor:
    return load_actor(session, team_id=TEAM, user_id=user_id, tz=ZoneInfo("UTC"), clock=SystemClock(), rules=Rules())


def test_a_verification_whose_role_is_revoked_meanwhile_is_refused(
    engine: Engine, make_actor: Callable[..., Actor], database_url: str
) -> None:
    """On PostgreSQL the verifier's role was read, an admin revoked it and
    committed, and the verification went on: the trail showed the role
    revoked, then the fix verified by that person."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    admin, owner = make_actor(ADMIN, Role.ADMIN), make_actor("U00000ALICE")
    with unit_of_work(engine) as session:
        grant_role(session, admin, user_id="U00000VERA", role=Role.VERIFIER)
        log_item(session, owner, title="Weak TLS", severity=Severity.LOW, owner_id=owner.user_id)
        submit_fix(session, owner, number=1, evidence="Rescan clean.")

    def revoke() -> None:
        with unit_of_work(engine) as session:
            revoke_role(session, admin, user_id="U00000VERA", role=Role.VERIFIER)

    _refused_for_roles_changed_meanwhile(
        database_url, lambda session: verify_fix(session, _actor_of(session, "U00000VERA"), number=1), revoke)
    assert [e.action for e in all_events(engine)][-1] == "role.revoked"
    with unit_of_work(engine) as session:
        assert session.exec(select(Item.status)).one() == Status.PENDING_VERIFICATION


def test_two_admins_revoking_each_other_at_once_leave_one(
    engine: Engine, make_actor: Callable[..., Actor], database_url: str
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    root = make_actor(ADMIN, Role.ADMIN)
    with unit_of_work(engine) as session:
        for user in ("U0000000AA", "U0000000BB"):
            grant_role(session, root, user_id=user, role=Role.ADMIN)

    def a_revokes_b() -> None:
        with unit_of_work(engine) as session:
            revoke_role(session, _actor_of(session, "U0000000AA"), user_id="U0000000BB", role=Role.ADMIN)

    _refused_for_roles_changed_meanwhile(  # B is an admin as it reads its roles
        database_url,
        lambda session: revoke_role(session, _actor_of(session, "U0000000BB"), user_id="U0000000AA", role=Role.ADMIN),
        a_revokes_b,
    )
    with unit_of_work(engine) as session:
        admins = session.exec(select(RoleGrant.user_id).where(RoleGrant.role == Role.ADMIN)).all()
    assert admins == ["U0000000AA"]


def test_an_ao_named_on_a_system_and_replaced_meanwhile_approves_nothing(
    engine: Engine, make_actor: Callable[..., Actor], database_url: str
) -> None:
    """The system was read naming them its AO; an admin named another and
    committed; the approval went on, recorded after the change."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    from bot.poam.items import set_plan
    from bot.poam.review import approve_plan
    from bot.poam.systems import change_system

    admin, owner = make_actor(ADMIN, Role.ADMIN), make_actor("U00000ALICE")
    with unit_of_work(engine) as session:
        add_system(session, admin, name="Payroll", ao_user_id="U000SYSAO")
        log_item(session, owner, title="Weak TLS", severity=Severity.LOW, owner_id=owner.user_id, system_name="Payroll")
        set_plan(session, owner, number=1, plan="Disable TLS 1.0.")

    def replace_the_ao() -> None:
        with unit_of_work(engine) as session:
            change_system(session, admin, name="Payroll", ao_user_id="U000NEWAO")

    _refused_for_roles_changed_meanwhile(
        database_url, lambda session: approve_plan(session, _actor_of(session, "U000SYSAO"), number=1), replace_the_ao)
    with unit_of_work(engine) as session:
        assert session.exec(select(Item.plan_approved_by)).one() is None


def test_two_changes_of_one_digest_subscription_at_once_are_recorded_as_made(
    engine: Engine, make_actor: Callable[..., Actor]
) -> None:
    """Each read the subscription as it was before the other: the data ended
    Tuesday 10:00 while the newest event said Monday 10:00 (PostgreSQL)."""
    from datetime import time

    from bot.reminders import subscriptions
    from bot.store.models import DigestSubscription

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    admin = make_actor(ADMIN, Role.ADMIN)
    with unit_of_work(engine) as session:
        subscriptions.subscribe(session, admin, channel_id="C0DIGEST")  # Monday 09:00
    changed, release = threading.Event(), threading.Event()

    def to_tuesday() -> None:
        with unit_of_work(engine) as session:
            subscriptions.subscribe(session, admin, channel_id="C0DIGEST", weekday=1)
            changed.set()
            release.wait(JOIN_TIMEOUT)

    first = threading.Thread(target=to_tuesday)
    first.start()
    assert changed.wait(JOIN_TIMEOUT)

    def at_ten() -> None:
        with unit_of_work(engine) as session:
            subscriptions.subscribe(session, admin, channel_id="C0DIGEST", post_at=time(10, 0))

    second = threading.Thread(target=at_ten)
    second.start()
    wait_for_a_lock_wait(engine)  # the second waits for the first
    release.set()
    first.join(JOIN_TIMEOUT)
    second.join(JOIN_TIMEOUT)
    with unit_of_work(engine) as session:
        row = session.exec(select(DigestSubscription)).one()
        assert (row.weekday, row.post_at) == (1, time(10, 0))
    newest = [e.details for e in all_events(engine) if e.action == "digest.subscribed"][-1]
    assert (newest["weekday"], newest["at"]) == ({"from": "tuesday", "to": "tuesday"}, {"from": "09:00", "to": "10:00"})


def test_an_assignment_and_another_change_of_the_item_at_once_both_go_through(
    engine: Engine, make_actor: Callable[..., Actor]
) -> None:
    """The assignment took the workspace row (its owner's presence) before
    the item, every other change the item before the workspace row (its
    audit event): one of two at once ended in a deadlock (PostgreSQL)."""
    from bot.poam.items import assign_item, load_item, set_plan

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    admin, owner = make_actor(ADMIN, Role.ADMIN), make_actor("U0000OWNER")
    with unit_of_work(engine) as session:
        log_item(session, owner, title="Outdated OpenSSL", severity=Severity.HIGH, owner_id=owner.user_id)
    outcome: list[BaseException | None] = []

    def assign() -> None:
        try:
            with unit_of_work(engine) as session:
                assign_item(session, admin, number=1, owner_id="U00000BOB1")
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            outcome.append(error)

    with unit_of_work(engine) as session:
        load_item(session, owner, number=1, for_update=True)  # a change of the item, under way
        assigning = threading.Thread(target=assign)
        assigning.start()
        wait_for_a_lock_wait(engine)
        set_plan(session, owner, number=1, plan="Upgrade OpenSSL.")  # then its audit event: the workspace row
    assigning.join(JOIN_TIMEOUT)
    assert outcome == [None]
    with unit_of_work(engine, read_only=True) as session:
        item = session.exec(select(Item).where(Item.team_id == TEAM, Item.number == 1)).one()
        assert (item.owner_id, item.remediation_plan) == ("U00000BOB1", "Upgrade OpenSSL.")
