"""Nessus v2 (``.nessus`` XML) → findings.

Parsed with defusedxml only, with DTDs refused outright: a ``.nessus`` file
never needs one, and a DOCTYPE is how entity-expansion bombs and external
entities get in.

One finding per ``ReportItem``. The asset is the ``ReportHost`` name, the rule
the plugin id (with a compliance check's id, ``21157:4bd8…``, for an audit
file's checks: each failed check is a weakness, one that passed none) and,
for an item found on a port, ``port`` is ``443/tcp``: the
fingerprint joins them, so the same plugin firing on two ports of one host
stays two weaknesses. Severity ``0`` (informational) gives a finding with no
severity, which the importer counts as skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import ParseError, fromstring

from bot.interchange.findings import PROTOCOL, Finding, ImportFormatError, kept_cves, port_number
from bot.poam.dates import MAX_YEAR, MIN_YEAR
from bot.poam.fields import MAX_ASSET_LENGTH
from bot.poam.items import MAX_TITLE, item_description
from bot.poam.severity import Severity
from bot.poam.text import clip

TOOL = "Nessus"
ROOT = "NessusClientData_v2"

SEVERITIES: Mapping[str, Severity | None] = {
    "0": None,
    "1": Severity.LOW,
    "2": Severity.MODERATE,
    "3": Severity.HIGH,
    "4": Severity.CRITICAL,
}

_PLUGIN_ID = re.compile(r"^[0-9]{1,12}$", re.ASCII)
_CHECK_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$", re.ASCII)
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$", re.ASCII | re.IGNORECASE)
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# HOST_START as Nessus writes it: "Tue Mar 14 10:01:02 2023" (day names and months in English).
_HOST_START = re.compile(
    r"^[A-Za-z]{3}\s+([A-Za-z]{3})\s+(\d{1,2})\s+\d{1,2}:\d{2}:\d{2}\s+(\d{4})$", re.ASCII
)


def _show(value: str) -> str:
    shown = value if len(value) <= 60 else value[:57] + "..."
    return f'"{shown}"'


def _load(data: bytes) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise ImportFormatError(
            "DOCTYPE",
            "the XML declares a DTD (DOCTYPE), which is refused: DTDs carry entity-expansion bombs "
            "and external entities, and a .nessus file never needs one",
        ) from None
    except DefusedXmlException as error:
        raise ImportFormatError("file", f"the XML uses a refused feature ({error})") from None
    except ParseError as error:
        line, column = getattr(error, "position", (0, 0))
        reason = str(error).rsplit(": line", 1)[0]
        raise ImportFormatError(f"line {line}, column {column + 1}", f"not well-formed XML: {reason}") from None
    except (ValueError, RecursionError) as error:  # e.g. a NUL byte, or absurd nesting
        raise ImportFormatError("file", f"not well-formed XML ({error})") from None


def _child_text(element: Element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _host_start(host: Element) -> date | None:
    """The day the host's scan began (HOST_START), or None when absent or unreadable."""
    properties = host.find("HostProperties")
    if properties is None:
        return None
    values = {tag.get("name"): (tag.text or "").strip() for tag in properties.findall("tag")}
    stamp = values.get("HOST_START_TIMESTAMP", "")
    if stamp.isascii() and stamp.isdigit() and len(stamp) <= 12:
        try:
            day = datetime.fromtimestamp(int(stamp), tz=UTC).date()
        except (ValueError, OverflowError, OSError):
            day = None
        if day is not None and MIN_YEAR <= day.year <= MAX_YEAR:
            return day
    match = _HOST_START.match(" ".join(values.get("HOST_START", "").split()))
    if match is None:
        return None
    month = _MONTHS.get(match.group(1).lower())
    year = int(match.group(3))
    if month is None or not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return date(year, month, int(match.group(2)))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Check:
    """A compliance (audit file) check a ``ReportItem`` reports (``cm:compliance-*``)."""

    name: str
    #: What tells it from the benchmark's other checks: its id, else a digest of its name.
    key: str
    passed: bool


