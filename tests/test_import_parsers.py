"""The importers' parsers: SARIF, Nessus, CSV and the FedRAMP workbook → findings.

Every parser is all or nothing: a malformed file raises ImportFormatError
naming the row or element, never a partial list and never another exception.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.interchange import csv_import, nessus, sarif, workbook_import
from bot.interchange.csv_export import EXTRA_COLUMNS, write_csv
from bot.interchange.detect import ACCEPTED, PARSERS, detect_format, parse, parser_for
from bot.interchange.fedramp import COLUMNS, row
from bot.interchange.findings import Finding, ImportFormatError, Milestone, MilestoneChange
from bot.interchange.workbook_import import GSA_EXAMPLE_ID
from bot.poam.actor import Actor, Rules
from bot.poam.fields import Source
from bot.poam.imports import RecordedDeviation
from bot.poam.item_details import show_item
from bot.poam.items import log_item, set_plan
from bot.poam.milestones import ChangeKind, add_milestone
from bot.poam.review import Deviation
from bot.poam.severity import Severity
from bot.store.engine import unit_of_work

SAMPLES = Path(__file__).parent / "samples"
SARIF_SAMPLE = (SAMPLES / "codescan.sarif").read_bytes()
NESSUS_SAMPLE = (SAMPLES / "weekly.nessus").read_bytes()
CSV_SAMPLE = (SAMPLES / "container-scan.csv").read_bytes()

CRITICAL, HIGH, MODERATE, LOW = Severity.CRITICAL, Severity.HIGH, Severity.MODERATE, Severity.LOW
Parser = Callable[..., list[Finding]]


def summary(findings: Sequence[Finding]) -> list[tuple[Any, ...]]:
    """Each finding's place, tool, rule (``11219 on 443/tcp`` when found on a port), asset, severity and CVEs."""
    return [(f.where, f.tool, f.rule_id + (f" on {f.port}" if f.port else ""), f.asset, f.severity, f.cves)
            for f in findings]


def refused(parser: Parser, data: bytes, name: str = "upload") -> ImportFormatError:
    with pytest.raises(ImportFormatError) as error:
        parser(data, source_name=name)
    return error.value


def assert_distinct_fingerprints(findings: Sequence[Finding]) -> None:
    fingerprints = [finding.fingerprint for finding in findings]
    assert len(set(fingerprints)) == len(fingerprints)


# --------------------------------------------------------------------------- SARIF


def test_sarif_sample_gives_every_result() -> None:
    findings = sarif.parse(SARIF_SAMPLE, source_name="codescan.sarif")
    assert summary(findings) == [
        ("runs[0].results[0]", "CodeQL", "py/sql-injection", "app/db.py", HIGH, ()),
        # the location names its artifact by index only
        ("runs[0].results[1]", "CodeQL", "py/sql-injection", "app/reports.py", HIGH, ()),
        ("runs[0].results[2]", "CodeQL", "py/unsafe-deserialization", "app/cache.py", CRITICAL, ()),
        # security-severity 6.1 outweighs the level "error"
        ("runs[0].results[3]", "CodeQL", "py/flask-debug", "app/__init__.py", MODERATE, ()),
        # no level, no security-severity: the rule's default level "warning"
        ("runs[0].results[4]", "CodeQL", "py/stack-trace-exposure", "app/api/errors.py", MODERATE, ()),
        ("runs[0].results[5]", "CodeQL", "py/unused-import", "app/utils.py", LOW, ()),
        ("runs[0].results[6]", "CodeQL", "py/unused-import", "app/models.py", None, ()),
        ("runs[1].results[0]", "Trivy", "CVE-2023-30861", "requirements.txt", HIGH, ("CVE-2023-30861",)),
        ("runs[1].results[1]", "Trivy", "CVE-2024-6345", "requirements.txt", HIGH, ("CVE-2024-6345",)),
    ]
    assert_distinct_fingerprints(findings)
    first = findings[0]
    assert first.title == "SQL query built from user-controlled sources"
    assert first.description == (
        "This SQL query depends on a [user-provided value](1).\n\n"
        "Building a SQL query from user-controlled sources is vulnerable to insertion of "
        "malicious SQL code by the user.\n\nLocations: app/db.py:42"
    )
    assert first.detected_on == date(2026, 11, 20)  # the run's invocation start
    assert findings[7].detected_on is None  # the Trivy run records no invocation
    assert findings[7].title.startswith("flask: Possible disclosure of permanent session cookie")


def test_sarif_parses_the_same_twice() -> None:
    assert sarif.parse(SARIF_SAMPLE, source_name="a") == sarif.parse(SARIF_SAMPLE, source_name="b")


def sarif_log(*results: dict[str, Any], rules: Sequence[dict[str, Any]] = (), **run: Any) -> bytes:
    return json.dumps(
        {
            "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "Semgrep", "rules": list(rules)}}, "results": list(results), **run}],
        }
    ).encode()


def result(rule_id: str = "python.lang.eval", **extra: Any) -> dict[str, Any]:
    return {
        "ruleId": rule_id,
        "message": {"text": "Detected use of eval()."},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/run.py"}}}],
        **extra,
    }


@pytest.mark.parametrize(("extra", "skipped"), [
    ({"suppressions": [{"kind": "inSource"}]}, True),  # a nosemgrep comment
    ({"suppressions": [{"kind": "external", "status": "accepted"}]}, True),
    ({"suppressions": [{"kind": "external", "status": "underReview"}]}, False),
    ({"suppressions": [{"kind": "external", "status": "rejected"}]}, False),
    ({"baselineState": "absent"}, True),  # fixed since the baseline
    ({"baselineState": "unchanged"}, False),
])
def test_results_the_tool_settled_are_skipped(extra: dict[str, Any], skipped: bool) -> None:
    [finding] = sarif.parse(sarif_log(result(level="error", **extra)), source_name="x")
    assert (finding.severity is None) is skipped


def test_the_asset_is_the_first_location_in_a_file() -> None:
    """A first location naming only a logical place (a method) made the asset
    "(no location)": results in different files became one item."""
    located = [{"logicalLocations": [{"fullyQualifiedName": "Db.Run"}]},
               {"physicalLocation": {"artifactLocation": {"uri": "src/Db.cs"}}}]
    [finding] = sarif.parse(sarif_log(result(locations=located)), source_name="x")
    assert finding.asset == "src/Db.cs"
    assert finding.earlier_shared_asset == "(no location)"  # the item earlier versions made of it and others


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ("10.0", CRITICAL), ("9.0", CRITICAL), ("8.9", HIGH), ("7.0", HIGH), ("6.9", MODERATE),
        ("4.0", MODERATE), ("3.9", LOW), ("0.1", LOW), (7.5, HIGH),
        ("0.0", LOW), (0, LOW), ("", LOW), ("  ", LOW),  # no score: the level ("note") decides
    ],
)
def test_sarif_security_severity_bands(score: Any, expected: Severity | None) -> None:
    rule = {"id": "python.lang.eval", "properties": {"security-severity": score}}
    [finding] = sarif.parse(sarif_log(result(level="note"), rules=[rule]), source_name="x")
    assert finding.severity is expected


def test_a_cve_of_unknown_severity_is_rated_by_its_level() -> None:
    """Trivy writes a CVE of UNKNOWN severity as level "note" with
    security-severity 0.0: it was skipped as informational."""
    rules = [{"id": "CVE-2025-1234", "properties": {"security-severity": "0.0"}},
             {"id": "CVE-2025-5678", "properties": {"security-severity": "0.0"}}]
    findings = sarif.parse(sarif_log(result("CVE-2025-1234", level="note"), result("CVE-2025-5678", level="error"),
                                     rules=rules), source_name="trivy.sarif")
    assert [(f.severity, f.cves) for f in findings] == [(LOW, ("CVE-2025-1234",)), (HIGH, ("CVE-2025-5678",))]


def test_a_blank_security_severity_is_as_if_absent() -> None:
    """A blank score on any rule, even one no result uses, refused the whole file."""
    rules = [{"id": "python.lang.eval", "properties": {"security-severity": ""}},
             {"id": "unused", "properties": {"security-severity": ""}}]
    [finding] = sarif.parse(sarif_log(result(level="error"), rules=rules), source_name="x")
    assert finding.severity is HIGH


@pytest.mark.parametrize(
    ("level", "expected"), [("error", HIGH), ("warning", MODERATE), ("note", LOW), ("none", None)]
)
def test_sarif_levels(level: str, expected: Severity | None) -> None:
    [finding] = sarif.parse(sarif_log(result(level=level)), source_name="x")
    assert finding.severity is expected


def test_sarif_level_defaults() -> None:
    rules = [{"id": "r1", "defaultConfiguration": {"level": "error"}}]
    findings = sarif.parse(sarif_log(result("r1"), result("r2"), rules=rules), source_name="x")
    # the rule's default level, then SARIF's own default, "warning"
    assert [f.severity for f in findings] == [HIGH, MODERATE]


