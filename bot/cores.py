"""Pinning a worker to one core, and letting one of its threads off again.

With ``POAM_PIN_WORKERS`` each gunicorn worker is pinned to a core
(``bot.gunicorn_conf``): its threads, which take turns holding the GIL, then
stay on that core. A thread that works long without the GIL gains nothing
there and takes the core from them: SQLite copying its log into the database
file (``bot.store.sqlite_checkpoints``) took 2 s of every 22 on the pinned
core under ``bench/load.py`` and 1 s on any core. Such a thread runs on the
cores the worker had before it was pinned.
"""

from __future__ import annotations

import os

_cores_before_pinning: set[int] | None = None


def pin_to(core: int) -> None:
    """Pin the calling thread, and the threads it starts from now on, to ``core``
    (at a worker's start, before it starts any). Raises ``OSError`` if it cannot."""
    global _cores_before_pinning
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    _cores_before_pinning = before


def unpin_this_thread() -> None:
    """Let the calling thread run on the cores the process had before
    :func:`pin_to`; nothing if it was never pinned. Raises ``OSError`` if it cannot."""
    if _cores_before_pinning is not None:
        os.sched_setaffinity(0, _cores_before_pinning)
