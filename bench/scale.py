"""How the bot's heavy jobs grow with the size of the POA&M, at constant due work.

    python bench/scale.py                                    # SQLite, 1k, 10k and 100k items
    python bench/scale.py --sizes 1000,10000                 # a couple of minutes
    python bench/scale.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_scale

For each size N: a fresh database (a SQLite file in a temporary directory, or
the PostgreSQL database named by --database-url, whose tables are dropped and
migrated again), filled by bench/seed.py with N items over 1,000 people. Then
the due work is made the same at every size: every item's due date and every
open milestone is moved 1 to 12 months ahead, every remediation plan counts
as approved, and exactly --due items (owned by --people people, half overdue,
half with a milestone due this week, a few plans awaiting the AOs) are made
due. So the same people get the same reminders whatever N is, and anything
that grows from 10k to 100k grows with the history, not with the work.

Timed, at Monday 2026-11-23 09:00 UTC (everyone in UTC):
  plan      one ``bot.reminders.planner.plan()`` call (morning reminders + nudges)
  digest    ``bot.reminders.digest.digest_message()``, the weekly channel digest
  workbook  the FedRAMP xlsx export of all N items (skipped above --workbook-max)
  sarif     a generated SARIF log of 1,000 and of 10,000 results parsed and
            imported into the seeded workspace, committed (parse time shown apart)
  serve     at the largest size: the real app (build_app + SlackWsgi) in its own
            process, against a fake Slack, answering signed /poam list and
            /poam show requests; its peak RSS is read from /proc/PID/status (VmHWM)

Each size runs in a child process so its peak RSS (getrusage) is its own.
Prints a table and the targets of issue 7, each marked met or NOT met.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/scale.py` puts bench/ first, not the checkout
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, bindparam, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from bench.host_speed import python_step_ns, speed_text  # noqa: E402
from bench.seed import people, seed  # noqa: E402
from bot.poam.actor import Actor, Role, Rules  # noqa: E402
from bot.poam.clock import FixedClock  # noqa: E402
from bot.poam.lifecycle import Status  # noqa: E402
from bot.store.engine import make_engine, unit_of_work  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.models import Item, Milestone, Person  # noqa: E402

TEAM = "T0BENCH01"
PEOPLE = 1_000
SEED = 7
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the Monday after bench/seed.py's "now"
UTC_ZONE = ZoneInfo("UTC")
SARIF_SIZES = (1_000, 10_000)
PLANS_AWAITING_AO = 20

TARGET_PLAN_GROWTH = 2.0
TARGET_DIGEST_S = 0.200
TARGET_WORKBOOK_10K_S = 5.0
TARGET_SARIF_10K_S = 10.0
TARGET_SERVE_RSS_MB = 250.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- databases


@contextmanager
def fresh_database(url: str | None, size: int, workdir: Path) -> Iterator[str]:
    """A URL to an empty, migrated database for one size."""
    if url is None:
        path = workdir / f"scale-{size}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        _ensure_postgres_database(url)
    engine = make_engine(url)
    try:
        import bot.store.models  # noqa: F401  (every table on SQLModel.metadata)

        with engine.begin() as connection:
            SQLModel.metadata.drop_all(connection)
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()
    yield url


def _ensure_postgres_database(url: str) -> None:
    """Create the database --database-url names when it does not exist yet."""
    import psycopg

    parsed = make_url(url)
    name = parsed.database
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def make_due_work_constant(engine: Engine, *, due: int, people_due: int) -> dict[str, int]:
    """Move everything seeded out of "due", then make exactly ``due`` items due.

    All items fall due 1 to 12 months after MONDAY, open milestones likewise,
    every remediation plan counts as approved. Then ``due`` owned, in-progress
    items spread over the whole table get owners among ``people_due`` people:
    the even ones overdue by 1–30 days, the odd ones with milestone 1 due
    this week; the first PLANS_AWAITING_AO of them have a plan awaiting approval.
    """
    today = MONDAY.date()
    with engine.begin() as connection:
        for bucket in range(12):
            later = today + timedelta(days=30 * (bucket + 1))
            connection.execute(
                update(Item).where(Item.team_id == TEAM, Item.id % 12 == bucket)  # type: ignore[operator]
                .values(due_on=later, scheduled_completion_on=later, plan_approved_by="U00000021",
                        plan_approved_at=MONDAY - timedelta(days=60))
            )
            connection.execute(
                update(Milestone)
                .where(Milestone.team_id == TEAM, Milestone.completed_at.is_(None), Milestone.id % 12 == bucket)  # type: ignore[union-attr,operator]
                .values(due_on=later + timedelta(days=3))
            )
        candidates = connection.execute(
            select(Item.id).where(Item.team_id == TEAM, Item.status == Status.IN_PROGRESS).order_by(Item.number)
        ).scalars().all()
        if len(candidates) < due:
            raise SystemExit(f"only {len(candidates)} in-progress items to make due; use a smaller --due")
        step = len(candidates) / due
        chosen = [candidates[int(index * step)] for index in range(due)]
        owners = people(PEOPLE)[100:100 + people_due]
        overdue_rows, soon_rows, milestone_rows = [], [], []
        for index, item_id in enumerate(chosen):
            awaiting = index < PLANS_AWAITING_AO
            values = {"b_id": item_id, "b_owner": owners[index % people_due],
                      "b_by": None if awaiting else "U00000021",
                      "b_at": None if awaiting else MONDAY - timedelta(days=60)}
            if index % 2 == 0:
                overdue_rows.append({**values, "b_due": today - timedelta(days=1 + index % 30)})
            else:
                soon_rows.append(values)
                milestone_rows.append({"b_item": item_id, "b_due": today + timedelta(days=index % 5)})
        items, milestones = Item.__table__, Milestone.__table__  # type: ignore[attr-defined]
        owned = {"owner_id": bindparam("b_owner"), "plan_approved_by": bindparam("b_by"),
                 "plan_approved_at": bindparam("b_at")}
        connection.execute(
            update(items).where(items.c.id == bindparam("b_id"))
            .values(**owned, due_on=bindparam("b_due"), scheduled_completion_on=bindparam("b_due")),
            overdue_rows,
        )
        connection.execute(update(items).where(items.c.id == bindparam("b_id")).values(**owned), soon_rows)
        connection.execute(
            update(milestones).where(milestones.c.item_id == bindparam("b_item"), milestones.c.number == 1)
            .values(due_on=bindparam("b_due"), completed_at=None, completed_by=None),
            milestone_rows,
        )
        connection.execute(insert(Person), [
            {"team_id": TEAM, "user_id": user, "tz": "UTC", "remind_at": MONDAY.time(), "reminders_on": True,
             "updated_at": MONDAY - timedelta(days=30)}
            for user in people(PEOPLE)
        ])
    return {"overdue": len(overdue_rows), "milestone_due": len(soon_rows), "people_due": people_due}


# ---------------------------------------------------------------- SARIF


def sarif_log(results: int, *, tag: str, run_day: date) -> bytes:
    """A SARIF 2.1.0 log of ``results`` results, every one a distinct weakness."""
    rules = [
        {
            "id": f"BENCH{r:03d}",
            "name": f"BenchRule{r}",
            "shortDescription": {"text": f"Bench rule {r}: unsafe call"},
            "fullDescription": {"text": f"Rule {r} flags a call that lets input reach a sink unchecked."},
            "defaultConfiguration": {"level": ("error", "warning", "note")[r % 3]},
            "properties": {"tags": ["security", f"external/cwe/cwe-{100 + r}"],
                           **({"security-severity": str(5.0 + (r % 50) / 10)} if r % 2 else {})},
        }
        for r in range(50)
    ]
    found = [
        {
            "ruleId": f"BENCH{index % 50:03d}",
            "ruleIndex": index % 50,
            "message": {"text": f"Unchecked input reaches a sink in module {index // 50} ({tag})."},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f"src/{tag}/pkg{index // 5000}/module{index // 50:05d}.py"},
                "region": {"startLine": 1 + index % 400},
            }}],
        }
        for index in range(results)
    ]
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "BenchScan", "version": "1.0", "rules": rules}},
            "invocations": [{"executionSuccessful": True, "startTimeUtc": f"{run_day.isoformat()}T02:00:00Z"}],
            "results": found,
        }],
    }
    return json.dumps(document).encode()


def import_sarif(engine: Engine, admin: Actor, name: str, data: bytes) -> tuple[float, float, Any]:
    """Parse, then import in one committed transaction: (parse seconds, write seconds, summary).

    ``read_findings`` + ``import_findings`` (parsing outside the transaction)
    when the code has them, else the older one-call ``import_file``.
    """
    from bot.interchange import importing

    if hasattr(importing, "read_findings"):
        from bot.poam.imports import import_findings

        parse, findings = timed(lambda: importing.read_findings(name, data))

        def write() -> Any:
            with unit_of_work(engine) as session:
                return import_findings(session, admin, findings=findings, source_name=name)

        seconds, summary = timed(write)
        return parse, seconds, summary
    stages: dict[str, float] = {}

    def one_call() -> Any:
        with unit_of_work(engine) as session:
            return importing.import_file(session, admin, name=name, data=data,
                                         progress=lambda stage: stages.setdefault(stage.split()[0], time.perf_counter()))

    started = time.perf_counter()
    seconds, summary = timed(one_call)
    parse = stages.get("importing", started) - stages.get("reading", started)
    return parse, seconds - parse, summary


# ---------------------------------------------------------------- one size


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _runs(runs: list[tuple[float, Any]]) -> str:
    return " / ".join(f"{seconds:.3f}" for seconds, _ in runs)


def run_size(args: argparse.Namespace, size: int, workdir: Path, serve: bool) -> dict[str, Any]:
    """Everything for one size; runs in a child process. Returns the figures."""
    from bot.interchange.exports import ExportFormat, export
    from bot.reminders.digest import digest_message
    from bot.reminders.planner import plan

    figures: dict[str, Any] = {"size": size, "ops": []}

    def record(op: str, seconds: float, detail: str = "", **extra: Any) -> None:
        figures["ops"].append({"op": op, "seconds": seconds, "detail": detail, "rss_mb": peak_rss_mb(), **extra})
        print(f"  {op:<18} {seconds:8.3f} s  {detail}", flush=True)

    rules = Rules()
    clock = FixedClock(MONDAY)
    with fresh_database(args.database_url, size, workdir) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            seconds, counts = timed(lambda: seed(engine, team_id=TEAM, items=size, people_count=PEOPLE, seed_value=SEED))
            record("(seed)", seconds, f"{counts['items']:,} items, {counts['milestones']:,} milestones")
            seconds, due = timed(lambda: make_due_work_constant(engine, due=args.due, people_due=args.people))
            record("(make due work)", seconds,
                   f"{due['overdue']} overdue + {due['milestone_due']} milestones due, {due['people_due']} people")
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                    connection.execute(text("VACUUM ANALYZE"))
            else:
                with engine.begin() as connection:
                    connection.execute(text("ANALYZE"))

            def one_plan() -> list[Any]:
                with unit_of_work(engine, read_only=True) as session:
                    return plan(session, clock=clock, rules=rules, default_tz=UTC_ZONE)

            runs = [timed(one_plan) for _ in range(args.repeat)]
            planned = runs[-1][1]
            kinds: dict[str, int] = {}
            for message in planned:
                kinds[message.kind] = kinds.get(message.kind, 0) + 1
            record("plan", min(s for s, _ in runs), f"{len(planned)} messages {kinds}; runs {_runs(runs)}",
                   all=[s for s, _ in runs])

            def one_digest() -> tuple[str, Any]:
                with unit_of_work(engine, read_only=True) as session:
                    return digest_message(session, team_id=TEAM, clock=clock, rules=rules)

            runs = [timed(one_digest) for _ in range(args.repeat)]
            record("digest", min(s for s, _ in runs), f"{runs[-1][1][0]}; runs {_runs(runs)}",
                   all=[s for s, _ in runs])

            if size <= args.workbook_max:
                target = workdir / f"poam-{size}.xlsx"

                def one_export() -> Any:
                    with unit_of_work(engine, read_only=True) as session, target.open("wb") as out:
                        return export(session, out, fmt=ExportFormat.XLSX, rules=rules, now=MONDAY, team_id=TEAM,
                                      system_name=None, csp="Bench CSP")

                seconds, exported = timed(one_export)
                record("workbook", seconds, f"{exported.count:,} rows, {target.stat().st_size / 1e6:.1f} MB")
                target.unlink()

            admin = Actor(team_id=TEAM, user_id="U00000000", roles=frozenset({Role.ADMIN}), tz=UTC_ZONE,
                          clock=clock, rules=rules)
            for results in SARIF_SIZES:
                data = sarif_log(results, tag=f"r{results}", run_day=MONDAY.date() - timedelta(days=1))
                parse, write, summary = import_sarif(engine, admin, f"bench-{results}.sarif", data)
                record(f"sarif {results // 1000}k", parse + write,
                       f"{summary.new:,} new of {results:,} ({parse:.2f} s parsing, {write:.2f} s writing, "
                       f"{len(data) / 1e6:.1f} MB)")
                del data
        finally:
            engine.dispose()
        figures["peak_rss_mb"] = peak_rss_mb()
        if serve:
            figures["serve"] = serve_check(url, workdir, size, heavy=not args.serve_light)
    return figures


# ---------------------------------------------------------------- serving


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _proc_status(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def serve_child(database_url: str, slack_url: str, port: int) -> None:
    """The serving process: the real app on a threaded WSGI server, nothing else."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from bot.app import build_app
    from bot.config import Settings
    from bot.web import SlackWsgi
    from tests.slack_driver import SIGNING_SECRET

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            return

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-e2e-test",  # the token tests/fake_slack.py serves hosted files to
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_url,
        database_url=database_url,
        poam_admins=frozenset({"U00000000"}),
    )
    engine = make_engine(database_url)
    app = build_app(settings, engine=engine, clock=FixedClock(MONDAY))
    make_server("127.0.0.1", port, SlackWsgi(app, engine), server_class=Server, handler_class=Quiet).serve_forever()


