"""How gunicorn serves the bot: ``poam-bot serve``, the Procfile
(``gunicorn -c python:bot.gunicorn_conf …``) and ``bench/load.py`` all use it.

With ``POAM_PIN_WORKERS=true`` each worker is pinned to one core, spread
round-robin over the cores the server may use (the core fewest live workers
have). A worker runs Python on one core at a time (the GIL), but left free its
threads run on every core: whenever one lets the GIL go for a moment (each
SQLite step, each socket call) a thread on another core takes it, and the
first must then wait for it back. On one core the first simply carries on:
far fewer thread switches and less CPU per request (README "Performance").
It is off by default because on a host whose cores are shared with other busy
programs (a container that sees every core of a large machine) pinning keeps
the kernel from moving a worker to an idle core.

The master imports nothing of the bot: the setting is read in each new worker
(which reads all settings anyway), so a reload (``HUP``) loads new code.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from typing import Any

worker_class = "gthread"
threads = 8
timeout = 30
#: The most worker processes (``WEB_CONCURRENCY``) ``bot.config`` allows.
MAX_WORKERS = 64

log = logging.getLogger(__name__)
_CORE = "poam_core"  # chosen in the master before the fork; the worker inherits it


def on_starting(server: Any) -> None:
    """In the master, before any worker: a number of workers out of bounds
    (``WEB_CONCURRENCY``, which gunicorn reads itself) stops it with one
    line. With 0 it started none, and listened without ever answering; with
    more than ``bot.config`` allows each worker failed to boot. (One that is
    not a number gunicorn refuses, with a traceback, before it reads this file.)"""
    if not 1 <= server.cfg.workers <= MAX_WORKERS:
        print(f"poam-bot: WEB_CONCURRENCY: {server.cfg.workers} worker processes; use 1 to {MAX_WORKERS}",
              file=sys.stderr, flush=True)
        sys.exit(2)


def pre_fork(server: Any, worker: Any) -> None:
    """In the master: the core for the new worker, the one fewest live workers have."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) > 1:
        taken = Counter(getattr(other, _CORE, None) for other in server.WORKERS.values())
        setattr(worker, _CORE, min(cores, key=lambda core: taken[core]))


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker, before its threads start (they inherit its core).

    A bad setting stops the server with one line (a boot error halts the
    master); a core that cannot be had leaves the worker unpinned.
    """
    from bot.config import ConfigError, load_settings
    from bot.cores import pin_to

    try:
        pin = load_settings().poam_pin_workers
    except ConfigError as error:
        print(f"poam-bot: {error}", file=sys.stderr, flush=True)
        sys.exit(server.WORKER_BOOT_ERROR)
    core = getattr(worker, _CORE, None)
    if pin and core is not None:
        try:
            pin_to(core)
        except OSError as error:
            log.warning("could not pin worker %s to core %s (%s); it runs unpinned", worker.pid, core, error)


def post_worker_init(worker: Any) -> None:
    """In the new worker, its app loaded: what stops it from serving (a bad
    setting, a token Slack refuses, a schema not migrated) stops the server
    with one line, and the bot is built (``bot.web.LazyWsgi``). Apps without
    such checks (``poam-bot serve``'s, built as it loads; the bare one
    ``bench/load.py`` compares with) are left be."""
    check = getattr(worker.wsgi, "check_before_serving", None)
    if check is None:
        return
    from gunicorn.arbiter import Arbiter

    from bot.web import StartRefused

    try:
        check()
    except StartRefused as error:
        print(f"poam-bot: {str(error).strip().splitlines()[0]}", file=sys.stderr, flush=True)
        sys.exit(Arbiter.WORKER_BOOT_ERROR)  # the master stops


def settings() -> dict[str, Any]:
    """This module's gunicorn settings, for ``poam-bot serve``'s embedded gunicorn."""
    return {"worker_class": worker_class, "threads": threads, "timeout": timeout, "on_starting": on_starting,
            "pre_fork": pre_fork, "post_fork": post_fork, "post_worker_init": post_worker_init}
