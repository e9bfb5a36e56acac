"""SQLite's write-ahead log is checkpointed on a thread of its own, not inside a commit.

By default SQLite copies the log back into the database file (with an fsync)
inside whichever commit takes the log past 1,000 pages. In bench/load.py about
one claim in a hundred took 14 ms instead of 1.5 that way, holding the write
lock and a listener turn meanwhile, so that everyone queued behind it waited
too (README "Performance").

Here connections do not checkpoint on commit (``wal_autocheckpoint = 0``).
Instead, when a writer begins, at most every ``CHECKPOINT_INTERVAL`` seconds
and one at a time, a short-lived thread runs a ``PASSIVE`` checkpoint of what
earlier writers committed: it waits for no reader or writer, and what it
cannot copy yet (pages a reader still needs) the next one copies. Every
process that writes does so; SQLite runs their checkpoints one at a time. When
the last connection to the file closes, SQLite checkpoints what is left.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import closing
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

#: Seconds between the starts of two checkpoints by one engine.
CHECKPOINT_INTERVAL = 0.5
CHECKPOINT_THREAD = "poam-wal-checkpoint"


class WalCheckpoints:
    """The checkpoints of one engine's SQLite file (``path``)."""

    def __init__(self, engine: Engine, path: str) -> None:
        self._path = path
        self._running = threading.Lock()
        self._last_started = float("-inf")

        @event.listens_for(engine, "connect")  # a pool event: no cost per statement
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")

    def writer_begins(self) -> None:
        """Start a checkpoint if the last one started long enough ago and is done."""
        now = time.monotonic()
        if now - self._last_started < CHECKPOINT_INTERVAL or not self._running.acquire(blocking=False):
            return
        self._last_started = now
        threading.Thread(target=self._checkpoint, name=CHECKPOINT_THREAD, daemon=True).start()

    def _checkpoint(self) -> None:
        try:
            with closing(sqlite3.connect(self._path)) as connection:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:  # the log stays whole; a later writer tries again
            log.warning("checkpointing %s failed: %s", self._path, error)
        finally:
            self._running.release()
