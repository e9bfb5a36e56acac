"""How fast this machine runs Python just now, as one figure printed beside the benches'.

Machines of the same kind here run the same Python code at speeds up to twice
apart, from day to day and within a day (2026-12-06, seventh session: the bot
counted the same instructions per request as the day before, ``bench/request_cost.py
--instructions``, and spent 1.9 ms of CPU on each instead of 1.0). The bot's
CPU per request follows that speed; the bare app's latency does not (it waits
on Bolt's 10 ms poll), so ``bench/load.py``'s ratios do. This figure lets
runs from different machines and spells be put side by side.
"""

from __future__ import annotations

import time

#: Steps of the reference loop per round (about 0.1 s), and rounds: 0.4-0.5 s in all.
STEPS = 500_000
ROUNDS = 5


def python_step_ns(*, steps: int = STEPS, rounds: int = ROUNDS) -> float:
    """Nanoseconds of this thread's CPU per step of a fixed pure-Python loop
    (a dict, a call, a string: the kinds of work a request does), the fastest
    of ``rounds`` (the others had a neighbour's share of the core)."""
    if steps < 1 or rounds < 1:
        raise ValueError("steps and rounds must be positive")
    fastest = float("inf")
    for _ in range(rounds):
        started = time.thread_time_ns()
        _reference_loop(steps)
        fastest = min(fastest, time.thread_time_ns() - started)
    return fastest / steps


def _reference_loop(steps: int) -> int:
    table: dict[int, int] = {}
    total = 0
    for step in range(steps):
        key = step & 1023
        table[key] = table.get(key, 0) + step
        total += len(str(key))
    return total


def speed_text(step_ns: float) -> str:
    """How the benches print the figure."""
    return f"Python speed {step_ns:.0f} ns a step of bench/host_speed.py's loop (lower is faster)"
