"""The audit trail: one event per operation, hash-chained per workspace, and
``verify_chain`` / ``verify_all`` finding edits and deletions made behind the
application's back (raw SQL)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from bot.config import Settings
from bot.poam import audit
from bot.poam.actor import Actor, Role
from bot.poam.errors import UNREADABLE, AuditTrailOutOfStep, InvalidInput, UnreadableEvent
from bot.poam.item_details import show_item
from bot.poam.item_lists import Scope, list_items
from bot.poam.items import assign_item, claim_item, item_history, log_item, release_item, set_plan
from bot.poam.milestones import add_milestone, complete_milestone, move_milestone
from bot.poam.roles import grant_role, list_roles, revoke_role
from bot.poam.severity import Severity
from bot.poam.systems import Impact, add_system, find_system, list_systems
from bot.serve import prepare_database
from bot.store.engine import unit_of_work
from bot.store.models import AuditEvent, Item, Workspace
from tests.db import events, run, statements

TEAM = "T0001"
ALICE = "U00000ALICE"
BOB = "U000000BOB"
ADMIN = "U0000ADMIN"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


# ---------------------------------------------------------------- helpers


def verify(engine: Engine, team: str = TEAM, anchors: Sequence[audit.Anchor] = ()) -> audit.ChainReport:
    with unit_of_work(engine, read_only=True) as session:
        return audit.verify_chain(session, team_id=team, anchors=anchors)


def item_id(engine: Engine, number: int, team: str = TEAM) -> int:
    with unit_of_work(engine) as session:
        item = session.exec(select(Item).where(Item.team_id == team, Item.number == number)).one()
        assert item.id is not None
        return item.id


def raw(engine: Engine, sql: str, **params: Any) -> int:
    with engine.begin() as connection:
        return connection.execute(text(sql), params).rowcount


def set_details(engine: Engine, seq: int, details: dict[str, Any], team: str = TEAM) -> None:
    cast = "CAST(:details AS json)" if engine.dialect.name == "postgresql" else ":details"
    changed = raw(
        engine,
        f"UPDATE audit_events SET details = {cast} WHERE team_id = :team AND seq = :seq",
        details=json.dumps(details), team=team, seq=seq,
    )
    assert changed == 1


def busy_workspace(engine: Engine, admin: Actor, alice: Actor, bob: Actor, team: str = TEAM) -> int:
    """A dozen different operations; returns how many events they wrote."""
    run(engine, lambda s: log_item(s, alice, title="Outdated OpenSSL", severity=Severity.HIGH))  # 1, 2
    run(engine, lambda s: log_item(s, bob, title="Weak TLS ciphers", severity=Severity.MODERATE))  # 3
    run(engine, lambda s: claim_item(s, alice, number=1))  # 4
    run(engine, lambda s: set_plan(s, alice, number=1, plan="Patch", resources="1 day"))  # 5
    run(engine, lambda s: add_milestone(s, alice, number=1, description="Staging", due_on=date(2026, 12, 1)))  # 6
    run(engine, lambda s: move_milestone(s, alice, number=1, milestone=1, due_on=date(2026, 12, 3), reason="CAB"))  # 7
    run(engine, lambda s: complete_milestone(s, alice, number=1, milestone=1))  # 8
    run(engine, lambda s: assign_item(s, admin, number=2, owner_id=BOB))  # 9
    run(engine, lambda s: release_item(s, bob, number=2))  # 10
    run(engine, lambda s: grant_role(s, admin, user_id=BOB, role=Role.VERIFIER))  # 11
    run(engine, lambda s: add_system(s, admin, name="Payroll"))  # 12
    return 12


# ---------------------------------------------------------------- one event per operation


def test_every_operation_writes_exactly_one_event(
    engine: Engine, admin: Actor, alice: Actor, bob: Actor, clock: Any
) -> None:
    steps: list[tuple[Callable[[Session], Any], str | None, str, int | None, dict[str, Any] | None]] = [
        # (operation, action written or None for reads, actor, item number, details)
        (
            lambda s: log_item(s, alice, title="Outdated OpenSSL", severity=Severity.HIGH, controls=["SI-2"]),
            "item.logged", ALICE, 1, None,
        ),
        (lambda s: show_item(s, bob, number=1), None, BOB, None, None),
        (lambda s: list_items(s, bob, scope=Scope.ALL), None, BOB, None, None),
        (lambda s: item_history(s, bob, number=1), None, BOB, None, None),
        (lambda s: list_systems(s, bob), None, BOB, None, None),
        (lambda s: find_system(s, bob, name="default"), None, BOB, None, None),
        (lambda s: list_roles(s, bob), None, BOB, None, None),
        (lambda s: claim_item(s, alice, number=1), "item.claimed", ALICE, 1, {"owner": {"from": None, "to": ALICE}, "status": {"from": "open", "to": "in_progress"}}),
        (
            lambda s: set_plan(s, alice, number=1, plan="Patch to 3.0.15"),
            "item.plan_set", ALICE, 1, {"plan": {"from": None, "to": "Patch to 3.0.15"}},
        ),
        (
            lambda s: add_milestone(s, alice, number=1, description="Staging", due_on=date(2026, 12, 1)),
            "milestone.added", ALICE, 1, {"milestone": 1, "description": "Staging", "due_on": "2026-12-01"},
        ),
        (
            lambda s: move_milestone(s, alice, number=1, milestone=1, due_on=date(2026, 12, 4), reason="CAB slot"),
            "milestone.moved", ALICE, 1,
            {"milestone": 1, "due_on": {"from": "2026-12-01", "to": "2026-12-04"}, "reason": "CAB slot"},
        ),
        (
            lambda s: complete_milestone(s, alice, number=1, milestone=1, note="done"),
            "milestone.completed", ALICE, 1,
            {"milestone": 1, "due_on": "2026-12-04", "completed_on": "2026-11-20", "note": "done"},
        ),
        (lambda s: release_item(s, alice, number=1), "item.released", ALICE, 1, {"owner": {"from": ALICE, "to": None}, "status": {"from": "in_progress", "to": "open"}}),
        (
            lambda s: assign_item(s, admin, number=1, owner_id=BOB),
            "item.assigned", ADMIN, 1, {"owner": {"from": None, "to": BOB}, "status": {"from": "open", "to": "in_progress"}},
        ),
        (
            lambda s: grant_role(s, admin, user_id=BOB, role=Role.AO),
            "role.granted", ADMIN, None, {"user": BOB, "role": "ao"},
        ),
        (
            lambda s: revoke_role(s, admin, user_id=BOB, role=Role.AO),
            "role.revoked", ADMIN, None, {"user": BOB, "role": "ao"},
        ),
        (
            lambda s: add_system(s, admin, name="Payroll", impact=Impact.HIGH),
            "system.added", ADMIN, None, {"system": "Payroll", "impact": "high", "organization": None, "ao": None},
        ),
    ]
    first = events(engine)
    assert first == []
    run(engine, steps[0][0])
    # First use of the workspace: its default system, then the operation itself.
    assert [(e.seq, e.action) for e in events(engine)] == [(1, "system.added"), (2, "item.logged")]
    for operation, action, actor_id, number, details in steps[1:]:
        clock.advance(minutes=1)
        before = events(engine)
        run(engine, operation)
        after = events(engine)
        if action is None:
            assert after == before, "a read wrote an audit event"
            continue
        assert len(after) == len(before) + 1, action
        assert after[:-1] == before  # nothing earlier was touched
        event = after[-1]
        assert event.seq == before[-1].seq + 1
        assert (event.action, event.actor_id, event.team_id) == (action, actor_id, TEAM)
        assert event.item_id == (item_id(engine, number) if number else None)
        assert event.at == clock.now()
        if details is not None:
            assert event.details == details
    assert verify(engine).ok


def test_chain_links_and_head(engine: Engine, admin: Actor, alice: Actor, bob: Actor) -> None:
    total = busy_workspace(engine, admin, alice, bob)
    trail = events(engine)
    assert [e.seq for e in trail] == list(range(1, total + 1))
    assert trail[0].prev_hash == ""
    for previous, event in zip(trail, trail[1:], strict=False):
        assert event.prev_hash == previous.hash
    for event in trail:
        assert len(event.hash) == 64 and int(event.hash, 16) >= 0
        assert event.hash == audit.event_hash(
            prev_hash=event.prev_hash, team_id=event.team_id, seq=event.seq, item_id=event.item_id,
            actor_id=event.actor_id, action=event.action, at=event.at, details=event.details,
        )
    assert len({e.hash for e in trail}) == total
    with unit_of_work(engine) as session:
        workspace = session.get(Workspace, TEAM)
        assert workspace is not None
        assert (workspace.audit_seq, workspace.audit_head) == (total, trail[-1].hash)
    report = verify(engine)
    assert (report.team_id, report.events, report.broken, report.ok) == (TEAM, total, None, True)


def test_an_audited_change_appends_its_event_and_head_together(engine: Engine, alice: Actor) -> None:
    """On PostgreSQL one statement inserts the event and moves the chain's head
    (a round trip less per change); SQLite runs the two on their own. Either
    way the chain verifies."""
    run(engine, lambda s: log_item(s, alice, title="Outdated OpenSSL", severity=Severity.HIGH))
    with statements(engine) as seen:
        run(engine, lambda s: claim_item(s, alice, number=1))
    writes = [statement for statement, _ in seen if "INSERT INTO audit_events" in statement or "SET audit_head" in statement]
    if engine.dialect.name == "postgresql":
        assert len(writes) == 1 and "INSERT INTO audit_events" in writes[0] and "SET audit_head" in writes[0]
    else:
        assert len(writes) == 2
    trail = events(engine)
    assert [(e.seq, e.action, e.actor_id) for e in trail][-1] == (len(trail), "item.claimed", ALICE)
    with unit_of_work(engine, read_only=True) as session:
        workspace = session.get(Workspace, TEAM)
        assert workspace is not None and workspace.audit_head == trail[-1].hash
    assert verify(engine).ok


def test_every_column_of_an_event_but_its_id_is_chained(alice: Actor) -> None:
    columns = set(AuditEvent.__table__.c.keys()) - {"id"}  # type: ignore[attr-defined]
    assert set(audit._EVENT_COLUMNS) == columns
    (row,) = audit._chained_rows(alice, [("item.claimed", 1, {})], first_seq=1, prev_hash="")
    assert set(row) == columns


def test_event_hash_covers_every_field() -> None:
    base: dict[str, Any] = {
        "prev_hash": "ab" * 32, "team_id": TEAM, "seq": 3, "item_id": 7, "actor_id": ALICE,
        "action": "item.claimed", "at": NOW, "details": {"owner": {"from": None, "to": ALICE}},
    }
    reference = audit.event_hash(**base)
    assert reference == audit.event_hash(**{**base, "details": {"owner": {"to": ALICE, "from": None}}})
    for field, value in [
        ("prev_hash", "cd" * 32), ("team_id", "T0002"), ("seq", 4), ("item_id", None), ("actor_id", BOB),
        ("action", "item.released"), ("at", NOW + timedelta(microseconds=1)),
        ("details", {"owner": {"from": None, "to": BOB}}),
    ]:
        assert audit.event_hash(**{**base, field: value}) != reference, field


def test_verify_after_many_operations(engine: Engine, admin: Actor, alice: Actor, bob: Actor, clock: Any) -> None:
    with unit_of_work(engine) as session:
        for n in range(1, 41):
            clock.advance(seconds=17)
            log_item(session, alice if n % 2 else bob, title=f"Finding {n} — café ☕", severity=Severity.LOW)
    for n in range(1, 41, 3):
        run(engine, lambda s, n=n: claim_item(s, alice, number=n))
        run(engine, lambda s, n=n: set_plan(s, alice, number=n, plan=f"Plan «{n}»\nline two"))
        run(engine, lambda s, n=n: add_milestone(s, alice, number=n, description="Step", due_on=date(2026, 12, 1)))
    for n in range(2, 41, 5):
        run(engine, lambda s, n=n: assign_item(s, admin, number=n, owner_id=BOB))
        run(engine, lambda s, n=n: release_item(s, admin, number=n))
    expected = 1 + 40 + 14 * 3 + 8 * 2
    report = verify(engine)
    assert report.ok, str(report.broken)
    assert report.events == expected == len(events(engine))


def test_verify_reads_in_batches(
    engine: Engine, admin: Actor, alice: Actor, bob: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = busy_workspace(engine, admin, alice, bob)
    monkeypatch.setattr(audit, "_VERIFY_BATCH", 5)
    assert verify(engine).events == total and verify(engine).ok
    set_details(engine, 11, {"user": ADMIN, "role": "verifier"})  # in the third batch
    broken = verify(engine).broken
    assert broken is not None and (broken.seq, broken.reason) == (11, "(role.granted) was altered")


def test_verify_unknown_workspace(engine: Engine) -> None:
    report = verify(engine, "T9999")
    assert (report.team_id, report.events, report.ok) == ("T9999", 0, True)


# ---------------------------------------------------------------- tampering


@pytest.fixture
def trail(engine: Engine, admin: Actor, alice: Actor, bob: Actor) -> Engine:
    assert busy_workspace(engine, admin, alice, bob) == 12
    assert verify(engine).ok
    return engine


def assert_broken(engine: Engine, seq: int, reason: str, events_read: int) -> None:
    report = verify(engine)
    assert not report.ok
    assert report.broken == audit.ChainBreak(TEAM, seq, reason)
    assert str(report.broken) == f"workspace {TEAM}: audit event #{seq} {reason}"
    assert report.events == events_read


def test_edited_details_are_reported(trail: Engine) -> None:
    assert events(trail)[3].action == "item.claimed"
    set_details(trail, 4, {"owner": {"from": None, "to": "U0MALLORY"}})
    assert_broken(trail, 4, "(item.claimed) was altered", 4)


def test_edited_actor_is_reported(trail: Engine) -> None:
    assert raw(trail, "UPDATE audit_events SET actor_id = 'U0MALLORY' WHERE team_id = :t AND seq = 9", t=TEAM) == 1
    assert_broken(trail, 9, "(item.assigned) was altered", 9)


@pytest.mark.parametrize(
    ("column", "value"),
    [("action", "item.released"), ("item_id", None), ("team_id", "T0666")],
)
def test_other_edited_columns_are_reported(trail: Engine, column: str, value: Any) -> None:
    if column == "team_id":
        # Moving an event to another workspace leaves a gap in this one.
        raw(trail, "INSERT INTO workspaces (team_id, last_item_number, audit_seq, audit_head, created_at) "
            "SELECT 'T0666', 0, 0, '', created_at FROM workspaces WHERE team_id = :t", t=TEAM)
        raw(trail, "UPDATE audit_events SET team_id = :v WHERE team_id = :t AND seq = 5", v=value, t=TEAM)
        assert_broken(trail, 5, "is missing (deleted)", 5)
        return
    raw(trail, f"UPDATE audit_events SET {column} = :v WHERE team_id = :t AND seq = 5", v=value, t=TEAM)
    assert_broken(trail, 5, "(item.plan_set) was altered" if column != "action" else "(item.released) was altered", 5)


@pytest.mark.parametrize(("column", "value"), [
    ("at", "2026-11-20 15:00:00.000000 FORGED"), ("at", ""), ("at", 12345), ("details", "not json"),
])
def test_a_column_edited_into_text_the_bot_never_writes_is_reported(trail: Engine, column: str, value: object) -> None:
    """SQLite keeps any text in any column: reading the event raised, and
    `audit verify` ended in a traceback instead of naming it."""
    if trail.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's typed columns refuse such text")
    raw(trail, f"UPDATE audit_events SET {column} = :v WHERE team_id = :t AND seq = 10", v=value, t=TEAM)
    assert_broken(trail, 10, UNREADABLE, 10)
    with unit_of_work(trail, read_only=True) as session:
        read = []
        with pytest.raises(UnreadableEvent, match="audit event #10 cannot be read"):
            read.extend(event["seq"] for event in audit.trail(session, team_id=TEAM))
    assert read == list(range(1, 10))


def test_items_renumbered_behind_the_chain_are_reported(trail: Engine) -> None:
    """The chain names items by id: POAM-1 and POAM-2 swapped by hand verified
    "intact", and each one's trail read as the other's."""
    for old, new in ((1, 999), (2, 1), (999, 2)):
        assert raw(trail, "UPDATE items SET number = :n WHERE team_id = :t AND number = :o", n=new, o=old, t=TEAM) == 1
    assert_broken(trail, 2, "made item number 1, which is numbered 2 now (renumbered outside the bot)", 12)


def test_edited_timestamp_is_reported(trail: Engine) -> None:
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with trail.begin() as connection:
        connection.execute(
            table.update().where(table.c.team_id == TEAM, table.c.seq == 7).values(at=NOW - timedelta(days=30))
        )
    assert_broken(trail, 7, "(milestone.moved) was altered", 7)


def test_deleted_middle_event_is_reported(trail: Engine) -> None:
    assert raw(trail, "DELETE FROM audit_events WHERE team_id = :t AND seq = 6", t=TEAM) == 1
    assert_broken(trail, 6, "is missing (deleted)", 6)


def test_deleted_first_event_is_reported(trail: Engine) -> None:
    raw(trail, "DELETE FROM audit_events WHERE team_id = :t AND seq = 1", t=TEAM)
    assert_broken(trail, 1, "is missing (deleted)", 1)


def test_deleted_newest_event_is_reported(trail: Engine) -> None:
    raw(trail, "DELETE FROM audit_events WHERE team_id = :t AND seq = 12", t=TEAM)
    assert_broken(trail, 12, "is missing (the newest events were deleted)", 11)


def test_deleted_newest_events_are_reported(trail: Engine) -> None:
    raw(trail, "DELETE FROM audit_events WHERE team_id = :t AND seq >= 10", t=TEAM)
    assert_broken(trail, 10, "is missing (the newest events were deleted)", 9)


def test_deleting_every_event_is_reported(trail: Engine) -> None:
    raw(trail, "DELETE FROM audit_events WHERE team_id = :t", t=TEAM)
    assert_broken(trail, 1, "is missing (the newest events were deleted)", 0)


def test_rehashed_edit_breaks_the_next_link(trail: Engine) -> None:
    """Someone who edits an event *and* fixes its hash is caught by the next event."""
    victim = events(trail)[7]
    forged_details = {**victim.details, "note": "forged"}
    forged_hash = audit.event_hash(
        prev_hash=victim.prev_hash, team_id=victim.team_id, seq=victim.seq, item_id=victim.item_id,
        actor_id=victim.actor_id, action=victim.action, at=victim.at, details=forged_details,
    )
    set_details(trail, 8, forged_details)
    raw(trail, "UPDATE audit_events SET hash = :h WHERE team_id = :t AND seq = 8", h=forged_hash, t=TEAM)
    assert_broken(trail, 9, "does not follow the event before it", 9)


def test_rehashed_newest_event_breaks_the_head(trail: Engine) -> None:
    newest = events(trail)[-1]
    forged_details = {**newest.details, "impact": "low"}
    forged_hash = audit.event_hash(
        prev_hash=newest.prev_hash, team_id=newest.team_id, seq=newest.seq, item_id=newest.item_id,
        actor_id=newest.actor_id, action=newest.action, at=newest.at, details=forged_details,
    )
    set_details(trail, 12, forged_details)
    raw(trail, "UPDATE audit_events SET hash = :h WHERE team_id = :t AND seq = 12", h=forged_hash, t=TEAM)
    assert_broken(trail, 12, "was replaced (it does not match the recorded head)", 12)


def _rewrite_from(trail: Engine, seq: int, note: str) -> None:
    """Edit event ``seq``, recompute every hash from there and move the head:
    what someone who can write to the database can do, and the chain alone
    cannot tell."""
    prev = ""
    for event in events(trail):
        details = {**event.details, "note": note} if event.seq == seq else event.details
        if event.seq >= seq:
            new_hash = audit.event_hash(prev_hash=prev, team_id=event.team_id, seq=event.seq, item_id=event.item_id,
                                        actor_id=event.actor_id, action=event.action, at=event.at, details=details)
            set_details(trail, event.seq, details)
            raw(trail, "UPDATE audit_events SET prev_hash = :p, hash = :h WHERE team_id = :t AND seq = :s",
                p=prev, h=new_hash, t=TEAM, s=event.seq)
            prev = new_hash
        else:
            prev = event.hash
    raw(trail, "UPDATE workspaces SET audit_head = :h WHERE team_id = :t", h=prev, t=TEAM)


def test_a_rewrite_with_hashes_recomputed_is_caught_by_a_head_kept_elsewhere(trail: Engine) -> None:
    kept = verify(trail).head  # as a digest posted it in Slack
    assert kept is not None and (kept.seq, kept.hash) == (12, events(trail)[-1].hash)
    short = audit.Anchor(TEAM, kept.seq, kept.hash[: audit.ANCHOR_PREFIX])
    _rewrite_from(trail, 3, "forged")
    assert verify(trail).ok  # the chain alone cannot tell
    report = verify(trail, anchors=[short])
    assert str(report.broken) == f"workspace {TEAM}: audit event #12 {audit.NOT_AS_ANCHORED}"


def test_newest_events_deleted_and_the_head_moved_back_are_caught_by_a_head_kept_elsewhere(trail: Engine) -> None:
    kept = verify(trail).head
    assert kept is not None
    newest = events(trail)[-3]
    raw(trail, "DELETE FROM audit_events WHERE team_id = :t AND seq > 10", t=TEAM)
    raw(trail, "UPDATE workspaces SET audit_seq = 10, audit_head = :h WHERE team_id = :t", h=events(trail)[-1].hash,
        t=TEAM)
    assert verify(trail).ok and newest.seq == 10
    report = verify(trail, anchors=[kept])
    assert str(report.broken) == f"workspace {TEAM}: audit event #11 {audit.NEWEST_DELETED}"


def test_every_anchor_of_an_event_counts(trail: Engine) -> None:
    kept = verify(trail).head
    assert kept is not None
    wrong = audit.Anchor(TEAM, kept.seq, "0" * audit.ANCHOR_PREFIX)
    for anchors in ([wrong, kept], [kept, wrong]):  # the last one alone was checked
        assert not verify(trail, anchors=anchors).ok


@pytest.mark.parametrize("text", ["T0001:12", "T0001:0:" + "a" * 16, "T0001:12:" + "a" * 15, "T0001:12:" + "g" * 16,
                                  ":12:" + "a" * 16, "T0001:\u00b2:" + "a" * 16])
def test_an_anchor_not_written_as_a_digest_shows_it_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not an audit anchor; write it TEAM:SEQ:HASH"):
        audit.Anchor.parse(text)


def test_forged_event_appended_behind_the_head_is_reported(trail: Engine) -> None:
    """An event added with raw SQL, correctly chained to the newest one, is still
    caught: the workspace row's head does not name it."""
    newest = events(trail)[-1]
    at = NOW + timedelta(hours=1)
    details = {"user": "U0MALLORY", "role": "admin"}
    forged_hash = audit.event_hash(
        prev_hash=newest.hash, team_id=TEAM, seq=13, item_id=None, actor_id=ADMIN,
        action="role.granted", at=at, details=details,
    )
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with trail.begin() as connection:
        connection.execute(
            table.insert().values(
                team_id=TEAM, seq=13, item_id=None, actor_id=ADMIN, action="role.granted", at=at,
                details=details, prev_hash=newest.hash, hash=forged_hash,
            )
        )
    report = verify(trail)
    assert report.broken == audit.ChainBreak(TEAM, 13, "is not in the recorded chain (added afterwards)")
    assert report.events == 13


