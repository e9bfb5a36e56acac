"""The stall watch: every thread's stack, logged once when the listeners' line stops moving."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from bot.commands.turns import ListenerTurns
from bot.stall_watch import REPORT_AFTER_SECONDS, StallWatch


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def stuck(clock: _Clock) -> Iterator[ListenerTurns]:
    """One turn, held by a thread named 'holder', and a thread named 'waiter' in line for it."""
    turns = ListenerTurns(1, clock=clock)
    release = threading.Event()

    def hold() -> None:
        with turns.turn():
            release.wait(30)

    holder = threading.Thread(target=hold, name="holder")
    waiter = threading.Thread(target=hold, name="waiter")  # the two names may swap roles: both show
    holder.start()
    waiter.start()
    deadline = time.monotonic() + 5
    while turns.waiting != 1:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    yield turns
    release.set()
    holder.join(10)
    waiter.join(10)


def _reports(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "the threads:" in record.getMessage()]


def _stacks_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in _reports(caplog)]


def test_a_stuck_line_is_reported_once_with_every_threads_stack(
    stuck: ListenerTurns, clock: _Clock, caplog: pytest.LogCaptureFixture
) -> None:
    watch = StallWatch(stuck)
    with caplog.at_level(logging.ERROR, logger="bot.stall_watch"):
        clock.now += REPORT_AFTER_SECONDS
        watch.look()
        assert _stacks_logged(caplog) == []  # not yet
        clock.now += 1
        watch.look()
        watch.look()
    (report,) = _stacks_logged(caplog)
    assert f"for {REPORT_AFTER_SECONDS + 1:.0f} s while 1 requests wait" in report
    assert "holder:" in report and "waiter:" in report and "_held" in report  # who holds, who waits, where


def test_the_watch_looks_on_a_thread_of_its_own(
    stuck: ListenerTurns, clock: _Clock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.now += REPORT_AFTER_SECONDS + 1
    with caplog.at_level(logging.ERROR, logger="bot.stall_watch"):
        watch = StallWatch(stuck, every=0.01).start()
        try:
            deadline = time.monotonic() + 5
            while not _stacks_logged(caplog):
                assert time.monotonic() < deadline, "the watch never reported"
                time.sleep(0.01)
        finally:
            watch.stop()
    assert _reports(caplog)[0].threadName == "poam-stall-watch"  # looked on a thread of its own


def test_a_line_that_moves_again_is_reported_again_when_stuck_again(clock: _Clock, caplog: pytest.LogCaptureFixture) -> None:
    turns = ListenerTurns(1, clock=clock)
    watch = StallWatch(turns)
    with caplog.at_level(logging.ERROR, logger="bot.stall_watch"):
        for _ in range(2):
            release = threading.Event()

            def hold(release: threading.Event = release) -> None:
                with turns.turn():
                    release.wait(30)

            threads = [threading.Thread(target=hold) for _ in range(2)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 5
            while turns.waiting != 1:
                assert time.monotonic() < deadline
                time.sleep(0.001)
            clock.now += REPORT_AFTER_SECONDS + 1
            watch.look()
            release.set()
            for thread in threads:
                thread.join(10)
            watch.look()  # moving (nobody waits): the next stall is news
    assert len(_stacks_logged(caplog)) == 2
