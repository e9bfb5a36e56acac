"""Pinning a worker's threads to one core and letting one of them off (real affinities, on threads of the test)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from bot import cores

T = TypeVar("T")
pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin to"
)


def _on_a_thread(work: Callable[[], T]) -> T:
    """``work``'s answer, run on a thread of its own (affinities are per thread)."""
    answer: list[T] = []
    thread = threading.Thread(target=lambda: answer.append(work()))
    thread.start()
    thread.join()
    assert answer, "the thread failed"
    return answer[0]


def _affinity() -> set[int]:
    return os.sched_getaffinity(0)


def test_threads_of_a_pinned_thread_stay_on_its_core_unless_let_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "_cores_before_pinning", None)  # restored after: module state of the worker
    every_core = _affinity()
    core = max(every_core)

    def let_off() -> set[int]:
        cores.unpin_this_thread()
        return _affinity()

    def pinned_worker() -> tuple[set[int], set[int]]:
        cores.pin_to(core)
        return _on_a_thread(_affinity), _on_a_thread(let_off)

    assert _on_a_thread(pinned_worker) == ({core}, every_core)
    assert _affinity() == every_core  # the test's own thread was never pinned


def test_letting_off_a_thread_that_was_never_pinned_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "_cores_before_pinning", None)
    core = min(os.sched_getaffinity(0))

    def pinned_by_hand() -> set[int]:
        os.sched_setaffinity(0, {core})  # not through pin_to: nothing to go back to
        cores.unpin_this_thread()
        return _affinity()

    assert _on_a_thread(pinned_by_hand) == {core}