def test_sarif_results_that_are_not_failures_are_informational() -> None:
    findings = sarif.parse(
        sarif_log(result(kind="pass", level="error"), result(kind="review"), result(kind="fail", level="error")),
        source_name="x",
    )
    assert [f.severity for f in findings] == [None, None, HIGH]


def test_sarif_without_a_location_and_with_details_elsewhere() -> None:
    rules = [
        {
            "id": "generic.secrets",
            "name": "HardcodedSecret",
            "messageStrings": {"default": {"text": "Secret {0} found in {1}."}},
            "properties": {"tags": ["security", "cve-2024-3094"]},
        }
    ]
    no_location = {
        "ruleId": "generic.secrets/aws",  # a hierarchical id falls back to its parent rule
        "message": {"id": "default", "arguments": ["AKIA…", "config"]},
        "properties": {"security-severity": "9.1", "tags": ["CVE-2023-44487"]},
    }
    by_reference = {"rule": {"id": "generic.secrets"}, "message": {"text": "See CVE-2021-44228."}, "locations": []}
    findings = sarif.parse(sarif_log(no_location, by_reference, rules=rules), source_name="x")
    assert summary(findings) == [
        ("runs[0].results[0]", "Semgrep", "generic.secrets/aws", "(no location)", CRITICAL,
         ("CVE-2024-3094", "CVE-2023-44487")),
        ("runs[0].results[1]", "Semgrep", "generic.secrets", "(no location)", MODERATE,
         ("CVE-2024-3094", "CVE-2021-44228")),
    ]
    assert findings[0].title == "HardcodedSecret"
    assert findings[0].description == "Secret AKIA… found in config."


def test_sarif_without_rules_titles_from_the_message() -> None:
    [finding] = sarif.parse(sarif_log(result()), source_name="x")
    assert finding.title == "Detected use of eval()."
    assert finding.description == "Detected use of eval().\n\nLocations: src/run.py"


def test_sarif_placeholders_past_any_argument_stay_as_written() -> None:
    """``{0}`` takes the message's first argument; a number past them, even of
    more digits than Python's int() reads, stays as it is."""
    huge = "{" + "9" * 5000 + "}"
    [finding] = sarif.parse(sarif_log(result(message={"text": f"Found {{0}} in {{1}} and {huge}", "arguments": ["eval"]})),
                            source_name="x")
    assert finding.title.startswith("Found eval in {1} and {999")


def test_a_long_artifact_uri_keeps_its_end_as_the_asset() -> None:
    """A URI deeper than an asset id may be (node_modules, Java packages)
    refused the whole file; the fingerprint and description keep it whole."""
    deep = "a" + "/src" * 60 + "/node_modules/@scope/package/dist/esm/index.js"
    other = "b" + deep[1:]  # the same end, another file
    findings = sarif.parse(sarif_log(*(result(locations=[{"physicalLocation": {
        "artifactLocation": {"uri": uri}, "region": {"startLine": 7}}}]) for uri in (deep, other))), source_name="x")
    asset = findings[0].asset
    assert (len(asset), asset[:5]) == (199, "…/src")  # the end of the path, cut at a folder
    assert deep.endswith(asset[1:])
    assert findings[0].description == f"Detected use of eval().\n\nLocations: {deep}:7"
    assert findings[0].fingerprint == replace(findings[0], asset=deep, fingerprint_asset=None).fingerprint
    assert findings[1].asset == asset
    assert_distinct_fingerprints(findings)
    assert sarif.stored_asset("x" * 300) == "…" + "x" * 199  # no folder: the end as it is
    assert sarif.stored_asset("x" * 200) == "x" * 200


def test_sarif_cves_past_the_limit_are_left_out_and_said_so() -> None:
    """A rollup listing more CVEs than an item keeps refused the whole file."""
    cves = [f"CVE-2024-{1000 + n}" for n in range(120)]
    rules = [{"id": "python.lang.eval", "fullDescription": {"text": "D" * 20_000}, "properties": {"tags": cves}}]
    [finding] = sarif.parse(sarif_log(result(), rules=rules), source_name="x")
    assert finding.cves == tuple(cves[:100])
    assert finding.description is not None and len(finding.description) == 10_000
    assert finding.description.endswith("\n\nCVEs: 120 listed; the item keeps the first 100 (20 left out).")


def test_sarif_long_text_is_cut_to_the_item_limits() -> None:
    rules = [{"id": "r", "shortDescription": {"text": "T" * 500}, "fullDescription": {"text": "D" * 20_000}}]
    [finding] = sarif.parse(sarif_log(result("r"), rules=rules), source_name="x")
    assert len(finding.title) == 300 and finding.title.endswith("…")
    assert finding.description is not None and len(finding.description) == 10_000


def mutate_sarif(change: Callable[[dict[str, Any]], Any]) -> bytes:
    document = copy.deepcopy(json.loads(SARIF_SAMPLE))
    change(document)
    return json.dumps(document).encode()


def _set(path: Sequence[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: Sequence[Any]) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


RULES = ("runs", 0, "tool", "driver", "rules")
RESULT_1_ARTIFACT = ("runs", 0, "results", 1, "locations", 0, "physicalLocation", "artifactLocation")


@pytest.mark.parametrize(
    ("data", "where", "problem"),
    [
        (b'{"version": "2.1.0", "runs": [', "line 1, column 31", "not valid JSON"),
        (b"\xff\xfe{}", "file", "is not UTF-8 text"),
        (b"[1, 2]", "file", "the top level is an array, expected a SARIF log object"),
        (b"[" * 100_000, "file", "not valid JSON"),
        (mutate_sarif(_set(["version"], "2.0.0")), "version", 'is "2.0.0"; only SARIF 2.1.0 is accepted'),
        (mutate_sarif(_delete(["version"])), "version", "is missing; only SARIF 2.1.0 is accepted"),
        (mutate_sarif(_set(["runs"], {})), "runs", "is an object, expected an array"),
        (
            mutate_sarif(_set(["runs", 0, "results", 3, "level"], "urgent")),
            "runs[0].results[3]",
            'level "urgent" is not a SARIF level (error, warning, note or none)',
        ),
        (
            mutate_sarif(_set(["runs", 1, "results", 1, "level"], 3)),
            "runs[1].results[1]",
            "level 3 is not a SARIF level",
        ),
        (
            mutate_sarif(_set(["runs", 0, "results", 2, "kind"], "bad")),
            "runs[0].results[2]",
            'kind "bad" is not a SARIF result kind',
        ),
        (mutate_sarif(_delete(["runs", 1, "tool", "driver", "name"])), "runs[1].tool.driver", "name is null"),
        (mutate_sarif(_set(["runs", 0, "tool", "driver"], [])), "runs[0].tool.driver", "is an array"),
        (
            mutate_sarif(_set([*RULES, 1, "properties", "security-severity"], "severe")),
            "runs[0].tool.driver.rules[1].properties",
            'security-severity "severe" is not a number from 0 to 10',
        ),
        (
            mutate_sarif(_set([*RULES, 2, "defaultConfiguration", "level"], "fatal")),
            "runs[0].tool.driver.rules[2].defaultConfiguration",
            'level "fatal" is not a SARIF level',
        ),
        (
            mutate_sarif(_set(["runs", 0, "results", 5, "ruleIndex"], 99)),
            "runs[0].results[5]",
            "ruleIndex 99 names no rule of this run",
        ),
        (
            mutate_sarif(_set([*RESULT_1_ARTIFACT, "index"], 7)),
            "runs[0].results[1].locations[0].physicalLocation.artifactLocation",
            "index 7 names no artifact of this run",
        ),
        (
            mutate_sarif(_set(["runs", 1, "results", 0], {"message": {"text": "x"}})),
            "runs[1].results[0]",
            "has no ruleId",
        ),
        (
            mutate_sarif(_set(["runs", 0, "results", 4, "message"], "text")),
            "runs[0].results[4].message",
            "is a string, expected an object",
        ),
        (mutate_sarif(_set(["runs", 0, "results", 6], None)), "runs[0].results[6]", "is null, expected an object"),
        (
            mutate_sarif(_set(["runs", 0, "results", 0, "message", "text"], "bad \x00 text")),
            "runs[0].results[0].message",
            "text contains a NUL character",
        ),
        (
            b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"ruleId": "\\ud800"}]}]}',
            "runs[0].results[0]",
            "ruleId contains characters that are not valid text",
        ),
    ],
)
def test_sarif_breakage_names_the_element(data: bytes, where: str, problem: str) -> None:
    error = refused(sarif.parse, data)
    assert error.where == where
    assert problem in error.problem
    assert str(error) == f"{error.where}: {error.problem}"


