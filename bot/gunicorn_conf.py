"""How gunicorn serves the bot: ``poam-bot serve``, the Procfile
(``gunicorn -c python:bot.gunicorn_conf …``) and ``bench/load.py`` all use it.

Each worker is pinned to a core of its own (round the cores the process may
use, fewest workers first), unless ``POAM_PIN_WORKERS=false``. A worker runs
Python on one core at a time (the GIL), but left free its threads run on
every core: whenever one lets the GIL go for a moment (each SQLite step, each
socket call) a thread on another core takes it, and the first must then wait
for it back. On one core the first simply carries on. In ``bench/load.py``
(SQLite, one worker, 8 clients) pinning took the bot from 229–235 to 315–356
requests a second, from 4.5 to 2.8–3.1 ms of CPU and from ~65 to ~10
voluntary context switches per request (README "Performance").

Where the cores are shared with other busy programs (a container allowed
every core of a large host), pinning keeps the scheduler from moving a worker
to an idle core: set ``POAM_PIN_WORKERS=false`` there.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any

from bot.config import ConfigError, load_settings

worker_class = "gthread"
threads = 8
timeout = 30

_CORE = "poam_core"  # the attribute a worker's core is kept in, in the master


def on_starting(server: Any) -> None:
    """Check the setting once, in the master: a bad value stops gunicorn with one line."""
    try:
        server.poam_pin = load_settings().poam_pin_workers and _can_pin()
    except ConfigError as error:
        print(f"poam-bot: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def pre_fork(server: Any, worker: Any) -> None:
    """In the master: choose the new worker's core, the one fewest live workers have."""
    if not getattr(server, "poam_pin", False):
        return
    taken = Counter(getattr(other, _CORE, None) for other in server.WORKERS.values())
    setattr(worker, _CORE, min(sorted(os.sched_getaffinity(0)), key=lambda core: taken[core]))


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker, before its threads start (they inherit the core)."""
    core = getattr(worker, _CORE, None)
    if core is not None:
        os.sched_setaffinity(0, {core})


def _can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
