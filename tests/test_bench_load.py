"""bench/load.py's arithmetic (the figures themselves are the bench's to print)."""

from __future__ import annotations

from bench.load import Run, Sample, cpu_budget, kinds_line, percentile, warm_passes


def _run(target: str, requests: int, *, seconds: float = 1.0, cpu_seconds: float | None = None) -> Run:
    samples = [Sample("show", 0.01, True) for _ in range(requests)]
    return Run(target, 8, seconds, samples, cpu_seconds=cpu_seconds)


def test_cpu_budget_says_what_the_throughput_target_leaves_per_request() -> None:
    bare = _run("bare", 600)
    bot = _run("bot", 200, cpu_seconds=0.8)  # 4 ms of CPU per request

    line = cpu_budget(bot, bare, workers=1, cores=2)

    assert line is not None
    assert "0.6x bare is 360 req/s" in line
    assert "at most 2.78 ms of CPU per request on 1 core(s)" in line
    assert "the bot spends 4.00 ms, a ceiling of 250 req/s" in line


def test_cpu_budget_counts_no_more_cores_than_workers_or_the_machine_has() -> None:
    bare, bot = _run("bare", 600), _run("bot", 200, cpu_seconds=0.8)

    assert "5.56 ms of CPU per request on 2 core(s)" in (cpu_budget(bot, bare, workers=3, cores=2) or "")
    assert "on 2 core(s)" in (cpu_budget(bot, bare, workers=2, cores=8) or "")


def test_cpu_budget_needs_cpu_figures() -> None:
    assert cpu_budget(_run("bot", 200), _run("bare", 600), workers=1, cores=2) is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0


def test_kinds_line_says_which_kind_the_slowest_request_was() -> None:
    samples = [Sample("show", 0.010, True), Sample("show", 0.012, True), Sample("claim", 0.950, True)]
    line = kinds_line(Run("bot", 8, 1.0, samples))

    assert "show 2× p50 10.0 p99 12.0 max 12.0" in line
    assert "claim 1× p50 950.0 p99 950.0 max 950.0" in line
    assert "list 0× p50 0.0 p99 0.0 max 0.0" in line


def test_the_warm_up_reaches_every_worker_of_several() -> None:
    """Each worker caches users.info itself: one pass suffices for one worker,
    several workers get several passes (each on new connections)."""
    assert warm_passes(1) == 1
    assert warm_passes(2) == 8
    assert (1 - 1 / 3) ** warm_passes(3) < 0.01  # a worker's odds of missing a user, connections spread evenly