@pytest.mark.parametrize("seq", [0, -5])
def test_a_forged_event_numbered_before_the_first_is_reported_and_exported(trail: Engine, seq: int) -> None:
    """Numbered 0 or below, an event written by hand was passed over by the
    walk, though the item's history and the OSCAL risk log showed it."""
    at, details = NOW - timedelta(days=1), {"note": "forged: rescan clean"}
    with trail.begin() as connection:
        connection.execute(AuditEvent.__table__.insert().values(  # type: ignore[attr-defined]
            team_id=TEAM, seq=seq, item_id=None, actor_id=ADMIN, action="fix.verified", at=at,
            details=details, prev_hash="", hash="0" * 64,
        ))
    report = verify(trail)
    assert report.broken == audit.ChainBreak(TEAM, seq, audit.BEFORE_THE_START)
    with unit_of_work(trail, read_only=True) as session:  # the assessor's export holds what the users see
        assert next(audit.trail(session, team_id=TEAM))["seq"] == seq


def _forge_after_newest(trail: Engine, *, skip: int = 0) -> None:
    """An event appended with raw SQL (``skip`` numbers after the newest),
    chained to the newest one but not to the workspace's head."""
    newest = events(trail)[-1]
    seq, at = newest.seq + 1 + skip, NOW + timedelta(hours=1)
    forged = audit.event_hash(
        prev_hash=newest.hash, team_id=TEAM, seq=seq, item_id=None, actor_id=ADMIN,
        action="role.granted", at=at, details={},
    )
    with trail.begin() as connection:
        connection.execute(AuditEvent.__table__.insert().values(  # type: ignore[attr-defined]
            team_id=TEAM, seq=seq, item_id=None, actor_id=ADMIN, action="role.granted", at=at,
            details={}, prev_hash=newest.hash, hash=forged,
        ))


