"""How long to pause between tries for one of SQLite's locks.

SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries,
for locks that are held about half a millisecond: a waiter sleeps long after
the lock came free, holding what it holds meanwhile (a listener's turn, the
write lock). Writers waiting for the write lock (``engine``) and a checkpoint
waiting for the writer and the readers to leave the log alone
(``sqlite_checkpoints``) try again after these pauses instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

#: The first pauses, then the last of them again and again until LONG_WAIT
#: seconds have gone by; from then on LONG_WAIT_PAUSE (a thousand tries a
#: second would cost each waiter a tenth of a core).
SHORT_PAUSES = (0.0001, 0.0002, 0.0005, 0.001)
LONG_WAIT = 0.1
LONG_WAIT_PAUSE = 0.01


def lock_pauses() -> Iterator[float]:
    """The pause before each next try (the first value: before the second
    try), the time counted from the first; never ends."""
    started = time.monotonic()
    pause = 0.0
    shorts = iter(SHORT_PAUSES)
    while True:
        pause = next(shorts, pause) if time.monotonic() - started < LONG_WAIT else LONG_WAIT_PAUSE
        yield pause
