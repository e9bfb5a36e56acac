"""Latency and throughput of the bot under load, against a bare Bolt app that only acks.

Setup, from a fresh clone (Python 3.11+)::

    python -m venv .venv && . .venv/bin/activate
    pip install -e '.[test]'          # gunicorn comes with the bot; the fake Slack is in tests/
    python bench/load.py              # 100,000 items on a temporary SQLite file

More::

    python bench/load.py --items 10000 --concurrency 1,8,32 --seconds 15
    python bench/load.py --database-url sqlite:///bench.db --reuse           # seed once, reuse after
    createdb -h 127.0.0.1 -U postgres bench_load
    python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/bench_load

What it does, all on 127.0.0.1, stopping by itself:

1. Seeds the database with ``bench/seed.py`` (workspace T0BENCH01, users
   U00000000…U00000999), or with ``--reuse`` uses the workspace already
   there. Without ``--database-url`` the database is a temporary SQLite file,
   removed at the end. Without ``--reuse`` a database that already holds the
   workspace is refused (seed into an empty one, or pass ``--reuse``). On
   PostgreSQL it then runs ``ANALYZE`` (as autovacuum would on a live
   database; a freshly bulk-loaded one has no planner statistics).
2. Starts the fake Slack Web API (``tests/fake_slack.py``) in a child
   process, so that it does not share this process's GIL with the clients.
3. Starts the bot (``gunicorn bot.web:application``) and the bare Bolt app
   (``gunicorn bench.bare_app:application``) the same way: gthread workers
   (``--workers``, default ``$WEB_CONCURRENCY`` or 1, as ``poam-bot serve``;
   ``--threads`` 8; ``bot.gunicorn_conf`` with ``POAM_PIN_WORKERS=true``, so
   each worker is pinned to a core, unless ``--no-pin``), the same signing
   secret and fake Slack. ``poam-bot serve``
   is not used because it also starts the reminder scheduler. The bare app
   runs its listeners on Bolt's default pool, whose answer goes out at the
   request thread's next 10 ms check; the bot runs them on the request's own
   thread (``bot.commands.turns``), and ``--bare-listeners turns`` gives the
   bare app that too, for the floor of the bot's own way. Waits for the
   bot's ``/healthz`` (200) and for any answer of the bare app (404).
4. Warms both up: one ``/poam show`` from each of the 1,000 users (so the
   bot's users.info cache is warm, as it is in steady state; with several
   workers, each caching for itself, 4 times per worker: ``warm_passes``),
   then ``--warmup`` seconds at each concurrency before measuring.
5. For each concurrency C and each target, C client threads send signed
   requests (as Slack signs them) over keep-alive connections for
   ``--seconds``: in equal parts ``/poam list mine`` (by users who own
   open items), ``/poam show POAM-n``, ``/poam claim POAM-n`` (items that
   were unclaimed when the run started, each id claimed once; a refusal is an
   answer too) and a click on an item card's Show button (``block_actions``,
   ``poam.show.n``, value ``{"number":n,"milestone":null}``). Both targets get
   the very same sequence of requests.
6. Prints per target and concurrency p50 / p95 / p99 / max latency,
   throughput, errors (a non-200 answer, a failed connection, the bot's
   "Something went wrong" reply or its "busy, nothing was changed") and the server's CPU time per request
   (gunicorn's master and workers, read from ``/proc``; it includes the work
   after the ack), the same per kind of request (with its slowest), and the
   ratios bot / bare against the targets of issue 7:

   - p50 ≤ 1.5 × bare, p99 ≤ 2 × bare, throughput ≥ 0.6 × bare;
   - p99 well under Slack's 3 s: read here as p99 < 1 s;

   and under them what the throughput target leaves the bot per request
   (``cpu_budget``: the CPU of ``min(workers, cores)`` cores divided by 0.6x
   the bare app's rate) beside what it spends.

Latency is measured by the client: from sending the request to reading the
whole answer, i.e. what Slack waits for (the ack). Work the bot does after the
ack (a button's reply through the response URL, a post in the item's thread)
is not in it, but it uses the same CPU and takes its turn with the requests
(``bot.commands.turns``), so it shows in the figures. Client, fake Slack and servers share the machine: on a
small one the figures are lower than the servers alone would give.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.host_speed import python_step_ns, speed_text  # noqa: E402
from tests.slack_driver import SIGNING_SECRET, SlackDriver, sign  # noqa: E402

TEAM = "T0BENCH01"
PEOPLE = 1_000
BOT_TOKEN = "xoxb-bench-load"
EVENTS_PATH = "/slack/events"
REQUEST_TIMEOUT = 10.0
START_TIMEOUT = 60.0
KINDS = ("list", "show", "claim", "click")
# Answers that count as errors: the bot's reply to a failure, and its "busy,
# nothing was changed" when a write could not get its turn within 2 s.
APP_ERRORS = (b"Something went wrong on our side", b"could not get my turn")

# Targets of issue 7 (bot / bare), and "p99 well under 3 s".
P50_RATIO = 1.5
P99_RATIO = 2.0
THROUGHPUT_RATIO = 0.6
P99_ABSOLUTE = 1.0


# ---------------------------------------------------------------- database


def prepare_database(url: str, *, items: int, reuse: bool, seed_value: int) -> dict[str, Any]:
    """Seed (or reuse) the workspace; return what the load needs to know about it."""
    from sqlalchemy import func, select, text

    from bench.seed import seed
    from bot.poam.lifecycle import NOT_CLOSED, Status
    from bot.store.engine import dispose, make_engine
    from bot.store.migrate import upgrade
    from bot.store.models import Item, Workspace

    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            exists = connection.execute(select(Workspace.team_id).where(Workspace.team_id == TEAM)).first()
        if exists and not reuse:
            raise SystemExit(
                f"{engine.url.render_as_string(hide_password=True)} already holds the workspace {TEAM}: "
                "pass --reuse to use it as it is, or give an empty database"
            )
        if not exists:
            print(f"seeding {items:,} items …", flush=True)
            started = time.perf_counter()
            counts = seed(engine, team_id=TEAM, items=items, people_count=PEOPLE, seed_value=seed_value)
            print(f"seeded {', '.join(f'{v:,} {k}' for k, v in counts.items())} in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
        if engine.dialect.name == "postgresql":
            # Planner statistics, as autovacuum would gather them on a live database; without
            # them (fresh bulk load, autovacuum off or not yet run) PostgreSQL picks bad plans.
            with engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        with engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(Item).where(Item.team_id == TEAM)).scalar_one()
            last = connection.execute(
                select(func.max(Item.number)).where(Item.team_id == TEAM)).scalar_one() or 0
            owners = sorted(connection.execute(
                select(Item.owner_id).distinct().where(
                    Item.team_id == TEAM, Item.owner_id.is_not(None), Item.status.in_(NOT_CLOSED))
            ).scalars())
            unclaimed = sorted(connection.execute(
                select(Item.number).where(Item.team_id == TEAM, Item.owner_id.is_(None), Item.status == Status.OPEN)
            ).scalars())
    finally:
        dispose(engine)  # request_cost.py may copy the file next
    if not owners or last == 0:
        raise SystemExit("the workspace has no owned items; seed it with bench/seed.py")
    return {"items": total, "last": last, "owners": owners, "unclaimed": unclaimed}


# ---------------------------------------------------------------- processes


def start_fake_slack() -> tuple[subprocess.Popen[Any], str]:
    """The fake Slack Web API in a child process (``serve_fake_slack``), and its base URL."""
    fake = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-fake-slack", TEAM],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    assert fake.stdout is not None
    base_url = fake.stdout.readline().decode().strip()
    if not base_url.startswith("http://127.0.0.1:"):
        stop_process(fake)
        raise SystemExit("the fake Slack did not start")
    return fake, base_url


def serve_fake_slack(team: str) -> None:
    """Child-process mode: serve the fake Slack until standard input closes."""
    from tests.fake_slack import FakeSlack

    fake = FakeSlack(team_id=team).start()
    print(fake.base_url, flush=True)
    try:
        sys.stdin.read()  # EOF when the parent closes the pipe (or dies)
    finally:
        fake.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    app: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_gunicorn(name: str, app: str, *, env: dict[str, str], workdir: Path, workers: int, threads: int) -> Server:
    port = free_port()
    log_path = workdir / f"{name}.log"
    command = [
        sys.executable, "-m", "gunicorn", app,
        "--bind", f"127.0.0.1:{port}",
        "--config", "python:bot.gunicorn_conf",  # as the bot is served (gthread, timeout, pinning)
        "--workers", str(workers), "--threads", str(threads), "--keep-alive", "5", "--graceful-timeout", "5",
        "--pythonpath", str(ROOT), "--log-level", "warning",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    return Server(name, app, port, process, log_path)


def wait_until_up(server: Server, *, healthy: set[int]) -> None:
    """Poll ``/healthz`` until it answers with a status in ``healthy``."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base + "/healthz", timeout=2) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = None
        if status in healthy:
            return
        time.sleep(0.2)
    raise SystemExit(f"{server.name} did not come up in {START_TIMEOUT:.0f} s:\n{server.log_tail()}")


