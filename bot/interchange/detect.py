"""Which importer reads a file: from what the content unmistakably is, else its name."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Mapping

from bot.interchange import csv_import, nessus, sarif, workbook_import
from bot.interchange.findings import Finding, ImportFormatError

Parser = Callable[..., list[Finding]]  # parse(data: bytes, *, source_name: str) -> list[Finding]

PARSERS: Mapping[str, Parser] = {
    "sarif": sarif.parse,
    "nessus": nessus.parse,
    "csv": csv_import.parse,
    "xlsx": workbook_import.parse,
}
FORMATS: tuple[str, ...] = tuple(PARSERS)

ACCEPTED = (
    "SARIF 2.1.0 (.sarif, .sarif.json or .json), Nessus v2 XML (.nessus), "
    "CSV (.csv) or the FedRAMP POA&M workbook (.xlsx)"
)

_EXTENSIONS = (
    (".sarif.json", "sarif"),
    (".sarif", "sarif"),
    (".nessus", "nessus"),
    (".csv", "csv"),
    (".tsv", "csv"),
    (".xlsx", "xlsx"),
    (".xlsm", "xlsx"),
    # Generic extensions go to the one importer of their kind, whose error then says what is wrong.
    (".json", "sarif"),
    (".xml", "nessus"),
)
_SNIFF = 4096
_SARIF_HINT = re.compile(rb'"(?:\$schema|runs|version)"\s*:')
#: Our own JSON export and an OSCAL POA&M: no importer of ours reads them.
_EXPORT_HINT = re.compile(rb'"format"\s*:\s*"poam-bot/export"|"plan-of-action-and-milestones"\s*:')
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _is_workbook(data: bytes) -> bool:
    """Whether the zip archive ``data`` may be a workbook: an Office Open XML
    package (whose parts its ``[Content_Types].xml`` names; the workbook
    importer says which are missing). One the zip reader cannot open is taken
    as a damaged workbook, for the same reason."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "[Content_Types].xml" in archive.namelist()
    except Exception:  # zipfile raises BadZipFile, NotImplementedError, UnicodeDecodeError…
        return True


def _by_content(data: bytes, head: bytes) -> str | None:
    """A format only when the first bytes (``head``: without a BOM and leading space) leave no doubt."""
    if data.startswith(_ZIP):
        if not _is_workbook(data):
            raise ImportFormatError(
                "file", f"is a zip archive; unzip it and upload the file inside. Accepted: {ACCEPTED}"
            )
        return "xlsx"
    if head.startswith(b"{") and _SARIF_HINT.search(head):
        return "sarif"
    if head.startswith(b"<") and b"<NessusClientData_v2" in head:
        return "nessus"
    return None


def detect_format(name: str, data: bytes) -> str:
    """``sarif``, ``nessus``, ``csv`` or ``xlsx`` for the file ``name`` holding ``data``.

    Content that is unmistakably one format (a zip archive, a JSON object with
    SARIF's keys, a ``NessusClientData_v2`` document) wins over the name;
    otherwise the extension decides (``.json`` → SARIF, ``.xml`` → Nessus, whose
    parsers then say what is wrong). :class:`ImportFormatError` when neither
    does, or for a zip archive that is no workbook (a zipped scan).
    """
    head = data[:_SNIFF].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{") and _EXPORT_HINT.search(head):
        raise ImportFormatError(
            "file", "is a JSON or OSCAL export of a POA&M, which is not imported; import its CSV or FedRAMP "
            f"workbook (.xlsx) export instead. Accepted: {ACCEPTED}"
        )
    found = _by_content(data, head)
    if found is not None:
        return found
    lowered = name.strip().lower()
    for extension, format_name in _EXTENSIONS:
        if lowered.endswith(extension):
            return format_name
    if data.startswith(_OLE) or lowered.endswith(".xls"):
        raise ImportFormatError(
            "file", f"an old binary .xls workbook is not accepted; save it as .xlsx. Accepted: {ACCEPTED}"
        )
    raise ImportFormatError("file", f"cannot tell what kind of file {name} is; accepted: {ACCEPTED}")


def parser_for(format_name: str) -> Parser:
    """The parser of a format named by the user (``--format``)."""
    parser = PARSERS.get(format_name.strip().lower())
    if parser is None:
        raise ImportFormatError("format", f'"{format_name}" is not a format; use {", ".join(FORMATS)}')
    return parser


def parse(name: str, data: bytes, *, format_name: str | None = None) -> list[Finding]:
    """Detect (or take) the format and parse: every finding, or ImportFormatError."""
    parser = parser_for(format_name) if format_name else PARSERS[detect_format(name, data)]
    return parser(data, source_name=name)
