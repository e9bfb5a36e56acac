"""bench/slack_calls.py runs from a checkout and prints its six figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPS = ("new, new per connection", "new, the bot's one (bot.tls)", "kept (bot.slack_http), the bot's one")


def test_it_prints_cpu_and_wall_time_per_call_for_each_way_of_calling() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "slack_calls.py"), "--calls", "3"],
                          capture_output=True, text=True, timeout=120, check=True)
    setups = "|".join(re.escape(setup) for setup in SETUPS)
    rows = re.findall(rf"^(response URL post|chat\.postMessage) +({setups}) +(\d+\.\d+) +(\d+\.\d+)$",
                      done.stdout, re.MULTILINE)
    assert [(call, setup) for call, setup, _, _ in rows] == [
        (call, setup) for setup in SETUPS for call in ("response URL post", "chat.postMessage")
    ], done.stdout
    assert all(float(cpu) > 0 and float(wall) > 0 for _, _, cpu, wall in rows)
