"""How this app's listeners run: on the thread that received the request, and
the work of a request a few at a time, in the order the requests came.

Bolt's default hands each listener to a thread pool, and the thread that
received the request checks every 10 ms whether the listener has acked: every
answer waits for the next check, and each request crosses between threads
twice. Here Bolt's ``listener_executor`` is :attr:`ListenerTurns.executor`,
which runs the listener at once on the calling thread, so a command's answer
goes out as soon as its listener returns (README "Performance"). Bolt's lazy
listeners would run there too, before the answer; this app has none.

A listener that works before it acks (a slash command, a form submission) is
wrapped in :meth:`ListenerTurns.taking_turns`: at most ``at_once`` of those
run at a time (``LISTENERS_AT_ONCE`` in ``context``), and the others wait for
a turn in arrival order. A turn is handed straight from the one leaving to
the one waiting longest: with a plain semaphore a request arriving at that
moment can take it first, and the woken one queues again at the back, which
made the slowest requests several times slower than the median under load.

A listener whose ack carries nothing (a button, a shortcut) acks without
waiting for a turn, and passes its work to :meth:`ListenerTurns.later`, which
keeps its place in the same line and runs it on a thread of its own. Events
are acked by Bolt before their listener runs, and hand their work to the
after-ack threads.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

#: When the listener running in this context arrived, before its wait for a turn.
_ARRIVED: ContextVar[float | None] = ContextVar("poam_listener_arrived", default=None)


class ListenerTurns:
    """At most ``at_once`` requests' work at a time, first come first served."""

    def __init__(self, at_once: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if at_once < 1:
            raise ValueError("at least one listener must be able to run")
        self._guard = threading.Lock()
        self._free = at_once
        #: The line: a request thread's lock (released when its turn comes), or
        #: work for later (handed to a thread when its turn comes).
        self._waiting: deque[threading.Lock | _Later[Any]] = deque()
        self._clock = clock
        #: When a turn was last handed over, or the line last began.
        self._moved_at = clock()
        # As many threads as turns: only work that holds a turn is given one.
        self._threads = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="poam-listener")
        #: For ``App(listener_executor=…)``.
        self.executor: Executor = _OnThisThread()

    @property
    def waiting(self) -> int:
        """How many wait for a turn now."""
        with self._guard:
            return len(self._waiting)

    def stalled_for(self) -> float:
        """Seconds since a turn was last handed over while someone waits in
        line; 0 when nobody waits. Under any load a turn changes hands in
        milliseconds: a line stalled for long has listeners that never come
        back (``bot.web``'s health check reports it)."""
        with self._guard:
            return self._clock() - self._moved_at if self._waiting else 0.0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for a turn (behind everyone already waiting), hold it for the block."""
        with self._held(self._join_line()):
            yield

    def taking_turns(self, listener: Callable[P, T]) -> Callable[P, T]:
        """``listener`` (a Bolt listener) runs in a turn. Bolt reads the names of
        its arguments, which the wrapper keeps."""

        @functools.wraps(listener)
        def in_turn(*args: P.args, **kwargs: P.kwargs) -> T:
            arrived = _ARRIVED.set(self._clock())
            try:
                with self.turn():
                    return listener(*args, **kwargs)
            finally:
                _ARRIVED.reset(arrived)

        return in_turn

    def since_arrival(self) -> float:
        """Seconds since the listener running here (:meth:`taking_turns`)
        arrived, its wait for a turn included; 0 outside one."""
        arrived = _ARRIVED.get()
        return 0.0 if arrived is None else self._clock() - arrived

    def later(self, work: Callable[[], T]) -> Future[T]:
        """Run ``work`` on one of this object's threads, in a turn taken in line now.

        The work waits in the line itself, not on a thread: a thread is given
        to it with its turn. (Waiting on one of these threads for a place in
        line once stopped every listener: when two calls interleaved, a turn
        went to work still queued behind threads that waited for later places.)
        """
        later = _Later(work)
        with self._guard:
            self._line_up(later)
            refused = []
            if self._free:  # then nobody else is in line
                self._free -= 1
                refused = self._hand_over()
        _refuse(refused)
        return later.future

    def _run_in_turn(self, later: _Later[Any]) -> None:
        try:
            later.run()
        finally:
            self._give_back()

    def _join_line(self) -> threading.Lock:
        """A place in line: a lock released when the turn is this place's."""
        place = threading.Lock()
        place.acquire()
        with self._guard:
            if self._free and not self._waiting:
                self._free -= 1
                place.release()
            else:
                self._line_up(place)
        return place

    def _line_up(self, waiter: threading.Lock | _Later[Any]) -> None:
        """At the back of the line (under the guard)."""
        if not self._waiting:
            self._moved_at = self._clock()
        self._waiting.append(waiter)

    @contextmanager
    def _held(self, place: threading.Lock) -> Iterator[None]:
        place.acquire()  # released by _give_back, which hands its turn over
        try:
            yield
        finally:
            self._give_back()

    def _give_back(self) -> None:
        with self._guard:
            refused = self._hand_over()
        _refuse(refused)

    def _hand_over(self) -> list[tuple[_Later[Any], RuntimeError]]:
        """Give the turn in hand to the first in line (under the guard): release
        a waiting thread, or give work a thread; with nobody in line, free it.
        Work the pool refuses (the process is stopping) is passed over and
        returned, to fail outside the guard (its future's callbacks run then)."""
        refused: list[tuple[_Later[Any], RuntimeError]] = []
        while self._waiting:
            first = self._waiting.popleft()
            self._moved_at = self._clock()
            if not isinstance(first, _Later):
                first.release()
                return refused
            try:
                self._threads.submit(self._run_in_turn, first)
                return refused
            except RuntimeError as error:  # no new threads after shutdown
                refused.append((first, error))
        self._free += 1
        return refused


def _refuse(refused: list[tuple[_Later[Any], RuntimeError]]) -> None:
    for later, error in refused:
        later.future.set_exception(error)


class _Later(Generic[T]):
    """Work for later and the future of its result."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.future: Future[T] = Future()

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return  # cancelled while in line
        try:
            result = self.work()
        except BaseException as error:  # kept in the future, as a pool would
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class _OnThisThread(Executor):
    """An executor that runs what it is given at once, on the calling thread,
    and returns it done. Bolt submits each listener to it and never waits on
    the future (the function it submits catches the listener's errors)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            result = fn(*args, **kwargs)
        except Exception as error:  # kept in the future, as a pool would
            future.set_exception(error)
        else:
            future.set_result(result)
        return future
