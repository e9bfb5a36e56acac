"""The code follows the project's lint rules ([tool.ruff] in pyproject.toml) and bot/ type-checks
([tool.mypy]), so that CI keeps it so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "bot", "tests", "bench"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_mypy_finds_nothing_in_bot() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", os.devnull],  # what: [tool.mypy] files
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert checked.returncode == 0, checked.stdout[-5000:] + checked.stderr
