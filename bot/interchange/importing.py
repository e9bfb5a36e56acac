"""Reading an import file: detect its format and parse it, all or nothing.

Parsing happens before any database transaction opens (a large workbook or
XML file takes a while, and a write transaction on SQLite holds every other
writer up); ``bot.poam.imports.import_findings`` then writes in one short one.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.interchange.detect import detect_format, parse
from bot.interchange.findings import Finding, ImportFormatError

MAX_IMPORT_BYTES = 50 * 1024 * 1024

Progress = Callable[[str], None]


def read_findings(name: str, data: bytes, *, fmt: str | None = None, progress: Progress | None = None) -> list[Finding]:
    """The file's findings; ``ImportFormatError`` names the bad row or element."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFormatError("file", f"is larger than the limit of {MAX_IMPORT_BYTES:,} bytes")
    fmt = fmt or detect_format(name, data)
    if progress:
        progress(f"reading {fmt}")
    findings = parse(name, data, format_name=fmt)
    if progress:
        progress(f"importing {len(findings):,} finding(s)")
    return findings
