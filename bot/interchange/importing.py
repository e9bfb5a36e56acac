"""Import a file: detect its format, parse it (all or nothing), import the findings."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from bot.interchange.detect import PARSERS, detect_format
from bot.interchange.findings import ImportFormatError
from bot.poam.actor import Actor
from bot.poam.imports import ImportSummary, import_findings

MAX_IMPORT_BYTES = 50 * 1024 * 1024

Progress = Callable[[str], None]


def import_file(
    session: Session,
    actor: Actor,
    *,
    name: str,
    data: bytes,
    fmt: str | None = None,
    system_name: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Parse ``data`` and import it in the caller's transaction (roll back for a dry run).

    Raises ``ImportFormatError`` naming the bad row or element, or a domain
    error naming the finding's place; either way nothing is imported.
    """
    say = progress or (lambda _stage: None)
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFormatError("file", f"is {len(data):,} bytes; the limit is {MAX_IMPORT_BYTES:,}")
    fmt = fmt or detect_format(name, data)
    say(f"reading {fmt}")
    findings = PARSERS[fmt](data, source_name=name)
    say(f"importing {len(findings):,} finding(s)")
    summary = import_findings(session, actor, findings=findings, source_name=name, system_name=system_name)
    say("done")
    return summary