def test_sarif_of_ten_thousand_results() -> None:
    rules = [
        {
            "id": f"rule-{n}",
            "shortDescription": {"text": f"Rule {n}"},
            "properties": {"security-severity": str(n % 10 + 0.5)},
        }
        for n in range(50)
    ]
    results = [
        {
            "ruleId": f"rule-{n % 50}",
            "ruleIndex": n % 50,
            "level": "warning",
            "message": {"text": f"Problem {n} (see CVE-2024-{1000 + n % 7})."},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f"src/module_{n}.py"},
                        "region": {"startLine": n % 400 + 1},
                    }
                }
            ],
        }
        for n in range(10_000)
    ]
    findings = sarif.parse(sarif_log(*results, rules=rules), source_name="big.sarif")
    assert len(findings) == 10_000
    assert findings[9_999].where == "runs[0].results[9999]"
    assert findings[9_999].asset == "src/module_9999.py"
    assert findings[9_999].cves == ("CVE-2024-1003",)
    assert findings[123].severity is sarif.security_severity(123 % 50 % 10 + 0.5)
    assert_distinct_fingerprints(findings)


# --------------------------------------------------------------------------- Nessus


def test_nessus_sample_gives_every_report_item() -> None:
    findings = nessus.parse(NESSUS_SAMPLE, source_name="weekly.nessus")
    web, db = 'ReportHost "web-01"', 'ReportHost "db-01"'
    assert summary(findings) == [
        (f"{web} ReportItem 1", "Nessus", "19506", "web-01", None, ()),
        (f"{web} ReportItem 2", "Nessus", "11219 on 443/tcp", "web-01", None, ()),
        (f"{web} ReportItem 3", "Nessus", "183391 on 443/tcp", "web-01", HIGH,
         ("CVE-2023-31122", "CVE-2023-43622", "CVE-2023-45802")),
        (f"{web} ReportItem 4", "Nessus", "104743 on 443/tcp", "web-01", MODERATE, ()),
        (f"{web} ReportItem 5", "Nessus", "104743 on 8443/tcp", "web-01", MODERATE, ()),
        (f"{db} ReportItem 1", "Nessus", "19506", "db-01", None, ()),
        (f"{db} ReportItem 2", "Nessus", "201194 on 22/tcp", "db-01", CRITICAL, ("CVE-2024-6387",)),
        (f"{db} ReportItem 3", "Nessus", "58751 on 5432/tcp", "db-01", LOW, ("CVE-2011-3389",)),
    ]
    # the same plugin on two ports of one host, and on two hosts, stays apart
    assert_distinct_fingerprints(findings)
    apache = findings[2]
    assert apache.title == "Apache 2.4.x < 2.4.58 Multiple Vulnerabilities"
    assert apache.description == (
        "The remote web server is affected by multiple vulnerabilities.\n\n"
        "The version of Apache httpd installed on the remote host is prior to 2.4.58. It is, therefore, "
        "affected by multiple vulnerabilities, including a denial of service in HTTP/2 stream handling "
        "(mod_http2).\n\nPort: 443/tcp (www)\n\nSolution: Upgrade to Apache version 2.4.58 or later."
    )
    assert [f.detected_on for f in findings] == [date(2026, 11, 20)] * 5 + [None] * 3


def nessus_report(*items: str, host: str = "web-01", host_tags: str = "") -> bytes:
    body = "".join(items)
    return (
        '<?xml version="1.0" ?><NessusClientData_v2><Report name="r">'
        f'<ReportHost name="{host}"><HostProperties>{host_tags}</HostProperties>{body}</ReportHost>'
        "</Report></NessusClientData_v2>"
    ).encode()


def report_item(severity: str = "2", plugin: str = "104743", port: str = "443", **children: str) -> str:
    inner = "".join(f"<{tag}>{text}</{tag}>" for tag, text in children.items())
    return (
        f'<ReportItem port="{port}" svc_name="www" protocol="tcp" severity="{severity}" '
        f'pluginID="{plugin}" pluginName="TLS Version 1.0 Protocol Detection">{inner}</ReportItem>'
    )


def compliance_item(name: str, result: str, *, check_id: str | None = None, severity: str = "3") -> str:
    """A ReportItem of plugin 21157 reporting one check of an audit file."""
    check = f"<cm:compliance-check-id>{check_id}</cm:compliance-check-id>" if check_id else ""
    return (
        f'<ReportItem port="0" svc_name="general" protocol="tcp" severity="{severity}" pluginID="21157" '
        f'pluginName="Unix Compliance Checks"><cm:compliance-check-name>{name}</cm:compliance-check-name>'
        f"{check}<cm:compliance-result>{result}</cm:compliance-result></ReportItem>"
    )


def test_each_failed_compliance_check_is_a_weakness_of_its_own() -> None:
    """One plugin (21157) runs a whole benchmark: by the plugin alone, a host's
    failed checks were one item, named "Unix Compliance Checks"."""
    data = nessus_report(
        compliance_item("1.1.1 Ensure mounting of cramfs is disabled", "FAILED", check_id="4bd8a5a1"),
        compliance_item("5.2.4 Ensure SSH root login is disabled", "FAILED"),
        compliance_item("5.2.5 Ensure SSH MaxAuthTries is 4 or less", "PASSED"),  # rated as if it failed
    ).replace(b"<NessusClientData_v2>", b'<NessusClientData_v2 xmlns:cm="http://www.nessus.org/cm">')
    findings = nessus.parse(data, source_name="audit.nessus")
    assert [(f.rule_id, f.title, f.severity) for f in findings] == [
        ("21157:4bd8a5a1", "1.1.1 Ensure mounting of cramfs is disabled", HIGH),
        ("21157:" + hashlib.sha256(b"5.2.4 Ensure SSH root login is disabled").hexdigest()[:16],
         "5.2.4 Ensure SSH root login is disabled", HIGH),
        ("21157:" + hashlib.sha256(b"5.2.5 Ensure SSH MaxAuthTries is 4 or less").hexdigest()[:16],
         "5.2.5 Ensure SSH MaxAuthTries is 4 or less", None),  # passed: skipped
    ]
    assert_distinct_fingerprints(findings)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ('<tag name="HOST_START">Mon Jan  5 08:00:00 2026</tag>', date(2026, 1, 5)),
        ('<tag name="HOST_START_TIMESTAMP">1767600000</tag>', date(2026, 1, 5)),
        ('<tag name="HOST_START_TIMESTAMP">999999999999</tag>', None),
        ('<tag name="HOST_START">yesterday</tag>', None),
        ('<tag name="HOST_START">Mon Foo 05 08:00:00 2026</tag>', None),
        ("", None),
    ],
)
def test_nessus_detection_day(tags: str, expected: date | None) -> None:
    [finding] = nessus.parse(nessus_report(report_item(), host_tags=tags), source_name="x")
    assert finding.detected_on == expected


def test_nessus_cves_past_the_limit_are_left_out_and_said_so() -> None:
    """A kernel or Windows rollup plugin lists hundreds: the whole file was refused."""
    cves = "".join(f"<cve>cve-2024-{1000 + n}</cve>" for n in range(120))
    item = report_item(synopsis="Rollup.").replace("</ReportItem>", cves + "</ReportItem>")
    [finding] = nessus.parse(nessus_report(item), source_name="x")
    assert finding.cves == tuple(f"CVE-2024-{1000 + n}" for n in range(100))
    assert finding.description == (
        "Rollup.\n\nPort: 443/tcp (www)\n\nCVEs: 120 listed; the item keeps the first 100 (20 left out).")


