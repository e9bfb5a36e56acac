"""The FedRAMP POA&M workbook (xlsx) → findings: the inverse of the workbook export.

The workbook must look like GSA's template as we export it: tabs
"Open POA&M Items" and "Closed POA&M Items", the 31 column headers of
:data:`bot.interchange.fedramp.COLUMNS` on row 5, items from row 6 (after the
template's guidance rows, where a tab has them) down to the first empty row.
:func:`template_finding` maps one row of those columns (also
used by the CSV importer, whose own-export rows carry the same columns).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

from bot.interchange.fedramp import CLOSED_TAB, COLUMNS, OPEN_TAB
from bot.interchange.findings import Finding, ImportFormatError, Milestone, MilestoneChange
from bot.poam import fields
from bot.poam.dates import MAX_YEAR, MIN_YEAR
from bot.poam.errors import InvalidInput
from bot.poam.imports import RecordedDeviation
from bot.poam.milestones import ChangeKind
from bot.poam.review import Deviation
from bot.poam.severity import Severity

TABS = (OPEN_TAB, CLOSED_TAB)
HEADER_ROW = 5
#: Rows 6-7 say what each column holds (GSA's open tab, every tab we export);
#: elsewhere (GSA's closed tab) items may start there.
FIRST_DATA_ROW = 8
#: Column A of those rows: GSA's words and ours (the export's, now and before).
_TEMPLATE_TEXT = frozenset({"unique identifier for each poam item", "unique identifier", "unique id of the item", "text"})
#: The POAM ID of the example row on GSA's open tab (row 8), not an item.
GSA_EXAMPLE_ID = "V-1Example"

#: Refuse archives that would inflate beyond this (a zip bomb), before openpyxl opens them.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_ZIP_ENTRIES = 10_000

RATINGS: Mapping[str, Severity] = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "moderate": Severity.MODERATE,
    "medium": Severity.MODERATE,
    "low": Severity.LOW,
}
#: What the export writes in Comments for a critical item (the template has no Critical rating).
CRITICAL_NOTE = "original severity: critical"
#: The export's note in Comments of a due date other than the Scheduled
#: Completion Date (an approved extension, a risk adjustment), after its notes
#: on severity and recurrence (``fedramp.row``): only there, as the rest of
#: Comments quotes people's own words.
_CURRENT_DUE_NOTE = re.compile(
    r"^(?:Original severity: Critical\. )?(?:Found again after \S+ was closed\. )?"
    r"Current due date: (\d{4})-(\d{2})-(\d{2})\.",
    re.ASCII | re.IGNORECASE,
)

Cell = str | int | float | date | datetime | bool | None

#: A Slack user id alone or as a mention (``<@U0ALICE1|alice>``): with a digit
#: and 7 characters at least, as ids have, so that ``UNASSIGNED`` names nobody.
_SLACK_USER = re.compile(r"^<?@?([UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{6,31})(?:\|[^>]*)?>?$", re.ASCII)
#: How the export writes a person it knows the name of: ``Alice Smith (U0ALICE1)``.
#: Read first (the name is anyone's own words: ``U0OTHER1|Eve (U0EVE001)``
#: must not read as U0OTHER1), and only an id with a digit and at least 7
#: characters (``Jane Doe (USA)`` names nobody).
_NAMED_SLACK_USER = re.compile(r"\(([UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{6,31})\)\s*$", re.ASCII)
#: A day, perhaps with a time and an offset: ISO 8601, and Go's ``2026-11-18 10:00:00 +0000 UTC`` (Grype, Trivy).
_ISO_DAY = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ][0-9:.]+(?: ?(?:Z|[+-]\d{2}:?\d{2}))?(?: UTC)?)?$", re.ASCII
)
_US_DAY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?: [0-9:]+(?: ?[AP]M)?)?$", re.ASCII | re.IGNORECASE)
_MILESTONE_DAY = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$", re.ASCII)
_US_MILESTONE_DAY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", re.ASCII)
_MILESTONE_START = re.compile(r"^[ \t]*\((\d{1,4})\)[ \t]*([^:\n]*?)[ \t]*:[ \t]?", re.MULTILINE)
#: The template's Asset Identifier of one asset found on a port: ``10.0.0.5 (443/TCP)``.
_ASSET_ON_PORT = re.compile(r"^([^,\n]*\S)[ \t]*\((\d{1,5})/([A-Za-z0-9_-]{1,16})\)$", re.ASCII)
LIST_SEPARATOR = re.compile(r"[,;\s]+")
_CONTROL_SEPARATOR = re.compile(r"[,;\n]+")


def _letter(index: int) -> str:
    """Column letter of a 0-based column index (0 → A, 30 → AE)."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def text(value: Cell) -> str | None:
    """A cell as trimmed text; None when blank. Whole numbers lose their ``.0``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    cleaned = str(value).strip()
    return cleaned or None


class _OutOfRange(ValueError):
    """A date whose year no POA&M item has (a placeholder like 1970-01-01)."""


def _day(year: int, month: int, day: int) -> date:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _OutOfRange(f"year {year} is outside {MIN_YEAR}-{MAX_YEAR}")
    return date(year, month, day)


def day(value: Cell, *, where: str, column: str) -> date | None:
    """A date cell: a real Excel date, an Excel day number, or ``yyyy-mm-dd`` (also
    ``yyyy/mm/dd``, an ISO timestamp, or US ``mm/dd/yyyy``) as text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, datetime):
            return _day(value.year, value.month, value.day)
        if isinstance(value, date):
            return _day(value.year, value.month, value.day)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            from openpyxl.utils.datetime import from_excel

            if not 1 <= value <= 2_958_465:
                raise ValueError("not an Excel day number")
            stamp = from_excel(value)
            return _day(stamp.year, stamp.month, stamp.day)
        cleaned = str(value).strip()
        if match := _ISO_DAY.match(cleaned):
            return _day(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if match := _US_DAY.match(cleaned):
            return _day(int(match.group(3)), int(match.group(1)), int(match.group(2)))
    except _OutOfRange:
        shown = text(value) or ""
        raise ImportFormatError(
            where, f'{column} "{shown[:40]}" is not a year from {MIN_YEAR} to {MAX_YEAR}'
        ) from None
    except (ValueError, OverflowError, TypeError):
        pass
    shown = text(value) or ""
    raise ImportFormatError(where, f'{column} "{shown[:40]}" is not a date; write it as yyyy-mm-dd')


def _entries(value: str, *, column: str, example: str, where: str) -> list[tuple[int, str, str]]:
    """A cell of ``(##) head: text`` entries (blank lines between, texts may
    run over several lines) as (number, head, text)."""
    starts = list(_MILESTONE_START.finditer(value))
    if not starts or value[: starts[0].start()].strip():
        raise ImportFormatError(where, f'{column} must be entries like "{example}", one per paragraph')
    return [
        (int(match.group(1)), match.group(2),
         value[match.end() : starts[position + 1].start() if position + 1 < len(starts) else len(value)].strip())
        for position, match in enumerate(starts)
    ]


def _milestone_day(text: str, *, where: str, entry: str) -> date | None:
    """An entry's ``yyyy-mm-dd`` (or ``yyyy/mm/dd``, or the US ``mm/dd/yyyy``
    GSA's own example uses); None when it is none; a year no item can have
    (a placeholder like 1970) says so, as the date columns do."""
    try:
        if found := _MILESTONE_DAY.match(text):
            return _day(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        if found := _US_MILESTONE_DAY.match(text):
            return _day(int(found.group(3)), int(found.group(1)), int(found.group(2)))
    except _OutOfRange:
        raise ImportFormatError(where, f'{entry}: "{text[:40]}" is not a year from {MIN_YEAR} to {MAX_YEAR}') from None
    except ValueError:
        pass
    return None


def milestones(value: str | None, *, where: str) -> tuple[Milestone, ...]:
    """The template's ``(##) yyyy-mm-dd: description`` entries."""
    if not value or not value.strip():
        return ()
    parsed = []
    for number, when, description in _entries(
        value, column="Planned Milestones", example="(01) 2026-12-01: description", where=where
    ):
        due_on = _milestone_day(when, where=where, entry=f"Planned Milestones entry ({number:02d})")
        if due_on is None:
            raise ImportFormatError(
                where, f'Planned Milestones entry ({number:02d}): "{when[:40]}" is not a date; write it as yyyy-mm-dd'
            )
        if not description:
            raise ImportFormatError(where, f"Planned Milestones entry ({number:02d}) has no description")
        parsed.append(Milestone(due_on=due_on, description=description, number=number))
    return tuple(parsed)


#: A Milestone Changes entry's head (``Update 2026-12-15``) and an Update's
#: text as the export writes it (``moved from 2026-12-01: why``).
_CHANGE_HEAD = re.compile(r"^(new|update|complete)[ \t]+(\S+)$", re.ASCII | re.IGNORECASE)
_MOVED_FROM = re.compile(r"^moved from (\d{4}-\d{2}-\d{2}):[ \t]?", re.ASCII | re.IGNORECASE)


def milestone_changes(value: str | None, *, where: str) -> tuple[MilestoneChange, ...]:
    """The template's ``(##) New|Update|Complete yyyy-mm-dd : what and why`` entries, in order."""
    if not value or not value.strip():
        return ()
    parsed = []
    for number, head, text in _entries(
        value, column="Milestone Changes", example="(02) Update 2026-12-15 : why", where=where
    ):
        entry = f"Milestone Changes entry ({number:02d})"
        found = _CHANGE_HEAD.match(head)
        on = _milestone_day(found.group(2), where=where, entry=entry) if found else None
        if found is None or on is None:
            raise ImportFormatError(
                where, f'{entry}: "{head[:40]}" is not New, Update or Complete and a date yyyy-mm-dd'
            )
        kind = ChangeKind(found.group(1).lower())
        moved = _MOVED_FROM.match(text) if kind is ChangeKind.UPDATE else None
        moved_from = _milestone_day(moved.group(1), where=where, entry=entry) if moved else None
        if moved and moved_from:
            text = text[moved.end() :].strip()
        parsed.append(MilestoneChange(number=number, kind=kind, on=on, text=text, moved_from=moved_from))
    return tuple(parsed)


def rating(value: str | None, comments: str | None, *, where: str) -> Severity:
    """Original Risk Rating (Low / Moderate / High; Critical and Medium accepted too),
    critical when Comments begin with the export's "Original severity: Critical."
    note (only there: the rest of Comments quotes people's own words)."""
    if value is None:
        raise ImportFormatError(where, "Original Risk Rating is empty; use Low, Moderate or High")
    severity = RATINGS.get(value.lower())
    if severity is None:
        raise ImportFormatError(where, f'Original Risk Rating "{value[:40]}" is not Low, Moderate or High')
    if comments and " ".join(comments.lower().split()).startswith(CRITICAL_NOTE):
        return Severity.CRITICAL
    return severity


def _listed(where: str, column: str, values: list[str], check) -> tuple[str, ...]:
    try:
        return tuple(check(values))
    except InvalidInput as error:
        raise ImportFormatError(where, f"{column}: {error.message}") from None


def template_finding(
    cells: Mapping[str, Cell], *, where: str, closed: bool, due_on: date | None = None, system_name: str | None = None
) -> Finding:
    """One row of the FedRAMP template's columns (missing columns read as blank);
    ``system_name``: the system the row names (our CSV's System column)."""

    def get(column: str) -> str | None:
        return text(cells.get(column))

    title = get("Weakness Name")
    if title is None:
        raise ImportFormatError(where, "Weakness Name is empty")
    source_identifier = get("Weakness Source Identifier")
    rule_id = source_identifier or get("POAM ID")
    if rule_id is None:
        raise ImportFormatError(where, "neither Weakness Source Identifier nor POAM ID is filled in")
    contact = get("Point of Contact")
    owner = (_NAMED_SLACK_USER.search(contact) or _SLACK_USER.match(contact)) if contact else None
    controls = [part for part in _CONTROL_SEPARATOR.split(get("Controls") or "") if part.strip()]
    cves = [part for part in LIST_SEPARATOR.split(get("CVE") or "") if part]
    detector = get("Weakness Detector Source")
    cell = get("Asset Identifier") or ""
    asset, port = _asset_and_port(cell)
    assets = fields.split_assets(cell)
    severity = rating(get("Original Risk Rating"), get("Comments"), where=where)
    recorded, unrestored = deviations(get, where=where, closed=closed, severity=severity)
    return Finding(
        tool=detector or "",
        detector=detector if detector and fields.Source.named(detector) is None else None,
        rule_id=rule_id,
        asset=asset,
        port=port,
        earlier_keys=tuple((rule_id, form) for form in dict.fromkeys((cell, ", ".join(assets), "\n".join(assets)))),
        listed_assets=tuple(assets),
        poam_id=get("POAM ID"),
        title=title,
        severity=severity,
        where=where,
        description=get("Weakness Description"),
        cves=_listed(where, "CVE", cves, fields.cves),
        controls=_listed(where, "Controls", controls, fields.controls),
        detected_on=day(cells.get("Original Detection Date"), where=where, column="Original Detection Date"),
        due_on=due_on or _current_due(get("Comments"), where=where),
        scheduled_completion_on=day(
            cells.get("Scheduled Completion Date"), where=where, column="Scheduled Completion Date"
        ),
        owner_id=owner.group(1) if owner else None,
        unknown_contact=contact if contact and not owner else None,
        remediation_plan=get("Overall Remediation Plan"),
        resources_required=get("Resources Required"),
        milestones=milestones(get("Planned Milestones"), where=where),
        milestone_changes=milestone_changes(get("Milestone Changes"), where=where),
        vendor_product=get("Vendor Dependent Product Name"),
        vendor_dependency={"yes": True, "no": False}.get((get("Vendor Dependency") or "").lower()),
        closed=closed,
        closed_on=_closing_day(cells.get("Status Date"), where=where) if closed else None,
        rule_is_poam_id=source_identifier is None,
        vendor_checkin_on=None if (get("Last Vendor Check-in Date") or "").lower() in _NO_DATE else day(
            cells.get("Last Vendor Check-in Date"), where=where, column="Last Vendor Check-in Date"),
        deviations=recorded,
        unrestored_deviations=unrestored,
        system_name=system_name,
    )


#: The template's deviation columns, each a deviation's Yes / No / Pending.
_DEVIATION_COLUMNS = {Deviation.RISK_ADJUSTMENT: "Risk Adjustment", Deviation.FALSE_POSITIVE: "False Positive",
                      Deviation.OPERATIONAL_REQUIREMENT: "Operational Requirement"}
#: Deviation Rationale as GSA's template writes it ("Deviation Type : Rationale"), and the export.
_RATIONALE = re.compile(r"^\s*(risk adjustment|false positive|operational requirement)\s*:\s*(.*?)\s*$",
                        re.IGNORECASE | re.DOTALL)
#: The date an operational requirement runs to, in the export's notes in Comments (the newest last).
_REVIEWED_BY = re.compile(r"(?:to be reviewed again by|Risk accepted until) (\d{4})-(\d{2})-(\d{2})", re.ASCII)


#: How workbooks answer Yes / No / Pending (blank, "N/A" and "-" are No, "TBD" Pending).
_ANSWERS = {"yes": "yes", "y": "yes", "true": "yes", "no": "no", "n": "no", "false": "no", "n/a": "no",
            "na": "no", "-": "no", "none": "no", "pending": "pending", "tbd": "pending"}
#: What a date cell says when it gives none.
_NO_DATE = frozenset({"n/a", "na", "-", "none", "tbd"})


def deviations(
    get: Callable[[str], str | None], *, where: str, closed: bool, severity: Severity
) -> tuple[tuple[RecordedDeviation, ...], int]:
    """The deviations a row says Yes to, as the decisions it records, and how
    many it says are Pending or gives too little to restore. A risk
    adjustment's rating is the Adjusted Risk Rating; an operational
    requirement's date, the export's note in Comments (the template has no
    column for it), never at High (DOMAIN.md), and on the closed tab ended;
    the rationale, Deviation Rationale's where it names that kind (it holds one)."""
    answers = {}
    for deviation, column in _DEVIATION_COLUMNS.items():
        answer = _ANSWERS.get((get(column) or "no").lower())
        if answer is None:
            raise ImportFormatError(where, f'{column} "{(get(column) or "")[:40]}" is not Yes, No or Pending')
        answers[deviation] = answer
    stated = _RATIONALE.match(get("Deviation Rationale") or "")
    rationales = {Deviation.named(stated.group(1)): stated.group(2) or None} if stated else {}
    recorded: list[RecordedDeviation] = []
    left = sum(1 for answer in answers.values() if answer == "pending")
    adjusted = RATINGS.get((get("Adjusted Risk Rating") or "").lower())
    rated = adjusted if answers[Deviation.RISK_ADJUSTMENT] == "yes" and adjusted else severity
    for deviation in (d for d, answer in answers.items() if answer == "yes"):
        rationale = rationales.get(deviation)
        if deviation is Deviation.RISK_ADJUSTMENT and adjusted is not None:
            recorded.append(RecordedDeviation(deviation, rationale, adjusted=adjusted))
        elif deviation is Deviation.FALSE_POSITIVE:
            recorded.append(RecordedDeviation(deviation, rationale))
        elif deviation is Deviation.OPERATIONAL_REQUIREMENT and closed:
            continue  # ended with the item
        elif deviation is Deviation.OPERATIONAL_REQUIREMENT and rated.rank > Severity.HIGH.rank and (
                until := _reviewed_by(get("Comments"))) is not None:
            recorded.append(RecordedDeviation(deviation, rationale, until=until))
        else:  # a risk adjustment with no rating, an operational requirement with no date or at High
            left += 1
    return tuple(recorded), left


def _reviewed_by(comments: str | None) -> date | None:
    """The date the newest of the export's notes in Comments gives an acceptance."""
    found = list(_REVIEWED_BY.finditer(comments or ""))
    try:
        return _day(*(int(part) for part in found[-1].groups())) if found else None
    except ValueError:
        return None


def _asset_and_port(identifier: str) -> tuple[str, str | None]:
    """The asset and ``443/tcp`` of one asset found on a port, as the export
    writes it (:attr:`Finding.asset_identifier`), so that a restored item keeps
    the fingerprint a rescan of the port finds; anything else as it is."""
    found = _ASSET_ON_PORT.match(identifier)
    if found is None or not 0 < int(found.group(2)) <= 65535:
        return identifier, None
    return found.group(1), f"{int(found.group(2))}/{found.group(3).lower()}"


def _closing_day(value: Cell, *, where: str) -> date | None:
    """A closed row's Status Date: the day it closed; None when it is not a
    date (``Closed``), as it is not worth refusing a file over: the item is
    then closed as of its import."""
    try:
        return day(value, where=where, column="Status Date")
    except ImportFormatError:
        return None


def _current_due(comments: str | None, *, where: str) -> date | None:
    """The due date the export's note in ``comments`` gives (None without one)."""
    found = _CURRENT_DUE_NOTE.match(" ".join(comments.split())) if comments else None
    if found is None:
        return None
    try:
        return _day(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        raise ImportFormatError(where, f'Comments: "{found.group(0)}" is not a date') from None


def _check_archive(data: bytes) -> None:
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ImportFormatError("file", "is an old binary .xls workbook; save it as .xlsx and import again")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except Exception as error:  # zipfile raises BadZipFile, NotImplementedError, UnicodeDecodeError…
        raise ImportFormatError("file", f"is not an .xlsx workbook (not a valid zip archive: {error})") from None
    if len(entries) > MAX_ZIP_ENTRIES or sum(entry.file_size for entry in entries) > MAX_UNPACKED_BYTES:
        raise ImportFormatError(
            "file", f"unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MB; refused as a possible zip bomb"
        )


def _header_error(tab: str, header: Sequence[Cell]) -> ImportFormatError | None:
    for index, expected in enumerate(COLUMNS):
        found = header[index] if index < len(header) else None
        found_text = " ".join((text(found) or "").split())
        if found_text != expected:
            shown = f'"{found_text[:60]}"' if found_text else "empty"
            return ImportFormatError(
                f'"{tab}" row {HEADER_ROW}',
                f'column {_letter(index)} is {shown}, expected "{expected}" '
                f"(row {HEADER_ROW} must hold the {len(COLUMNS)} FedRAMP POA&M template headers)",
            )
    return None


def _tab_findings(sheet, tab: str, *, closed: bool) -> list[Finding]:
    width = len(COLUMNS)
    if not hasattr(sheet, "iter_rows"):
        raise ImportFormatError(f'"{tab}"', "is a chart sheet, not a worksheet")
    rows = sheet.iter_rows(min_row=HEADER_ROW, max_col=width, values_only=True)
    header = next(rows, None)
    error = _header_error(tab, list(header or ()))
    if error is not None:
        raise error
    findings = []
    for number, values in enumerate(rows, start=HEADER_ROW + 1):
        values = list(values)[:width] + [None] * (width - len(values))
        first = text(values[0])
        if number < FIRST_DATA_ROW and (first is None or first.lower() in _TEMPLATE_TEXT):
            continue  # the template's guidance and format rows, or none
        if all(text(value) is None for value in values):
            break
        if first == GSA_EXAMPLE_ID:
            continue
        cells = dict(zip(COLUMNS, values, strict=True))
        findings.append(template_finding(cells, where=f'"{tab}" row {number}', closed=closed))
    return findings


def parse(data: bytes, *, source_name: str) -> list[Finding]:
    """Every item of the open and closed tabs (closed ones with ``closed=True``);
    :class:`ImportFormatError` naming the tab and row when anything is malformed.

    ``source_name`` is the file's name; the findings' ``where`` is relative to it.
    """
    import openpyxl

    _check_archive(data)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a damaged archive
        raise ImportFormatError("file", f"is not a readable .xlsx workbook ({type(error).__name__})") from None
    try:
        names = list(workbook.sheetnames)
        missing = [tab for tab in TABS if tab not in names]
        if missing:
            found = ", ".join(f'"{name}"' for name in names) or "none"
            wanted = " or ".join(f'"{tab}"' for tab in missing)
            raise ImportFormatError(
                "tabs",
                f"no {wanted} tab (the workbook has {found}); "
                f'a FedRAMP POA&M workbook has "{OPEN_TAB}" and "{CLOSED_TAB}"',
            )
        findings = []
        for tab in TABS:
            findings += _tab_findings(workbook[tab], tab, closed=tab == CLOSED_TAB)
        return findings
    except ImportFormatError:
        raise
    except Exception as error:  # damaged sheet XML inside a valid archive
        raise ImportFormatError("file", f"is not a readable .xlsx workbook ({type(error).__name__})") from None
    finally:
        workbook.close()
