"""bench/lists.py end to end, small: a time and a count for every list."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bot.poam.item_lists import Scope

ROOT = Path(__file__).resolve().parents[1]


def test_lists_prints_a_time_and_a_count_for_every_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    seeded = subprocess.run([sys.executable, "bench/seed.py", "--items", "300", "--database-url", url],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    done = subprocess.run([sys.executable, "bench/lists.py", "--database-url", url, "--offsets", "0,20", "--repeat", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {m.group(1): m.group(4) for m in re.finditer(
        r"^(\w+)\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d,]+\+?)$", done.stdout, re.MULTILINE)}
    assert set(rows) == {scope.value for scope in Scope}, done.stdout
    assert int(rows["all"]) == 300
