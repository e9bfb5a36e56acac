"""Listener turns: listeners run on the calling thread, a few at a time, first come first served."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from bot.commands.turns import ListenerTurns

WAIT = 5.0


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _until_waiting(turns: ListenerTurns, count: int) -> None:
    _until(lambda: turns.waiting == count)


def test_a_listener_runs_at_once_on_the_calling_thread_and_its_future_is_done() -> None:
    turns = ListenerTurns(2)
    future = turns.executor.submit(lambda a, b: (threading.current_thread(), a + b), 1, b=2)
    assert future.done() and future.result() == (threading.current_thread(), 3)


def test_an_error_stays_in_the_future_and_frees_the_turn() -> None:
    turns = ListenerTurns(1)

    def fails() -> None:
        raise RuntimeError("boom")

    future = turns.executor.submit(fails)
    assert isinstance(future.exception(), RuntimeError)
    assert turns.executor.submit(lambda: "next").result(timeout=WAIT) == "next"  # the turn came back


def test_at_most_at_once_listeners_run_and_the_others_wait() -> None:
    turns = ListenerTurns(2)
    release, lock = threading.Event(), threading.Lock()
    running, most = [0], [0]

    def listener() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(WAIT)
        with lock:
            running[0] -= 1

    threads = [threading.Thread(target=turns.executor.submit, args=(listener,)) for _ in range(5)]
    for thread in threads:
        thread.start()
    _until_waiting(turns, 3)
    assert running[0] == 2
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert most[0] == 2 and running[0] == 0 and turns.waiting == 0


def test_turns_go_in_arrival_order_and_a_newcomer_does_not_pass_the_waiting() -> None:
    turns = ListenerTurns(1)
    order: list[str] = []
    waiting: list[threading.Thread] = []
    with turns.turn():
        for name in ("B", "C", "D"):
            waiting.append(threading.Thread(target=turns.executor.submit, args=(order.append, name)))
            waiting[-1].start()
            _until_waiting(turns, len(waiting))  # each is queued before the next comes
    with turns.turn():  # comes now, on a thread that holds the GIL: still behind B, C and D
        order.append("E")
    for thread in waiting:
        thread.join(WAIT)
    assert order == ["B", "C", "D", "E"]


def test_later_runs_on_a_thread_of_its_own_once_it_has_a_turn() -> None:
    turns = ListenerTurns(1)
    with turns.turn():
        later = turns.later(threading.current_thread)
        _until_waiting(turns, 1)
        assert not later.done()
    assert later.result(timeout=WAIT) is not threading.current_thread()
    assert later.result().name.startswith("poam-listener")


def test_at_least_one_turn() -> None:
    with pytest.raises(ValueError):
        ListenerTurns(0)