def test_a_change_where_the_chain_is_past_its_head_is_refused_and_changes_nothing(trail: Engine, alice: Actor) -> None:
    """Its event would take a number the chain already has: a clear refusal,
    not a database error, and nothing of the change stays."""
    _forge_after_newest(trail)
    with pytest.raises(AuditTrailOutOfStep) as refused:
        run(trail, lambda s: log_item(s, alice, title="Later", severity=Severity.LOW))
    assert refused.value.message == audit.OUT_OF_STEP and "poam-bot audit verify" in refused.value.message
    with unit_of_work(trail, read_only=True) as session:
        assert [item.title for item in session.exec(select(Item).where(Item.title == "Later")).all()] == []
        assert session.get(Workspace, TEAM).audit_seq == 12  # type: ignore[union-attr]
    assert len(events(trail)) == 13


def test_a_refused_change_cannot_commit_even_where_the_refusal_is_caught(trail: Engine, alice: Actor) -> None:
    """The refusal comes after the operation's writes: a caller that catches
    it and lets its unit of work commit commits nothing of the change."""
    _forge_after_newest(trail)

    def catches(session: Session) -> None:
        with pytest.raises(AuditTrailOutOfStep):
            log_item(session, alice, title="Later", severity=Severity.LOW)

    run(trail, catches)
    with unit_of_work(trail, read_only=True) as session:
        assert session.exec(select(Item).where(Item.title == "Later")).all() == []
        assert session.get(Workspace, TEAM).audit_seq == 12  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("forge", audit.ChainBreak(TEAM, 13, audit.ADDED_AFTERWARDS)),
        ("forge past a gap", audit.ChainBreak(TEAM, 15, audit.ADDED_AFTERWARDS)),
        ("DELETE FROM audit_events WHERE team_id = :t AND seq >= 11", audit.ChainBreak(TEAM, 11, audit.NEWEST_DELETED)),
        ("UPDATE workspaces SET audit_head = 'x' WHERE team_id = :t", audit.ChainBreak(TEAM, 12, audit.HEAD_REPLACED)),
    ],
)
def test_the_head_check_finds_what_a_full_walk_finds_at_the_newest_end(
    trail: Engine, tamper: str, expected: audit.ChainBreak
) -> None:
    with unit_of_work(trail, read_only=True) as session:
        assert audit.head_breaks(session) == []
    if tamper.startswith("forge"):
        _forge_after_newest(trail, skip=2 if "gap" in tamper else 0)
    else:
        raw(trail, tamper, t=TEAM)
    with unit_of_work(trail, read_only=True) as session:
        assert audit.head_breaks(session) == [expected]
    assert verify(trail).broken == expected


