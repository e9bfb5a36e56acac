"""How Bolt runs this app's listeners: on the thread that received the request,
a few at a time, in the order the requests came.

Bolt's default hands each listener to a thread pool, and the thread that
received the request checks every 10 ms whether the listener has acked: every
answer waits for the next check, and each request crosses between threads
twice. Here Bolt's ``listener_executor`` is :attr:`ListenerTurns.executor`, which
runs the listener at once on the calling thread, so a command's answer goes out
as soon as its listener returns (README "Performance").

At most ``at_once`` listeners run at a time (``LISTENERS_AT_ONCE`` in
``context``); the others wait for a turn, in arrival order. A turn is handed
straight from the listener leaving to the one waiting longest: with a plain
semaphore a request arriving at that moment can take it first, and the woken
one queues again at the back, which made the slowest requests several times
slower than the median under load.

Listeners whose ack carries nothing (buttons, shortcuts) ack at once and pass
the rest of their work to :meth:`ListenerTurns.later`, which runs it on a
thread of its own once it has a turn, like any request. Bolt's lazy listeners
would also run through ``executor`` (at once, not later); this app has none.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class ListenerTurns:
    """At most ``at_once`` listeners at a time, first come first served."""

    def __init__(self, at_once: int) -> None:
        if at_once < 1:
            raise ValueError("at least one listener must be able to run")
        self._guard = threading.Lock()
        self._free = at_once
        self._waiting: deque[threading.Lock] = deque()
        self._threads = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="poam-listener")
        #: For ``App(listener_executor=…)``.
        self.executor: Executor = _OnThisThread(self)

    @property
    def waiting(self) -> int:
        """How many wait for a turn now."""
        with self._guard:
            return len(self._waiting)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for a turn (behind everyone already waiting), hold it for the block."""
        self._take()
        try:
            yield
        finally:
            self._give_back()

    def later(self, work: Callable[[], T]) -> Future[T]:
        """Run ``work`` on one of this object's threads when it gets a turn."""
        return self._threads.submit(self._in_turn, work)

    def _in_turn(self, work: Callable[[], T]) -> T:
        with self.turn():
            return work()

    def _take(self) -> None:
        with self._guard:
            if self._free and not self._waiting:
                self._free -= 1
                return
            handed_over = threading.Lock()
            handed_over.acquire()
            self._waiting.append(handed_over)
        handed_over.acquire()  # released by _give_back: the leaving listener's turn is now ours

    def _give_back(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._free += 1


class _OnThisThread(Executor):
    """An executor that runs what it is given at once, on the calling thread, in
    turn, and returns it done. Bolt submits each listener to it and never
    waits on the future (the function it submits catches the listener's errors)."""

    def __init__(self, turns: ListenerTurns) -> None:
        self._turns = turns

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._turns.turn():
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # kept in the future, as a pool would
                future.set_exception(error)
            else:
                future.set_result(result)
        return future
