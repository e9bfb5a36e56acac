"""Listener turns: listeners run on the calling thread, a few at a time, first come first served."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest
from slack_bolt.util.utils import get_arg_names_of_callable

from bot.commands.turns import ListenerTurns

WAIT = 5.0


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _until_waiting(turns: ListenerTurns, count: int) -> None:
    _until(lambda: turns.waiting == count)


def test_a_listener_runs_at_once_on_the_calling_thread_without_waiting_for_a_turn() -> None:
    turns = ListenerTurns(1)
    with turns.turn():  # every turn is taken: an ack-only listener runs all the same
        future = turns.executor.submit(lambda a, b: (threading.current_thread(), a + b), 1, b=2)
    assert future.done() and future.result() == (threading.current_thread(), 3)


def test_a_listeners_error_stays_in_its_future() -> None:
    def fails() -> None:
        raise RuntimeError("boom")

    assert isinstance(ListenerTurns(1).executor.submit(fails).exception(), RuntimeError)


def test_a_listener_taking_turns_keeps_its_argument_names_for_bolt() -> None:
    def listener(ack: object, body: object) -> None: ...

    assert get_arg_names_of_callable(ListenerTurns(1).taking_turns(listener)) == ["ack", "body"]


def test_at_most_at_once_listeners_work_and_the_others_wait() -> None:
    turns = ListenerTurns(2)
    release, lock = threading.Event(), threading.Lock()
    running, most = [0], [0]

    @turns.taking_turns
    def listener() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(WAIT)
        with lock:
            running[0] -= 1

    threads = [threading.Thread(target=listener) for _ in range(5)]
    for thread in threads:
        thread.start()
    _until_waiting(turns, 3)
    _until(lambda: running[0] == 2)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert most[0] == 2 and running[0] == 0 and turns.waiting == 0


def test_an_error_gives_the_turn_back() -> None:
    turns = ListenerTurns(1)
    with pytest.raises(RuntimeError), turns.turn():
        raise RuntimeError("boom")
    with turns.turn():
        assert turns.waiting == 0


def _in_turn(turns: ListenerTurns, order: list[str], name: str) -> threading.Thread:
    """A thread that waits for a turn, then notes ``name``; started, and in line."""
    waiting = turns.waiting
    thread = threading.Thread(target=turns.taking_turns(order.append), args=(name,))
    thread.start()
    _until_waiting(turns, waiting + 1)
    return thread


def test_turns_go_in_arrival_order_and_a_newcomer_does_not_pass_the_waiting() -> None:
    turns = ListenerTurns(1)
    order: list[str] = []
    with turns.turn():
        waiting = [_in_turn(turns, order, name) for name in ("B", "C", "D")]
    with turns.turn():  # comes now, on a thread that holds the GIL: still behind B, C and D
        order.append("E")
    for thread in waiting:
        thread.join(WAIT)
    assert order == ["B", "C", "D", "E"]


def test_later_keeps_its_place_in_line_and_runs_on_a_thread_of_its_own() -> None:
    turns = ListenerTurns(1)
    order: list[str] = []
    with turns.turn():
        before = _in_turn(turns, order, "before")
        later = turns.later(lambda: order.append("later") or threading.current_thread())
        assert turns.waiting == 2 and not later.done()
        after = _in_turn(turns, order, "after")
    for thread in (before, after):
        thread.join(WAIT)
    assert later.result(timeout=WAIT).name.startswith("poam-listener")
    assert order == ["before", "later", "after"]


def test_at_least_one_turn() -> None:
    with pytest.raises(ValueError):
        ListenerTurns(0)


def test_work_for_later_racing_in_never_stops_the_turns() -> None:
    """``later`` called from several threads at once, while every turn is taken.
    Work once waited for its turn on one of the turns' own threads: when two
    calls interleaved (one in line first, the other onto a thread first), the
    turn went to work still queued behind threads that waited for later
    places, and no listener ran again (seen under bench/load.py)."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the callers as much as possible
    try:
        for _ in range(300):
            turns = ListenerTurns(1)
            done: list[int] = []
            start = threading.Barrier(4)

            def call(n: int, turns: ListenerTurns = turns, done: list[int] = done,
                     start: threading.Barrier = start) -> None:
                start.wait(WAIT)
                turns.later(lambda: done.append(n))

            with turns.turn():
                callers = [threading.Thread(target=call, args=(n,)) for n in range(4)]
                for caller in callers:
                    caller.start()
                for caller in callers:
                    caller.join(WAIT)
            _until(lambda done=done: len(done) == 4)  # type: ignore[misc]
            with turns.turn():  # and the turn comes back
                pass
    finally:
        sys.setswitchinterval(switch)


def test_work_the_pool_refuses_fails_in_its_future_and_the_turn_goes_on() -> None:
    """Once the pool takes no more work (the process is stopping), work for
    later fails with the pool's error instead of keeping the turn."""
    turns = ListenerTurns(1)
    turns._threads.shutdown()  # as at interpreter shutdown
    with turns.turn():
        queued = turns.later(lambda: "never")
    assert isinstance(queued.exception(timeout=WAIT), RuntimeError)
    assert isinstance(turns.later(lambda: "never").exception(timeout=WAIT), RuntimeError)
    with turns.turn():  # the turn is still there
        assert turns.waiting == 0


def test_work_cancelled_while_in_line_does_not_run() -> None:
    turns = ListenerTurns(1)
    ran: list[str] = []
    with turns.turn():
        cancelled = turns.later(lambda: ran.append("cancelled"))
        kept = turns.later(lambda: ran.append("kept"))
        assert cancelled.cancel()
    kept.result(timeout=WAIT)
    assert ran == ["kept"]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_is_stalled_for_as_long_as_no_turn_changes_hands_while_someone_waits() -> None:
    clock = _Clock()
    turns = ListenerTurns(1, clock=clock)
    release = threading.Event()

    def in_line() -> None:
        with turns.turn():
            release.wait(WAIT)

    waiter = threading.Thread(target=in_line)
    with turns.turn():
        clock.now += 50
        assert turns.stalled_for() == 0.0  # a turn held long with nobody waiting stalls no one
        waiter.start()
        _until_waiting(turns, 1)
        clock.now += 7
        assert turns.stalled_for() == 7.0
        later = turns.later(lambda: "done")  # joining the line does not make it move
        clock.now += 3
        assert turns.stalled_for() == 10.0
    _until_waiting(turns, 1)  # the turn went to the waiting thread: the line moved
    assert turns.stalled_for() == 0.0
    clock.now += 2
    assert turns.stalled_for() == 2.0  # the work for later waits behind it
    release.set()
    waiter.join(WAIT)
    assert later.result(timeout=WAIT) == "done"
    assert turns.stalled_for() == 0.0


def test_a_listener_knows_how_long_since_it_arrived_its_wait_for_a_turn_included() -> None:
    clock = _Clock()
    turns = ListenerTurns(1, clock=clock)
    seen: list[float] = []

    @turns.taking_turns
    def listener() -> None:
        seen.append(turns.since_arrival())
        clock.now += 0.5
        seen.append(turns.since_arrival())

    caller = threading.Thread(target=listener)
    with turns.turn():  # the one turn is taken: the listener waits in line
        caller.start()
        _until_waiting(turns, 1)
        clock.now += 2.0
    caller.join(WAIT)
    assert seen == [2.0, 2.5]
    assert turns.since_arrival() == 0.0  # outside a listener