def test_a_csv_rows_cves_past_the_limit_are_left_out_and_said_so() -> None:
    """One row listing more than an item keeps refused the whole file."""
    cves = ",".join(f"CVE-2024-{1000 + n}" for n in range(103))
    data = f'name,severity,asset,cve,description\nKernel rollup,high,web-01,"{cves}",Many fixes.\n'.encode()
    [finding] = csv_import.parse(data, source_name="x")
    assert finding.cves == tuple(f"CVE-2024-{1000 + n}" for n in range(100))
    assert finding.description == "Many fixes.\n\nCVEs: 103 listed; the item keeps the first 100 (3 left out)."


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<NessusClientData_v2><Report name="&lol4;"/></NessusClientData_v2>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<NessusClientData_v2><Report name="&xxe;"/></NessusClientData_v2>
"""


def mutate_nessus(old: str, new: str, count: int = 1) -> bytes:
    text = NESSUS_SAMPLE.decode()
    assert text.count(old) >= count
    return text.replace(old, new, count).encode()


@pytest.mark.parametrize(
    ("data", "where", "problem"),
    [
        (BILLION_LAUGHS, "DOCTYPE", "the XML declares a DTD (DOCTYPE), which is refused"),
        (EXTERNAL_ENTITY, "DOCTYPE", "the XML declares a DTD (DOCTYPE), which is refused"),
        (b'<?xml version="1.0"?><!DOCTYPE NessusClientData_v2><NessusClientData_v2/>', "DOCTYPE", "DTD"),
        (NESSUS_SAMPLE[:2000], "line 35, column 130", "not well-formed XML: no element found"),
        (b"\x00\x01binary", "line 1, column 1", "not well-formed XML"),
        (b"", "line 1, column 1", "not well-formed XML: no element found"),
        (
            b"<NessusClientData><Report/></NessusClientData>",
            "root element",
            "<NessusClientData> is not <NessusClientData_v2>",
        ),
        (b"<NessusClientData_v2><Policy/></NessusClientData_v2>", "<NessusClientData_v2>", "has no <Report> element"),
        (
            mutate_nessus('severity="2" pluginID="104743"', 'severity="9" pluginID="104743"'),
            'ReportHost "web-01" ReportItem 4',
            'severity "9" is not 0-4',
        ),
        (
            mutate_nessus('severity="1" pluginID="58751"', 'severity="" pluginID="58751"'),
            'ReportHost "db-01" ReportItem 3',
            'severity "" is not 0-4',
        ),
        (
            mutate_nessus('pluginID="201194"', 'pluginID="ssh-rce"'),
            'ReportHost "db-01" ReportItem 2',
            'pluginID "ssh-rce" is not a plugin number',
        ),
        (
            mutate_nessus('port="8443"', 'port="99999"'),
            'ReportHost "web-01" ReportItem 5',
            'port "99999" is not a port number 0-65535',
        ),
        (  # more digits than Python's int() reads: a clear refusal, not a traceback
            mutate_nessus('port="8443"', f'port="{"9" * 5000}"'),
            'ReportHost "web-01" ReportItem 5',
            "is not a port number 0-65535",
        ),
        (
            mutate_nessus("<cve>CVE-2024-6387</cve>", "<cve>regreSSHion</cve>"),
            'ReportHost "db-01" ReportItem 2',
            '<cve> "regreSSHion" is not a CVE id',
        ),
        (mutate_nessus('<ReportHost name="db-01">', "<ReportHost>"), "ReportHost 2", "has no name attribute"),
        (
            mutate_nessus('<ReportHost name="db-01">', f'<ReportHost name="{"h" * 201}">'),
            "ReportHost 2",
            "name is 201 characters long; an asset id is at most 200",
        ),
        (
            mutate_nessus('pluginName="OpenSSH &lt; 9.8 RCE"', ""),
            'ReportHost "db-01" ReportItem 2',
            "has no pluginName",
        ),
    ],
)
def test_nessus_breakage_names_the_element(data: bytes, where: str, problem: str) -> None:
    error = refused(nessus.parse, data)
    assert (error.where, problem in error.problem) == (where, True), str(error)


def test_nessus_is_never_read_with_the_stdlib_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    import xml.etree.ElementTree as stdlib

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the stdlib XML parser must not read untrusted input")

    monkeypatch.setattr(stdlib, "fromstring", forbidden)
    monkeypatch.setattr(stdlib, "parse", forbidden)
    assert len(nessus.parse(NESSUS_SAMPLE, source_name="weekly.nessus")) == 8


# --------------------------------------------------------------------------- CSV (scanner)


def test_csv_sample_gives_every_row() -> None:
    findings = csv_import.parse(CSV_SAMPLE, source_name="container-scan.csv")
    api, worker = "registry.example.com/api:1.42.0", "registry.example.com/worker:3.1.4"
    assert summary(findings) == [
        ("row 2", "Grype", "GHSA-rxwq-x6h5-x525", api, CRITICAL, ("CVE-2024-3094",)),
        ("row 3", "Grype", "GHSA-5cpq-9534-q6x4", api, HIGH, ("CVE-2023-0464",)),
        ("row 4", "Grype", "GHSA-qppj-fm5r-hxr3", worker, MODERATE, ("CVE-2023-44487", "CVE-2023-35945")),
        # row 4's description runs over two lines of the file; rows count records
        ("row 5", "Grype", "GHSA-wvwx-7hwj-hwrq", worker, LOW, ("CVE-2023-38546",)),
        ("row 6", "Trivy", "DS002", worker, None, ()),
    ]
    assert_distinct_fingerprints(findings)
    assert findings[2].description == (
        "The HTTP/2 protocol allows a denial of service (server resource consumption) because request "
        "cancellation can reset many streams quickly.\n\nFixed in nghttp2 1.57.0."
    )
    assert findings[3].description is None
    assert [f.detected_on for f in findings] == [date(2026, 11, 18)] * 2 + [date(2026, 11, 19)] * 3


def test_csv_accepts_other_header_names_and_separators() -> None:
    data = (
        "\ufeffPlugin ID;Host;Risk;Name;Port;Protocol;Synopsis;Solution;Plugin Output;CVSS v3.0 Base Score\r\n"
        "104743;web-01;Medium;TLS Version 1.0 Protocol Detection;443;tcp;Old TLS.;Disable TLS 1.0.;x;6.5\r\n"
        "19506;web-01;None;Nessus Scan Information;0;tcp;Scan info.;n/a;;\r\n"
        "\r\n"
    ).encode()
    findings = csv_import.parse(data, source_name="nessus.csv")
    # Nessus's CSV (a Plugin ID column, no tool): its weaknesses are those of the same scan's .nessus file
    assert summary(findings) == [
        ("row 2", "Nessus", "104743 on 443/tcp", "web-01", MODERATE, ()),
        ("row 3", "Nessus", "19506", "web-01", None, ()),
    ]
    assert [(f.detector, f.asset_identifier) for f in findings] == [
        ("Nessus", "web-01 (443/TCP)"), ("Nessus", "web-01")]
    assert {f.earlier_tool for f in findings} == {"CSV"}  # what earlier versions named them
    assert findings[0].description == "Old TLS.\n\nSolution: Disable TLS 1.0."
    # without a rule id column the title identifies the weakness
    [finding] = csv_import.parse(b"name,severity,asset\nWeak SSH ciphers,high,bastion\n", source_name="x")
    assert (finding.rule_id, finding.tool) == ("Weak SSH ciphers", "CSV")


def test_nessus_full_csv_reads_its_risk_not_the_older_risk_factor() -> None:
    data = (b"Plugin ID,CVE,Risk,Host,Protocol,Port,Name,Risk Factor\n"
            b"104743,,Medium,web-01,tcp,443,TLS Version 1.0 Protocol Detection,Low\n")
    [finding] = csv_import.parse(data, source_name="nessus.csv")
    assert finding.severity is MODERATE


@pytest.mark.parametrize(("cell", "detected"), [
    ("2026-11-18 10:00:00 +0000 UTC", date(2026, 11, 18)),  # Go's time format (Grype, Trivy)
    ("11/18/2026 10:00:00", date(2026, 11, 18)),
    ("11/18/2026 10:00 PM", date(2026, 11, 18)),
])
def test_scanner_csv_dates_with_times(cell: str, detected: date) -> None:
    [finding] = csv_import.parse(f"title,severity,asset,detected\nx,low,h,{cell}\n".encode(), source_name="x")
    assert finding.detected_on == detected


def test_negligible_is_informational() -> None:
    [finding] = csv_import.parse(b"title,severity,asset\nx,Negligible,h\n", source_name="x")
    assert finding.severity is None


def test_a_year_no_item_can_have_says_so() -> None:
    error = refused(csv_import.parse, b"title,severity,asset,detected\nx,low,h,1970-01-01\n")
    assert error.problem == 'detected "1970-01-01" is not a year from 1990 to 2200'


SCANNER_HEADER = "title,severity,asset,rule_id,tool,cve,description,detected\n"


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("title,asset,tool\nx,y,z\n", "row 1", 'missing column(s) for severity (e.g. "severity")'),
        ("title,Severty,asset\nx,high,z\n", "row 1", 'unknown column(s) "Severty"; accepted columns: title ('),
        ("title,severity,risk,asset\n", "row 1", 'columns "severity" and "risk" both give severity'),
        ("title,,asset,severity\n", "row 1", "column 2 has no header"),
        ("", "row 1", "the header row is empty"),
        (
            SCANNER_HEADER + "a,high,h,r1,t,,,\nb,low,h,r2,t,,,\nc,extreme,h,r3,t,,,\n",
            "row 4",
            'severity "extreme" is not a severity; use critical, high, moderate (or medium), low, or info',
        ),
        (SCANNER_HEADER + "a,,h,r1,t,,,\n", "row 2", "severity is empty"),
        (SCANNER_HEADER + ",high,h,r1,t,,,\n", "row 2", "title is empty"),
        (SCANNER_HEADER + "a,high,,r1,t,,,\n", "row 2", "asset is empty"),
        (SCANNER_HEADER + "a,high,h,r1,t,CVE-24-1,,\n", "row 2", "cve: `CVE-24-1` is not a CVE id"),
        (SCANNER_HEADER + "a,high,h,r1,t,,,31/12/2026\n", "row 2", 'detected "31/12/2026" is not a date'),
        (SCANNER_HEADER + "a,high,h,r1,t,,,2026-02-30\n", "row 2", 'detected "2026-02-30" is not a date'),
        (SCANNER_HEADER + "a,high,h,r1,t,,,,extra\n", "row 2", "has 9 cells but the header has 8 columns"),
        (SCANNER_HEADER + 'a,high,h,r1,t,,"unclosed\n', "row 2", "is not valid CSV"),
        (SCANNER_HEADER + 'a,high,h,r1,t,,"x"y,\n', "row 2", "is not valid CSV"),
        (SCANNER_HEADER + "a\x00,high,h,r1,t,,,\n", "row 2", "contains a NUL character"),
        ("title,severity,asset,port\na,high,h,http\n", "row 2", 'port "http" is not a port number'),
        ("title,severity,asset,port\na,high,h," + "9" * 5000 + "\n", "row 2", 'port "99999999999999999999" is not'),
        ("title,severity,asset,port,protocol\na,high,h,443,t c p\n", "row 2", 'protocol "t c p" is not a protocol'),
    ],
)
def test_csv_breakage_names_the_row(text: str, where: str, problem: str) -> None:
    error = refused(csv_import.parse, text.encode())
    assert (error.where, problem in error.problem) == (where, True), str(error)


def test_csv_that_is_not_utf8() -> None:
    error = refused(csv_import.parse, "title,severity,asset\nCaf\u00e9,high,h\n".encode("latin-1"))
    assert error.where == "file"
    assert "is not UTF-8 text" in error.problem


# --------------------------------------------------------------------------- the FedRAMP columns


def template_row(**values: Any) -> list[Any]:
    """31 cells; keyword names are the column headers with spaces as underscores."""
    cells = {column.replace(" ", "_").replace("-", "_").replace("&", ""): None for column in COLUMNS}
    for key, value in values.items():
        assert key in cells, key
        cells[key] = value
    return list(cells.values())


OPEN_ROW = template_row(
    POAM_ID="POAM-1",
    Controls="SI-2, RA-5(2)",
    Weakness_Name="OpenSSH < 9.8 RCE",
    Weakness_Description="regreSSHion on the bastion host.",
    Weakness_Detector_Source="Nessus",
    Weakness_Source_Identifier=201194,  # a number cell, as a spreadsheet stores plugin ids
    Asset_Identifier="db-01 (22/tcp), db-02 (22/tcp)",
    Point_of_Contact="U000000BOB",
    Resources_Required="Maintenance window",
    Overall_Remediation_Plan="Upgrade OpenSSH to 9.8p1 on both hosts.",
    Original_Detection_Date=datetime(2026, 11, 1),  # a real Excel date
    Scheduled_Completion_Date="2026-12-01",  # a date typed as text
    Planned_Milestones="(01) 2026-11-25: Patch db-02 in the staging window\n\n"
    "(02) 2026-11-30: Patch db-01\nafter the failover test",
    Milestone_Changes="(01) Update 2026-11-27 : moved from 2026-11-25: vendor delay",
    Status_Date=datetime(2026, 11, 20),
    Vendor_Dependency="Yes",
    Vendor_Dependent_Product_Name="OpenSSH",
    Original_Risk_Rating="High",
    Adjusted_Risk_Rating="N/A",
    Risk_Adjustment="No",
    False_Positive="No",
    Operational_Requirement="No",
    Comments="Original severity: Critical. Extension to 2026-12-15 approved by U0000AO on 2026-11-20.",
    Auto_Approve="No",
    CVE="CVE-2024-6387",
)
CLOSED_ROW = template_row(
    POAM_ID="POAM-2",
    Weakness_Name="TLS 1.0 enabled",
    Weakness_Detector_Source="Vulnerability Scan",
    Asset_Identifier="web-01",
    Point_of_Contact="John Doe - Example CSP",
    Original_Detection_Date=datetime(2026, 10, 2),
    Scheduled_Completion_Date=datetime(2026, 12, 31),
    Original_Risk_Rating="moderate",
)
GUIDANCE = ["Unique identifier for each POAM Item"] + [None] * 30
FORMATS = ["Unique Identifier", "Control Number", "Text"] + [None] * 28


def workbook_bytes(
    open_rows: Sequence[Sequence[Any]],
    closed_rows: Sequence[Sequence[Any]] = (),
    *,
    tabs: Sequence[str] = ("Open POA&M Items", "Closed POA&M Items"),
    header: Sequence[str] = COLUMNS,
) -> bytes:
    """A workbook laid out as the export writes it (GSA's template)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for tab, rows in zip(tabs, (open_rows, closed_rows), strict=True):
        sheet = book.create_sheet(tab)
        layout = {
            1: ["FedRAMP® Plan of Action and Milestones (POA&M) Template"],
            2: ["CSP", "System Name", "Impact Level", "POAM Date"],
            3: ["Example CSP", "Example Cloud", "Moderate", datetime(2026, 11, 20)],
            5: list(header),
            6: GUIDANCE,
            7: FORMATS,
        }
        layout.update({8 + index: list(cells) for index, cells in enumerate(rows)})
        for row_number, cells in layout.items():
            for column, value in enumerate(cells, start=1):
                if value is not None:
                    cell = sheet.cell(row=row_number, column=column, value=value)
                    if isinstance(value, str) and value.startswith("="):
                        cell.data_type = "s"  # text, never a formula (as the export must write it)
    book.create_sheet("Configuration Findings")
    book.create_sheet("Record of Changes")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


EXPECTED_OPEN = Finding(
    tool="Nessus",
    detector="Nessus",
    poam_id="POAM-1",
    rule_id="201194",
    asset="db-01 (22/tcp), db-02 (22/tcp)",
    title="OpenSSH < 9.8 RCE",
    severity=CRITICAL,
    where='"Open POA&M Items" row 8',
    description="regreSSHion on the bastion host.",
    cves=("CVE-2024-6387",),
    controls=("SI-2", "RA-5(2)"),
    detected_on=date(2026, 11, 1),
    scheduled_completion_on=date(2026, 12, 1),
    owner_id="U000000BOB",
    remediation_plan="Upgrade OpenSSH to 9.8p1 on both hosts.",
    resources_required="Maintenance window",
    milestones=(
        Milestone(date(2026, 11, 25), "Patch db-02 in the staging window", number=1),
        Milestone(date(2026, 11, 30), "Patch db-01\nafter the failover test", number=2),
    ),
    milestone_changes=(
        MilestoneChange(1, ChangeKind.UPDATE, date(2026, 11, 27), "vendor delay", moved_from=date(2026, 11, 25)),
    ),
    vendor_product="OpenSSH",
    vendor_dependency=True,
)
EXPECTED_CLOSED = Finding(
    tool="Vulnerability Scan",
    rule_id="POAM-2",  # no Weakness Source Identifier: the POAM ID identifies it
    asset="web-01",
    title="TLS 1.0 enabled",
    severity=MODERATE,
    where='"Closed POA&M Items" row 8',
    detected_on=date(2026, 10, 2),
    scheduled_completion_on=date(2026, 12, 31),
    owner_id=None,  # a name, not a Slack user id
    unknown_contact="John Doe - Example CSP",
    closed=True,
    poam_id="POAM-2",
    rule_is_poam_id=True,
)


def test_workbook_round_trips_to_findings() -> None:
    second_open = template_row(
        POAM_ID="POAM-3", Weakness_Name="Weak SSH ciphers", Asset_Identifier="bastion",
        Original_Risk_Rating="Low", Original_Detection_Date="2026-11-03",
    )
    ignored = template_row(POAM_ID="POAM-9", Weakness_Name="after the blank row", Original_Risk_Rating="Low")
    data = workbook_bytes([OPEN_ROW, second_open, [None] * 31, ignored], [CLOSED_ROW])
    findings = workbook_import.parse(data, source_name="poam.xlsx")
    assert findings == [
        EXPECTED_OPEN,
        Finding(
            tool="", rule_id="POAM-3", asset="bastion", title="Weak SSH ciphers", severity=LOW,
            where='"Open POA&M Items" row 9', detected_on=date(2026, 11, 3), poam_id="POAM-3",
            rule_is_poam_id=True,
        ),
        EXPECTED_CLOSED,
    ]
    assert_distinct_fingerprints(findings)


def test_workbook_rows_as_gsas_template_example_writes_them() -> None:
    example = template_row(
        POAM_ID="V-1", Controls="AC-1", Weakness_Name="Open port on Example Firewall",
        Weakness_Detector_Source="Nessus", Weakness_Source_Identifier=12345,
        Asset_Identifier="172.246.15.3 (80/TCP)\nhttp://vuln.gov/queries",
        Point_of_Contact="John Doe -  Example CSP", Original_Detection_Date=datetime(2014, 5, 5),
        Planned_Milestones="(1) 2014/05/23: Milestone Description\n\n(2) 2014-06-12: Milestone \nDescription",
        Original_Risk_Rating="High", Comments="none", CVE="CVE-1234-1234",
    )
    [finding] = workbook_import.parse(workbook_bytes([example]), source_name="template.xlsx")
    assert (finding.rule_id, finding.severity, finding.owner_id) == ("12345", HIGH, None)
    assert finding.milestones == (
        Milestone(date(2014, 5, 23), "Milestone Description", number=1),
        Milestone(date(2014, 6, 12), "Milestone \nDescription", number=2),
    )


def test_gsas_closed_tab_starts_at_row_6_and_its_example_row_is_not_an_item() -> None:
    """GSA's closed tab has no guidance rows: a team's first closed items on
    rows 6 and 7 were skipped without a word, while the open tab's example
    row ("V-1Example") came in as an item."""
    data = workbook_bytes([template_row(POAM_ID=GSA_EXAMPLE_ID, Weakness_Name="Open port on Example Firewall",
                                        Original_Risk_Rating="High"), OPEN_ROW])
    book = openpyxl.load_workbook(io.BytesIO(data))
    closed = book["Closed POA&M Items"]
    for row_number, name in ((6, "Closed weakness A"), (7, "Closed weakness B"), (8, "Closed weakness C")):
        for column, value in enumerate(template_row(POAM_ID=f"V-{row_number}", Weakness_Name=name,
                                                    Original_Risk_Rating="Low"), start=1):
            closed.cell(row=row_number, column=column).value = value  # rows 6-7: no guidance, as GSA's
    buffer = io.BytesIO()
    book.save(buffer)
    findings = workbook_import.parse(buffer.getvalue(), source_name="gsa.xlsx")
    assert [(f.title, f.closed, f.where) for f in findings] == [
        ("OpenSSH < 9.8 RCE", False, '"Open POA&M Items" row 9'),
        ("Closed weakness A", True, '"Closed POA&M Items" row 6'),
        ("Closed weakness B", True, '"Closed POA&M Items" row 7'),
        ("Closed weakness C", True, '"Closed POA&M Items" row 8'),
    ]


def _one_row(**cells: Any) -> Finding:
    fields_ = {"POAM_ID": "V-7", "Weakness_Name": "Weak TLS", "Original_Risk_Rating": "High", **cells}
    [finding] = workbook_import.parse(workbook_bytes([template_row(**fields_)]), source_name="gsa.xlsx")
    return finding


def test_deviations_as_gsas_template_writes_them_are_the_decisions_recorded() -> None:
    finding = _one_row(Adjusted_Risk_Rating="Moderate", Risk_Adjustment="Yes", False_Positive="N/A",
                       Operational_Requirement="Pending", Deviation_Rationale="Risk Adjustment : WAF rule in place",
                       Last_Vendor_Check_in_Date=datetime(2026, 11, 3))
    assert finding.deviations == (RecordedDeviation(Deviation.RISK_ADJUSTMENT, "WAF rule in place", adjusted=MODERATE),)
    assert (finding.unrestored_deviations, finding.vendor_checkin_on) == (1, date(2026, 11, 3))
    accepted = _one_row(Original_Risk_Rating="Low", Operational_Requirement="Yes", Last_Vendor_Check_in_Date="N/A",
                        Comments="Risk accepted until 2027-01-31 by X on 2026-11-01. Risk accepted until 2027-06-30.")
    assert accepted.deviations == (RecordedDeviation(Deviation.OPERATIONAL_REQUIREMENT, until=date(2027, 6, 30)),)
    assert (accepted.unrestored_deviations, accepted.vendor_checkin_on) == (0, None)


@pytest.mark.parametrize("cells", [
    {"Risk_Adjustment": "Yes"},  # no rating to adjust to
    {"Risk_Adjustment": "Yes", "Adjusted_Risk_Rating": "Urgent"},
    {"Operational_Requirement": "Yes"},  # no date to review it again by
    {"Operational_Requirement": "Yes", "Comments": "Risk accepted until 2027-06-30."},  # at High: never (DOMAIN.md)
    {"False_Positive": "TBD"},
])
def test_a_deviation_the_file_gives_too_little_to_restore_is_counted_not_restored(cells: dict[str, Any]) -> None:
    """A workbook these columns were ignored in imported whole before; a
    deviation it cannot restore must not refuse it now."""
    finding = _one_row(**cells)
    assert (finding.deviations, finding.unrestored_deviations) == ((), 1)


@pytest.mark.parametrize(("cells", "problem"), [
    ({"False_Positive": "Maybe"}, 'False Positive "Maybe" is not Yes, No or Pending'),
    ({"Last_Vendor_Check_in_Date": "soon"}, "Last Vendor Check-in Date"),
])
def test_a_deviation_column_of_no_answer_refuses_the_file(cells: dict[str, Any], problem: str) -> None:
    with pytest.raises(ImportFormatError) as refused:
        _one_row(**cells)
    assert problem in str(refused.value)


def test_milestone_changes_are_read_in_order_as_the_template_writes_them() -> None:
    cell = (
        "(03) New 2026-12-19 : Tell the customer\n\n"
        "(1) update 2026/12/18:moved from 2026-12-20: window moved\n\n"  # the template's looser forms too
        "(02) Update 2026-12-21 : after the rescan,\nnot before\n\n"
        "(01) COMPLETE 2026-12-05 : \n\n"
        "(02) Update 2026-12-22 : moved from someday: kept as written\n\n"
        "(2) Update 12/23/2026 : as GSA's example writes dates"
    )
    assert workbook_import.milestone_changes(cell, where="row 8") == (
        MilestoneChange(3, ChangeKind.NEW, date(2026, 12, 19), "Tell the customer"),
        MilestoneChange(1, ChangeKind.UPDATE, date(2026, 12, 18), "window moved", moved_from=date(2026, 12, 20)),
        MilestoneChange(2, ChangeKind.UPDATE, date(2026, 12, 21), "after the rescan,\nnot before"),
        MilestoneChange(1, ChangeKind.COMPLETE, date(2026, 12, 5), ""),
        MilestoneChange(2, ChangeKind.UPDATE, date(2026, 12, 22), "moved from someday: kept as written"),
        MilestoneChange(2, ChangeKind.UPDATE, date(2026, 12, 23), "as GSA's example writes dates"),
    )
    assert workbook_import.milestone_changes(" \n ", where="row 8") == ()


@pytest.mark.parametrize(
    ("cell", "asset", "port"),
    [
        ("10.0.0.5 (443/TCP)", "10.0.0.5", "443/tcp"),  # the export's (and the template's) one asset on a port
        ("web-01(080/udp)", "web-01", "80/udp"),
        ("db (primary)", "db (primary)", None),
        ("x (70000/tcp)", "x (70000/tcp)", None),
        ("x (0/tcp)", "x (0/tcp)", None),
        ("a (80/TCP), b", "a (80/TCP), b", None),  # several assets stay as they are
        ("a (80/TCP)\nb (81/TCP)", "a (80/TCP)\nb (81/TCP)", None),
    ],
)
def test_asset_identifier_gives_back_the_port(cell: str, asset: str, port: str | None) -> None:
    cells = dict(zip(COLUMNS, template_row(POAM_ID="POAM-1", Weakness_Name="x", Weakness_Detector_Source="Nessus",
                                           Asset_Identifier=cell, Original_Risk_Rating="Low"), strict=True))
    finding = workbook_import.template_finding(cells, where="row 8", closed=False)
    assert (finding.asset, finding.port, finding.detector) == (asset, port, "Nessus")


@pytest.mark.parametrize(("source", "detector"), [("Penetration Test", None), ("pentest", None), (None, None),
                                                  ("Qualys", "Qualys")])
def test_detector_source_names_a_tool_or_a_kind_of_source(source: str | None, detector: str | None) -> None:
    cells = dict(zip(COLUMNS, template_row(POAM_ID="POAM-1", Weakness_Name="x", Weakness_Detector_Source=source,
                                           Asset_Identifier="h", Original_Risk_Rating="Low"), strict=True))
    assert workbook_import.template_finding(cells, where="row 8", closed=False).detector == detector


@pytest.mark.parametrize(("status_date", "closed_on"), [
    (datetime(2026, 11, 5), date(2026, 11, 5)), ("2026-11-05", date(2026, 11, 5)), ("Closed", None), (None, None),
])
def test_a_closed_rows_status_date_is_the_day_it_closed(status_date: Any, closed_on: date | None) -> None:
    """Not a date (some workbooks write "Closed" there): closed as of the import, never a refused file."""
    row = template_row(POAM_ID="POAM-1", Weakness_Name="x", Asset_Identifier="h", Original_Risk_Rating="Low",
                       Status_Date=status_date)
    [open_one, closed] = workbook_import.parse(workbook_bytes([row], [row]), source_name="poam.xlsx")
    assert (open_one.closed_on, closed.closed_on) == (None, closed_on)


def bad_row(**values: Any) -> bytes:
    fields = {
        "POAM_ID": "POAM-1", "Weakness_Name": "x", "Asset_Identifier": "h", "Original_Risk_Rating": "Low",
        **values,
    }
    return workbook_bytes([OPEN_ROW], [OPEN_ROW, template_row(**fields)])


WRONG_HEADER = list(COLUMNS)
WRONG_HEADER[5] = "Plugin ID"


@pytest.mark.parametrize(
    ("data", "where", "problem"),
    [
        (
            workbook_bytes([OPEN_ROW], header=WRONG_HEADER),
            '"Open POA&M Items" row 5',
            'column F is "Plugin ID", expected "Weakness Source Identifier"',
        ),
        (
            workbook_bytes([OPEN_ROW], header=COLUMNS[:30]),
            '"Open POA&M Items" row 5',
            'column AE is empty, expected "Service Name"',
        ),
        (
            workbook_bytes([OPEN_ROW], tabs=("Open Items", "Closed POA&M Items")),
            "tabs",
            'no "Open POA&M Items" tab (the workbook has "Open Items", "Closed POA&M Items", '
            '"Configuration Findings", "Record of Changes")',
        ),
        (
            bad_row(Original_Risk_Rating="Severe"),
            '"Closed POA&M Items" row 9',
            'Original Risk Rating "Severe" is not Low, Moderate or High',
        ),
        (bad_row(Original_Risk_Rating=None), '"Closed POA&M Items" row 9', "Original Risk Rating is empty"),
        (bad_row(Weakness_Name=None), '"Closed POA&M Items" row 9', "Weakness Name is empty"),
        (bad_row(POAM_ID=None), '"Closed POA&M Items" row 9', "neither Weakness Source Identifier nor POAM ID"),
        (
            bad_row(Original_Detection_Date="next week"),
            '"Closed POA&M Items" row 9',
            'Original Detection Date "next week" is not a date; write it as yyyy-mm-dd',
        ),
        (
            bad_row(Scheduled_Completion_Date=datetime(1066, 10, 14)),
            '"Closed POA&M Items" row 9',
            'Scheduled Completion Date "1066-10-14" is not a year from 1990 to 2200',
        ),
        (
            bad_row(Planned_Milestones="(01) 2026-13-01: Patch"),
            '"Closed POA&M Items" row 9',
            'Planned Milestones entry (01): "2026-13-01" is not a date',
        ),
        (
            bad_row(Planned_Milestones="Patch it soon"),
            '"Closed POA&M Items" row 9',
            'Planned Milestones must be entries like "(01) 2026-12-01: description"',
        ),
        (
            bad_row(Planned_Milestones="(01) 2026-12-01:   \n\n(02) 2026-12-02: b"),
            '"Closed POA&M Items" row 9',
            "Planned Milestones entry (01) has no description",
        ),
        (
            bad_row(Milestone_Changes="Moved to next month, vendor delay"),
            '"Closed POA&M Items" row 9',
            'Milestone Changes must be entries like "(02) Update 2026-12-15 : why"',
        ),
        (
            bad_row(Milestone_Changes="(01) Moved 2026-12-15 : vendor"),
            '"Closed POA&M Items" row 9',
            'Milestone Changes entry (01): "Moved 2026-12-15" is not New, Update or Complete and a date yyyy-mm-dd',
        ),
        (
            bad_row(Milestone_Changes="(01) Update next week : vendor"),
            '"Closed POA&M Items" row 9',
            'Milestone Changes entry (01): "Update next week" is not New, Update or Complete',
        ),
        (
            bad_row(Milestone_Changes="(01) Complete 1970-01-01 : placeholder"),
            '"Closed POA&M Items" row 9',
            'Milestone Changes entry (01): "1970-01-01" is not a year from 1990 to 2200',
        ),
        (
            bad_row(Planned_Milestones="(01) 1970-01-01: Patch"),
            '"Closed POA&M Items" row 9',
            'Planned Milestones entry (01): "1970-01-01" is not a year from 1990 to 2200',
        ),
        (
            bad_row(Milestone_Changes="(01) Update 2026-02-30 : vendor"),
            '"Closed POA&M Items" row 9',
            'Milestone Changes entry (01): "Update 2026-02-30" is not New',
        ),
        (bad_row(Controls="AC-2, not a control!"), '"Closed POA&M Items" row 9', "Controls: `not a control!`"),
        (bad_row(CVE="CVE-2024-3094, log4shell"), '"Closed POA&M Items" row 9', "CVE: `LOG4SHELL` is not a CVE id"),
        (b"PK\x03\x04 not really a zip", "file", "is not an .xlsx workbook (not a valid zip archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "file", "is an old binary .xls workbook"),
    ],
)
def test_workbook_breakage_names_the_place(data: bytes, where: str, problem: str) -> None:
    error = refused(workbook_import.parse, data)
    assert (error.where, problem in error.problem) == (where, True), str(error)


def test_workbook_that_is_another_zip() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    error = refused(workbook_import.parse, buffer.getvalue())
    assert error.where == "file"
    assert "is not a readable .xlsx workbook" in error.problem


def test_workbook_zip_bomb_is_refused_before_unpacking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook_import, "MAX_UNPACKED_BYTES", 1024 * 1024)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (1024 * 1024 + 1))
    error = refused(workbook_import.parse, buffer.getvalue())
    assert (error.where, "zip bomb" in error.problem) == ("file", True)


