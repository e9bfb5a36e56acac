"""Two schedulers at once (issue 5): separate processes on PostgreSQL, and two
schedulers in one process handing the lease over.

The process tests start two Python processes that each build their own
engine, ``Settings`` and ``Scheduler`` (with a ``FixedClock`` at the same
instant) and tick a few times, released together, against one database and
the fake Slack served by this test process. Whatever the interleaving, each
reminder DM, nudge and digest must reach Slack exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.poam import review
from bot.poam.actor import Role
from bot.poam.systems import ensure_workspace
from bot.reminders import subscriptions
from bot.reminders.scheduler import LEASE_TTL, STOP_SECONDS
from bot.serve import CHILD_STOP_SECONDS
from bot.store import outbox
from bot.store.engine import unit_of_work
from bot.store.models import SchedulerLease
from tests import test_reminders as harness
from tests.e2e.conftest import wait_for
from tests.test_reminders import (
    ADMIN,
    AO,
    CHANNEL,
    DIGEST_CHANNEL,
    OWNER,
    THREAD,
    World,
    make_scheduler,
    overdue_item,
    utc,
)

# The fixtures of the shared harness (the fake Slack, the world).
fake_api, fake, make_world, world = harness.fake_api, harness.fake, harness.make_world, harness.world

ROOT = Path(__file__).resolve().parent.parent
MONDAY_NINE = utc(2026, 11, 23, 9, 0)
OWNERS = [f"U00OWNER{n:02d}" for n in range(30)]

SCRIPT = r"""
import json, sys, time
from datetime import datetime
from pathlib import Path

from slack_sdk import WebClient

from bot.config import Settings
from bot.poam.clock import FixedClock
from bot.reminders import scheduler as scheduling
from bot.reminders.dispatch import Pacer
from bot.store.engine import make_engine

url, api, start, ticks, step, always_lead, workdir, name = sys.argv[1:]
if always_lead == "1":
    # As if the lease failed to keep them apart: both plan and dispatch every tick.
    scheduling.take_lease = lambda session, **kwargs: True
settings = Settings(_env_file=None, database_url=url, poam_timezone="UTC")
engine = make_engine(url)
clock = FixedClock(datetime.fromisoformat(start))
worker = scheduling.Scheduler(
    engine=engine, client=WebClient(token="xoxb-x", base_url=api), settings=settings, clock=clock,
    pacer=Pacer(interval=0),
)
engine.connect().close()  # connected before the start line
Path(workdir, name + ".ready").touch()
go = Path(workdir, "go")
while not go.exists():
    time.sleep(0.001)
reports = []
for _ in range(int(ticks)):
    report = worker.tick()
    reports.append({"leader": report.leader, "planned": report.planned, "expired": report.expired,
                    "sent": report.dispatched.sent if report.dispatched else 0})
    clock.advance(seconds=float(step))
