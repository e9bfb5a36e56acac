"""What one request of each kind costs the bot, one at a time, in process.

``bench/load.py`` measures under concurrency, on a machine whose speed moves by
±25% between identical runs; a change worth 10% of a request's CPU drowns in
that. This script sends the same signed requests as ``load.py`` (``/poam list
mine``, ``/poam show``, ``/poam claim``, a Show-button click) through the
bot's WSGI app in this process, one at a time, and prints per kind the CPU it
took: Bolt, the handler, the database and the Slack calls after the ack (the
fake Slack runs in a child process, so its side is not counted). First each
of the 1,000 users sends one ``/poam show`` (so the bot knows them, as in
steady state), then 20 unmeasured requests of each kind go before the
measured ones.

One request at a time, a request costs more CPU time than under load (caches
gone cold, a slower clock between requests), and the time still moves
between runs. With ``--instructions`` it
counts instructions under valgrind instead, whatever else the machine is
doing; the count still moves between runs (the bot's threads interleave
differently, and a click's work goes on after its ack; by up to a third for a
claim: ``bench/README.md``), so compare several runs of the same ``--seed``
and ``--kinds``, each on a fresh copy of one seeded file::

    python bench/seed.py --items 100000 --database-url sqlite:///cost.db
    python bench/request_cost.py --database-url sqlite:///cost.db             # CPU ms per request
    python bench/request_cost.py --database-url sqlite:///cost.db --instructions --kinds show,claim

Without ``--database-url`` a temporary SQLite file of ``--items`` (default
10,000) is seeded and removed at the end; a database without the bench's
workspace is seeded the same way. Claims change the database, as in
``load.py``: each claims a different unclaimed item. ``--instructions`` needs
valgrind (Debian's ``valgrind`` package); per kind it runs this script twice
under callgrind, with ``--requests`` and with twice as many, and divides the
difference, so start-up and warm-up cancel out.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.host_speed import python_step_ns, speed_text  # noqa: E402
from bench.load import (  # noqa: E402
    BOT_TOKEN,
    EVENTS_PATH,
    KINDS,
    PEOPLE,
    TEAM,
    ClaimIds,
    Workload,
    normalise_url,
    prepare_database,
    start_fake_slack,
    stop_process,
)
from tests.slack_driver import SIGNING_SECRET, SlackDriver, sign  # noqa: E402

WARMUP = 20
#: After the last request the work after its acks goes on, on the bot's own
#: threads, and is counted (the process's CPU, not the thread's): the process
#: is idle once a tick of this many seconds passes with under IDLE_CPU_SECONDS
#: of CPU in it.
IDLE_TICK_SECONDS = 0.1
IDLE_CPU_SECONDS = 0.002
IDLE_WAIT_SECONDS = 60


def wsgi_caller(app: Callable[..., Any]) -> Callable[[str], None]:
    """Send a form body to ``app`` as Slack would, signed; fail on anything but a 200."""

    def call(body: str) -> None:
        raw, timestamp = body.encode(), int(time.time())
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": EVENTS_PATH, "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
            "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(timestamp), "HTTP_X_SLACK_SIGNATURE": sign(body, timestamp),
        }
        statuses: list[str] = []
        answer = b"".join(app(environ, lambda status, headers: statuses.append(status)))
        if not statuses or not statuses[0].startswith("200"):
            raise SystemExit(f"the bot answered {statuses[:1]}: {answer[:200]!r}")

    return call


def wait_until_idle() -> None:
    """Return once this process has stopped working (a click's work after its
    ack can take longer than the clicks themselves: 500 of them queue up)."""
    deadline = time.monotonic() + IDLE_WAIT_SECONDS
    while time.monotonic() < deadline:
        before = time.process_time()
        time.sleep(IDLE_TICK_SECONDS)
        if time.process_time() - before < IDLE_CPU_SECONDS:
            return
    raise SystemExit(f"the bot was still busy {IDLE_WAIT_SECONDS} s after the last request")


def bodies(workload: Workload, claims: ClaimIds, kind: str, count: int, seed: int) -> list[str]:
    """``count`` request bodies of one kind, as ``load.py`` builds them."""
    stream, chosen = workload.stream(random.Random(seed), claims), list[str]()
    while len(chosen) < count:
        found, body = next(stream)
        if found == kind:
            chosen.append(body)
    return chosen


def measure(url: str, data: dict[str, Any], *, kinds: Sequence[str], requests: int,
            seed: int) -> dict[str, tuple[float, float]]:
    """Per kind: (CPU ms, wall ms) per request, after ``WARMUP`` unmeasured ones.
    ``data``: what ``prepare_database`` found in the database."""
    fake, base_url = start_fake_slack()
    try:
        os.environ.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=base_url,
                          DATABASE_URL=url)
        os.environ.pop("SLACK_APP_TOKEN", None)
        from bot.web import from_settings

        call = wsgi_caller(from_settings())
        driver = SlackDriver("", team_id=TEAM, response_url=base_url.replace("/api/", "/respond/cost"))
        workload = Workload(driver=driver, last=data["last"], owners=data["owners"], unclaimed=data["unclaimed"],
                            seed=seed)
        claims = ClaimIds(data["unclaimed"], seed)
        # Every user once first, as load.py's warm-up does: in steady state the
        # bot knows their time zones and does not ask Slack (users.info).
        for person in range(PEOPLE):
            call(workload.command(f"show POAM-{1 + person % data['last']}", f"U{person:08d}"))
        figures = {}
        for index, kind in enumerate(kinds):
            warm = bodies(workload, claims, kind, WARMUP, seed + 1000 + index)  # other requests than the measured
            measured = bodies(workload, claims, kind, requests, seed + index)
            for body in warm:
                call(body)
            wait_until_idle()
            cpu, wall = time.process_time(), time.perf_counter()
            for body in measured:
                call(body)
            wall = time.perf_counter() - wall
            wait_until_idle()
            cpu = time.process_time() - cpu
            figures[kind] = (1000 * cpu / requests, 1000 * wall / requests)
        return figures
    finally:
        stop_process(fake)


def count_instructions(url: str, *, kind: str, requests: int, seed: int, workdir: Path) -> float:
    """Instructions per request of ``kind``: two callgrind runs, ``requests`` and
    twice as many, on copies of the same SQLite file (or the same PostgreSQL
    database, whose claims then differ), the difference divided."""
    totals = []
    for count in (requests, 2 * requests):
        run_url = url
        if url.startswith("sqlite:///"):
            copy = workdir / f"{kind}-{count}.db"
            shutil.copy(url.removeprefix("sqlite:///"), copy)
            run_url = f"sqlite:///{copy}"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir / 'callgrind.out'}",
                   sys.executable, str(Path(__file__).resolve()), "--database-url", run_url, "--kinds", kind,
                   "--requests", str(count), "--seed", str(seed)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONMALLOC": "malloc"}, check=False)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / requests


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a seeded database (default: a temporary SQLite file)")
    parser.add_argument("--items", type=int, default=10_000, help="items to seed without --database-url")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--requests", type=int, default=200,
                        help="measured requests per kind (default 200; with --instructions 20 is plenty)")
    parser.add_argument("--instructions", action="store_true", help="count instructions under valgrind")
    parser.add_argument("--seed", type=int, default=7, help="seed of the data and of the requests")
    args = parser.parse_args(argv)
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    if not kinds or not set(kinds) <= set(KINDS):
        parser.error(f"--kinds takes {', '.join(KINDS)}")
    if not 1 <= args.requests <= 100_000:
        parser.error("--requests takes 1 to 100,000")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind on the PATH (Debian: apt install valgrind)")

    workdir = Path(tempfile.mkdtemp(prefix="poam-cost-"))
    try:
        url = normalise_url(args.database_url or f"sqlite:///{workdir / 'cost.db'}")
        data = prepare_database(url, items=args.items, reuse=True, seed_value=args.seed)
        if args.instructions:
            print(f"{'kind':<6} {'instructions/request':>21}")
            for kind in kinds:
                per_request = count_instructions(url, kind=kind, requests=args.requests, seed=args.seed,
                                                 workdir=workdir)
                print(f"{kind:<6} {per_request / 1e6:>19.2f} M", flush=True)
        else:
            figures = measure(url, data, kinds=kinds, requests=args.requests, seed=args.seed)
            print(speed_text(python_step_ns()))
            print(f"{'kind':<6} {'requests':>8} {'CPU ms/request':>15} {'wall ms/request':>16}")
            for kind, (cpu, wall) in figures.items():
                print(f"{kind:<6} {args.requests:>8} {cpu:>15.2f} {wall:>16.2f}")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