def _compliance(item: Element) -> _Check | None:
    """The item's compliance check, if it reports one: the plugin (21157 "Unix
    Compliance Checks", say) is the same for every check of a benchmark, so
    by the plugin alone a host's failed checks were one item, named after the plugin."""
    fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in item
              if child.tag.rsplit("}", 1)[-1].startswith("compliance-")}
    name = " ".join(fields.get("compliance-check-name", "").split())
    if not name:
        return None
    given = fields.get("compliance-check-id", "")
    key = given if _CHECK_ID.match(given) else hashlib.sha256(name.encode()).hexdigest()[:16]
    return _Check(name, key, fields.get("compliance-result", "").upper() == "PASSED")


def _item(item: Element, *, host: str, where: str, detected_on: date | None) -> Finding:
    plugin_id = (item.get("pluginID") or "").strip()
    if not _PLUGIN_ID.match(plugin_id):
        raise ImportFormatError(where, f"pluginID {_show(plugin_id)} is not a plugin number")
    severity_text = (item.get("severity") or "").strip()
    if severity_text not in SEVERITIES:
        raise ImportFormatError(where, f"severity {_show(severity_text)} is not 0-4")
    given = (item.get("port") or "0").strip()
    port = port_number(given)
    if port is None:
        raise ImportFormatError(where, f"port {_show(given)} is not a port number 0-65535")
    protocol = (item.get("protocol") or "").strip().lower()
    if port != "0" and not PROTOCOL.match(protocol):
        raise ImportFormatError(where, f"protocol {_show(protocol)} is not a protocol name like tcp or udp")
    title = (item.get("pluginName") or "").strip() or _child_text(item, "plugin_name")
    if not title:
        raise ImportFormatError(where, "has no pluginName")
    check = _compliance(item)
    rule_id = plugin_id
    if check is not None:  # one plugin runs a whole benchmark: each check failed is a weakness of its own
        if check.passed:
            severity_text = "0"
        rule_id, title = f"{plugin_id}:{check.key}", check.name
    cves = []
    for cve in item.findall("cve"):
        text = (cve.text or "").strip()
        if not _CVE.match(text):
            raise ImportFormatError(where, f"<cve> {_show(text)} is not a CVE id like CVE-2024-3094")
        cves.append(text)
    parts = [text for text in (_child_text(item, "synopsis"), _child_text(item, "description")) if text]
    if port != "0":
        service = (item.get("svc_name") or "").strip()
        parts.append(f"Port: {port}/{protocol}" + (f" ({service})" if service and service != "general" else ""))
    solution = _child_text(item, "solution")
    if solution and solution.lower() != "n/a":
        parts.append(f"Solution: {solution}")
    kept, cves_note = kept_cves(cves)
    return Finding(
        tool=TOOL,
        detector=TOOL,
        rule_id=rule_id,
        port=f"{port}/{protocol}" if port != "0" else None,
        asset=host,
        title=clip(" ".join(title.split()), MAX_TITLE),
        severity=SEVERITIES[severity_text],
        where=where,
        description=item_description(parts, cves_note),
        cves=kept,
        detected_on=detected_on,
        scanned_on=detected_on,
    )


def parse(data: bytes, *, source_name: str) -> list[Finding]:
    """Every ``ReportItem`` of every ``ReportHost`` in the Nessus v2 file ``data``;
    :class:`ImportFormatError` naming the element (``ReportHost "web-01" ReportItem 4``,
    counted from 1) when anything is malformed.

    ``source_name`` is the file's name; the findings' ``where`` is relative to it.
    """
    root = _load(data)
    if root.tag != ROOT:
        raise ImportFormatError("root element", f"<{root.tag}> is not <{ROOT}>; this is not a Nessus v2 file")
    reports = root.findall("Report")
    if not reports:
        raise ImportFormatError(f"<{ROOT}>", "has no <Report> element")
    findings: list[Finding] = []
    for report in reports:
        for host_number, host in enumerate(report.findall("ReportHost"), start=1):
            name = " ".join((host.get("name") or "").split())
            if not name:
                raise ImportFormatError(f"ReportHost {host_number}", "has no name attribute")
            # Refused, not shortened as a SARIF path is: a host name's end names no host.
            if len(name) > MAX_ASSET_LENGTH:
                raise ImportFormatError(f"ReportHost {host_number}", f"name is {len(name):,} characters long; "
                                        f"an asset id is at most {MAX_ASSET_LENGTH}")
            detected_on = _host_start(host)
            for item_number, item in enumerate(host.findall("ReportItem"), start=1):
                where = f'ReportHost "{name}" ReportItem {item_number}'
                findings.append(_item(item, host=name, where=where, detected_on=detected_on))
    return findings
