"""SARIF 2.1.0 (static analysis results, JSON) → findings.

One finding per result. The weakness is identified by the tool
(``runs[].tool.driver.name``), the rule (``result.ruleId``) and the asset, the
artifact URI of the result's first location, so the same rule firing twice in
one file gives the same fingerprint (the importer merges them). A URI longer
than an asset id may be is stored by its end (:func:`stored_asset`); the
fingerprint and the description keep it whole.

Severity: a rule's ``security-severity`` property (a CVSS-like score, GitHub's
convention) wins when present and above 0 (Trivy writes 0.0 for a CVE of
unknown severity, with the level ``note``); otherwise the SARIF level of the
result (or the rule's default level) maps as ``error`` → high, ``warning`` →
moderate, ``note`` → low, ``none`` → informational. Results whose ``kind`` is
not ``fail`` (pass, open, review…) are informational too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.interchange.findings import Finding, ImportFormatError, kept_cves
from bot.poam.dates import MAX_YEAR, MIN_YEAR
from bot.poam.fields import MAX_ASSET_LENGTH
from bot.poam.items import MAX_TITLE, item_description
from bot.poam.severity import Severity
from bot.poam.text import clip

VERSION = "2.1.0"
NO_LOCATION = "(no location)"

LEVELS: Mapping[str, Severity | None] = {
    "error": Severity.HIGH,
    "warning": Severity.MODERATE,
    "note": Severity.LOW,
    "none": None,
}
_DEFAULT_LEVEL = "warning"  # SARIF §3.27.10: a result without a level (and no rule default) is a warning
_KINDS = frozenset({"pass", "open", "informational", "notApplicable", "review", "fail"})
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE | re.ASCII)
#: ``{0}`` in a message: an argument's place (no more digits than any list of arguments needs).
_PLACEHOLDER = re.compile(r"\{(\d{1,6})\}")


def security_severity(score: float) -> Severity | None:
    """GitHub's bands for a ``security-severity`` score: ≥9 critical, ≥7 high,
    ≥4 moderate, >0 low; 0 is no band (None), and the level decides."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MODERATE
    if score > 0.0:
        return Severity.LOW
    return None


def stored_asset(uri: str) -> str:
    """``uri`` as an asset id can hold it: one too long (deep ``node_modules``
    or Java package folders) keeps its end, the file and the folders that
    fit, after "…"; the same URI always gives the same."""
    if len(uri) <= MAX_ASSET_LENGTH:
        return uri
    tail = uri[len(uri) - MAX_ASSET_LENGTH + 1:]
    folder = tail.find("/")
    return "…" + (tail[folder:] if 0 <= folder < len(tail) - 1 else tail)


@dataclass(frozen=True)
class _Rule:
    """What a rule contributes to every result of it, computed once per rule."""

    id: str | None
    title: str | None
    full_description: str | None
    level: str | None
    score: float | None
    cves: tuple[str, ...]
    messages: Mapping[str, str]


