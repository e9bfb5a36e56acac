"""Fill a workspace with a large, realistic POA&M, fast and deterministically.

    python bench/seed.py --items 100000 --database-url sqlite:///bench.db
    python bench/seed.py --items 100000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

N items over 1,000 people, about 5 milestones each (some moved, some done),
a valid hash-chained audit trail (one event per item), 20 verifiers and 5
AOs. Bulk inserts in batches, no ORM objects; the same
--seed gives the same data. Prints what it wrote and how long it took.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text, update

from bot.poam.audit import event_hash
from bot.poam.deadlines import FEDRAMP
from bot.poam.lifecycle import Status
from bot.poam.severity import Severity
from bot.store.engine import dispose, make_engine
from bot.store.migrate import upgrade
from bot.store.models import AuditEvent, InfoSystem, Item, ItemControl, Milestone, MilestoneChange, RoleGrant, Workspace

BATCH = 5_000
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
CONTROLS = ["AC-2", "AC-17", "CM-6", "IA-2", "RA-5", "SC-7", "SC-8", "SC-13", "SI-2", "SI-4"]
STATUSES = [Status.OPEN] * 2 + [Status.IN_PROGRESS] * 5 + [Status.PENDING_VERIFICATION] + [Status.CLOSED] * 2


def people(count: int) -> list[str]:
    return [f"U{index:08d}" for index in range(count)]


class Chain:
    """Builds audit rows with a valid hash chain, in order."""

    def __init__(self, team_id: str) -> None:
        self.team_id, self.seq, self.head = team_id, 0, ""

    def event(self, *, item_id: int | None, actor: str, action: str, at: datetime, details: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        digest = event_hash(prev_hash=self.head, team_id=self.team_id, seq=self.seq, item_id=item_id,
                            actor_id=actor, action=action, at=at, details=details)
        row = {"team_id": self.team_id, "seq": self.seq, "item_id": item_id, "actor_id": actor, "action": action,
               "at": at, "details": details, "prev_hash": self.head, "hash": digest}
        self.head = digest
        return row


def _flush(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
        rows.clear()


def seed(engine: Engine, *, team_id: str, items: int, people_count: int, seed_value: int) -> dict[str, int]:
    rng = random.Random(seed_value)
    users = people(people_count)
    chain = Chain(team_id)
    with engine.begin() as connection:
        connection.execute(insert(Workspace), [{"team_id": team_id, "last_item_number": 0, "audit_seq": 0,
                                                "audit_head": "", "created_at": NOW}])
        system_id = connection.execute(
            insert(InfoSystem).returning(InfoSystem.id),
            [{"team_id": team_id, "name": "Default", "name_key": "default", "impact": "moderate", "is_default": True,
              "created_by": users[0], "created_at": NOW}],
        ).scalar_one()
        connection.execute(insert(RoleGrant), [
            {"team_id": team_id, "user_id": user, "role": role, "granted_by": users[0], "granted_at": NOW}
            for user, role in [(u, "verifier") for u in users[1:21]] + [(u, "ao") for u in users[21:26]]
        ])
    counts = {"items": 0, "milestones": 0, "changes": 0, "events": 0}
    item_rows: list[dict[str, Any]] = []
    for number in range(1, items + 1):
        severity = rng.choice(list(Severity))
        detected = NOW.date() - timedelta(days=rng.randint(0, 400))
        due = FEDRAMP.due_date(severity=severity, detected_on=detected)
        status = rng.choice(STATUSES)
        owner = None if status == Status.OPEN else rng.choice(users)
        created = datetime.combine(detected, datetime.min.time(), UTC) + timedelta(hours=9)
        item_rows.append({
            "team_id": team_id, "number": number, "system_id": system_id, "title": f"Finding {number}: {rng.choice(CONTROLS)} weakness",
            "description": "Seeded for benchmarks.", "source": "scan", "source_identifier": str(rng.randint(10000, 99999)),
            "assets": [f"host-{rng.randint(1, 5000):04d}"], "cves": [], "severity": severity, "status": status,
            "owner_id": owner, "detected_on": detected, "scheduled_completion_on": due, "due_on": due,
            "remediation_plan": "Patch and rescan." if owner else None, "vendor_dependency": False,
            "created_by": rng.choice(users), "created_at": created, "updated_at": created,
            "closed_at": created + timedelta(days=20) if status == Status.CLOSED else None,
            "closure": "remediated" if status == Status.CLOSED else None, "version": 1,
        })
        if len(item_rows) >= BATCH or number == items:
            counts.update(_write_batch(engine, item_rows, team_id, chain, rng, counts))
    with engine.begin() as connection:
        connection.execute(update(Workspace).where(Workspace.team_id == team_id).values(
            last_item_number=items, audit_seq=chain.seq, audit_head=chain.head))
    with engine.connect() as connection:  # planner statistics for the freshly loaded tables
        connection.execute(text("ANALYZE"))
        connection.commit()
    return counts


def _write_batch(engine: Engine, item_rows: list[dict[str, Any]], team_id: str, chain: Chain, rng: random.Random,
                 counts: dict[str, int]) -> dict[str, int]:
    with engine.begin() as connection:
        ids = connection.execute(insert(Item).returning(Item.id, Item.number), item_rows).all()
    by_number = {row["number"]: row for row in item_rows}
    controls, milestones, changes, events = [], [], [], []
    for item_id, number in sorted(ids, key=lambda pair: pair[1]):
        row = by_number[number]
        events.append(chain.event(item_id=item_id, actor=row["created_by"], action="item.logged", at=row["created_at"],
                                  details={"number": number, "title": row["title"], "severity": row["severity"]}))
        controls.append({"item_id": item_id, "control": rng.choice(CONTROLS), "team_id": team_id, "position": 0})
        for m in range(1, rng.randint(3, 7)):
            planned = row["detected_on"] + timedelta(days=5 * m)
            moved = rng.random() < 0.2
            done = row["status"] == Status.CLOSED or rng.random() < 0.3
            milestones.append({"team_id": team_id, "item_id": item_id, "number": m, "description": f"Step {m}",
                               "planned_due_on": planned, "due_on": planned + timedelta(days=7) if moved else planned,
                               "completed_at": row["created_at"] + timedelta(days=5 * m) if done else None,
                               "completed_by": row["owner_id"] if done else None, "created_by": row["created_by"],
                               "created_at": row["created_at"]})
            if moved:
                changes.append({"team_id": team_id, "item_id": item_id, "number": m, "kind": "update",
                                "old_due_on": planned, "new_due_on": planned + timedelta(days=7),
                                "reason": "Vendor patch slipped.", "changed_by": row["owner_id"] or row["created_by"],
                                "changed_at": row["created_at"]})
    item_rows.clear()
    _flush(engine, ItemControl, controls)
    milestone_ids: dict[tuple[int, int], int] = {}
    for start in range(0, len(milestones), BATCH):
        chunk = milestones[start:start + BATCH]
        with engine.begin() as connection:
            for mid, item_id, m in connection.execute(
                insert(Milestone).returning(Milestone.id, Milestone.item_id, Milestone.number), chunk
            ).all():
                milestone_ids[(item_id, m)] = mid
    per_item: dict[int, int] = {}
    change_rows = []
    for change in changes:
        per_item[change["item_id"]] = per_item.get(change["item_id"], 0) + 1
        change_rows.append({**{k: v for k, v in change.items() if k != "number"},
                            "milestone_id": milestone_ids[(change["item_id"], change["number"])],
                            "seq": per_item[change["item_id"]]})
    _flush(engine, MilestoneChange, change_rows)
    _flush(engine, AuditEvent, events)
    return {"items": counts["items"] + len(ids), "milestones": counts["milestones"] + len(milestones),
            "changes": counts["changes"] + len(changes), "events": chain.seq}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=1_000)
    parser.add_argument("--team", default="T0BENCH01")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default="sqlite:///bench.db")
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    upgrade(engine)
    started = time.perf_counter()
    try:
        counts = seed(engine, team_id=args.team, items=args.items, people_count=args.people, seed_value=args.seed)
    finally:
        dispose(engine)  # on SQLite the last close folds the write-ahead log in: the file alone is then whole
    elapsed = time.perf_counter() - started
    print(f"seeded {args.team} in {engine.url.render_as_string(hide_password=True)}: "
          + ", ".join(f"{value:,} {name}" for name, value in counts.items()) + f" in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
