"""Which core gunicorn's next worker gets (the pinning itself: tests/e2e/test_serve.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from bot import gunicorn_conf


def _core_for(workers: list[int | None], monkeypatch: pytest.MonkeyPatch, cores: set[int]) -> int | None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores, raising=False)
    server = SimpleNamespace(WORKERS={pid: SimpleNamespace(poam_core=core) for pid, core in enumerate(workers)})
    worker = SimpleNamespace()
    gunicorn_conf.pre_fork(server, worker)
    return getattr(worker, "poam_core", None)


def test_workers_spread_over_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _core_for([], monkeypatch, {2, 3, 5}) == 2
    assert _core_for([2], monkeypatch, {2, 3, 5}) == 3
    assert _core_for([2, 3], monkeypatch, {2, 3, 5}) == 5
    assert _core_for([2, 3, 5], monkeypatch, {2, 3, 5}) == 2  # more workers than cores: round again


def test_a_replacement_worker_gets_the_core_that_was_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _core_for([0, 2], monkeypatch, {0, 1, 2}) == 1
    assert _core_for([0, 0, 1], monkeypatch, {0, 1}) == 1


def test_nothing_is_chosen_with_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _core_for([], monkeypatch, {4}) is None