def test_start_up_logs_a_workspace_whose_trail_does_not_end_at_its_head(
    trail: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw(trail, "UPDATE workspaces SET audit_head = 'x' WHERE team_id = :t", t=TEAM)
    with caplog.at_level(logging.ERROR, logger="bot.serve"):
        prepare_database(Settings(_env_file=None, database_url=database_url))  # type: ignore[call-arg]
    (logged,) = [record.getMessage() for record in caplog.records if record.name == "bot.serve"]
    assert logged.startswith(f"workspace {TEAM}: audit event #12 was replaced") and "poam-bot audit verify" in logged


def test_chain_continues_after_verification(trail: Engine, alice: Actor) -> None:
    run(trail, lambda s: log_item(s, alice, title="Later", severity=Severity.LOW))
    assert verify(trail).ok and verify(trail).events == 13


# ---------------------------------------------------------------- several workspaces


def test_verify_all_covers_every_workspace(
    engine: Engine, make_actor: Callable[..., Actor]
) -> None:
    assert run(engine, audit.verify_all) == []
    for team in ("T0003", "T0001", "T0002"):
        admin = make_actor(ADMIN, Role.ADMIN, team=team)
        alice = make_actor(ALICE, team=team)
        bob = make_actor(BOB, team=team)
        busy_workspace(engine, admin, alice, bob, team=team)
    # Each workspace has its own chain starting at 1.
    for team in ("T0001", "T0002", "T0003"):
        assert [e.seq for e in events(engine, team)] == list(range(1, 13))
    reports = run(engine, audit.verify_all)
    assert [(r.team_id, r.events, r.ok) for r in reports] == [("T0001", 12, True), ("T0002", 12, True), ("T0003", 12, True)]

    set_details(engine, 3, {"forged": True}, team="T0002")
    raw(engine, "DELETE FROM audit_events WHERE team_id = 'T0003' AND seq = 12")
    reports = run(engine, audit.verify_all)
    assert [r.team_id for r in reports] == ["T0001", "T0002", "T0003"]
    assert reports[0].ok
    assert reports[1].broken == audit.ChainBreak("T0002", 3, "(item.logged) was altered")
    assert reports[2].broken == audit.ChainBreak("T0003", 12, "is missing (the newest events were deleted)")


def test_same_content_in_two_workspaces_hashes_differently(engine: Engine, make_actor: Callable[..., Actor]) -> None:
    for team in ("T0001", "T0002"):
        run(engine, lambda s, team=team: log_item(s, make_actor(ALICE, team=team), title="Same", severity=Severity.LOW))
    ours, theirs = events(engine, "T0001"), events(engine, "T0002")
    assert [e.details for e in ours] == [e.details for e in theirs]
    assert {e.hash for e in ours}.isdisjoint({e.hash for e in theirs})


# ---------------------------------------------------------------- text round trips


def test_unicode_and_markup_round_trip_through_the_chain(engine: Engine, alice: Actor) -> None:
    title = 'Café ☕ 日本語 "quoted" \\ back <@U123> `code` \U0001f512'
    run(engine, lambda s: log_item(s, alice, title=title, severity=Severity.LOW, owner_id=ALICE))
    run(engine, lambda s: set_plan(s, alice, number=1, plan="Ünïcödé\ttabs\nand\r\nnewlines"))
    assert events(engine)[1].details["title"] == title
    assert verify(engine).ok


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ({"title": "bad \ud800 text"}, "title", "The title contains characters that are not valid text; retype it."),
        (
            {"title": "ok", "description": "\udfff"},
            "description",
            "The description contains characters that are not valid text; retype it.",
        ),
        ({"title": "ok", "assets": ["web-\ud83d"]}, "assets", "An asset id contains characters that are not valid text; retype it."),
    ],
)
def test_lone_surrogate_is_invalid_input(
    engine: Engine, alice: Actor, arguments: dict[str, Any], field: str, message: str
) -> None:
    # Regression: a lone UTF-16 surrogate (a JSON payload can carry "\\ud800") once
    # reached audit.event_hash and failed there with UnicodeEncodeError.
    run(engine, lambda s: log_item(s, alice, title="first", severity=Severity.LOW))
    before = events(engine)
    with unit_of_work(engine) as session, pytest.raises(InvalidInput) as raised:
        log_item(session, alice, severity=Severity.LOW, **arguments)
    assert (raised.value.message, raised.value.field) == (message, field)
    assert events(engine) == before
    assert verify(engine).ok