# --------------------------------------------------------------------------- CSV (our own export)


def export_csv(rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS + EXTRA_COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def as_csv_cells(cells: Sequence[Any]) -> list[str]:
    return ["" if c is None else c.date().isoformat() if isinstance(c, datetime) else str(c) for c in cells]


def test_csv_of_our_own_export() -> None:
    first = as_csv_cells(OPEN_ROW) + ["in_progress", "2026-12-15", "Production"]
    guarded = template_row(
        POAM_ID="POAM-2", Weakness_Name="TLS 1.0 enabled", Weakness_Detector_Source="Vulnerability Scan",
        Weakness_Description="'=HYPERLINK(\"http://x\")", Asset_Identifier="web-01",
        Point_of_Contact="John Doe - Example CSP", Original_Detection_Date="2026-10-02",
        Scheduled_Completion_Date="2026-12-31", Original_Risk_Rating="moderate",
    )
    second = as_csv_cells(guarded) + ["closed", "2026-12-31", "Production"]
    findings = csv_import.parse(export_csv([first, second]), source_name="poam.csv")
    assert findings == [
        Finding(**{**EXPECTED_OPEN.__dict__, "where": "row 2", "due_on": date(2026, 12, 15),
                   "system_name": "Production"}),
        Finding(
            **{
                **EXPECTED_CLOSED.__dict__,
                "where": "row 3",
                "due_on": date(2026, 12, 31),
                "system_name": "Production",
                "description": '=HYPERLINK("http://x")',  # the export's formula guard is undone
            }
        ),
    ]


@pytest.mark.parametrize(
    ("header", "cells", "where", "problem"),
    [
        (COLUMNS[:18] + COLUMNS[19:], None, "row 1", 'missing column(s) "Original Risk Rating"'),
        (COLUMNS + ("Owner Email",), None, "row 1", 'unknown column(s) "Owner Email"; an exported POA&M CSV'),
        (
            COLUMNS + EXTRA_COLUMNS,
            as_csv_cells(OPEN_ROW) + ["reopened", "", ""],
            "row 2",
            'Status "reopened" is not a status',
        ),
        (
            COLUMNS + EXTRA_COLUMNS,
            as_csv_cells(template_row(POAM_ID="POAM-1", Weakness_Name="x", Asset_Identifier="h",
                                      Original_Risk_Rating="Extreme")) + ["open", "", ""],
            "row 2",
            'Original Risk Rating "Extreme" is not Low, Moderate or High',
        ),
        (
            COLUMNS + EXTRA_COLUMNS,
            as_csv_cells(OPEN_ROW) + ["open", "soon", ""],
            "row 2",
            'Current Due Date "soon" is not a date',
        ),
    ],
)
def test_csv_of_our_export_breakage(
    header: Sequence[str], cells: list[str] | None, where: str, problem: str
) -> None:
    error = refused(csv_import.parse, export_csv([cells] if cells else [], header=header))
    assert (error.where, problem in error.problem) == (where, True), str(error)


# --------------------------------------------------------------------------- real exports round-trip

BOB = "U000000BOB"


def logged_items(engine: Engine, alice: Actor, bob: Actor) -> None:
    with unit_of_work(engine) as session:
        log_item(
            session, alice, title="OpenSSH < 9.8 RCE", severity=Severity.CRITICAL,
            description="=cmd|' /C calc'!A0 looks like a formula", controls=["SI-2", "RA-5(2)"],
            source=Source.SCAN, source_identifier="201194", assets=["db-01", "db-02"],
            cves=["CVE-2024-6387"], detected_on=date(2026, 11, 1), owner_id=BOB,
        )
        log_item(session, alice, title="'--insecure' passed to curl in deploy.sh", severity=Severity.MODERATE,
                 description="'-k' disables TLS checks", assets=["web-01"])  # a quote of the user's, kept
    with unit_of_work(engine) as session:
        set_plan(session, bob, number=1, plan="Upgrade OpenSSH.", resources="A maintenance window")
        add_milestone(session, bob, number=1, description="Patch db-02", due_on=date(2026, 11, 25))
        add_milestone(session, bob, number=1, description="Patch db-01", due_on=date(2026, 11, 30))


def check_round_trip(findings: list[Finding], engine: Engine, alice: Actor, *, csv_due: bool) -> None:
    with unit_of_work(engine) as session:
        details = [show_item(session, alice, number=n) for n in (1, 2)]
        expected = [
            Finding(
                tool={"scan": "Vulnerability Scan", "self": "Self-Identified"}[d.item.source],
                rule_id=d.item.source_identifier or f"POAM-{d.item.number}",
                asset="\n".join(d.item.assets),
                title=d.item.title,
                severity=Severity(d.item.severity),
                where=finding.where,
                description=d.item.description,
                cves=tuple(d.item.cves),
                controls=tuple(d.controls),
                detected_on=d.item.detected_on,
                due_on=d.item.due_on if csv_due else None,
                scheduled_completion_on=d.item.scheduled_completion_on,
                owner_id=d.item.owner_id,
                remediation_plan=d.item.remediation_plan,
                resources_required=d.item.resources_required,
                milestones=tuple(Milestone(m.planned_due_on, m.description, m.number) for m in d.milestones),
                vendor_product=d.item.vendor_product,
                vendor_dependency=d.item.vendor_dependency,
                poam_id=f"POAM-{d.item.number}",
                rule_is_poam_id=d.item.source_identifier is None,
                system_name=d.system.name if csv_due else None,  # the CSV's System column
            )
            for d, finding in zip(details, findings, strict=True)
        ]
    assert findings == expected
    assert findings[0].severity is CRITICAL and len(findings[0].milestones) == 2


def test_csv_export_round_trips(engine: Engine, alice: Actor, bob: Actor) -> None:
    logged_items(engine, alice, bob)
    out = io.StringIO()
    with unit_of_work(engine) as session:
        details = [show_item(session, alice, number=n) for n in (1, 2)]
        write_csv(details, out, rules=Rules())
    findings = csv_import.parse(out.getvalue().encode(), source_name="poam.csv")
    assert [f.where for f in findings] == ["row 2", "row 3"]
    check_round_trip(findings, engine, alice, csv_due=True)


def test_workbook_rows_of_the_export_round_trip(engine: Engine, alice: Actor, bob: Actor) -> None:
    logged_items(engine, alice, bob)
    with unit_of_work(engine) as session:
        rows = [row(show_item(session, alice, number=n), rules=Rules()) for n in (1, 2)]
    findings = workbook_import.parse(workbook_bytes(rows), source_name="poam.xlsx")
    assert [f.where for f in findings] == ['"Open POA&M Items" row 8', '"Open POA&M Items" row 9']
    check_round_trip(findings, engine, alice, csv_due=False)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("codescan.sarif", SARIF_SAMPLE, "sarif"),
        ("results.json", SARIF_SAMPLE, "sarif"),
        ("scan.sarif.json", b"", "sarif"),
        ("download", SARIF_SAMPLE, "sarif"),
        ("weekly.nessus", NESSUS_SAMPLE, "nessus"),
        ("report.xml", NESSUS_SAMPLE, "nessus"),
        ("scan.NESSUS", b"<x/>", "nessus"),
        ("other.json", b'{"a": 1}', "sarif"),  # the SARIF parser then says "version: is missing"
        ("other.xml", b"<a/>", "nessus"),
        ("findings.csv", CSV_SAMPLE, "csv"),
        ("findings.tsv", b"a\tb", "csv"),
        ("poam.xlsx", b"", "xlsx"),
        ("poam.csv", workbook_bytes([OPEN_ROW]), "xlsx"),  # unmistakable content wins over the name
        ("upload.bin", workbook_bytes([OPEN_ROW]), "xlsx"),
    ],
)
def test_detect_format(name: str, data: bytes, expected: str) -> None:
    assert detect_format(name, data) == expected


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("notes.txt", b"hello", "cannot tell what kind of file notes.txt is; accepted: "),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old binary .xls workbook is not accepted"),
        # a zipped scan was sent to the workbook importer: "not a readable .xlsx workbook (KeyError)"
        ("weekly.nessus", zipped("weekly.nessus", NESSUS_SAMPLE), "is a zip archive; unzip it and upload the file"),
        ("codescan.sarif", zipped("codescan.sarif", SARIF_SAMPLE), "is a zip archive; unzip it and upload the file"),
    ],
)
def test_detect_refuses_what_it_cannot_read(name: str, data: bytes, problem: str) -> None:
    with pytest.raises(ImportFormatError) as error:
        detect_format(name, data)
    assert error.value.where == "file"
    assert problem in error.value.problem
    assert ACCEPTED in error.value.problem