def _wait(condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    return result


def _heavy_commands(slack: Any, fake: Any, pid: int, failures: list[str]) -> list[dict[str, Any]]:
    """/poam export xlsx, then /poam import of a 10k-result SARIF file (check, then import),
    run by the serving process after its ack; its VmHWM after each."""
    from bot.commands.ids import BlockId

    admin = people(PEOPLE)[0]
    steps = []
    started = time.perf_counter()
    slack.command("export xlsx", user=admin)
    done = _wait(lambda: fake.calls_to("files.completeUploadExternal"), 900)
    if not done:
        failures.append("export xlsx: no file uploaded within 900 s")
    upload = max((len(data) for data in fake.uploads.values()), default=0)
    comment = str(done[0].params.get("initial_comment", "")) if done else ""
    steps.append({"step": "/poam export xlsx", "seconds": time.perf_counter() - started,
                  "detail": f"{upload / 1e6:.1f} MB uploaded: {comment}", **_proc_status(pid)})
    fake.uploads.clear()

    def view(call: Any) -> dict[str, Any]:
        value = call.params["view"]
        return json.loads(value) if isinstance(value, str) else value

    slack.command("import", user=admin)
    opened = _wait(lambda: fake.calls_to("views.open"), 30)
    if not opened:
        failures.append("import: no form opened")
        return steps
    data = sarif_log(SARIF_SIZES[-1], tag="served", run_day=MONDAY.date() - timedelta(days=1))
    url = fake.host_file("served.sarif", data)
    fake.clear()
    started = time.perf_counter()
    files = {"type": "file_input", "files": [{"id": "F1", "name": "served.sarif", "url_private_download": url}]}
    slack.submit(view(opened[0]), {BlockId.FILE: files}, user=admin)
    checked = _wait(lambda: fake.calls_to("views.update"), 300)
    steps.append({"step": f"/poam import check ({SARIF_SIZES[-1]:,} results)", "seconds": time.perf_counter() - started,
                  "detail": "", **_proc_status(pid)})
    if not checked:
        failures.append("import check: no answer within 300 s")
        return steps
    fake.clear()
    started = time.perf_counter()
    slack.submit(view(checked[0]), {}, user=admin)
    imported = _wait(lambda: fake.calls_to("views.update"), 300)
    said = re.search(r"would bring: ([^.]*)", json.dumps(view(checked[0])))
    steps[-1]["detail"] = said.group(1) if said else ""
    if said is None:
        failures.append("import check: " + json.dumps(view(checked[0]))[:300])
        return steps
    said = re.search(r"Imported [^:]*: ([^.]*)", json.dumps(view(imported[0]))) if imported else None
    steps.append({"step": "/poam import confirm", "seconds": time.perf_counter() - started,
                  "detail": said.group(1) if said else "no answer", **_proc_status(pid)})
    if not imported:
        failures.append("import confirm: no answer within 300 s")
    return steps


def serve_check(database_url: str, workdir: Path, size: int, heavy: bool) -> dict[str, Any]:
    """Start the app in its own process, send it signed commands, read its peak RSS."""
    from tests.fake_slack import FakeSlack
    from tests.slack_driver import SlackDriver

    fake = FakeSlack(team_id=TEAM).start()
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-child", "--database-url", database_url,
         "--slack-url", fake.base_url, "--port", str(port)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("the serving process exited: " + (process.stderr.read() if process.stderr else ""))
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the serving process did not become healthy in 60 s")
            time.sleep(0.2)
        idle = _proc_status(process.pid)
        slack = SlackDriver(base + "/slack/events", team_id=TEAM, response_url=fake.response_url())
        owner = people(PEOPLE)[100]
        commands = [
            ("list", owner), ("list mine", owner), ("list overdue", owner), ("list all", owner),
            ("list closed", owner), ("list open sev:high", owner),
            ("show POAM-1", owner), (f"show POAM-{size // 2}", owner), (f"show POAM-{size}", owner),
        ]
        latencies: dict[str, float] = {}
        failures: list[str] = []
        for command, user in commands:
            started = time.perf_counter()
            answer = slack.command(command, user=user)
            latencies[command] = time.perf_counter() - started
            if answer.status != 200 or '"blocks"' not in answer.body:
                failures.append(f"{command}: {answer.status} {answer.body[:200]}")

        def burst(index: int) -> float:
            started = time.perf_counter()
            slack.command(("list all", "list open", "list mine", "show POAM-7")[index % 4], user=people(PEOPLE)[100 + index])
            return time.perf_counter() - started

        with ThreadPoolExecutor(max_workers=8) as pool:
            burst_latencies = list(pool.map(burst, range(32)))
        status = _proc_status(process.pid)
        figures: dict[str, Any] = {
            "idle_rss_mb": idle["VmRSS"],
            "peak_rss_mb": status["VmHWM"],
            "rss_mb": status["VmRSS"],
            "latencies": latencies,
            "burst_p50": statistics.median(burst_latencies),
            "burst_max": max(burst_latencies),
            "failures": failures,
            "heavy": [],
        }
        if heavy:
            figures["heavy"] = _heavy_commands(slack, fake, process.pid, failures)
        return figures
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        fake.stop()


# ---------------------------------------------------------------- report


def growth(by_size: dict[int, dict[str, float]], op: str, small: int = 10_000, large: int = 100_000) -> float | None:
    a, b = by_size.get(small, {}).get(op), by_size.get(large, {}).get(op)
    return b / a if a and b else None


def report(results: list[dict[str, Any]], label: str) -> int:
    by_size = {r["size"]: {o["op"]: o["seconds"] for o in r["ops"]} for r in results}
    ops = [o["op"] for o in results[0]["ops"]]
    for r in results[1:]:
        ops += [o["op"] for o in r["ops"] if o["op"] not in ops]
    print(f"\n== {label} ==")
    print(f"{'operation':<18} {'size':>8} {'seconds':>9} {'peak RSS':>9}  detail")
    for op in ops:
        for r in results:
            for o in r["ops"]:
                if o["op"] == op:
                    print(f"{op:<18} {r['size']:>8,} {o['seconds']:>9.3f} {o['rss_mb']:>7.0f}MB  {o['detail']}")
    print("\ngrowth 10k -> 100k (time at 100k / time at 10k; items grow 10x, due work does not):")
    for op in ops:
        ratio = growth(by_size, op)
        if ratio is not None and not op.startswith("("):
            print(f"  {op:<18} {ratio:6.2f}x")
    for r in results:
        print(f"peak RSS of the bench process at {r['size']:,}: {r['peak_rss_mb']:.0f} MB")
    served = next((r for r in reversed(results) if "serve" in r), None)
    if served:
        s = served["serve"]
        print(f"\nserving process on the {served['size']:,}-item database: idle {s['idle_rss_mb']:.0f} MB, "
              f"peak (VmHWM) {s['peak_rss_mb']:.0f} MB, now {s['rss_mb']:.0f} MB")
        for command, seconds in s["latencies"].items():
            print(f"  /poam {command:<22} {seconds * 1000:7.0f} ms")
        print(f"  8 clients x 32 commands: p50 {s['burst_p50'] * 1000:.0f} ms, max {s['burst_max'] * 1000:.0f} ms")
        for step in s["heavy"]:
            print(f"  then {step['step']:<32} {step['seconds']:7.1f} s  VmHWM {step['VmHWM']:.0f} MB, "
                  f"VmRSS {step['VmRSS']:.0f} MB  {step['detail']}")
        for failure in s["failures"]:
            print(f"  FAILED {failure}")

    def mark(ok: bool | None) -> str:
        return "not measured" if ok is None else "met" if ok else "NOT met"

    plan_growth = growth(by_size, "plan")
    digest = by_size.get(100_000, {}).get("digest")
    workbook = by_size.get(10_000, {}).get("workbook")
    sarif = [(size, ops_["sarif 10k"]) for size, ops_ in by_size.items() if "sarif 10k" in ops_]
    worst_sarif = max(sarif, key=lambda pair: pair[1]) if sarif else None
    serve_rss = served["serve"]["peak_rss_mb"] if served else None
    heavy = served["serve"]["heavy"] if served else []
    heavy_rss = max(step["VmHWM"] for step in heavy) if heavy else None
    targets = [
        (f"planning grows <= {TARGET_PLAN_GROWTH:g}x from 10k to 100k",
         f"{plan_growth:.2f}x" if plan_growth else "-", None if plan_growth is None else plan_growth <= TARGET_PLAN_GROWTH),
        (f"digest < {TARGET_DIGEST_S * 1000:.0f} ms at 100k", f"{digest * 1000:.0f} ms" if digest else "-",
         None if digest is None else digest < TARGET_DIGEST_S),
        (f"workbook of 10k items < {TARGET_WORKBOOK_10K_S:g} s", f"{workbook:.2f} s" if workbook else "-",
         None if workbook is None else workbook < TARGET_WORKBOOK_10K_S),
        (f"10k-result SARIF import < {TARGET_SARIF_10K_S:g} s (slowest size)",
         f"{worst_sarif[1]:.2f} s at {worst_sarif[0]:,}" if worst_sarif else "-",
         None if worst_sarif is None else worst_sarif[1] < TARGET_SARIF_10K_S),
        (f"serving peak RSS < {TARGET_SERVE_RSS_MB:g} MB" + (f" ({served['size']:,} items)" if served else ""),
         f"{serve_rss:.0f} MB" if serve_rss else "-", None if serve_rss is None else serve_rss < TARGET_SERVE_RSS_MB),
        ("  same, after a /poam export xlsx and a 10k import too",
         f"{heavy_rss:.0f} MB" if heavy_rss else "-", None if heavy_rss is None else heavy_rss < TARGET_SERVE_RSS_MB),
    ]
    print("\ntargets:")
    for name, value, ok in targets:
        print(f"  {name:<55} {value:>18}  {mark(ok)}")
    return sum(1 for _, _, ok in targets if ok is False)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL (or SQLite) URL; its tables are dropped and recreated "
                                               "for every size. Default: SQLite files in a temporary directory")
    parser.add_argument("--sizes", default="1000,10000,100000", help="item counts, comma-separated")
    parser.add_argument("--due", type=int, default=200, help="items due at every size (default 200)")
    parser.add_argument("--people", type=int, default=100, help="people owning the due items (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="plan and digest runs per size; the fastest is shown")
    parser.add_argument("--workbook-max", type=int, default=100_000, help="skip the workbook above this size")
    parser.add_argument("--no-serve", action="store_true", help="skip the serving-process RSS check")
    parser.add_argument("--serve-light", action="store_true",
                        help="serving check: only /poam list and show, no /poam export and import")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--slack-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_child:
        serve_child(args.database_url, args.slack_url, args.port)
        return
    if args.size_child is not None:
        figures = run_size(args, args.size_child, Path(args.workdir), args.serve)
        Path(args.out).write_text(json.dumps(figures))
        return

    sizes = sorted(int(size.replace("_", "")) for size in args.sizes.split(","))
    label = make_url(args.database_url).render_as_string(hide_password=True) if args.database_url else "SQLite (temporary files)"
    print(f"scale bench on {label}: sizes {', '.join(f'{s:,}' for s in sizes)}, {args.due} items due, "
          f"{args.people} people, {os.cpu_count()} CPUs, {speed_text(python_step_ns())}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="poam-scale-"))
    results = []
    try:
        for size in sizes:
            print(f"\n-- {size:,} items", flush=True)
            out = workdir / f"figures-{size}.json"
            command = [sys.executable, __file__, "--size-child", str(size), "--workdir", str(workdir), "--out", str(out),
                       "--due", str(args.due), "--people", str(args.people), "--repeat", str(args.repeat),
                       "--workbook-max", str(args.workbook_max)]
            if args.database_url:
                command += ["--database-url", args.database_url]
            if size == sizes[-1] and not args.no_serve:
                command += ["--serve"] + (["--serve-light"] if args.serve_light else [])
            started = time.perf_counter()
            subprocess.run(command, check=True)
            print(f"  ({time.perf_counter() - started:.0f} s for this size)", flush=True)
            results.append(json.loads(out.read_text()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    missed = report(results, label)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
