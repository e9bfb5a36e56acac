"""bench/request_cost.py end to end, small: it prints a figure for every kind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_request_cost_prints_the_cpu_of_each_kind_of_request() -> None:
    done = subprocess.run(
        [sys.executable, "bench/request_cost.py", "--items", "300", "--requests", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {m.group(1): (int(m.group(2)), float(m.group(3))) for m in
            re.finditer(r"^(list|show|claim|click)\s+(\d+)\s+([\d.]+)\s+[\d.]+$", done.stdout, re.MULTILINE)}
    assert set(rows) == {"list", "show", "claim", "click"}, done.stdout
    assert all(requests == 3 and cpu > 0 for requests, cpu in rows.values())
    speed = re.search(r"^Python speed (\d+) ns a step", done.stdout, re.MULTILINE)
    assert speed is not None and int(speed.group(1)) > 0, done.stdout  # the machine's speed beside its CPU figures


def test_instructions_need_valgrind() -> None:
    done = subprocess.run(
        [sys.executable, "bench/request_cost.py", "--instructions"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},
    )
    assert done.returncode == 2
    assert "--instructions needs valgrind on the PATH" in done.stderr
