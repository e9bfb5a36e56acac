"""Importing findings (scanner results, a FedRAMP workbook) into a workspace.

All or nothing: every finding is checked first, and any bad one names where
it came from and imports nothing (the caller's transaction rolls back). A
fingerprint (tool, rule or plugin id with its port, asset) recognises a weakness seen before:
a later scan updates ``last_seen_at`` of the open item instead of
duplicating it, and the same file again changes nothing. A closed item never reopens: the same weakness found open
again is a new item (a closed one in a re-imported workbook changes nothing),
unless its item closed as a false positive: the AO agreed it is none, and a
scanner that still reports it brings nothing new; nor does a scan from
before the item closed (by its date, or, undated, the same file imported before).
A workbook or CSV row whose POAM ID, title, detection date, assets and
source identifier are those of an item of the workspace is that item (its
own export, imported back) and changes nothing.
Imported dates are taken from the file (a workbook's items may carry approved
extensions), not from the deadline policy, except when the file has none.

:func:`check_findings` (the "check" before an import) sorts the findings
exactly as :func:`import_findings` does, with the same function, and writes
nothing, so the counts it shows are the ones the import then reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.poam import audit, fields
from bot.poam.actor import Actor, check_user_id
from bot.poam.errors import InvalidInput, NotFound
from bot.poam.imported_milestones import ChangeEntry, MilestoneHistory, PlannedMilestone, replay
from bot.poam.items import MAX_DESCRIPTION, MAX_DETECTOR, MAX_PLAN, MAX_RESOURCES, MAX_TITLE, item_description
from bot.poam.lifecycle import Status
from bot.poam.milestones import ChangeKind
from bot.poam.permissions import require_admin
from bot.poam.refs import labelled_number
from bot.poam.review import MAX_TEXT, Closure, Deviation, RequestKind, RequestStatus
from bot.poam.severity import Severity
from bot.poam.systems import find_system
from bot.poam.text import clean_text
from bot.store import counters
from bot.store.models import ImportedFile, Item, ItemControl, Milestone, MilestoneChange, ReviewRequest, table_of
from bot.store.rows import in_chunks

AuditEntry = tuple[str, int | None, dict[str, object]]
#: Rows per bulk statement.
_BATCH = 1000
#: The furthest ahead of UTC a day runs (Kiribati's Line Islands).
LATEST_OFFSET = timedelta(hours=14)


@dataclass(frozen=True)
class RecordedDeviation:
    """A deviation a POA&M file records as approved (its Yes): restored as the
    decision the file records, by nobody the bot knows (the file does not say
    who decided, nor when)."""

    deviation: Deviation
    rationale: str | None = None
    #: A risk adjustment's rating.
    adjusted: Severity | None = None
    #: An operational requirement's date to be reviewed again by.
    until: date | None = None


class ImportedWeakness(Protocol):
    """What an importer hands over (``bot.interchange.findings.Finding``), read-only."""

    @property
    def tool(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def asset(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def severity(self) -> Severity | None: ...
    @property
    def where(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def cves(self) -> tuple[str, ...]: ...
    @property
    def controls(self) -> tuple[str, ...]: ...
    @property
    def detected_on(self) -> date | None: ...
    @property
    def due_on(self) -> date | None: ...
    @property
    def scheduled_completion_on(self) -> date | None: ...
    @property
    def owner_id(self) -> str | None: ...
    @property
    def unknown_contact(self) -> str | None: ...
    @property
    def remediation_plan(self) -> str | None: ...
    @property
    def resources_required(self) -> str | None: ...
    @property
    def milestones(self) -> tuple[PlannedMilestone, ...]: ...
    @property
    def milestone_changes(self) -> tuple[ChangeEntry, ...]: ...
    @property
    def vendor_product(self) -> str | None: ...
    @property
    def vendor_dependency(self) -> bool | None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def detector(self) -> str | None: ...
    @property
    def poam_id(self) -> str | None: ...
    @property
    def rule_is_poam_id(self) -> bool: ...
    @property
    def scanned_on(self) -> date | None: ...
    @property
    def closed_on(self) -> date | None: ...
    @property
    def listed_assets(self) -> tuple[str, ...]: ...
    @property
    def port(self) -> str | None: ...
    @property
    def vendor_checkin_on(self) -> date | None: ...
    @property
    def deviations(self) -> tuple[RecordedDeviation, ...]: ...
    @property
    def unrestored_deviations(self) -> int: ...
    @property
    def system_name(self) -> str | None: ...

    @property
    def asset_identifier(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def fingerprints(self) -> tuple[str, ...]: ...
    @property
    def own_fingerprints(self) -> tuple[str, ...]: ...


@dataclass
class ImportSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    #: Of the new ones, found again after their item was closed.
    recurring: int = 0
    #: Of the new ones, with a Point of Contact that names no Slack user: no owner.
    unassigned: int = 0
    numbers: list[int] = field(default_factory=list)
    #: The owners of the new items, each once, in the file's order.
    owners: list[str] = field(default_factory=list)
    #: Deviations the new items' rows say are pending the AO, or give too little to restore.
    unrestored_deviations: int = 0

    def __str__(self) -> str:
        new = f"{self.new} new" + (f" ({self.recurring} found again after being closed)" if self.recurring else "")
        text = f"{new}, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped"
        if self.unassigned:
            text += f"; {self.unassigned} new without an owner, as their Point of Contact names no Slack user"
        if self.unrestored_deviations:
            text += (f"; {self.unrestored_deviations} deviation(s) not restored (pending, without their rating or "
                     "date to review again by, or an operational requirement at High): their owners ask with "
                     "`/poam deviate`")
        return text


def _checked(finding: ImportedWeakness, latest: date) -> dict[str, object]:
    """The finding's fields, cleaned; InvalidInput names the finding's place in
    its file. ``latest`` is the latest detection date that is not in the future."""
    rule, asset = _where_found(finding)
    try:
        values: dict[str, object] = {
            "title": clean_text(finding.title, field="The title", limit=MAX_TITLE),
            "description": clean_text(finding.description, field="The description", limit=MAX_DESCRIPTION, required=False),
            # A blank Weakness Source Identifier stays blank (the POAM ID in its place names the weakness).
            "source_identifier": None if finding.rule_is_poam_id and rule == finding.rule_id
            else clean_text(rule, field="The rule id", limit=200, required=False),
            # Cut, not refused: a tool's name is only shown (the fingerprint keeps it whole).
            "detector": clean_text(
                finding.detector[:MAX_DETECTOR] if finding.detector else None,
                field="The tool's name", limit=MAX_DETECTOR, required=False,
            ),
            # A workbook's Asset Identifier cell lists several, one per line or comma-separated;
            # a scanner names one (a path may hold a comma).
            "assets": fields.assets(fields.split_assets(asset) if finding.listed_assets else [asset])
            if finding.asset else [],
            "cves": fields.cves(finding.cves),
            "controls": fields.controls(finding.controls),
            "remediation_plan": clean_text(finding.remediation_plan, field="The plan", limit=MAX_PLAN, required=False),
            "resources_required": clean_text(
                finding.resources_required, field="The resources", limit=MAX_RESOURCES, required=False
            ),
            "vendor_product": clean_text(finding.vendor_product, field="The vendor product", limit=200, required=False),
            "deviations": [replace(recorded, rationale=clean_text(recorded.rationale, field="The deviation rationale",
                                                                  limit=MAX_TEXT, required=False))
                           for recorded in finding.deviations],
            "milestones": replay(finding.milestones, finding.milestone_changes, latest=latest),
        }
        if finding.owner_id is not None:
            check_user_id(finding.owner_id, what="user (point of contact)")
        if finding.detected_on is not None and finding.detected_on > latest:
            raise InvalidInput(f"the detection date {finding.detected_on} is in the future")
        if finding.vendor_checkin_on is not None and finding.vendor_checkin_on > latest:
            raise InvalidInput(f"the last vendor check-in date {finding.vendor_checkin_on} is in the future")
        for what, when in (("scheduled completion date", finding.scheduled_completion_on),
                           ("current due date", finding.due_on)):
            if when is not None and finding.detected_on is not None and when < finding.detected_on:
                raise InvalidInput(f"the {what} {when} is before the detection date {finding.detected_on}")
    except InvalidInput as error:
        raise InvalidInput(f"{finding.where}: {error.message}") from None
    return values


def _where_found(finding: ImportedWeakness) -> tuple[str, str]:
    """The rule id and the asset, with the port beside the asset
    (``10.0.0.5 (443/TCP)``), or, where that would be too long to store, after
    the rule id (``19506/443/tcp``, as the fingerprint joins them): either way
    the workbook carries it, and a restored item knows the next scan."""
    identifier = finding.asset_identifier
    if finding.port and len(identifier) > fields.MAX_ASSET_LENGTH:
        return f"{finding.rule_id}/{finding.port}", finding.asset
    return finding.rule_id, identifier


@dataclass
class _Classified:
    """What importing would do: the counts, the findings to add and the open items seen again."""

    summary: ImportSummary
    #: The systems the findings go into (the one named for the import, or those its rows name).
    system_ids: set[int]
    fresh: list[tuple[ImportedWeakness, dict[str, object]]]
    #: Open items found again: their ids, with the tool's name the file gives.
    seen_again: list[tuple[int, str | None]]
    #: Open findings found again after a closed one in the same file: their
    #: place in ``fresh`` → the closed one's (linked once both have numbers).
    recurs_in_file: dict[int, int]
    #: The systems the file was imported into before.
    imported_before: set[int]


def file_digest(data: bytes) -> str:
    """What :class:`ImportedFile` knows a file by."""
    return hashlib.sha256(data).hexdigest()


def _classify(
    session: Session, actor: Actor, findings: Sequence[ImportedWeakness], system_name: str | None,
    digest: str | None,
) -> _Classified:
    """Check every finding and sort it into new, updated, unchanged or skipped, writing nothing."""
    require_admin(actor, "import findings")
    now = actor.now()
    # The latest day anywhere (UTC+14): scanners give UTC timestamps, read as
    # UTC dates (west of UTC, a scan run this evening is dated tomorrow), and
    # an export writes the day of whoever acted (a milestone completed in
    # Auckland, an item logged there, are tomorrow in New York).
    latest = max(actor.today(), (now.astimezone(UTC) + LATEST_OFFSET).date())
    checked = sorted(((finding, _checked(finding, latest)) for finding in findings if finding.severity is not None),
                     key=lambda pair: _file_order(actor, pair[0]))
    summary = ImportSummary(skipped=len(findings) - len(checked))
    system_of = _Systems(session, actor, system_name)
    for finding, values in checked:
        values["system_id"] = system_of(finding)
        values["system"] = system_of.names[cast("int", values["system_id"])]
    system_ids = {cast("int", values["system_id"]) for _, values in checked} or {system_of.named.id}
    # Imported into a system before: the same scan, however it is dated (it may not be).
    imported_before = {system_id for system_id in system_ids if digest is not None
                       and session.get(ImportedFile, (actor.team_id, system_id, digest)) is not None}
    # Weaknesses by (system, fingerprint): a weakness of another system is its POA&M's, not this one's.
    open_by_print: dict[tuple[int, str | None], tuple[int, datetime | None]] = {}
    # The latest closed item of each weakness: its number, closure and the day it closed.
    closed_by_print: dict[tuple[int, str | None], _Closed] = {}
    prints = sorted({fingerprint for finding, _ in checked for fingerprint in finding.fingerprints})
    for chunk in in_chunks(prints):
        found = sa_select(  # SQLAlchemy's: sqlmodel's select takes at most four columns
            col(Item.id), col(Item.system_id), col(Item.number), col(Item.fingerprint), col(Item.status),
            col(Item.last_seen_at), col(Item.closure), col(Item.closed_at),
        ).where(
            col(Item.team_id) == actor.team_id, col(Item.system_id).in_(system_ids), col(Item.fingerprint).in_(chunk),
        )
        for item_id, system_id, number, fingerprint, status, last_seen_at, closure, closed_at in session.execute(found):
            if status == Status.CLOSED:
                closed = _Closed(number, closure, closed_at.astimezone(UTC).date() if closed_at else None)
                closed_by_print[system_id, fingerprint] = max(
                    closed, closed_by_print.get((system_id, fingerprint), _NEVER_CLOSED),
                    key=lambda latest: latest.number or 0)
            else:
                assert item_id is not None  # a stored item's
                open_by_print[system_id, fingerprint] = (item_id, last_seen_at)
    own = _own_items(session, actor, [finding for finding, _ in checked])
    fresh: list[tuple[ImportedWeakness, dict[str, object]]] = []
    seen_again: list[tuple[int, str | None]] = []
    repeats = _repeats(checked)
    open_items = _open_items(checked, repeats, open_by_print)
    # The place in ``fresh`` of each new finding (by its place in ``checked``),
    # where the rows repeating it add their CVEs (a scanner's CSV repeats a weakness once per CVE).
    fresh_at: dict[int, int] = {}
    listed: dict[int, list[str]] = {}  # every CVE of the rows of a new weakness, by its place in ``fresh``
    for index, ((finding, values), first, existing) in enumerate(zip(checked, repeats, open_items, strict=True)):
        system_id = cast("int", values["system_id"])
        if first is not None:
            if first in fresh_at:
                at = fresh_at[first]
                listed.setdefault(at, list(cast("list[str]", fresh[at][1]["cves"]))).extend(
                    cast("list[str]", values["cves"]))
            summary.unchanged += 1
            continue
        known = [(system_id, key) for key in finding.fingerprints]  # an item imported by an earlier version may carry another
        closed = max((closed_by_print[key] for key in known if key in closed_by_print),
                     key=lambda latest: latest.number or 0, default=_NEVER_CLOSED)
        if _own_key(actor, finding, values) in own:
            summary.unchanged += 1  # the workspace's own export, imported back: its items are here
        elif existing is None and closed.number is not None and (
            finding.closed or closed.closure == Closure.FALSE_POSITIVE or system_id in imported_before
            or closed.scanned_before_closing(finding.scanned_on)
        ):  # a closed item of a workbook imported before, a false positive reported again, or a scan
            summary.unchanged += 1  # from before the item closed, uploaded again (nothing came back)
        elif existing is None:  # new, or found again after its item was closed: a new item, linked
            fresh_at[index] = len(fresh)
            fresh.append((finding, {**values, "recurs_number": closed.number}))
        elif existing[1] == now or system_id in imported_before:  # seen in this import, or this very file again
            summary.unchanged += 1
        else:
            seen_again.append((existing[0], cast("str | None", values["detector"])))
            summary.updated += 1
    for at, cves in listed.items():
        _keep_cves(fresh[at][1], cves)
    summary.new = len(fresh)
    closed_in_file = {(values["system_id"], key): index for index, (finding, values) in enumerate(fresh)
                      if finding.closed for key in finding.fingerprints}
    recurs_in_file: dict[int, int] = {}
    for index, (finding, values) in enumerate(fresh):
        if finding.closed or values["recurs_number"] is not None:
            continue
        closed_index = next((closed_in_file[values["system_id"], key] for key in finding.fingerprints
                             if (values["system_id"], key) in closed_in_file), None)
        if closed_index is not None:
            recurs_in_file[index] = closed_index
    summary.recurring = sum(1 for _, values in fresh if values["recurs_number"] is not None) + len(recurs_in_file)
    summary.unassigned = sum(1 for finding, _ in fresh if finding.unknown_contact and not finding.closed)
    summary.unrestored_deviations = sum(finding.unrestored_deviations for finding, _ in fresh)
    return _Classified(summary, system_ids, fresh, seen_again, recurs_in_file, imported_before)  # type: ignore[arg-type]


def _repeats(checked: Sequence[tuple[ImportedWeakness, dict[str, object]]]) -> list[int | None]:
    """For each finding, the earlier one of the file it repeats (its place in
    ``checked``), or None: rows sharing one of their own fingerprints in one
    system are one weakness, but for a closed one and the open one its
    weakness came back as (a POA&M lists both; the open one is linked)."""
    firsts: dict[tuple[object, str, bool], int] = {}
    repeats: list[int | None] = []
    for index, (finding, values) in enumerate(checked):
        alike = [(values["system_id"], key, finding.closed) for key in finding.own_fingerprints]
        first = next((firsts[key] for key in alike if key in firsts), None)
        if first is None:
            firsts.update(dict.fromkeys(alike, index))
        repeats.append(first)
    return repeats


def _open_items(
    checked: Sequence[tuple[ImportedWeakness, dict[str, object]]],
    repeats: Sequence[int | None],
    open_by_print: Mapping[tuple[int, str | None], tuple[int, datetime | None]],
) -> list[tuple[int, datetime | None] | None]:
    """The open item each finding (not a repeat) is found again as, each item
    one finding's: first every finding's own (:attr:`own_fingerprints`), then,
    for those left, one an earlier version made of several weaknesses
    (:attr:`fingerprints`). In the file's order alone, a finding took such an
    item when it was a later finding's own, and that one was duplicated at
    every import."""
    found: list[tuple[int, datetime | None] | None] = [None] * len(checked)
    taken: set[int] = set()
    for own_only in (True, False):
        for index, (finding, values) in enumerate(checked):
            if repeats[index] is not None or found[index] is not None:
                continue
            keys = [(cast("int", values["system_id"]), key)
                    for key in (finding.own_fingerprints if own_only else finding.fingerprints)]
            item = next((open_by_print[key] for key in keys
                         if key in open_by_print and open_by_print[key][0] not in taken), None)
            if item is not None:
                found[index] = item
                taken.add(item[0])
    return found


class _Systems:
    """The system each finding goes into: the one named for the import (every
    finding, whatever its row says: a way to restore a CSV of several
    systems into one), else the one its row names (our CSV's System column),
    else the default."""

    def __init__(self, session: Session, actor: Actor, name: str | None) -> None:
        self._session, self._actor, self._name = session, actor, name
        self.named = find_system(session, actor, name=name)
        self._ids = {self.named.name_key: cast("int", self.named.id)}
        #: The systems' names by id (as ``item.logged`` names its system, ``item.imported`` does).
        self.names = {cast("int", self.named.id): self.named.name}

    def __call__(self, finding: ImportedWeakness) -> int:
        if self._name is not None or finding.system_name is None:
            return cast("int", self.named.id)
        key = finding.system_name.strip().lower()
        if key not in self._ids:
            try:
                system = find_system(self._session, self._actor, name=finding.system_name)
            except NotFound:
                raise NotFound(f"{finding.where}: there is no system called `{finding.system_name}` in this "
                               f"workspace: add it (`/poam system add {finding.system_name}`), or import every "
                               "row into one system (`--system` from a shell).") from None
            self._ids[key] = cast("int", system.id)
            self.names[self._ids[key]] = system.name
        return self._ids[key]


@dataclass(frozen=True)
class _Closed:
    """The latest closed item of a weakness: its number, closure and the (UTC) day it closed."""

    number: int | None
    closure: str | None
    closed_on: date | None

    def scanned_before_closing(self, scanned_on: date | None) -> bool:
        """Whether a scan run on ``scanned_on`` (a UTC day, as scanners date
        them) ran before this item closed: the scan it closed after, not the
        weakness coming back."""
        return scanned_on is not None and self.closed_on is not None and scanned_on < self.closed_on


_NEVER_CLOSED = _Closed(None, None, None)


def _keep_cves(values: dict[str, object], listed: list[str]) -> None:
    """A new finding's CVEs with those of the rows repeating it (a scanner's
    CSV writes a row per CVE: a rollup plugin's hundreds), as many as an item
    keeps, its description saying how many were left out, unless its own row
    was cut already (its parser said so)."""
    own = cast("list[str]", values["cves"])
    unique = list(dict.fromkeys(listed))
    values["cves"] = unique[: fields.MAX_CVES]
    if len(unique) > fields.MAX_CVES and len(own) < fields.MAX_CVES:
        text = cast("str | None", values["description"])
        values["description"] = item_description([text] if text else [], fields.cves_left_out(len(unique)))


def _own_number(actor: Actor, finding: ImportedWeakness) -> int | None:
    """The item number a row's POAM ID gives in this workspace's form (``POAM-12``), if it has one."""
    return labelled_number(finding.poam_id or "", prefix=actor.rules.id_prefix)


def _file_order(actor: Actor, finding: ImportedWeakness) -> tuple[bool, int]:
    """Where a row is taken: rows with ids in the workspace's form by their
    numbers (a workbook lists its open items, then its closed ones: restored
    into an empty workspace, each keeps its id), then the rest as the file has them."""
    number = _own_number(actor, finding)
    return number is None, number or 0


#: What tells an item of the workspace from a row of its own export: number,
#: title, detection date, assets (lower-cased, in order) and source identifier.
_OwnKey = tuple[int | None, object, date | None, tuple[str, ...], object]


def _own_key(actor: Actor, finding: ImportedWeakness, values: dict[str, object]) -> _OwnKey:
    """The row's key, its assets as the cell lists them (the export writes an item's as stored)."""
    assets = tuple(asset.lower() for asset in finding.listed_assets)
    return (_own_number(actor, finding), values["title"], finding.detected_on, assets, values["source_identifier"])


def _own_items(session: Session, actor: Actor, findings: Sequence[ImportedWeakness]) -> set[_OwnKey]:
    """The :func:`_own_key` of the workspace's items that rows name by their
    POAM ID: a row with the same key is that item, exported from here (an item
    logged in Slack has no fingerprint to know it by). The export leaves
    Weakness Source Identifier blank where an item has none, and the import
    stores none."""
    numbers = sorted({number for finding in findings if (number := _own_number(actor, finding)) is not None})
    own: set[_OwnKey] = set()
    for chunk in in_chunks(numbers):
        rows = session.execute(
            sa_select(col(Item.number), col(Item.title), col(Item.detected_on), col(Item.assets),
                      col(Item.source_identifier))
            .where(col(Item.team_id) == actor.team_id, col(Item.number).in_(chunk))
        )
        own.update(
            (number, title, detected_on, tuple(asset.lower() for asset in assets), source_identifier)
            for number, title, detected_on, assets, source_identifier in rows
        )
    return own


def check_findings(
    session: Session,
    actor: Actor,
    *,
    findings: Sequence[ImportedWeakness],
    system_name: str | None = None,
    digest: str | None = None,
) -> ImportSummary:
    """What :func:`import_findings` would report (without item numbers), writing nothing
    (only a workspace's very first use creates it, as every command does)."""
    return _classify(session, actor, findings, system_name, digest).summary


def import_findings(
    session: Session,
    actor: Actor,
    *,
    findings: Sequence[ImportedWeakness],
    source_name: str,
    system_name: str | None = None,
    digest: str | None = None,
) -> ImportSummary:
    """Import ``findings`` (admins only); see the module docstring for the rules.
    ``digest``: the file's SHA-256 (:func:`file_digest`), which tells the same
    scan imported again when its findings carry no date.

    New rows go in with bulk INSERTs in batches, and re-seen items get one
    UPDATE per batch: thousands of ORM objects took most of a large import's
    time and memory.
    """
    require_admin(actor, "import findings")
    counters.serialize_imports(session, team_id=actor.team_id)
    plan = _classify(session, actor, findings, system_name, digest)
    if digest is not None:
        session.add_all(ImportedFile(team_id=actor.team_id, system_id=system_id, digest=digest, imported_at=actor.now())
                        for system_id in sorted(plan.system_ids - plan.imported_before))
    summary = plan.summary
    items = table_of(Item)
    for chunk in in_chunks([item_id for item_id, _ in plan.seen_again]):
        session.exec(
            update(items).where(items.c.team_id == actor.team_id, items.c.id.in_(chunk)).values(last_seen_at=actor.now())
        )
    named = _name_tools(session, actor, plan.seen_again)
    numbers = counters.reserve_item_numbers(session, team_id=actor.team_id, count=summary.new) if summary.new else range(0)
    fresh = list(plan.fresh)
    for index, closed_index in plan.recurs_in_file.items():
        finding, values = fresh[index]
        fresh[index] = (finding, {**values, "recurs_number": numbers[closed_index]})
    imported: list[AuditEntry] = []
    for batch in in_chunks(list(zip(numbers, fresh, strict=True)), _BATCH):
        imported += _insert_items(session, actor, batch, source_name=source_name)
    summary.numbers = list(numbers)
    summary.owners = list(dict.fromkeys(finding.owner_id for finding, _ in fresh if finding.owner_id))
    audit.record_many(
        session,
        actor,
        [
            *imported,
            ("import.completed", None, {"source": source_name, "new": summary.new, "recurring": summary.recurring,
                                        "unassigned": summary.unassigned, "updated": summary.updated,
                                        "unchanged": summary.unchanged, "skipped": summary.skipped,
                                        **({"tools_named": named} if named else {})}),
        ],
    )
    return summary


def _name_tools(
    session: Session, actor: Actor, seen_again: Sequence[tuple[int, str | None]]
) -> dict[str, list[int]]:
    """Items imported before items kept the scanner's name learn it from the
    next scan that finds them (one UPDATE per tool and batch; nothing else
    changes); returns the numbers of those that did by tool, for the import's
    audit event."""
    items = table_of(Item)
    by_tool: dict[str, list[int]] = {}
    for item_id, tool in seen_again:
        if tool is not None:
            by_tool.setdefault(tool, []).append(item_id)
    named: dict[str, list[int]] = {}
    for tool, ids in by_tool.items():
        for chunk in in_chunks(ids):
            numbers = session.execute(update(items).where(
                items.c.team_id == actor.team_id, items.c.id.in_(chunk), items.c.detector.is_(None)
            ).values(detector=tool).returning(items.c.number)).scalars()
            named.setdefault(tool, []).extend(numbers)
    return {tool: sorted(numbers) for tool, numbers in named.items() if numbers}


def _closed_at(closed_on: date | None, *, detected: date, now: datetime, zone: ZoneInfo) -> datetime:
    """When a closed row closed: its Status Date (:func:`_noon`), not before
    its detection (a date a day off across time zones is not worth refusing a
    file for); the import's time when the file gives none."""
    if closed_on is None:
        return now
    return _noon(max(closed_on, detected), now=now, zone=zone)


def _noon(day: date, *, now: datetime, zone: ZoneInfo) -> datetime:
    """A day a file gives, as a moment: noon in the exports' time zone
    (``Rules.timezone``: the export writes that day back), not after now
    (digests count what closed in a week, and what was open at a moment)."""
    return min(datetime.combine(day, time(12), tzinfo=zone), now)


def _insert_items(
    session: Session,
    actor: Actor,
    batch: Sequence[tuple[int, tuple[ImportedWeakness, dict[str, object]]]],
    *,
    source_name: str,
) -> list[AuditEntry]:
    """Insert a batch of numbered new findings with their controls and milestones;
    returns their ``item.imported`` audit entries, in number order."""
    items = table_of(Item)
    rows = [_item_row(actor, number, finding, values) for number, (finding, values) in batch]
    # A plain executemany, then the ids read back by number (a batch's numbers are
    # consecutive and reserved for this import): INSERT … RETURNING of many rows
    # becomes one statement with a placeholder per value, which psycopg parses in
    # Python each time (most of a 10k import's time on PostgreSQL).
    session.exec(insert(items), params=rows)
    ids: dict[object, int] = dict(session.exec(select(items.c.number, items.c.id).where(
        items.c.team_id == actor.team_id, items.c.number.between(rows[0]["number"], rows[-1]["number"])
    )).all())
    controls: list[dict[str, object]] = []
    milestones: list[dict[str, object]] = []
    decisions: list[dict[str, object]] = []
    entries: list[AuditEntry] = []
    histories: dict[int, MilestoneHistory] = {}
    at = cast("datetime", rows[0]["created_at"])  # the batch's moment (an item's created_at)
    for row, (_, (_, values)) in zip(rows, batch, strict=True):
        item_id = ids[row["number"]]
        controls += [
            {"item_id": item_id, "control": control, "team_id": actor.team_id, "position": position}
            for position, control in enumerate(cast("list[str]", values["controls"]))
        ]
        recorded = cast("list[RecordedDeviation]", values["deviations"])
        decisions += [_decision_row(actor, item_id, deviation, at=at, source_name=source_name) for deviation in recorded]
        history = histories[item_id] = cast("MilestoneHistory", values["milestones"])
        added = _added(history)
        milestones += [
            {"team_id": actor.team_id, "item_id": item_id, "number": m.number, "description": m.description,
             "planned_due_on": m.planned_due_on, "due_on": m.due_on, "created_by": actor.user_id,
             "created_at": row["created_at"],
             # Whoever completed it is not in the file: nobody is barred from verifying for it.
             "completed_at": None if m.completed_on is None else _noon(m.completed_on, now=at, zone=actor.rules.timezone),
             "completed_by": None}
            for m in history.milestones
        ]
        # As item.logged says what an item was logged as: an assessor reads it from the trail alone,
        # with what a file brings that a logged item gets from later events (the plan, its milestones).
        details = {"number": row["number"], "title": row["title"], "fingerprint": row["fingerprint"],
                   "source": source_name, "system": values["system"], "status": row["status"],
                   "severity": row["severity"], "detected_on": row["detected_on"], "due_on": row["due_on"],
                   "owner": row["owner_id"]}
        brought = {"controls": values["controls"], "assets": values["assets"], "cves": values["cves"],
                   "plan": values["remediation_plan"], "resources": values["resources_required"],
                   "vendor_product": values["vendor_product"], "vendor_dependency": row["vendor_dependency"],
                   "milestones": [{"milestone": m.number, "due_on": m.planned_due_on, "description": m.description}
                                  for m in history.milestones if m.number not in added],
                   "milestone_changes": [{"milestone": c.number, "kind": c.kind.value, "old_due_on": c.old_due_on,
                                          "new_due_on": c.new_due_on, "reason": c.reason} for c in history.changes],
                   "deviations": [{key: value for key, value in (
                       ("deviation", d.deviation.value), ("adjusted", d.adjusted), ("until", d.until),
                       ("rationale", d.rationale)) if value is not None} for d in recorded],
                   "last_vendor_checkin_on": row["last_vendor_checkin_on"], "closure": row["closure"]}
        details |= {key: value for key, value in brought.items() if value}
        if row["scheduled_completion_on"] != row["due_on"]:
            details["scheduled_completion_on"] = row["scheduled_completion_on"]
        if row["recurs_number"] is not None:
            details["recurs"] = row["recurs_number"]
        if row["detector"] is not None:
            details["detector"] = row["detector"]
        if row["closed_at"] is not None:  # the file's closing day, not this event's time
            details["closed_at"] = row["closed_at"]
        entries.append(("item.imported", item_id, details))
    for table, child_rows in ((table_of(ItemControl), controls), (table_of(Milestone), milestones),
                              (table_of(ReviewRequest), decisions)):
        if child_rows:
            session.exec(insert(table), params=child_rows)
    _insert_changes(session, actor, histories, at=at)
    return entries


def _decision_row(
    actor: Actor, item_id: int, recorded: RecordedDeviation, *, at: datetime, source_name: str
) -> dict[str, object]:
    """A deviation a file records as approved, as the AO's decision: asked by
    the importer (the request's only required person), decided by nobody
    named (the file does not say who: nobody is taken for its AO)."""
    return {"team_id": actor.team_id, "item_id": item_id, "kind": RequestKind.DEVIATION,
            "deviation": recorded.deviation, "status": RequestStatus.APPROVED, "text": recorded.rationale,
            "adjusted_severity": recorded.adjusted, "until_on": recorded.until, "new_due_on": None,
            "requested_by": actor.user_id, "requested_at": at, "decided_by": None, "decided_at": at,
            "decision_note": f"As recorded in {source_name}"}


def _added(history: MilestoneHistory) -> set[int]:
    """The numbers of the milestones a file's Milestone Changes added ("New")."""
    return {change.number for change in history.changes if change.kind is ChangeKind.NEW}


def _insert_changes(
    session: Session, actor: Actor, histories: Mapping[int, MilestoneHistory], *, at: datetime
) -> None:
    """The milestone changes of a batch of new items (by item id), numbered in
    the file's order, recorded by the importer at ``at``: who made them and
    when is not in the file (an Update's and a New's day is the milestone's
    new date, the export's ``when``)."""
    changed = {item_id: history for item_id, history in histories.items() if history.changes}
    if not changed:
        return
    table = table_of(Milestone)
    ids = {(item_id, number): milestone_id for item_id, number, milestone_id in session.execute(
        sa_select(table.c.item_id, table.c.number, table.c.id)
        .where(table.c.team_id == actor.team_id, table.c.item_id.in_(list(changed)))
    )}
    session.exec(insert(table_of(MilestoneChange)), params=[
        {"team_id": actor.team_id, "item_id": item_id, "milestone_id": ids[(item_id, change.number)], "seq": seq,
         "kind": change.kind.value, "old_due_on": change.old_due_on, "new_due_on": change.new_due_on,
         "reason": change.reason, "changed_by": actor.user_id, "changed_at": at}
        for item_id, history in changed.items() for seq, change in enumerate(history.changes, start=1)
    ])


def _item_row(
    actor: Actor, number: int, finding: ImportedWeakness, values: dict[str, object]
) -> dict[str, object]:
    """The ``items`` row of a new finding (every row has the same keys, as one INSERT of many needs)."""
    severity = finding.severity
    assert severity is not None
    # A row without a detection date was found no later than today, nor than a date it was due or closed.
    detected = finding.detected_on or min(
        day for day in (actor.today(), finding.scheduled_completion_on, finding.due_on, finding.closed_on)
        if day is not None
    )
    decided = {recorded.deviation: recorded for recorded in cast("list[RecordedDeviation]", values["deviations"])}
    adjusted, accepted = decided.get(Deviation.RISK_ADJUSTMENT), decided.get(Deviation.OPERATIONAL_REQUIREMENT)
    scheduled = finding.scheduled_completion_on or finding.due_on or actor.rules.deadlines.due_date(
        severity=severity, detected_on=detected
    )
    # Given no date, an adjusted rating's (the file's own dates stand as it wrote them).
    due = finding.due_on or finding.scheduled_completion_on or actor.rules.deadlines.due_date(
        severity=adjusted.adjusted if adjusted is not None and adjusted.adjusted else severity, detected_on=detected
    )
    false_positive = Deviation.FALSE_POSITIVE in decided  # approved: it closes (DOMAIN.md), on either tab
    closed = finding.closed or false_positive
    status = (Status.CLOSED if closed else Status.RISK_ACCEPTED if accepted is not None
              else Status.IN_PROGRESS if finding.owner_id else Status.OPEN)
    now = actor.now()
    return {
        "team_id": actor.team_id,
        "number": number,
        "system_id": values["system_id"],
        "title": values["title"],
        "description": values["description"],
        "source": fields.Source.from_label(finding.tool),
        "source_identifier": values["source_identifier"],
        "detector": values["detector"],
        "assets": values["assets"],
        "cves": values["cves"],
        "severity": severity,
        "adjusted_severity": adjusted.adjusted if adjusted is not None else None,
        "status": status,
        "risk_accepted_until": accepted.until if status == Status.RISK_ACCEPTED and accepted is not None else None,
        "owner_id": finding.owner_id,
        "detected_on": detected,
        "scheduled_completion_on": scheduled,
        "due_on": due,
        "remediation_plan": values["remediation_plan"],
        "resources_required": values["resources_required"],
        "vendor_dependency": (bool(values["vendor_product"]) if finding.vendor_dependency is None
                              else finding.vendor_dependency),
        "vendor_product": values["vendor_product"],
        "last_vendor_checkin_on": finding.vendor_checkin_on,
        "fingerprint": finding.fingerprint,
        "recurs_number": values["recurs_number"],
        "last_seen_at": now,
        "closure": (Closure.FALSE_POSITIVE if false_positive else Closure.IMPORTED) if closed else None,
        "closed_at": _closed_at(finding.closed_on, detected=detected, now=now, zone=actor.rules.timezone)
        if closed else None,
        "created_by": actor.user_id,
        "created_at": now,
        "updated_at": now,
    }