def process_tree_cpu(pid: int) -> float | None:
    """CPU seconds used so far by ``pid`` and its children (Linux ``/proc``; None elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: parent pid
            total, found = total + int(fields[11]) + int(fields[12]), True  # utime + stime
    return total / ticks if found else None


def usable_cores() -> int:
    """The cores this process (and so the servers it starts) may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def stop_process(process: subprocess.Popen[Any], *, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


# ---------------------------------------------------------------- requests


@dataclass
class Workload:
    """The requests, the same for every target: built from the seeded data and a seed."""

    driver: SlackDriver
    last: int
    owners: list[str]
    unclaimed: list[int]
    seed: int

    def user(self, rng: random.Random) -> str:
        return f"U{rng.randrange(PEOPLE):08d}"

    def command(self, text: str, user: str) -> str:
        return self.driver.command_body(text, user=user)

    def click(self, number: int, user: str) -> str:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM, "domain": "bench"},
            "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A0APP",
            "trigger_id": "1337.43.trigger",
            "container": {"type": "message", "is_ephemeral": True, "channel_id": "C0CHANNEL1"},
            "channel": {"id": "C0CHANNEL1"},
            "response_url": self.driver.response_url,
            "actions": [{"type": "button", "action_id": f"poam.show.{number}", "block_id": "b",
                         "value": json.dumps({"number": number, "milestone": None}, separators=(",", ":")),
                         "action_ts": "1"}],
        }
        return urlencode({"payload": json.dumps(payload)})

    def stream(self, rng: random.Random, claims: ClaimIds) -> Iterator[tuple[str, str]]:
        """An endless stream of (kind, form body) for one client."""
        while True:
            kind = KINDS[rng.randrange(len(KINDS))]
            if kind == "list":
                yield kind, self.command("list mine", rng.choice(self.owners))
            elif kind == "show":
                yield kind, self.command(f"show POAM-{rng.randint(1, self.last)}", self.user(rng))
            elif kind == "claim":
                yield kind, self.command(f"claim POAM-{claims.next()}", self.user(rng))
            else:
                yield kind, self.click(rng.randint(1, self.last), self.user(rng))


