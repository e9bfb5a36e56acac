"""One entry point for every export format, used by the CLI and by ``/poam export``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import IO

from sqlmodel import Session, col, select

from bot.interchange.csv_export import write_csv
from bot.interchange.fedramp import Names
from bot.interchange.json_export import write_json
from bot.interchange.oscal_export import write_oscal
from bot.interchange.xlsx_export import write_workbook
from bot.poam.actor import Rules
from bot.poam.errors import InvalidInput, NotFound
from bot.poam.item_details import iter_item_details
from bot.poam.systems import system_named
from bot.store.models import InfoSystem, Person, Workspace
from bot.store.rows import Columns


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"
    OSCAL = "oscal"

    @property
    def per_system(self) -> bool:
        """The workbook and the OSCAL POA&M describe one system of one workspace."""
        return self in (ExportFormat.XLSX, ExportFormat.OSCAL)

    @property
    def per_workspace(self) -> bool:
        """Every format but JSON, whose items carry their workspace, holds one workspace's."""
        return self is not ExportFormat.JSON

    @property
    def suffix(self) -> str:
        return "oscal.json" if self is ExportFormat.OSCAL else self.value


@dataclass(frozen=True)
class Exported:
    count: int
    filename: str


def only_workspace(session: Session) -> str | None:
    """The database's workspace when it holds exactly one (the CLI's default)."""
    teams = session.exec(select(Workspace.team_id).limit(2)).all()
    return teams[0] if len(teams) == 1 else None


def _system(session: Session, team_id: str, name: str | None) -> Columns:
    system = system_named(session, team_id=team_id, name=name or None)
    if system is None:
        raise NotFound(f"There is no system called `{name}` in workspace {team_id}." if name else f"No workspace {team_id} here.")
    return system


def export(
    session: Session,
    out: IO[bytes],
    *,
    fmt: ExportFormat,
    rules: Rules,
    now: datetime,
    team_id: str | None,
    system_name: str | None,
    csp: str,
) -> Exported:
    """Write the POA&M in ``fmt`` to ``out``.

    JSON covers every workspace (or ``team_id``), and CSV one workspace, each
    every system (or ``system_name``); the workbook and OSCAL cover one system
    of one workspace, the default one unless ``system_name`` names another.
    """
    stamp = f"{rules.day(now):%Y%m%d}"
    if fmt.per_workspace and team_id is None:
        raise InvalidInput("Say which workspace to export (--team): this database holds none or several.")
    if fmt.per_system:
        assert team_id is not None
        system = _system(session, team_id, system_name)
        details = iter_item_details(session, team_id=team_id, system_name=system.name)
        provider = csp or system.organization or ""  # the deployment's CSP, else the system's organization
        if fmt is ExportFormat.XLSX:
            count = write_workbook(details, out, rules=rules, system=system, csp=provider, poam_date=rules.day(now),
                                   names=_names(session, team_id=team_id))
        else:
            with _text(out) as text:
                count = write_oscal(details, text, session=session, rules=rules, exported_at=now, team_id=team_id,
                                    system=system, title=f"{provider or 'Plan'} POA&M: {system.name}", csp=provider,
                                    names=_names(session, team_id=team_id))
        return Exported(count, f"poam-{system.name_key.replace(' ', '-')}-{stamp}.{fmt.suffix}")
    if system_name is not None and team_id is not None:
        _system(session, team_id, system_name)
    elif system_name is not None and session.exec(  # every workspace's system of that name: none is a typo
        select(InfoSystem.id).where(InfoSystem.name_key == system_name.strip().lower()).limit(1)
    ).first() is None:
        raise NotFound(f"There is no system called `{system_name}` in any workspace.")
    details = iter_item_details(session, team_id=team_id, system_name=system_name)
    with _text(out, encoding="utf-8-sig" if fmt is ExportFormat.CSV else "utf-8") as text:
        if fmt is ExportFormat.CSV:
            count = write_csv(details, text, rules=rules, names=_names(session, team_id=team_id))
        else:
            count = write_json(details, text, rules=rules, exported_at=now, team_id=team_id, system_name=system_name)
    return Exported(count, f"poam-{stamp}.{fmt.suffix}")


@contextmanager
def _text(out: IO[bytes], *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Text over ``out``, leaving ``out`` open for its owner. The CSV's is
    ``utf-8-sig``: without the byte order mark, Excel reads UTF-8 as the
    machine's code page and garbles every name and word outside ASCII."""
    text = io.TextIOWrapper(out, encoding=encoding, newline="", write_through=True)
    try:
        yield text
    finally:
        text.flush()
        text.detach()


def _names(session: Session, *, team_id: str | None) -> Names:
    """The names on record, by (workspace, user), of ``team_id`` (None: every workspace)."""
    found = select(Person.team_id, Person.user_id, Person.name).where(col(Person.name).is_not(None))
    if team_id is not None:
        found = found.where(Person.team_id == team_id)
    return {(team, user): name for team, user, name in session.exec(found) if name}
