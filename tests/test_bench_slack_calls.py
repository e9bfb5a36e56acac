"""bench/slack_calls.py runs from a checkout and prints its four figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_it_prints_cpu_and_wall_time_per_call_for_both_contexts() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "slack_calls.py"), "--calls", "3"],
                          capture_output=True, text=True, timeout=120, check=True)
    rows = re.findall(r"^(response URL post|chat\.postMessage) +(new per connection|the bot's one \(bot\.tls\)) +"
                      r"(\d+\.\d+) +(\d+\.\d+)$", done.stdout, re.MULTILINE)
    assert [(call, context) for call, context, _, _ in rows] == [
        ("response URL post", "new per connection"), ("chat.postMessage", "new per connection"),
        ("response URL post", "the bot's one (bot.tls)"), ("chat.postMessage", "the bot's one (bot.tls)"),
    ], done.stdout
    assert all(float(cpu) > 0 and float(wall) > 0 for _, _, cpu, wall in rows)