def _text(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str):
        raise ImportFormatError(where, f"{field} is {_kind(value)}, not a string")
    if "\x00" in value:
        raise ImportFormatError(where, f"{field} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ImportFormatError(where, f"{field} contains characters that are not valid text") from None
    return value


def _show(value: Any) -> str:
    """A value as quoted in an error: JSON for scalars (shortened), the type otherwise."""
    if isinstance(value, (list, dict)):
        return f"({_kind(value)})"
    shown = json.dumps(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImportFormatError(where, f"is {_kind(value)}, expected an object")
    return value


def _optional_object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = parent.get(key)
    return None if value is None else _object(value, f"{where}.{key}")


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ImportFormatError(where, f"is {_kind(value)}, expected an array")
    return value


def _optional_text(parent: dict[str, Any], key: str, where: str) -> str | None:
    value = parent.get(key)
    return None if value is None else _text(value, where, key)


def _message_text(parent: dict[str, Any], key: str, where: str) -> str | None:
    """``parent[key].text`` of a SARIF message or multiformatMessageString."""
    message = _optional_object(parent, key, where)
    if message is None:
        return None
    text = _optional_text(message, "text", f"{where}.{key}")
    return text.strip() if text and text.strip() else None


def _level(value: Any, where: str) -> str:
    if not isinstance(value, str) or value not in LEVELS:
        raise ImportFormatError(where, f"level {_show(value)} is not a SARIF level (error, warning, note or none)")
    return value


def _score(properties: dict[str, Any], where: str) -> float | None:
    """The ``security-severity`` score; None when absent or blank (some tools write ``""``)."""
    value = properties.get("security-severity")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        score = float(value)
    except (TypeError, ValueError):
        raise ImportFormatError(where, f"security-severity {_show(value)} is not a number from 0 to 10") from None
    if math.isnan(score) or not 0.0 <= score <= 10.0:
        raise ImportFormatError(where, f"security-severity {_show(value)} is not a number from 0 to 10")
    return score


def _tag_cves(properties: dict[str, Any], where: str) -> list[str]:
    tags = properties.get("tags")
    if tags is None:
        return []
    found = []
    for index, tag in enumerate(_array(tags, f"{where}.tags")):
        found += _CVE.findall(_text(tag, where, f"tags[{index}]"))
    return found


def _cves(*texts: str | None) -> list[str]:
    return [cve for text in texts if text for cve in _CVE.findall(text)]


def _rule(value: Any, where: str) -> _Rule:
    rule = _object(value, where)
    rule_id = _optional_text(rule, "id", where)
    name = _optional_text(rule, "name", where)
    short = _message_text(rule, "shortDescription", where)
    full = _message_text(rule, "fullDescription", where)
    help_text = _message_text(rule, "help", where)
    level = None
    config = _optional_object(rule, "defaultConfiguration", where)
    if config is not None and config.get("level") is not None:
        level = _level(config["level"], f"{where}.defaultConfiguration")
    properties = _optional_object(rule, "properties", where) or {}
    score = _score(properties, f"{where}.properties")
    cves = _tag_cves(properties, f"{where}.properties") + _cves(rule_id, name, short, full, help_text)
    messages = {}
    strings = _optional_object(rule, "messageStrings", where)
    for key, value in (strings or {}).items():
        here = f"{where}.messageStrings"
        template = _message_text({key: value}, key, here)
        if template is not None:
            messages[key] = template
    return _Rule(
        id=rule_id,
        title=short or (name.strip() if name and name.strip() else None),
        full_description=full,
        level=level,
        score=score,
        cves=tuple(cves),
        messages=messages,
    )


def _rules(component: dict[str, Any], where: str) -> list[_Rule]:
    rules = component.get("rules")
    if rules is None:
        return []
    return [_rule(rule, f"{where}.rules[{index}]") for index, rule in enumerate(_array(rules, f"{where}.rules"))]


def _run_date(run: dict[str, Any], where: str) -> date | None:
    """The day the scan ran, from the first invocation's start (or end) time."""
    invocations = run.get("invocations")
    if invocations is None:
        return None
    invocations = _array(invocations, f"{where}.invocations")
    if not invocations:
        return None
    invocation = _object(invocations[0], f"{where}.invocations[0]")
    for key in ("startTimeUtc", "endTimeUtc"):
        stamp = invocation.get(key)
        if isinstance(stamp, str):
            try:
                day = datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()
            except ValueError:
                continue
            if MIN_YEAR <= day.year <= MAX_YEAR:
                return day
    return None


class _Run:
    """A run's tool, rules and artifacts, with the lookups a result needs."""

    def __init__(self, run: dict[str, Any], where: str) -> None:
        self.where = where
        tool = _object(run.get("tool"), f"{where}.tool")
        driver = _object(tool.get("driver"), f"{where}.tool.driver")
        name = _text(driver.get("name"), f"{where}.tool.driver", "name").strip()
        if not name:
            raise ImportFormatError(f"{where}.tool.driver", "name is empty")
        self.tool = name
        self.driver_rules = _rules(driver, f"{where}.tool.driver")
        self.extension_rules: list[list[_Rule]] = []
        extensions = tool.get("extensions")
        if extensions is not None:
            for index, extension in enumerate(_array(extensions, f"{where}.tool.extensions")):
                component = _object(extension, f"{where}.tool.extensions[{index}]")
                self.extension_rules.append(_rules(component, f"{where}.tool.extensions[{index}]"))
        self.by_id: dict[str, _Rule] = {}
        for rule in [rule for rules in [*self.extension_rules, self.driver_rules] for rule in rules]:
            if rule.id:
                self.by_id[rule.id] = rule  # the driver's own rules win over an extension's
        self.artifact_uris = self._artifact_uris(run)
        self.detected_on = _run_date(run, where)

    def _artifact_uris(self, run: dict[str, Any]) -> list[str | None]:
        artifacts = run.get("artifacts")
        if artifacts is None:
            return []
        uris: list[str | None] = []
        for index, artifact in enumerate(_array(artifacts, f"{self.where}.artifacts")):
            where = f"{self.where}.artifacts[{index}]"
            location = _optional_object(_object(artifact, where), "location", where)
            uris.append(None if location is None else _optional_text(location, "uri", f"{where}.location"))
        return uris

    def rule_of(self, result: dict[str, Any], where: str) -> tuple[str | None, _Rule | None]:
        """The result's rule id and the rule it refers to (when the run describes it)."""
        rule_id = _optional_text(result, "ruleId", where)
        reference = _optional_object(result, "rule", where)
        component_rules = self.driver_rules
        index = result.get("ruleIndex")
        if reference is not None:
            rule_id = rule_id or _optional_text(reference, "id", f"{where}.rule")
            index = reference.get("index", index)
            component = _optional_object(reference, "toolComponent", f"{where}.rule")
            if component is not None and component.get("index") is not None:
                position = _index(component["index"], f"{where}.rule.toolComponent", "index")
                if position >= len(self.extension_rules):
                    raise ImportFormatError(
                        f"{where}.rule.toolComponent", f"index {position} names no tool extension of this run"
                    )
                component_rules = self.extension_rules[position]
        rule = None
        if index is not None and index != -1:
            position = _index(index, where, "ruleIndex")
            if position >= len(component_rules):
                raise ImportFormatError(where, f"ruleIndex {position} names no rule of this run")
            rule = component_rules[position]
        elif rule_id is not None:
            rule = self.by_id.get(rule_id)
            if rule is None and "/" in rule_id:  # a hierarchical id ("CA2000/1") falls back to its parent
                rule = self.by_id.get(rule_id.split("/", 1)[0])
        if rule_id is None and rule is not None:
            rule_id = rule.id
        return rule_id, rule

    def asset(self, result: dict[str, Any], where: str) -> tuple[str, list[str], str | None]:
        """The first artifact URI of the result's locations (the asset), every
        location as ``uri:line``, and the asset earlier versions took instead
        (:data:`NO_LOCATION`, when the first location names no file: they read
        the first location alone) or None."""
        locations = result.get("locations")
        if locations is None:
            return NO_LOCATION, [], None
        places: list[str] = []
        first: str | None = None
        earlier: str | None = None
        for index, value in enumerate(_array(locations, f"{where}.locations")):
            here = f"{where}.locations[{index}]"
            location = _object(value, here)
            physical = _optional_object(location, "physicalLocation", here)
            if physical is None:
                continue
            artifact = _optional_object(physical, "artifactLocation", f"{here}.physicalLocation")
            if artifact is None:
                continue
            uri = _optional_text(artifact, "uri", f"{here}.physicalLocation.artifactLocation")
            if uri is None and artifact.get("index") is not None:
                position = _index(artifact["index"], f"{here}.physicalLocation.artifactLocation", "index")
                if position >= len(self.artifact_uris):
                    raise ImportFormatError(
                        f"{here}.physicalLocation.artifactLocation", f"index {position} names no artifact of this run"
                    )
                uri = self.artifact_uris[position]
            if not uri or not uri.strip():
                continue
            uri = uri.strip()
            if first is None:  # the first location in a file (one before it may name only a logical place)
                first, earlier = uri, (NO_LOCATION if index else None)
            region = _optional_object(physical, "region", f"{here}.physicalLocation")
            line = region.get("startLine") if region is not None else None
            places.append(f"{uri}:{line}" if isinstance(line, int) and not isinstance(line, bool) else uri)
        return first or NO_LOCATION, places, earlier


def _index(value: Any, where: str, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ImportFormatError(where, f"{field} {_show(value)} is not an array index")
    return value


def _message(result: dict[str, Any], where: str, rule: _Rule | None) -> str | None:
    """The result's message text, from a rule's ``messageStrings`` when it gives only an id,
    with ``{0}``-style arguments filled in."""
    here = f"{where}.message"
    message = _object(result.get("message"), here)
    text = _optional_text(message, "text", here)
    if text is None and rule is not None and isinstance(message.get("id"), str):
        text = rule.messages.get(message["id"])
    if text is None:
        return None
    arguments = message.get("arguments")
    if arguments is not None:
        arguments = [
            _text(argument, here, f"arguments[{index}]")
            for index, argument in enumerate(_array(arguments, f"{here}.arguments"))
        ]

        def fill(match: re.Match[str]) -> str:
            position = int(match.group(1))
            return arguments[position] if position < len(arguments) else match.group(0)

        text = _PLACEHOLDER.sub(fill, text)
    return text.strip() or None


def _settled(result: dict[str, Any], where: str) -> bool:
    """Whether the tool says the result needs nothing: suppressed, with a
    suppression accepted (a ``nosemgrep`` comment, a dismissal; one without a
    status is taken as accepted, not under review or rejected), or absent
    from this run (``baselineState``: fixed since the baseline)."""
    if result.get("baselineState") == "absent":
        return True
    suppressions = result.get("suppressions")
    if suppressions is None:
        return False
    return any(_object(value, f"{where}.suppressions[{index}]").get("status", "accepted") == "accepted"
               for index, value in enumerate(_array(suppressions, f"{where}.suppressions")))


def _severity(result: dict[str, Any], rule: _Rule | None, where: str, result_score: float | None) -> Severity | None:
    if _settled(result, where):
        return None
    kind = result.get("kind")
    if kind is not None and (not isinstance(kind, str) or kind not in _KINDS):
        raise ImportFormatError(where, f"kind {_show(kind)} is not a SARIF result kind")
    level = _level(result["level"], where) if result.get("level") is not None else None
    if kind not in (None, "fail"):
        return None  # pass, open, review…: not a failure found
    if level is None:
        level = (rule.level if rule is not None else None) or _DEFAULT_LEVEL
    if level == "none":
        return None
    score = result_score if result_score is not None else (rule.score if rule is not None else None)
    if score:  # 0 is no band (Trivy's unknown severity): the level decides
        return security_severity(score)
    return LEVELS[level]


def _decode(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFormatError("file", f"is not UTF-8 text (byte {error.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFormatError(
            f"line {error.lineno}, column {error.colno}", f"not valid JSON: {error.msg}"
        ) from None
    except (ValueError, RecursionError) as error:
        raise ImportFormatError("file", f"not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ImportFormatError("file", f"the top level is {_kind(document)}, expected a SARIF log object")
    return document


def parse(data: bytes, *, source_name: str) -> list[Finding]:
    """Every result of every run of the SARIF log ``data``; :class:`ImportFormatError`
    naming the element (``runs[0].results[3]``) when anything is malformed.

    ``source_name`` is the file's name; the findings' ``where`` is relative to it.
    """
    document = _decode(data)
    version = document.get("version")
    if version != VERSION:
        shown = "missing" if version is None else _show(version)
        raise ImportFormatError("version", f"is {shown}; only SARIF {VERSION} is accepted")
    findings: list[Finding] = []
    for run_index, value in enumerate(_array(document.get("runs"), "runs")):
        where = f"runs[{run_index}]"
        run_object = _object(value, where)
        run = _Run(run_object, where)
        results = run_object.get("results")
        if results is None:
            continue
        for result_index, item in enumerate(_array(results, f"{where}.results")):
            findings.append(_finding(run, item, f"{where}.results[{result_index}]"))
    return findings


def _finding(run: _Run, value: Any, where: str) -> Finding:
    result = _object(value, where)
    rule_id, rule = run.rule_of(result, where)
    if rule_id is None or not rule_id.strip():
        raise ImportFormatError(where, "has no ruleId (nor a rule reference), so the weakness cannot be identified")
    properties = _optional_object(result, "properties", where) or {}
    result_score = _score(properties, f"{where}.properties")
    severity = _severity(result, rule, where, result_score)
    message = _message(result, where, rule)
    asset, places, earlier_asset = run.asset(result, where)
    stored = stored_asset(asset)
    title = (rule.title if rule is not None else None) or (message.splitlines()[0] if message else None) or rule_id
    parts = [message] if message else []
    if rule is not None and rule.full_description and rule.full_description != message:
        parts.append(rule.full_description)
    if places:
        parts.append("Locations: " + ", ".join(places))
    cves, cves_note = kept_cves([*(rule.cves if rule is not None else ()),
                                 *_tag_cves(properties, f"{where}.properties"), *_cves(message, rule_id)])
    return Finding(
        tool=run.tool,
        detector=run.tool,
        rule_id=rule_id.strip(),
        asset=stored,
        fingerprint_asset=None if stored == asset else asset,
        title=clip(" ".join(title.split()), MAX_TITLE),
        severity=severity,
        where=where,
        description=item_description(parts, cves_note),
        cves=cves,
        detected_on=run.detected_on,
        scanned_on=run.detected_on,
        earlier_shared_asset=earlier_asset,
    )
