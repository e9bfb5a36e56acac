"""A whole deadline for each call to Slack, not one per socket operation.

A socket's timeout bounds each read, so a server (or a proxy between) that
sends its answer a byte at a time, each within the timeout, can hold a call
for as long as it likes: longer than an outbox row's claim, after which the
dispatcher would send the same message again. :class:`Deadlines` keeps one
thread (one per pool of connections, ``SlackConnections``: one per process)
that shuts the socket of a call still running at its deadline; the call's
blocked read then ends, and the call reports a timeout.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass(eq=False)
class Watch:
    """One call's deadline (``Deadlines.watch``)."""

    deadline: float
    sock: socket.socket | None = field(repr=False)
    done: bool = False
    expired: bool = False


class Deadlines:
    """Shuts a watched socket when its call runs past its deadline.

    The thread sleeps until the earliest deadline of a call still running,
    and is woken only when a new call's deadline comes before that, so a
    steady stream of calls that end in time costs a heap push and pop each.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None
        #: Which thread is the live one: :meth:`close` moves it on, and the thread it leaves behind stops.
        self._generation = 0

    def watch(self, seconds: float) -> Watch:
        """Start a call's ``seconds``; give it its socket with :meth:`attach`
        once it has one, and end it with :meth:`release` before closing it."""
        watch = Watch(deadline=time.monotonic() + seconds, sock=None)
        with self._changed:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None:  # first use, or after close()
                self._thread = threading.Thread(target=self._run, args=(self._generation,),
                                                name="slack-call-deadlines", daemon=True)
                self._thread.start()
            if watch.deadline < self._wake_at:
                self._changed.notify()
        return watch

    def attach(self, watch: Watch, sock: socket.socket | None) -> None:
        """The call's socket, now that it has one; shut at once when the
        deadline has passed while it connected."""
        with self._changed:
            watch.sock = sock
            if watch.expired:
                _shut(sock)

    def release(self, watch: Watch) -> bool:
        """The call ended; whether its deadline came first (its socket shut)."""
        with self._changed:
            watch.done = True
            self._drop_done()
            return watch.expired

    def close(self) -> None:
        """Stop the thread (a pool closing); the next :meth:`watch` starts it again."""
        with self._changed:
            self._generation += 1
            thread, self._thread = self._thread, None
            self._changed.notify_all()
        if thread is not None:
            thread.join()

    def _drop_done(self) -> None:
        while self._heap and self._heap[0][2].done:
            heapq.heappop(self._heap)

    def _run(self, generation: int) -> None:
        with self._changed:
            while generation == self._generation:
                self._drop_done()
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, watch = heapq.heappop(self._heap)
                    if not watch.done:
                        watch.expired = watch.done = True
                        _shut(watch.sock)
                    self._drop_done()
                self._wake_at = self._heap[0][0] if self._heap else math.inf
                self._changed.wait(None if self._wake_at == math.inf else self._wake_at - now)


def _shut(sock: socket.socket | None) -> None:
    """End every read and write on ``sock``, from another thread. The plain
    socket's own ``shutdown``: a TLS socket's would drop its TLS state under
    the reading thread."""
    if sock is not None:
        with contextlib.suppress(OSError):  # closed already: the call is ending anyway
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
