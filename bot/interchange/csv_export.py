"""The POA&M as CSV: one row per item, the FedRAMP template's columns, then
the current status, current due date and system (the template keeps open and
closed items on separate tabs; one CSV table needs the status instead)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from typing import IO

from bot.interchange.fedramp import COLUMNS, Names, row
from bot.poam.actor import Rules
from bot.poam.item_details import ItemDetail

EXTRA_COLUMNS = ("Status", "Current Due Date", "System")
#: Starts guarded with a leading ': a formula's, and the guard's own (text
#: that begins with ' keeps it), so that csv_import takes off exactly one.
GUARDED_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def _cell(value: str | date | None) -> str:
    """Text for one cell; text a spreadsheet would run as a formula (or that
    begins with the quote itself) is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return "'" + value if value.startswith(GUARDED_STARTS) else value


def write_csv(details: Iterable[ItemDetail], out: IO[str], *, rules: Rules, names: Names | None = None) -> int:
    """Write the header and one row per item (people by ``names``); returns the number of items."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS + EXTRA_COLUMNS)
    count = 0
    for detail in details:
        cells = row(detail, rules=rules, names=names) + [
            detail.item.status,
            detail.item.due_on,
            detail.system.name,
        ]
        writer.writerow(_cell(cell) for cell in cells)
        count += 1
    return count
