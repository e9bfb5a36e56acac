"""``bot.call_deadlines``: a socket still in use at its call's deadline is shut,
so that a blocked read ends; one whose call ended in time is left alone."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bot.call_deadlines import Deadlines


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_a_read_blocked_past_the_deadline_ends_there(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    deadlines = Deadlines()
    began = time.monotonic()
    watch = deadlines.watch(0.3)
    deadlines.attach(watch, ours)
    assert ours.recv(1) == b""  # the other end says nothing: only the shutdown ends this read
    assert 0.3 <= time.monotonic() - began < 0.8
    assert deadlines.release(watch) is True


def test_a_call_that_ends_in_time_keeps_its_socket(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    deadlines = Deadlines()
    watch = deadlines.watch(0.2)
    deadlines.attach(watch, ours)
    assert deadlines.release(watch) is False
    time.sleep(0.4)
    theirs.sendall(b"x")
    assert ours.recv(1) == b"x"


def test_a_socket_given_after_the_deadline_is_shut_at_once(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    deadlines = Deadlines()
    watch = deadlines.watch(0.05)
    time.sleep(0.2)  # connecting took longer than the whole call may
    deadlines.attach(watch, ours)
    ours.settimeout(1)
    assert ours.recv(1) == b""
    assert deadlines.release(watch) is True


def test_only_the_late_call_is_cut() -> None:
    """Calls of every length at once: each is cut at its own deadline, and
    those released before theirs are not."""
    deadlines = Deadlines()
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        late = deadlines.watch(0.2)
        deadlines.attach(late, pairs[0][0])
        watches = [deadlines.watch(seconds) for seconds in (0.1, 5, 0.3)]
        for watch, (ours, _) in zip(watches, pairs[1:], strict=True):
            deadlines.attach(watch, ours)
        assert deadlines.release(watches[0]) is False  # ended before its 0.1 s
        ended = threading.Event()
        threading.Thread(target=lambda: (pairs[0][0].recv(1), ended.set()), daemon=True).start()
        assert ended.wait(1)
        assert deadlines.release(late) is True
        time.sleep(0.3)
        assert deadlines.release(watches[2]) is True  # its 0.3 s passed while nobody read
        assert deadlines.release(watches[1]) is False
        for ours, theirs in pairs[1:3]:  # released in time
            theirs.sendall(b"x")
            assert ours.recv(1) == b"x"
        pairs[3][0].settimeout(1)
        assert pairs[3][0].recv(1) == b""
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_closed_it_stops_its_thread_and_starts_again_when_used(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    deadlines = Deadlines()
    def threads() -> int:
        return sum(thread.name == "slack-call-deadlines" for thread in threading.enumerate())

    before = threads()
    deadlines.release(deadlines.watch(5))
    assert threads() == before + 1
    deadlines.close()
    assert threads() == before
    watch = deadlines.watch(0.1)
    deadlines.attach(watch, ours)
    ours.settimeout(2)
    assert ours.recv(1) == b""  # watched again
    assert deadlines.release(watch) is True
    deadlines.close()
