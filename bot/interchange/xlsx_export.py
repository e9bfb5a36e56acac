"""The FedRAMP POA&M workbook (xlsx): the layout of GSA's Rev 5 template.

Tabs "Open POA&M Items" and "Closed POA&M Items" (plus the template's
"Configuration Findings" and "Record of Changes"); rows 2–3 name the CSP, the
system, its impact level and the POA&M date; row 5 holds the 31 column
headers; rows 6–7 say what each column holds and in which format; items start
on row 8. Dates are real Excel dates. Written in openpyxl's streaming mode, so
large POA&Ms do not sit in memory as cell objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bot.interchange.fedramp import CLOSED_TAB, COLUMNS, OPEN_TAB, Names, row
from bot.poam.actor import Rules
from bot.poam.item_details import ItemDetail
from bot.poam.lifecycle import Status
from bot.store.rows import Columns

CONFIGURATION_TAB = "Configuration Findings"
CHANGES_TAB = "Record of Changes"
TITLE = "FedRAMP Plan of Action and Milestones (POA&M)"
FIRST_ITEM_ROW = 8
DATE_FORMAT = "yyyy-mm-dd"

#: Row 6: what each column holds (our words, one per column of COLUMNS).
GUIDANCE = (
    "Unique id of the item", "Applicable NIST SP 800-53 controls", "Short name of the weakness",
    "What the weakness is", "Scanner or other source that found it", "The source's id for it (plugin or rule id)",
    "Affected assets, one per line, with port and protocol when known", "Person responsible for the fix",
    "Resources needed beyond current ones", "How the weakness will be remediated", "When it was first found",
    "Planned completion date; never changes", "Milestones as first planned; never edited",
    "Every change to the milestones, with why", "When the item last changed or closed", "Waiting on a vendor?",
    "Last check-in with the vendor", "Product that waits on the vendor", "Risk as found",
    "Risk as approved after adjustment", "Was a risk adjustment requested/approved?",
    "Was it a false positive?", "Is it an operational requirement?", "Why the deviation",
    "Documents supporting the item", "Anything else", "Was a deviation auto-approved?",
    "Listed in CISA's Known Exploited Vulnerabilities?", "Due date under BOD 22-01", "CVE ids", "Affected service",
)
#: Row 7: the expected format of each column, as GSA's template words it.
FORMATS = (
    "Unique Identifier", "Control Number", "Text", "Text", "[Nessus, Qualys, Webinspect, Security Assessment Report, etc]",
    "Identifier", "Identifier (port/protocol)", "Text", "Text", "Text", "Date", "Date",
    "(##) xxxx-xx-xx: Milestone Description", "(##) New/Update/Complete xxxx-xx-xx  : Description of change", "Date",
    "Yes, No", "Date", "Product Name", "Low, Moderate, High", "Low, Moderate, High, N/A", "Yes, No, Pending",
    "Yes, No, Pending", "Yes, No, Pending", "Deviation Type : Rationale", "Document Type : Document Name", "Text",
    "Yes, No", "Yes, No", "Date", "Text", "Text",
)
assert len(GUIDANCE) == len(FORMATS) == len(COLUMNS)


# Shared: building a style object per cell cost more than writing the cell.
_BOLD = Font(bold=True)
_WRAP = Alignment(wrap_text=True, vertical="top")


def _cell(sheet: WriteOnlyWorksheet, value: Any, *, bold: bool = False, wrap: bool = False) -> Cell:
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # text stays text: "=…" must never become a live formula
    if isinstance(value, date):
        cell.number_format = DATE_FORMAT
    if bold:
        cell.font = _BOLD
    if wrap:
        cell.alignment = _WRAP
    return cell


#: Excel's most characters in a cell, counted in UTF-16 units (an emoji is
#: two); openpyxl cuts longer text there without a word.
CELL_LIMIT = 32_767
CUT = " … (cut at Excel's limit of a cell; the JSON export has all of it)"


def _value(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    """A data cell: plain values stream fastest (openpyxl itself gives a plain
    date the ``yyyy-mm-dd`` format); multi-line text and text a spreadsheet
    would read as a formula need a styled cell. Text past a cell's limit (a
    long history of milestone changes or decisions) is cut, and says so.
    Control characters a workbook cannot hold (a scanner's colour codes) are
    left out; the JSON export keeps them."""
    if isinstance(value, str):
        value = _within_limit(_storable(value))
    if isinstance(value, str) and (value.startswith("=") or "\n" in value):
        return _cell(sheet, value, wrap="\n" in value)
    return value


#: What XML 1.0, and so a workbook, cannot hold: openpyxl's control characters
#: and the two non-characters lxml refuses (openpyxl refuses the whole file for one).
_NOT_STORABLE = re.compile(f"{ILLEGAL_CHARACTERS_RE.pattern}|[\ufffe\uffff]")


def _within_limit(text: str) -> str:
    """``text``, or as much of it as a cell holds and a note that it was cut,
    counted as Excel counts (a character past U+FFFF is two units; none is split)."""
    if len(text) <= CELL_LIMIT // 2:  # fits however it counts
        return text
    units = text.encode("utf-16-le")
    if len(units) <= 2 * CELL_LIMIT:
        return text
    return units[: 2 * (CELL_LIMIT - len(CUT))].decode("utf-16-le", errors="ignore") + CUT


def _storable(text: str) -> str:
    """``text`` without the characters a workbook cannot hold."""
    return _NOT_STORABLE.sub("", text)


def _heading(sheet: WriteOnlyWorksheet, *, csp: str, system: Columns, poam_date: date) -> None:
    sheet.append([_cell(sheet, TITLE, bold=True)])
    sheet.append([_cell(sheet, label, bold=True) for label in ("CSP", "System Name", "Impact Level", "POAM Date")])
    sheet.append([_value(sheet, csp), _value(sheet, system.name), system.impact.capitalize(), _cell(sheet, poam_date)])
    sheet.append([])
    sheet.append([_cell(sheet, header, bold=True, wrap=True) for header in COLUMNS])
    sheet.append([_cell(sheet, text, wrap=True) for text in GUIDANCE])
    sheet.append(list(FORMATS))


def write_workbook(
    details: Iterable[ItemDetail], out: IO[bytes], *, rules: Rules, system: Columns, csp: str, poam_date: date,
    names: Names | None = None,
) -> int:
    """Write one system's POA&M workbook to ``out`` (people by ``names``); returns the number of items."""
    book = Workbook(write_only=True)
    tabs = {name: book.create_sheet(name) for name in (OPEN_TAB, CLOSED_TAB, CONFIGURATION_TAB)}
    for name in (OPEN_TAB, CLOSED_TAB):  # the headers stay in sight, as in GSA's template (set before any row)
        tabs[name].freeze_panes = "A6"
    for sheet in tabs.values():
        _heading(sheet, csp=csp, system=system, poam_date=poam_date)
    changes = book.create_sheet(CHANGES_TAB)  # from B2, as in GSA's template
    changes.append([])
    changes.append([None, _cell(changes, "Record of Changes", bold=True)])
    changes.append([None, *(_cell(changes, h, bold=True) for h in ("Date", "Description", "Version", "Author"))])
    changes.append([None, _cell(changes, poam_date), "Exported by poam-bot", None, "poam-bot"])
    count = 0
    for detail in details:
        sheet = tabs[CLOSED_TAB if detail.item.status == Status.CLOSED else OPEN_TAB]
        sheet.append([_value(sheet, value) for value in row(detail, rules=rules, names=names)])
        count += 1
    book.save(out)
    return count
