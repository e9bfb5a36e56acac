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
copy yet (pages a reader still needs) a later one copies. SQLite starts the
log over only when a writer begins after a checkpoint that copied all of it,
which steady writes can keep from happening; so when the log has grown past
``RESTART_PAGES`` the thread then runs a ``TRUNCATE`` checkpoint, which makes
writers wait while it copies the rest and empties the log. Every process that
writes does this; SQLite runs their checkpoints one at a time. When the last
connection to the file closes, SQLite checkpoints what is left.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import closing
from urllib.parse import quote

log = logging.getLogger(__name__)

#: Seconds between the starts of two checkpoints by one engine.
CHECKPOINT_INTERVAL = 0.5
#: Pages in the log (4 KiB each by default) past which a checkpoint empties it.
RESTART_PAGES = 4_000
#: How long a checkpoint that empties the log waits for readers and writers.
RESTART_WAIT_SECONDS = 5.0


class WalCheckpoints:
    """The checkpoints of one SQLite file (``path``, made absolute now)."""

    def __init__(self, path: str) -> None:
        self._uri = f"file:{quote(os.path.abspath(path))}?mode=rw"  # never creates a file
        self._running = threading.Lock()
        self._last_started = float("-inf")
        self._thread: threading.Thread | None = None

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
            with closing(sqlite3.connect(self._uri, uri=True, timeout=RESTART_WAIT_SECONDS)) as connection:
                _, pages, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if pages > RESTART_PAGES:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as error:  # the log stays whole; a later writer tries again
            log.warning("checkpointing %s failed: %s", self._uri, error)
        finally:
            self._running.release()
