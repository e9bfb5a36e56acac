"""bench/host_speed.py: the machine's speed, printed beside the benches' figures."""

from __future__ import annotations

import pytest

from bench.host_speed import python_step_ns, speed_text


def test_a_step_takes_some_cpu_and_longer_loops_take_no_less_per_step() -> None:
    short = python_step_ns(steps=2_000, rounds=3)
    long = python_step_ns(steps=200_000, rounds=3)

    assert short > 0 and long > 0
    # Per step, not per round: a loop 100 times longer is not 100 times slower a step.
    assert long < short * 20


def test_the_figure_says_which_way_is_faster() -> None:
    assert speed_text(151.6) == "Python speed 152 ns a step of bench/host_speed.py's loop (lower is faster)"


def test_steps_and_rounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        python_step_ns(steps=0)
    with pytest.raises(ValueError, match="positive"):
        python_step_ns(rounds=0)