def test_detect_parse_and_parsers() -> None:
    assert set(PARSERS) == {"sarif", "nessus", "csv", "xlsx"}
    assert parse("weekly.nessus", NESSUS_SAMPLE) == nessus.parse(NESSUS_SAMPLE, source_name="weekly.nessus")
    assert parse("anything", CSV_SAMPLE, format_name="CSV") == csv_import.parse(CSV_SAMPLE, source_name="x")
    with pytest.raises(ImportFormatError) as error:
        parser_for("pdf")
    assert str(error.value) == 'format: "pdf" is not a format; use sarif, nessus, csv, xlsx'


# --------------------------------------------------------------------------- fuzzing

ALL_PARSERS = pytest.mark.parametrize("parser", list(PARSERS.values()), ids=list(PARSERS))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ALL_PARSERS
@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_raise_only_import_format_errors(parser: Parser, data: bytes) -> None:
    try:
        parser(data, source_name="fuzz")
    except ImportFormatError:
        pass


@ALL_PARSERS
@FUZZ
@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0, max_value=255))
def test_damaged_samples_raise_only_import_format_errors(parser: Parser, cut: int, flip: int) -> None:
    sample = {
        sarif.parse: SARIF_SAMPLE, nessus.parse: NESSUS_SAMPLE, csv_import.parse: CSV_SAMPLE,
        workbook_import.parse: WORKBOOK_SAMPLE,
    }[parser]
    position = cut % len(sample)
    damaged = sample[:position] + bytes([flip]) + sample[position + 1 :]
    for data in (damaged, sample[:position]):
        try:
            parser(data, source_name="fuzz")
        except ImportFormatError:
            pass