class ClaimIds:
    """Unclaimed item numbers in a fixed random order, each handed out once per target
    (over all its runs); when they run out it starts again (claims are then refused)."""

    def __init__(self, numbers: Sequence[int], seed: int) -> None:
        self._numbers = list(numbers) or [1]
        random.Random(seed).shuffle(self._numbers)
        self._index = 0
        self._lock = threading.Lock()
        self.wrapped = False

    def next(self) -> int:
        with self._lock:
            if self._index >= len(self._numbers):
                self._index, self.wrapped = 0, True
            number = self._numbers[self._index]
            self._index += 1
            return number


# ---------------------------------------------------------------- driving


@dataclass
class Sample:
    kind: str
    seconds: float
    ok: bool


@dataclass
class Run:
    target: str
    concurrency: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)
    cpu_seconds: float | None = None  # the server's CPU (master and workers) during the run

    @property
    def cpu_ms_per_request(self) -> str:
        if self.cpu_seconds is None or not self.samples:
            return "     n/a"
        return f"{self.cpu_seconds * 1000 / len(self.samples):8.2f}"

    def latencies(self, kind: str | None = None) -> list[float]:
        return sorted(s.seconds for s in self.samples if kind is None or s.kind == kind)

    @property
    def errors(self) -> int:
        return sum(not s.ok for s in self.samples)

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.seconds if self.seconds else 0.0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def headers_for(body: str) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign(body, timestamp, SIGNING_SECRET),
    }


