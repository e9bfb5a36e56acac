"""Listeners that never come back: noticed and explained from a thread of its own.

A deadlock in ``ListenerTurns`` (since fixed) once left a worker answering no
request again while gunicorn, whose timeout watches the worker's own loop,
saw nothing wrong. Two things now notice such a stall: the health check
(``bot.web``) answers 503 so that a liveness probe restarts the worker, and
this watch logs every thread's stack once per stall, which says why. The
watch has a thread of its own because in a real stall the request threads
that would answer a health check may all be waiting in line themselves.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.commands.turns import ListenerTurns

log = logging.getLogger(__name__)

#: A line for the listeners' turns that has not moved for this long is stuck
#: (a turn changes hands in milliseconds; Slack gives up on a request after 3 s).
STUCK_SECONDS = 30.0
#: How often the watch looks. It reports a look earlier than the health
#: check: the stacks are in the log before a probe can have the worker restarted.
LOOK_EVERY_SECONDS = 5.0
REPORT_AFTER_SECONDS = STUCK_SECONDS - LOOK_EVERY_SECONDS


class StallWatch:
    """Looks at ``turns`` every ``every`` seconds once started."""

    def __init__(self, turns: ListenerTurns, *, every: float = LOOK_EVERY_SECONDS) -> None:
        self._turns = turns
        self._every = every
        self._reported = False
        self._stop = threading.Event()

    def start(self) -> StallWatch:
        threading.Thread(target=self._watch, name="poam-stall-watch", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def look(self) -> None:
        """Log every thread's stack if the line has just been found stuck."""
        stalled = self._turns.stalled_for()
        if stalled <= REPORT_AFTER_SECONDS:
            self._reported = False
        elif not self._reported:
            self._reported = True
            log.error("no listener's turn has changed hands for %.0f s while %s requests wait; the threads:\n%s",
                      stalled, self._turns.waiting, thread_stacks())

    def _watch(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.look()
            except Exception:  # the watch must outlive a failed look; logged with its traceback
                log.exception("the stall watch could not look at the listeners")


def thread_stacks() -> str:
    """Every thread's name and stack, as a traceback shows them."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(
        f"{names.get(ident, ident)}:\n{''.join(traceback.format_stack(frame))}"
        for ident, frame in sys._current_frames().items()
    )
