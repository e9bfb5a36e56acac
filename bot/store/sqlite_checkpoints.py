"""SQLite's write-ahead log is checkpointed on a thread of its own, not inside a commit.

By default SQLite copies the log back into the database file (with an fsync)
inside whichever commit takes the log past 1,000 pages. In bench/load.py
about one claim in a hundred took 14 ms instead of 1.5 that way, holding the
write lock and a listener turn meanwhile, so that everyone queued behind it
waited too (README "Performance").

Here connections do not checkpoint on commit (``wal_autocheckpoint = 0``, set
in ``engine``). Instead, after a writer commits, at most every
``CHECKPOINT_INTERVAL`` seconds and one at a time, a short-lived thread runs a
``PASSIVE`` checkpoint: it waits for no reader or writer, and what it cannot
copy yet (pages a reader still needs) a later one copies. The thread runs
off a pinned worker's core (``bot.cores``).

SQLite starts the log over only when a writer begins after a checkpoint that
copied all of it and no reader still reads from it, which steady writes keep
from happening (each checkpoint copies what was there when it began, while
writers go on adding). So when the log has grown past ``RESTART_PAGES`` the
thread starts it over itself, with a ``RESTART`` checkpoint, which holds the
write lock while it copies what is left, syncs the database file and checks
that no reader needs the log any more. Done as it comes, that took 20–50 ms
under load, nearly all of it syncing every page the passive checkpoints had
copied since the last sync (SQLite syncs the database file only when a
checkpoint reaches the end of the log), while claims waited for the lock and
the requests behind them for their turns. So the thread runs passive
checkpoints, without the lock, until one reaches the end of the log (and so
syncs the file), and only then a ``RESTART``, which is left with a few pages
to copy and sync; if a reader still needs the log it returns at once, lock
released, and the thread tries again after short pauses (``lock_pauses``)
for up to ``RESTART_WAIT_SECONDS``; a later checkpoint tries again after
that. Should readers that overlap without a break never leave the log
alone that long, a log past ``LOG_CAP_PAGES`` is started over all the same,
the ``RESTART`` waiting for them up to ``CAP_WAIT_SECONDS`` with the write
lock held (it cannot outwait one long read, an export's: then it tries again
only once the log has grown by another ``LOG_CAP_PAGES``, so that writers do
not wait again and again meanwhile). The log file keeps its size (``TRUNCATE`` would
empty it, another millisecond under the lock); writers then write over it
from its start. Every process that writes does this; a checkpoint that finds
another process's under way leaves the work to it. When the last connection
to the file closes, SQLite checkpoints what is left and removes the log.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import closing
from urllib.parse import quote

from bot.cores import unpin_this_thread
from bot.store.lock_pauses import lock_pauses

log = logging.getLogger(__name__)

#: Seconds between the starts of two checkpoints by one engine.
CHECKPOINT_INTERVAL = 0.5
#: Pages in the log (4 KiB each by default) past which a checkpoint starts it over.
RESTART_PAGES = 4_000
#: How long a checkpoint keeps trying to start the log over.
RESTART_WAIT_SECONDS = 1.0
#: Pages (log frames) past which the log is started over even if writers must
#: wait for readers, and how long they may wait.
LOG_CAP_PAGES = 40_000
CAP_WAIT_SECONDS = 0.5


class WalCheckpoints:
    """The checkpoints of one SQLite file (``path``, made absolute now)."""

    def __init__(self, path: str) -> None:
        self._uri = f"file:{quote(os.path.abspath(path))}?mode=rw"  # never creates a file
        self._running = threading.Lock()
        self._last_started = float("-inf")
        self._thread: threading.Thread | None = None
        #: Past how many pages the next checkpoint may make writers wait, when a
        #: reader defeated the last such one (None: LOG_CAP_PAGES). Only the
        #: checkpoint threads, one at a time, use it.
        self._raised_cap: int | None = None

    def after_write(self) -> None:
        """A writer committed: start a checkpoint if the last one started long
        enough ago and is done."""
        now = time.monotonic()
        if now - self._last_started < CHECKPOINT_INTERVAL or not self._running.acquire(blocking=False):
            return
        self._last_started = now
        thread = threading.Thread(target=self._checkpoint, name="poam-wal-checkpoint", daemon=True)
        try:
            thread.start()
        except RuntimeError as error:  # no thread to be had: a later writer tries again
            self._running.release()
            log.warning("could not start a checkpoint: %s", error)
            return
        self._thread = thread

    def join(self) -> None:
        """Wait for the checkpoint under way, if any (before copying the file or forking)."""
        if self._thread is not None:
            self._thread.join()

    def _checkpoint(self) -> None:
        try:
            try:
                unpin_this_thread()  # SQLite's copying needs no GIL: off the worker's core (bot.cores)
            except OSError as error:
                log.debug("a checkpoint runs on the worker's core: %s", error)
            # No busy timeout: a checkpoint that cannot have a lock says so at once.
            with closing(sqlite3.connect(self._uri, uri=True, timeout=0)) as connection:
                _, pages, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if pages > RESTART_PAGES:
                    self._start_log_over(connection)
        except sqlite3.Error as error:  # the log stays whole; a later writer tries again
            log.warning("checkpointing %s failed: %s", self._uri, error)
        finally:
            self._running.release()

    def _start_log_over(self, connection: sqlite3.Connection) -> None:
        """Passive checkpoints until one copies the whole log, each such one
        followed by a ``RESTART``, in short tries; past LOG_CAP_PAGES, one
        that may wait for readers."""
        deadline = time.monotonic() + RESTART_WAIT_SECONDS
        pages = 0
        for pause in lock_pauses():
            busy, pages, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and pages == copied and _restarted(connection):
                self._raised_cap = None
                return
            if time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
        if pages > (self._raised_cap or LOG_CAP_PAGES):
            log.warning("the write-ahead log of %s holds %s pages: starting it over, writers waiting for readers",
                        self._uri, pages)
            connection.execute(f"PRAGMA busy_timeout = {int(CAP_WAIT_SECONDS * 1000)}")
            if _restarted(connection):
                self._raised_cap = None
                return
            self._raised_cap = pages + LOG_CAP_PAGES
            log.warning("a reader kept the write-ahead log of %s from starting over; next forced try past %s pages",
                        self._uri, self._raised_cap)


def _restarted(connection: sqlite3.Connection) -> bool:
    """A ``RESTART`` checkpoint; False when busy (a writer, or a reader still in the log)."""
    busy, _, _ = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    return not busy
