"""How long one page of each ``/poam list`` takes on a seeded database.

``bench/load.py`` sends only ``/poam list mine``; a large workspace's other
lists (every open item, everything overdue, all) hold tens of thousands of
items, and a page of them must not cost what sorting them all does. This
times ``item_lists.list_items`` in process, for each list, its first page
and the page after a few depths (as Next reaches them), the fastest of
``--repeat`` runs, with the count it shows::

    python bench/seed.py --items 100000 --database-url sqlite:///bench.db
    python bench/lists.py --database-url sqlite:///bench.db
    python bench/lists.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_load

It reads only (the workspace of ``bench/seed.py``, T0BENCH01, as user
U00000007).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load import TEAM, normalise_url  # noqa: E402
from bot.poam.actor import Actor, Rules  # noqa: E402
from bot.poam.clock import SystemClock  # noqa: E402
from bot.poam.item_lists import Direction, ItemPage, Scope, list_items  # noqa: E402
from bot.poam.roles import load_actor  # noqa: E402
from bot.store.engine import make_engine, unit_of_work  # noqa: E402

USER = "U00000007"
PAGE = 20


def _actor(session: Session) -> Actor:
    return load_actor(session, team_id=TEAM, user_id=USER, tz=ZoneInfo("UTC"), clock=SystemClock(), rules=Rules())


def time_page(engine: Engine, scope: Scope, offset: int, repeat: int) -> tuple[float, ItemPage]:
    """The fastest of ``repeat`` runs of the page after the list's ``offset``-th
    item (reached by Next from the first page, untimed), in ms, and the page."""
    best, page = float("inf"), None
    with unit_of_work(engine, read_only=True) as session:
        actor = _actor(session)
        start = None
        for at in range(0, offset, PAGE):
            before = list_items(session, actor, scope=scope, limit=min(PAGE, offset - at), start=start, offset=at)
            if not before.items:
                break
            start = (Direction.AFTER, before.position(before.items[-1]))
    for _ in range(repeat):
        with unit_of_work(engine, read_only=True) as session:
            actor = _actor(session)  # its roles are read in its unit of work, if ever
            started = time.perf_counter()
            page = list_items(session, actor, scope=scope, limit=PAGE, start=start, offset=offset)
            best = min(best, time.perf_counter() - started)
    assert page is not None
    return 1000 * best, page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a database seeded by bench/seed.py")
    parser.add_argument("--offsets", default="0,400", help="page offsets, comma-separated (default 0,400)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per page; the fastest is shown (default 5)")
    args = parser.parse_args(argv)
    offsets = [int(offset) for offset in args.offsets.split(",")]
    engine = make_engine(normalise_url(args.database_url))
    print(f"one page of {PAGE} of each list, fastest of {args.repeat}, on {engine.url.render_as_string()}")
    print(f"{'list':<10} " + " ".join(f"{'offset ' + str(o):>16}" for o in offsets) + "  items")
    for scope in Scope:
        figures = [time_page(engine, scope, offset, args.repeat) for offset in offsets]
        print(f"{scope.value:<10} " + " ".join(f"{ms:>13.1f} ms" for ms, _ in figures) + f"  {figures[0][1].total_text}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