def client(port: int, requests: Iterator[tuple[str, str]], *, stop_box: list[float], max_requests: int | None,
           out: list[Sample], errors: list[str], ready: threading.Barrier) -> None:
    """One Slack-like client: requests one after another over a keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    sent = 0
    try:
        ready.wait()
        stop_at = stop_box[0]  # set before the barrier opened
        while time.perf_counter() < stop_at and (max_requests is None or sent < max_requests):
            kind, body = next(requests)
            headers = headers_for(body)
            started = time.perf_counter()
            try:
                connection.request("POST", EVENTS_PATH, body=body.encode(), headers=headers)
                response = connection.getresponse()
                answer = response.read()
                ok = response.status == 200 and not any(marker in answer for marker in APP_ERRORS)
                if not ok and len(errors) < 5:
                    errors.append(f"{kind}: HTTP {response.status} {answer[:200]!r}")
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as error:
                ok = False
                if len(errors) < 5:
                    errors.append(f"{kind}: {type(error).__name__}: {error}")
                connection.close()
            out.append(Sample(kind, time.perf_counter() - started, ok))
            sent += 1
    finally:
        connection.close()


def drive(target: str, port: int, workload: Workload, claims: ClaimIds, *, concurrency: int, seconds: float,
          salt: int, max_requests: int | None = None, streams: list[Iterator[tuple[str, str]]] | None = None) -> Run:
    """``concurrency`` clients for ``seconds`` (or ``max_requests`` each); the run's samples."""
    ready = threading.Barrier(concurrency + 1)
    outs: list[list[Sample]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    if streams is None:
        streams = [workload.stream(random.Random(workload.seed * 1_000_003 + salt * 1_009 + index), claims)
                   for index in range(concurrency)]
    stop_box: list[float] = [0.0]
    threads = []
    for index in range(concurrency):
        thread = threading.Thread(
            target=lambda i=index: client(port, streams[i], stop_box=stop_box, max_requests=max_requests,
                                          out=outs[i], errors=errors, ready=ready),
            daemon=True,
        )
        threads.append(thread)
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    stop_box[0] = started + seconds  # the clients read it once the barrier opens
    ready.wait()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT + 5)
    elapsed = time.perf_counter() - started
    run = Run(target, concurrency, elapsed, [s for out in outs for s in out], errors)
    return run


def warm_passes(workers: int) -> int:
    """How many times to send the warm-up: each worker caches ``users.info``
    answers itself, and each pass's 8 new connections land on workers as
    gunicorn's accepts fall, so with several workers one pass leaves each
    worker knowing only some users (those it met then ask Slack during the
    measured run, as no steady state would). If connections were spread
    evenly, after 4 passes per worker a worker would miss a given user with
    odds ``(1 - 1/workers) ** (4 * workers)``: 1 in 256 with two workers."""
    return 1 if workers <= 1 else 4 * workers


def warm_users(target: str, port: int, workload: Workload, *, passes: int = 1) -> float:
    """``passes`` times one ``/poam show`` from each user, 8 at a time, each
    pass on new connections; returns how long it took."""
    users = [f"U{n:08d}" for n in range(PEOPLE)]
    chunks = [users[i::8] for i in range(8)]
    started = time.perf_counter()
    for _ in range(passes):
        streams = [iter([("show", workload.command(f"show POAM-{1 + n % workload.last}", u))
                         for n, u in enumerate(chunk)]) for chunk in chunks]
        run = drive(target, port, workload, ClaimIds([1], 0), concurrency=8, seconds=300, salt=0,
                    max_requests=max(len(c) for c in chunks), streams=streams)
        if run.errors:
            print(f"  warm-up of {target}: {run.errors} errors, e.g. {run.error_examples[:2]}", flush=True)
    return time.perf_counter() - started


# ---------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def summary_line(run: Run) -> str:
    lat = run.latencies()
    return (f"{run.target:<5} {run.concurrency:>4} {len(run.samples):>9,} {run.throughput:>8.1f} "
            f"{ms(percentile(lat, .50))} {ms(percentile(lat, .95))} {ms(percentile(lat, .99))} "
            f"{ms(lat[-1] if lat else 0)} {run.errors:>6} {run.cpu_ms_per_request}")


def kinds_line(run: Run) -> str:
    """Per kind of request: how many, p50, p99 and the slowest (which kind the
    run's slowest request was)."""
    parts = []
    for kind in KINDS:
        lat = run.latencies(kind)
        parts.append(f"{kind} {len(lat):,}× p50 {percentile(lat, .5) * 1000:.1f} p99 {percentile(lat, .99) * 1000:.1f}"
                     f" max {max(lat, default=0.0) * 1000:.1f}")
    return "             " + " · ".join(parts) + " (ms)"