print(json.dumps(reports))
"""


def populate(world: World) -> set[str]:
    """Thirty owners with an overdue item, an AO, an unclaimed item, a risk acceptance
    ending, a digest subscription; returns who should get exactly one message on Monday 09:00."""
    world.at(utc(2026, 11, 13, 10))
    world.grant(AO, Role.AO)
    world.log("Unclaimed finding", channel=CHANNEL, thread=THREAD)
    accepted = world.log("Accepted until Friday", owner=OWNER, due=date(2026, 12, 10))
    world.do(lambda s: review.accept_risk(s, world.actor(AO, Role.AO), number=accepted, until=date(2026, 11, 20), rationale="ok"))
    for owner in OWNERS:
        overdue_item(world, owner)
    world.do(lambda s: subscriptions.subscribe(s, world.actor(ADMIN, Role.ADMIN), channel_id=DIGEST_CHANNEL))
    return {*OWNERS, AO, CHANNEL, DIGEST_CHANNEL}


def run_two(world: World, database_url: str, tmp_path: Path, *, ticks: int, step: float, always_lead: bool) -> list[list[dict[str, Any]]]:
    """Start two scheduler processes, release them together, return each one's tick reports."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [database_url, world.fake.base_url, MONDAY_NINE.isoformat(), str(ticks), str(step), "1" if always_lead else "0", str(tmp_path)]
    processes = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, *args, name], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"{name}.ready").exists() for name in ("a", "b")):
            assert time.monotonic() < deadline, "scheduler processes did not start"
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            time.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = [p.communicate(timeout=60) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def expiries(world: World) -> int:
    with world.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM audit_events WHERE action = 'risk.expired'")).scalar_one()


postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@postgres_only
def test_two_scheduler_processes_send_each_reminder_and_digest_exactly_once(world: World, database_url: str, tmp_path: Path) -> None:
    expected = populate(world)
    a, b = run_two(world, database_url, tmp_path, ticks=6, step=10, always_lead=False)

    sent = Counter(p["channel"] for p in world.posts())
    assert sent == Counter(expected)
    assert len(world.outbox()) == len(expected)
    # One process held the lease throughout; the other never worked.
    leaders = sorted([[r["leader"] for r in a], [r["leader"] for r in b]])
    assert leaders == [[False] * 6, [True] * 6]
    assert sum(r["planned"] for r in a + b) == len(expected)
    assert sum(r["sent"] for r in a + b) == len(expected)
    assert sum(r["expired"] for r in a + b) == 1 == expiries(world)
    nudge = next(p for p in world.posts() if p["channel"] == CHANNEL)
    assert nudge["thread_ts"] == THREAD


@postgres_only
def test_even_two_processes_both_working_send_each_message_once(world: World, database_url: str, tmp_path: Path) -> None:
    """Without the lease keeping them apart (both "lead" every tick), the outbox's
    unique key and ``FOR UPDATE SKIP LOCKED`` claims still deliver each message once."""
    expected = populate(world)
    a, b = run_two(world, database_url, tmp_path, ticks=4, step=0, always_lead=True)

    assert all(r["leader"] for r in a + b)
    sent = Counter(p["channel"] for p in world.posts())
    assert sent == Counter(expected)
    assert sum(r["planned"] for r in a + b) == len(expected)
    assert sum(r["sent"] for r in a + b) == len(expected)
    assert sum(r["expired"] for r in a + b) == 1 == expiries(world)
    with unit_of_work(world.engine, read_only=True) as session:
        assert session.exec(text("SELECT count(*) FROM outbox WHERE status <> 'sent'")).scalar_one() == 0  # type: ignore[call-overload]


# ---------------------------------------------------------------- one process, two schedulers


def lease_holder(world: World) -> str:
    with unit_of_work(world.engine, read_only=True) as session:
        lease = session.get(SchedulerLease, "scheduler")
        assert lease is not None
        return lease.holder


def test_only_the_lease_holder_works_and_the_other_takes_over_when_it_lapses(world: World, database_url: str) -> None:
    first = world.scheduler
    second = make_scheduler(world.engine, world.fake, world.clock, database_url)
    world.at(utc(2026, 11, 19, 12))
    overdue_item(world, OWNERS[0])
    world.at(MONDAY_NINE)

    report = first.tick()
    assert report.leader and report.planned == 1 and report.dispatched is not None and report.dispatched.sent == 1
    assert lease_holder(world) == first.holder

    # The other scheduler ticks but does nothing, even with work waiting.
    world.at(MONDAY_NINE + timedelta(seconds=10))
    overdue_item(world, OWNERS[1])
    idle = second.tick()
    assert (idle.leader, idle.planned, idle.expired, idle.dispatched) == (False, 0, 0, None)
    assert [p["channel"] for p in world.posts()] == [OWNERS[0]]
    assert len(world.outbox()) == 1
    assert first.tick().planned == 1
    assert [p["channel"] for p in world.posts()] == [OWNERS[0], OWNERS[1]]

    # Renewed on every tick: 30 s later the holder still has it.
    world.clock.advance(seconds=30)
    assert first.tick().leader and not second.tick().leader
    renewed_at = world.clock.now()

    # The holder stops ticking; until its lease has lapsed nobody else may work.
    world.clock.set(renewed_at + LEASE_TTL)
    overdue_item(world, OWNERS[2])
    assert not second.tick().leader
    world.clock.set(renewed_at + LEASE_TTL + timedelta(seconds=1))
    took_over = second.tick()
    assert took_over.leader and took_over.planned == 1
    assert lease_holder(world) == second.holder
    assert [p["channel"] for p in world.posts()] == OWNERS[:3]

    # The old holder comes back: it is the follower now.
    overdue_item(world, OWNERS[3])
    assert not first.tick().leader
    assert len(world.posts()) == 3
    assert second.tick().leader
    assert Counter(p["channel"] for p in world.posts()) == Counter(OWNERS[:4])


# ---------------------------------------------------------------- told to stop


def _queue_two(world: World) -> None:
    """Two messages due now (the scheduler process ticks on the wall clock)."""
    now = datetime.now(UTC)
    admin = world.actor(ADMIN)
    with unit_of_work(world.engine) as session:
        ensure_workspace(session, admin)
        for owner in OWNERS[:2]:
            outbox.insert_once(session, team_id=admin.team_id, recipient=owner, kind="reminder", subject="stop",
                               local_day=now.date(), next_attempt_at=now, created_at=now, text=f"For {owner}")


def _scheduler_sending(world: World, database_url: str, tmp_path: Path) -> subprocess.Popen[str]:
    """``poam-bot scheduler``, once Slack has its first post (held, by the caller)."""
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-stop-test", "SLACK_SIGNING_SECRET": "stop-test-secret",
           "SLACK_API_URL": world.fake.base_url, "DATABASE_URL": database_url}
    scheduler = subprocess.Popen([sys.executable, "-m", "bot", "scheduler"], cwd=tmp_path, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: world.posts() or scheduler.poll() is not None, timeout=30)
    except BaseException:
        scheduler.kill()
        raise
    return scheduler