WORKBOOK_SAMPLE = workbook_bytes([OPEN_ROW], [CLOSED_ROW])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
SARIF_KEYS = st.sampled_from(
    ["ruleId", "ruleIndex", "level", "kind", "message", "locations", "rule", "properties"]
)


@FUZZ
@given(
    result_fields=st.dictionaries(SARIF_KEYS, JSON_VALUES, max_size=5),
    rule_fields=st.dictionaries(
        st.sampled_from(
            ["id", "name", "shortDescription", "fullDescription", "defaultConfiguration", "properties", "messageStrings"]
        ),
        JSON_VALUES,
        max_size=4,
    ),
    run_fields=st.dictionaries(st.sampled_from(["artifacts", "invocations", "tool"]), JSON_VALUES, max_size=2),
)
def test_odd_sarif_structures_raise_only_import_format_errors(
    result_fields: dict[str, Any], rule_fields: dict[str, Any], run_fields: dict[str, Any]
) -> None:
    data = sarif_log({**result(), **result_fields}, rules=[rule_fields], **run_fields)
    try:
        findings = sarif.parse(data, source_name="fuzz")
    except ImportFormatError:
        return
    assert len(findings) == 1


@FUZZ
@given(attributes=st.lists(st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=8), min_size=4, max_size=4))
def test_odd_nessus_attributes_raise_only_import_format_errors(attributes: list[str]) -> None:
    from xml.sax.saxutils import quoteattr

    severity, plugin, port, cve = (quoteattr(value) for value in attributes)
    item = (
        f"<ReportItem port={port} protocol=\"tcp\" severity={severity} pluginID={plugin} "
        f"pluginName=\"n\"><cve>{cve[1:-1]}</cve></ReportItem>"
    )
    try:
        nessus.parse(nessus_report(item), source_name="fuzz")
    except ImportFormatError:
        pass


@FUZZ
@given(rows=st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=10), max_size=5))
def test_odd_csv_rows_raise_only_import_format_errors(rows: list[list[str]]) -> None:
    for header in (SCANNER_HEADER.strip().split(","), list(COLUMNS + EXTRA_COLUMNS)):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
        try:
            csv_import.parse(out.getvalue().encode("utf-8", "surrogatepass"), source_name="fuzz")
        except ImportFormatError:
            pass