def cpu_budget(bot: Run, bare: Run, *, workers: int, cores: int) -> str | None:
    """What the throughput target asks of the bot's CPU, next to what it spends.

    A worker runs Python on one core at a time (the GIL), so ``min(workers,
    cores)`` cores is the most the bot can have, shared with the clients and
    the fake Slack. Reaching 0.6x the bare app's rate on them leaves at most
    ``those cores * 1000 / (0.6 * bare rate)`` ms of CPU per request; the
    bot's own figure (work after the ack included) shows how far it is. None
    without CPU figures.
    """
    if bot.cpu_seconds is None or not bot.samples or not bare.samples:
        return None
    usable = max(1, min(workers, cores))
    wanted = THROUGHPUT_RATIO * bare.throughput
    budget_ms = usable * 1000 / wanted if wanted else float("inf")
    spent_ms = bot.cpu_seconds * 1000 / len(bot.samples)
    ceiling = usable * 1000 / spent_ms if spent_ms else float("inf")
    return (f"CPU: {THROUGHPUT_RATIO}x bare is {wanted:.0f} req/s, at most {budget_ms:.2f} ms of CPU per request on "
            f"{usable} core(s); the bot spends {spent_ms:.2f} ms, a ceiling of {ceiling:.0f} req/s with "
            f"those cores to itself")


def verdicts(bot: Run, bare: Run) -> list[tuple[str, bool]]:
    bot_lat, bare_lat = bot.latencies(), bare.latencies()
    p50 = percentile(bot_lat, .5) / max(percentile(bare_lat, .5), 1e-9)
    p99 = percentile(bot_lat, .99) / max(percentile(bare_lat, .99), 1e-9)
    tput = bot.throughput / max(bare.throughput, 1e-9)
    p99_abs = percentile(bot_lat, .99)
    return [
        (f"p50 {p50:.2f}× bare (≤ {P50_RATIO}×)", p50 <= P50_RATIO),
        (f"p99 {p99:.2f}× bare (≤ {P99_RATIO}×)", p99 <= P99_RATIO),
        (f"throughput {tput:.2f}× bare (≥ {THROUGHPUT_RATIO}×)", tput >= THROUGHPUT_RATIO),
        (f"p99 {p99_abs * 1000:.0f} ms (< {P99_ABSOLUTE * 1000:.0f} ms)", p99_abs < P99_ABSOLUTE),
        (f"errors {bot.errors}", bot.errors == 0),
    ]


# ---------------------------------------------------------------- main