def test_a_scheduler_told_to_stop_finishes_its_send_in_flight_and_begins_no_other(
    world: World, database_url: str, tmp_path: Path
) -> None:
    """SIGTERM (a stop, a redeploy) killed ``poam-bot scheduler`` mid-send: the
    message was posted, its row not marked sent, and after the restart it
    was posted again. Ctrl-C's SIGINT and the keeper's SIGTERM come close
    together: the second handler waited forever for a lock the first held."""
    _queue_two(world)
    with world.fake.hold("chat.postMessage"):
        scheduler = _scheduler_sending(world, database_url, tmp_path)
        scheduler.send_signal(signal.SIGINT)
        scheduler.send_signal(signal.SIGTERM)
        time.sleep(1)  # told to stop while Slack holds the send
    output, _ = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, output
    (posted,) = world.posts()
    assert {row.recipient: row.status for row in world.outbox()} == {
        owner: "sent" if owner == posted["channel"] else "pending" for owner in OWNERS[:2]}


def test_a_scheduler_told_to_stop_leaves_before_its_keeper_kills_it(
    world: World, database_url: str, tmp_path: Path
) -> None:
    """A send Slack holds (the fake answers after 10 s) is given up after
    STOP_SECONDS, before ``serve``'s keeper would kill the scheduler."""
    _queue_two(world)
    with world.fake.hold("chat.postMessage"):
        scheduler = _scheduler_sending(world, database_url, tmp_path)
        told = time.monotonic()
        scheduler.send_signal(signal.SIGTERM)
        try:
            output, _ = scheduler.communicate(timeout=CHILD_STOP_SECONDS)
        finally:
            scheduler.kill()
        took = time.monotonic() - told
    assert scheduler.returncode == 1 and STOP_SECONDS <= took < CHILD_STOP_SECONDS, (took, output)
    assert "was not over 8 s after it was told to stop; stopping anyway" in output, output
    assert len(world.posts()) == 1
