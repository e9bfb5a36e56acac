"""CSV → findings, in two shapes told apart by the header row:

* **our own export** (:mod:`bot.interchange.csv_export`): the FedRAMP template
  columns plus Status, Current Due Date and System; each row maps like a
  workbook row (:func:`bot.interchange.workbook_import.template_finding`);
* **a scanner's list**: columns for title, severity, asset, rule or plugin id,
  tool, CVE, description and detection date, under common names
  (:data:`SCANNER_COLUMNS`; case, spaces, ``_`` and ``-`` do not matter).

Comma, semicolon or tab separated (whichever splits the header most), UTF-8
(a byte-order mark is fine). Row numbers count the header as row 1, as a
spreadsheet shows them. Unknown columns are refused, so a misspelt header is
reported instead of silently dropped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping

from bot.interchange.csv_export import EXTRA_COLUMNS, GUARDED_STARTS
from bot.interchange.fedramp import COLUMNS
from bot.interchange.findings import PROTOCOL, Finding, ImportFormatError, kept_cves, port_number
from bot.interchange.workbook_import import LIST_SEPARATOR, day, template_finding
from bot.poam import fields
from bot.poam.errors import InvalidInput
from bot.poam.items import MAX_TITLE, item_description
from bot.poam.lifecycle import Status
from bot.poam.severity import Severity
from bot.poam.text import clip

#: The tool of scanner rows that name none.
DEFAULT_TOOL = "CSV"

#: Scanner-style columns: the field each fills and the header names accepted for it.
SCANNER_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "title": ("title", "name", "plugin name", "vulnerability", "vulnerability name", "weakness",
              "weakness name", "finding", "issue", "check name", "rule name"),
    "severity": ("severity", "risk", "risk rating", "level", "original risk rating"),
    "asset": ("asset", "asset identifier", "host", "hostname", "host name", "ip", "ip address",
              "target", "resource", "file", "path", "location", "component"),
    "rule_id": ("rule id", "rule", "rule_id", "plugin id", "plugin", "plugin_id", "check id", "id",
                "vulnerability id", "finding id", "qid", "weakness source identifier"),
    "tool": ("tool", "scanner", "source", "weakness detector source"),
    "cve": ("cve", "cves", "cve id", "cve ids"),
    "synopsis": ("synopsis", "summary"),
    "description": ("description", "details", "weakness description"),
    "solution": ("solution", "remediation", "fix", "recommendation"),
    "detected": ("detected", "detected on", "detection date", "date detected", "first seen",
                 "first detected", "discovered", "date", "original detection date"),
    "port": ("port",),
    "protocol": ("protocol",),
}
REQUIRED_SCANNER = ("title", "severity", "asset")
#: Scanner columns recognised and deliberately not imported (Nessus's CSV export has them).
IGNORED_SCANNER = ("see also", "plugin output", "references", "bid", "xref", "mskb", "vpr score",
                   "epss score", "cwe", "stig severity", "plugin publication date",
                   "plugin modification date", "exploitable", "metasploit", "core impact", "canvas")
REQUIRED_TEMPLATE = ("POAM ID", "Weakness Name", "Asset Identifier", "Original Risk Rating")

INFORMATIONAL = frozenset({"info", "informational", "none", "information", "negligible"})
#: Columns read only where no other gives their field: Nessus's full CSV has
#: both "Risk" (its rating) and "Risk Factor" (the older CVSS v2 one).
FALLBACK_SCANNER = {"risk factor": "severity"}
#: The tool of a scanner list without a tool column whose header has "Plugin
#: ID": Nessus's CSV export, named as its .nessus files are (the same scan in
#: either form is then the same weaknesses).
PLUGIN_TOOL = "Nessus"
_SEVERITY_WORDS = "critical, high, moderate (or medium), low, or info / none for informational"
_STATUSES = {status.value: status for status in Status} | {status.label: status for status in Status}


def _key(header: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", header).lower().split())


_ALIASES = {_key(alias): field for field, aliases in SCANNER_COLUMNS.items() for alias in aliases}
_TEMPLATE = {_key(column): column for column in COLUMNS + EXTRA_COLUMNS}


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFormatError(
            "file", f"is not UTF-8 text (byte {error.start}); save it as \"CSV UTF-8\" and import again"
        ) from None


def _delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=first_line.count)


def _records(text: str) -> list[tuple[int, list[str]]]:
    """(row number, cells) of every record; the header is row 1."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    records: list[tuple[int, list[str]]] = []
    number = 0
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as error:
            raise ImportFormatError(f"row {number}", f"is not valid CSV (line {reader.line_num}: {error})") from None
        for cell in cells:
            if "\x00" in cell:
                raise ImportFormatError(f"row {number}", "contains a NUL character")
        records.append((number, cells))