def normalise_url(url: str) -> str:
    from bot.config import Settings

    return Settings(_env_file=None, database_url=url).database_url  # type: ignore[call-arg]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a temporary SQLite file, removed at the end")
    parser.add_argument("--items", type=int, default=100_000, help="items to seed (default 100,000)")
    parser.add_argument("--reuse", action="store_true", help="use the workspace already in the database")
    parser.add_argument("--concurrency", default="1,8,32", help="client counts, comma-separated (default 1,8,32)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per target and concurrency")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")),
                        help="gunicorn workers per server (default $WEB_CONCURRENCY or 1)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker (default 8)")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave both servers' workers free to run on any core (POAM_PIN_WORKERS=false)")
    parser.add_argument("--targets", default="bare,bot", help="which servers to drive (default bare,bot)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the data and of the request mix")
    parser.add_argument("--bare-listeners", choices=("bolt", "turns"), default="bolt",
                        help="how the bare app runs its listeners: Bolt's default pool, which answers at its "
                             "next 10 ms check (default), or as the bot does (bot.commands.turns)")
    parser.add_argument("--bot-app", default="bot.web:application",
                        help="the bot's WSGI app for gunicorn (default bot.web:application; another "
                             "module:name to compare a variant, importable from the clone or PYTHONPATH)")
    parser.add_argument("--serve-fake-slack", metavar="TEAM", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake_slack:
        serve_fake_slack(args.serve_fake_slack)
        return 0
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not levels or min(levels) < 1 or max(levels) > 512:
        parser.error("--concurrency takes counts from 1 to 512")
    if not set(targets) <= {"bot", "bare"} or not targets:
        parser.error("--targets takes bot and/or bare")
    if not 0 < args.seconds <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--seconds takes 0 to 600, --warmup 0 to 60")

    workdir = Path(tempfile.mkdtemp(prefix="poam-load-"))
    url = normalise_url(args.database_url or f"sqlite:///{workdir / 'load.db'}")
    processes: list[subprocess.Popen[Any]] = []
    try:
        data = prepare_database(url, items=args.items, reuse=args.reuse, seed_value=args.seed)
        fake, base_url = start_fake_slack()
        processes.append(fake)
        env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": base_url, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
        env.pop("SLACK_APP_TOKEN", None)
        env["POAM_PIN_WORKERS"] = "false" if args.no_pin else "true"
        env["BARE_LISTENERS"] = args.bare_listeners
        servers: dict[str, Server] = {}
        apps = {"bot": args.bot_app, "bare": "bench.bare_app:application"}
        for name in targets:
            servers[name] = start_gunicorn(name, apps[name], env=env, workdir=workdir,
                                           workers=args.workers, threads=args.threads)
            processes.append(servers[name].process)
        for name, server in servers.items():
            wait_until_up(server, healthy={200} if name == "bot" else {401, 404})

        from sqlalchemy.engine import make_url
        shown = make_url(url).render_as_string(hide_password=True)
        print(f"database {shown}: {data['items']:,} items, {len(data['owners']):,} owners with open items, "
              f"{len(data['unclaimed']):,} unclaimed")
        print(f"servers: gunicorn gthread, {args.workers} worker(s) × {args.threads} threads, "
              f"POAM_PIN_WORKERS={env['POAM_PIN_WORKERS']}; bare app's listeners: {args.bare_listeners}; "
              f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
              f"{speed_text(python_step_ns())}", flush=True)
        if args.workers >= usable_cores():
            print(f"note: {args.workers} worker(s) on {usable_cores()} core(s) share them with these clients, the "
                  "fake Slack (and a local database server): at high concurrency the bot's figures measure that "
                  "contention too, the bare app's (mostly idle, waiting on Bolt's 10 ms poll) hardly", flush=True)

        response_url = base_url.replace("/api/", "/respond/load")
        workload = Workload(driver=SlackDriver("", team_id=TEAM, response_url=response_url), last=data["last"],
                            owners=data["owners"], unclaimed=data["unclaimed"], seed=args.seed)
        claims = {name: ClaimIds(data["unclaimed"], args.seed) for name in targets}
        passes = warm_passes(args.workers)
        for name, server in servers.items():
            took = warm_users(name, server.port, workload, passes=passes)
            print(f"warm-up {name}: one /poam show from each of {PEOPLE:,} users"
                  f"{f', {passes} times' if passes > 1 else ''} in {took:.1f} s", flush=True)

        runs: dict[tuple[str, int], Run] = {}
        header = (f"{'target':<5} {'conc':>4} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
                  f"{'p99 ms':>8} {'max ms':>8} {'errors':>6} {'CPU ms/req':>8}")
        print("\n" + header)
        for level_index, level in enumerate(levels, start=1):
            for name, server in servers.items():
                if args.warmup:
                    drive(name, server.port, workload, claims[name], concurrency=level, seconds=args.warmup,
                          salt=-level_index)
                cpu_before = process_tree_cpu(server.process.pid)
                run = drive(name, server.port, workload, claims[name], concurrency=level, seconds=args.seconds,
                            salt=level_index)
                cpu_after = process_tree_cpu(server.process.pid)
                if cpu_before is not None and cpu_after is not None:
                    run.cpu_seconds = cpu_after - cpu_before
                runs[(name, level)] = run
                print(summary_line(run))
                print(kinds_line(run))
                for example in run.error_examples[:3]:
                    print(f"             e.g. {example}")
                if run.errors:
                    print(f"             {name}'s log, last lines:\n{server.log_tail()}")
                sys.stdout.flush()
            if "bot" in servers and "bare" in servers:
                marks = verdicts(runs[("bot", level)], runs[("bare", level)])
                print("      bot/bare: " + "; ".join(f"{text} {'met' if ok else 'NOT met'}" for text, ok in marks))
                budget = cpu_budget(runs[("bot", level)], runs[("bare", level)], workers=args.workers,
                                    cores=usable_cores())
                if budget:
                    print("      " + budget)
            print(flush=True)

        for name in targets:
            if claims[name].wrapped:
                print(f"note: {name} ran out of unclaimed items; later claims were refusals")
        failed = []
        if "bot" in servers and "bare" in servers:
            for level in levels:
                failed += [f"C={level}: {text}" for text, ok in verdicts(runs[("bot", level)], runs[("bare", level)])
                           if not ok]
            print("targets: " + ("all met" if not failed else "NOT met: " + " | ".join(failed)))
        print(f"after the runs: {speed_text(python_step_ns())}")
        for name, server in servers.items():
            tail = server.log_tail(5)
            if "Traceback" in server.log_path.read_text(errors="replace"):
                print(f"{name}'s log has tracebacks; its end:\n{tail}")
        return 0
    finally:
        for process in reversed(processes):
            if process.stdin is not None:
                process.stdin.close()
            stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