def _quote_list(names: list[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _columns(
    header: list[str], known: Mapping[str, str], *, accepted: str, ignored: frozenset[str] = frozenset(),
    fallbacks: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """``known`` name → column index for each header; unknown or repeated ones
    refused; a ``fallbacks`` column gives its field where no other does."""
    positions: dict[str, int] = {}
    unknown = []
    given = {known.get(_key(name)) for name in header}
    for index, name in enumerate(header):
        key = _key(name)
        if not key:
            raise ImportFormatError("row 1", f"column {index + 1} has no header")
        target = known.get(key)
        if target is None and fallbacks and key in fallbacks:
            if fallbacks[key] not in given:
                positions[fallbacks[key]] = index
            continue
        if target is None:
            if key not in ignored and not (ignored and key.startswith("cvss")):
                unknown.append(name.strip())
            continue
        if target in positions:
            raise ImportFormatError(
                "row 1", f'columns "{header[positions[target]].strip()}" and "{name.strip()}" both give {target}'
            )
        positions[target] = index
    if unknown:
        raise ImportFormatError("row 1", f"unknown column(s) {_quote_list(unknown)}; {accepted}")
    return positions


def _cells(number: int, cells: list[str], width: int) -> list[str] | None:
    """The row padded to the header's width; None for a blank row."""
    if not any(cell.strip() for cell in cells):
        return None
    if len(cells) > width and any(cell.strip() for cell in cells[width:]):
        raise ImportFormatError(f"row {number}", f"has {len(cells)} cells but the header has {width} columns")
    return (cells + [""] * width)[:width]


def _unguard(cell: str) -> str:
    """Undo the export's formula guard: ``'=x`` was written for ``=x``, ``''x`` for ``'x``."""
    return cell[1:] if cell.startswith("'") and cell[1:2] and cell[1:2] in GUARDED_STARTS else cell


def _template_rows(records: list[tuple[int, list[str]]], header: list[str]) -> list[Finding]:
    positions = _columns(
        header,
        _TEMPLATE,
        accepted="an exported POA&M CSV has the FedRAMP template columns plus Status, Current Due Date and System",
    )
    missing = [column for column in REQUIRED_TEMPLATE if column not in positions]
    if missing:
        raise ImportFormatError("row 1", f"missing column(s) {_quote_list(missing)}")
    findings = []
    for number, raw in records[1:]:
        cells = _cells(number, raw, len(header))
        if cells is None:
            continue
        where = f"row {number}"
        values = {column: _unguard(cells[index]) for column, index in positions.items()}
        status_text = values.pop("Status", "").strip()
        status = None
        if status_text:
            status = _STATUSES.get(status_text.lower())
            if status is None:
                known = ", ".join(s.value for s in Status)
                raise ImportFormatError(where, f'Status "{status_text[:40]}" is not a status; use {known}')
        due_on = day(values.pop("Current Due Date", None), where=where, column="Current Due Date")
        system = values.pop("System", "").strip() or None
        findings.append(
            template_finding(values, where=where, closed=status is Status.CLOSED, due_on=due_on, system_name=system)
        )
    return findings


def _severity(text: str, column: str, where: str) -> Severity | None:
    word = text.strip().lower()
    if word in INFORMATIONAL:
        return None
    if not word:
        raise ImportFormatError(where, f"{column} is empty; use {_SEVERITY_WORDS}")
    try:
        return Severity.parse(word)
    except InvalidInput:
        shown = text.strip()[:40]
        raise ImportFormatError(where, f'{column} "{shown}" is not a severity; use {_SEVERITY_WORDS}') from None


def _scanner_rows(records: list[tuple[int, list[str]]], header: list[str]) -> list[Finding]:
    accepted = "accepted columns: " + "; ".join(
        f"{field} ({', '.join(aliases[:4])}{', …' if len(aliases) > 4 else ''})"
        for field, aliases in SCANNER_COLUMNS.items()
    )
    positions = _columns(header, _ALIASES, accepted=accepted, ignored=frozenset(IGNORED_SCANNER),
                         fallbacks=FALLBACK_SCANNER)
    default_tool = PLUGIN_TOOL if any(_key(name) == "plugin id" for name in header) else None
    missing = [field for field in REQUIRED_SCANNER if field not in positions]
    if missing:
        raise ImportFormatError(
            "row 1",
            f"missing column(s) for {', '.join(missing)} "
            f"(e.g. {_quote_list([SCANNER_COLUMNS[field][0] for field in missing])})",
        )
    names = {field: header[index].strip() for field, index in positions.items()}
    findings = []
    for number, raw in records[1:]:
        cells = _cells(number, raw, len(header))
        if cells is None:
            continue
        where = f"row {number}"
        value = {field: cells[index].strip() for field, index in positions.items()}
        title = value["title"]
        if not title:
            raise ImportFormatError(where, f"{names['title']} is empty")
        asset = value["asset"]
        if not asset:
            raise ImportFormatError(where, f"{names['asset']} is empty")
        severity = _severity(value["severity"], names["severity"], where)
        given = value.get("port", "")
        port = port_number(given) if given else ""
        if port is None:
            raise ImportFormatError(where, f'{names["port"]} "{given[:20]}" is not a port number 0-65535')
        protocol = value.get("protocol", "").lower() or "tcp"
        if port and port != "0" and not PROTOCOL.match(protocol):
            raise ImportFormatError(where, f'{names["protocol"]} "{protocol[:20]}" is not a protocol name like tcp or udp')
        listed, cves_note = kept_cves(part.strip() for part in LIST_SEPARATOR.split(value.get("cve", "")) if part.strip())
        try:
            cves = tuple(fields.cves(listed))
        except InvalidInput as error:
            raise ImportFormatError(where, f"{names['cve']}: {error.message}") from None
        parts = [value.get("synopsis", ""), value.get("description", "")]
        if value.get("solution"):
            parts.append(f"Solution: {value['solution']}")
        detected = day(value.get("detected"), where=where, column=names.get("detected", "detected"))
        findings.append(
            Finding(
                tool=value.get("tool") or default_tool or DEFAULT_TOOL,
                detector=value.get("tool") or default_tool,
                earlier_tool=DEFAULT_TOOL if not value.get("tool") and default_tool else None,
                # A POA&M's Asset Identifier lists several, as a workbook's does.
                listed_assets=tuple(fields.split_assets(asset))
                if _key(names["asset"]) == "asset identifier" else (),
                rule_id=value.get("rule_id") or title,
                port=f"{port}/{protocol}" if port and port != "0" else None,
                asset=asset,
                title=clip(" ".join(title.split()), MAX_TITLE),
                severity=severity,
                where=where,
                description=item_description([part for part in parts if part], cves_note),
                cves=cves,
                detected_on=detected,
            )
        )
    return findings


def is_template(header: list[str]) -> bool:
    """Whether a header row is our own export's (FedRAMP columns) rather than a scanner's."""
    keys = {_key(name) for name in header}
    return "poam id" in keys


def parse(data: bytes, *, source_name: str) -> list[Finding]:
    """Every non-blank row after the header; :class:`ImportFormatError` naming the
    row (``row 12``) when anything is malformed.

    ``source_name`` is the file's name; the findings' ``where`` is relative to it.
    """
    records = _records(_decode(data))
    if not records or not any(cell.strip() for cell in records[0][1]):
        raise ImportFormatError("row 1", "the header row is empty; the first row must name the columns")
    header = records[0][1]
    if is_template(header):
        return _template_rows(records, header)
    return _scanner_rows(records, header)
