"""``poam-bot``: the command line (``python -m bot`` too).

Every failure a user can cause or meet (bad settings, an unreachable or
unmigrated database, an unknown workspace) ends in one line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from slack_sdk.errors import SlackClientError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, select

from bot.blockkit.text import plain_text
from bot.config import ConfigError, Settings, configure_logging, load_settings, require_slack
from bot.interchange.detect import PARSERS
from bot.interchange.exports import ExportFormat, export, only_workspace
from bot.interchange.findings import ImportFormatError
from bot.interchange.importing import MAX_IMPORT_BYTES, read_findings
from bot.poam.actor import Actor, Role, check_team_id
from bot.poam.audit import Anchor, trail, verify_all, verify_chain
from bot.poam.clock import FixedClock, SystemClock
from bot.poam.dates import MAX_YEAR, MIN_YEAR
from bot.poam.errors import InvalidInput, NotFound, PoamError
from bot.poam.imports import check_findings, file_digest, import_findings
from bot.poam.items import load_item
from bot.poam.refs import parse_item_number
from bot.reminders.digest import digest_message
from bot.reminders.expiries import end_risk_acceptances
from bot.reminders.planner import plan
from bot.reminders.subscriptions import subscribed_team
from bot.store.engine import is_busy, make_engine, sqlite_file, unit_of_work
from bot.store.migrate import (
    DanglingRows,
    SchemaOutOfDate,
    UnknownRevision,
    current_revision,
    require_current,
    upgrade,
)
from bot.store.models import Workspace
from bot.store.outbox import outbox_status

Handler = Callable[[argparse.Namespace, Settings], int]
#: Who the audit trail names for changes made from this command line.
CLI_ACTOR = "cli"


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except OperationalError as error:
        if not is_busy(error):
            raise
        print("poam-bot: a table to change was in use (a long export or import?), and the migration gave up rather "
              "than hold the bot up; nothing was changed: run `poam-bot migrate` again.", file=sys.stderr)
        return 1
    print(f"Database schema is up to date (revision {current_revision(engine)}).")
    return 0


def _ready_engine(settings: Settings) -> Engine:
    """The database, migrated to this version's schema; never a new SQLite
    file (a mistyped path would become an empty POA&M once migrated)."""
    file = sqlite_file(settings.database_url)
    if file is not None and not file.exists():
        raise InvalidInput(f"There is no database at {file}: check DATABASE_URL, or create one there with "
                           "`poam-bot migrate`.")
    engine = make_engine(settings.database_url)
    require_current(engine)
    return engine


def _export(args: argparse.Namespace, settings: Settings) -> int:
    if args.output:
        _not_the_database(args.output, settings)
    engine = _ready_engine(settings)
    with ExitStack() as stack:
        session = stack.enter_context(unit_of_work(engine, read_only=True, snapshot=True))
        fmt = ExportFormat(args.format)
        team_id = _existing_workspace(session, args.team) if args.team else None
        if team_id is None and fmt.per_workspace:
            team_id = only_workspace(session)
        out = stack.enter_context(_written_when_whole(args.output)) if args.output else sys.stdout.buffer
        done = export(
            session, out, fmt=fmt, rules=settings.rules, now=SystemClock().now(), team_id=team_id,
            system_name=args.system, csp=settings.poam_csp_name,
        )
    if args.output:
        print(f"Exported {done.count} item(s) to {args.output}.", file=sys.stderr)
    return 0


def _existing_workspace(session: Session, team_id: str) -> str:
    """``team_id``, refused unless this database holds that workspace: a
    typo's export or trail would be empty, its verification a pass."""
    check_team_id(team_id)
    if session.get(Workspace, team_id) is None:
        raise NotFound(f"There is no workspace {team_id} in this database.")
    return team_id


def _not_the_database(path: str, settings: Settings) -> None:
    """Refuse an output file that is the SQLite database (or its journal):
    written over, the POA&M is gone."""
    file = sqlite_file(settings.database_url)
    if file is not None and os.path.realpath(path) in {
        os.path.realpath(f"{file}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")
    }:
        raise InvalidInput(f"{path} is the database itself; write the export to another file.")


@contextmanager
def _written_when_whole(path: str) -> Iterator[BinaryIO]:
    """``path`` written only once the export is whole: an export refused or
    failing midway (a full disk) leaves the file there as it was (opened at
    once, it was emptied before anything was checked). A file is written
    beside itself and moved over, with its mode; a link, the file it names;
    a pipe or a device (``/dev/stdout``) as the export comes."""
    given = Path(path)
    if given.exists() and not given.is_file():  # what it names, through any link (/dev/fd/N: a pipe)
        with given.open("wb") as stream:
            yield stream
        return
    target = Path(os.path.realpath(path))
    try:
        scratch = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False)  # noqa: SIM115
    except OSError as error:
        if not target.is_file():  # no such folder, say: named as the user wrote it
            raise OSError(error.errno, error.strerror, path) from None
        with _copied_in_when_whole(target) as stream:  # a file we may write in a folder we may not
            yield stream
        return
    try:
        with scratch:
            yield scratch  # type: ignore[misc]
        if target.exists():
            shutil.copymode(target, scratch.name)
        else:  # as open() would have made it
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(scratch.name, 0o666 & ~umask)
        os.replace(scratch.name, target)
    except BaseException:
        Path(scratch.name).unlink(missing_ok=True)
        raise


@contextmanager
def _copied_in_when_whole(target: Path) -> Iterator[BinaryIO]:
    """A scratch file copied into ``target`` once whole (a full disk while
    copying leaves it half written: only for a file whose folder we may not
    write in)."""
    with tempfile.TemporaryFile() as scratch:
        yield scratch  # type: ignore[misc]
        scratch.seek(0)
        with target.open("wb") as out:
            shutil.copyfileobj(scratch, out)


class _TerminalProgress:
    """Stages of a large import on one terminal line (only when stderr is a terminal)."""

    STAGES = 3

    def __init__(self) -> None:
        self.done = 0

    def __call__(self, stage: str) -> None:
        self.done += 1
        filled = round(20 * self.done / self.STAGES)
        print(f"\r[{'#' * filled}{'.' * (20 - filled)}] {stage:<40}", end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        """End the bar's line, done or not: an error printed next starts a line of its own."""
        if self.done:
            print(file=sys.stderr)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    engine = _ready_engine(settings)
    path = Path(args.file)
    with path.open("rb") as file:  # no more than a file may hold: not all of /dev/zero
        data = file.read(MAX_IMPORT_BYTES + 1)
    progress = _TerminalProgress() if len(data) > 1024 * 1024 and sys.stderr.isatty() else None
    try:
        findings = read_findings(path.name, data, fmt=args.format, progress=progress)
        with unit_of_work(engine) as session:
            actor = _cli_actor(_import_workspace(session, args.team), settings)
            if args.dry_run:
                summary = check_findings(session, actor, findings=findings, system_name=args.system,
                                         digest=file_digest(data))
                session.rollback()  # nothing at all: not even a new workspace's first use
            else:
                summary = import_findings(session, actor, findings=findings, source_name=path.name,
                                          system_name=args.system, digest=file_digest(data))
        if progress:
            progress("done")
    finally:
        if progress:
            progress.end()
    print(f"{'Dry run, nothing imported' if args.dry_run else 'Imported'}: {summary}.")
    return 0


def _import_workspace(session: Session, team_id: str | None) -> str:
    """The workspace an import goes into: the one named, else the only one.
    One this database does not hold yet is taken only into a database that
    holds none (the first import before anyone used the bot): beside others it
    is a typo, whose items nobody would see."""
    team_id = team_id or only_workspace(session)
    if team_id is None:
        raise InvalidInput("Say which workspace to import into with --team (e.g. --team T0123ABCD).")
    if session.exec(select(Workspace.team_id)).first() is None:
        return check_team_id(team_id)
    return _existing_workspace(session, team_id)


def _cli_actor(team_id: str, settings: Settings) -> Actor:
    """This command line acting as an admin of workspace ``team_id``."""
    return Actor(
        team_id=check_team_id(team_id), user_id=CLI_ACTOR, roles=frozenset({Role.ADMIN}),
        tz=settings.timezone, clock=SystemClock(), rules=settings.rules,
    )


def _audit_export(args: argparse.Namespace, settings: Settings) -> int:
    if args.output:
        _not_the_database(args.output, settings)
    engine = _ready_engine(settings)
    count = 0
    with ExitStack() as stack:
        session = stack.enter_context(unit_of_work(engine, read_only=True, snapshot=True))
        team_id = args.team or only_workspace(session)
        if team_id is None:
            raise InvalidInput("Say which workspace's trail to export with --team (e.g. --team T0123ABCD).")
        actor = _cli_actor(_existing_workspace(session, team_id), settings)
        item_id = None
        if args.item:
            item_id = load_item(session, actor, number=parse_item_number(args.item, prefix=settings.poam_id_prefix)).id
        # Once the request is known good, and replaced only when whole; UTF-8 whatever the
        # terminal's encoding, as the hashes are over UTF-8.
        out: BinaryIO = stack.enter_context(_written_when_whole(args.output)) if args.output else sys.stdout.buffer
        for event in trail(session, team_id=actor.team_id, item_id=item_id):
            out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
            count += 1
    if args.output:
        print(f"Exported {count} audit event(s) to {args.output}.", file=sys.stderr)
    return 0


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    engine = _ready_engine(settings)
    anchors = [Anchor.parse(text) for text in args.anchor]
    if args.team and any(anchor.team_id != args.team for anchor in anchors):
        raise InvalidInput(f"An anchor names another workspace than --team {args.team}; leave --team out to check "
                           "every workspace, or give only its anchors.")
    with unit_of_work(engine, read_only=True, snapshot=True) as session:  # a change meanwhile is no break
        for anchor in anchors:
            _existing_workspace(session, anchor.team_id)
        if args.team:
            reports = [verify_chain(session, team_id=_existing_workspace(session, args.team), anchors=anchors)]
        else:
            reports = verify_all(session, anchors=anchors)
    for report in reports:
        if report.ok:
            head = f"; its head is --anchor {report.head}" if report.head else ""
            print(f"{report.team_id}: {report.events} audit event(s), chain intact{head}.")
        else:
            print(f"BROKEN: {report.broken}", file=sys.stderr)
    if not reports:
        print("No workspaces in this database yet; nothing to verify.")
    return 0 if all(report.ok for report in reports) else 1


def _review_expire(args: argparse.Namespace, settings: Settings) -> int:
    engine = _ready_engine(settings)
    done = end_risk_acceptances(engine, clock=SystemClock(), rules=settings.rules)
    for item in done.ended:
        print(f"{item.team_id} {settings.rules.label(item.number)}: risk acceptance until {item.until} ended; back in work.")
    print(f"{len(done.ended)} risk acceptance(s) ended.")
    for team_id, why in done.failed.items():
        print(f"{team_id}: its risk acceptances could not end: {why}", file=sys.stderr)
    return 1 if done.failed else 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from slack_bolt.error import BoltError  # Slack and gunicorn are only loaded to serve

    from bot.app import TokenRefused
    from bot.serve import serve

    try:
        serve(settings, host=args.host, scheduler=not args.no_scheduler)
    except BoltError as error:  # Socket Mode's app checks the token first: revoked, say
        print(f"poam-bot: Slack error: {_first_line(error)}", file=sys.stderr)
        return 1
    except TokenRefused as error:  # HTTP mode asks before gunicorn starts
        print(f"poam-bot: {error}", file=sys.stderr)
        return 1
    return 0


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import SCHEDULER_COMMAND, keep_scheduling, run_scheduler

    if args.keep_running:
        keep_scheduling([*SCHEDULER_COMMAND, *(["--database-checked"] if args.database_checked else [])])
    else:
        run_scheduler(settings, checked=args.database_checked)
    return 0


def _at(args: argparse.Namespace) -> FixedClock | SystemClock:
    return FixedClock(args.at) if args.at else SystemClock()


def _remind(args: argparse.Namespace, settings: Settings) -> int:
    if args.status and args.at is not None:
        raise InvalidInput("--at goes with --dry-run: --status lists the messages as they stand now.")
    engine = _ready_engine(settings)
    if args.status:
        with unit_of_work(engine, read_only=True) as session:
            rows = outbox_status(session)
        for row in rows:
            print(f"{row.status:8} {row.kind:11} {row.team_id} → {row.recipient} day {row.local_day} "
                  f"attempts {row.attempts}" + (f" error: {row.last_error}" if row.last_error else ""))
        print(f"{len(rows)} pending or failed message(s).")
        return 0
    clock = _at(args)
    with unit_of_work(engine, read_only=True) as session:
        planned = plan(session, clock=clock, rules=settings.rules, default_tz=settings.timezone)
    for message in planned:
        print(f"{message.kind} → {message.recipient} ({message.team_id}, {message.local_day}): {message.text}")
        for line in _shown_lines(message.blocks):
            print(f"    {line}")
    print(f"{len(planned)} message(s) would be sent.")
    return 0


def _shown_lines(blocks: Sequence[dict[str, Any]]) -> list[str]:
    """What a message's blocks say, as lines of plain text (a dry run's view of what it would send)."""
    texts = []
    for block in blocks:
        parts = [block.get("text"), *block.get("fields", ()), *block.get("elements", ())]
        texts += [plain_text(part["text"]) for part in parts if isinstance(part, dict) and "text" in part
                  and isinstance(part["text"], str)]
    return [line for text in texts for line in text.splitlines() if line.strip()]


def _digest(args: argparse.Namespace, settings: Settings) -> int:
    engine = _ready_engine(settings)
    clock = SystemClock()
    with unit_of_work(engine, read_only=True) as session:
        team_id = _existing_workspace(session, args.team) if args.team else subscribed_team(
            session, channel_id=args.channel)
        text, blocks = digest_message(session, team_id=team_id, clock=clock, rules=settings.rules)
    if args.dry_run:
        print(text)
        print(json.dumps(blocks, indent=2))
        return 0
    from bot.app import web_client

    require_slack(settings)
    web_client(settings).chat_postMessage(channel=args.channel, text=text, blocks=blocks)
    print(f"Posted the digest in {args.channel}.")
    return 0


def _iso_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2026-11-23T09:00:00-05:00") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time with its offset, like 2026-11-23T09:00:00-05:00")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:  # planning reads the days around it, in every time zone
        raise argparse.ArgumentTypeError(f"give a time between the years {MIN_YEAR} and {MAX_YEAR}")
    return moment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poam-bot", description="A Slack app that runs your POA&M (Plan of Action and Milestones)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT"
    )
    serve.add_argument("--host", default="0.0.0.0", help="HTTP address to listen on (default 0.0.0.0)")
    serve.set_defaults(handler=_serve)

    serve.add_argument("--no-scheduler", action="store_true", help="do not run reminders and digests in this process")
    scheduler = commands.add_parser("scheduler", help="run reminders, digests and expiries only (the Procfile's worker)")
    scheduler.set_defaults(handler=_scheduler)
    # `poam-bot serve` starts its scheduler child with this: serve has migrated
    # (or checked) the database and logged its audit heads already.
    scheduler.add_argument("--database-checked", action="store_true", help=argparse.SUPPRESS)
    # ... and through a keeper that starts it again when it stops (``serve.keep_scheduling``).
    scheduler.add_argument("--keep-running", action="store_true", help=argparse.SUPPRESS)

    remind = commands.add_parser("remind", help="reminders: what would be sent, or what is stuck")
    remind_mode = remind.add_mutually_exclusive_group(required=True)
    remind_mode.add_argument("--dry-run", action="store_true", help="print what would be sent now, and to whom")
    remind_mode.add_argument("--status", action="store_true", help="list pending and failed messages")
    remind.add_argument("--at", type=_iso_time, help="plan as if it were this time (ISO 8601 with offset)")
    remind.set_defaults(handler=_remind)

    digest = commands.add_parser("digest", help="post (or print) a channel's weekly digest now")
    digest.add_argument("--channel", required=True, help="channel id, e.g. C0123ABCD")
    digest.add_argument("--team", help="workspace id (default: the one the channel is subscribed in)")
    digest.add_argument("--dry-run", action="store_true", help="print it instead of posting")
    digest.set_defaults(handler=_digest)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=_migrate)

    export = commands.add_parser("export", help="write the POA&M as JSON, CSV, a FedRAMP workbook or OSCAL")
    export.add_argument("--format", choices=[f.value for f in ExportFormat], default="json")
    export.add_argument("--team", help="only this workspace (team id, e.g. T0123ABCD)")
    export.add_argument("--system", help="only this information system (by name)")
    export.add_argument("-o", "--output", help="write to FILE instead of standard output", metavar="FILE")
    export.set_defaults(handler=_export)

    importer = commands.add_parser("import", help="import scanner results or a FedRAMP workbook")
    importer.add_argument("file", help="a SARIF, Nessus (.nessus), CSV or FedRAMP workbook (.xlsx) file")
    importer.add_argument("--format", choices=sorted(PARSERS), help="the file's format (default: detected)")
    importer.add_argument("--team", help="the workspace to import into (default: the only one)")
    importer.add_argument("--system", help="the information system (default: the workspace's default)")
    importer.add_argument("--dry-run", action="store_true", help="check and count, import nothing")
    importer.set_defaults(handler=_import)

    audit = commands.add_parser("audit", help="audit trail tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="check every workspace's hash chain; exit 1 naming the first broken event"
    )
    verify.add_argument("--team", help="only this workspace")
    verify.add_argument("--anchor", action="append", default=[], metavar="TEAM:SEQ:HASH",
                        help="a head recorded outside the database (a digest shows one); the chain must still hold "
                             "it (repeat for several)")
    verify.set_defaults(handler=_audit_verify)
    trail_export = audit_commands.add_parser(
        "export", help="the audit trail as JSON Lines, each event with the hash that chains it (README)"
    )
    trail_export.add_argument("--team", help="the workspace (default: the only one)")
    trail_export.add_argument("--item", help="only this item's events, e.g. POAM-12")
    trail_export.add_argument("-o", "--output", help="write to this file instead of standard output")
    trail_export.set_defaults(handler=_audit_export)
    review = commands.add_parser("review", help="review workflow tasks")
    review_commands = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    expire = review_commands.add_parser(
        "expire", help="return items whose risk acceptance or operational requirement ran out to work"
    )
    expire.set_defaults(handler=_review_expire)
    return parser


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        handler: Handler = args.handler
        return handler(args, settings)
    except ConfigError as error:
        print(f"poam-bot: configuration error: {error}", file=sys.stderr)
        return 2
    except (PoamError, SchemaOutOfDate, UnknownRevision, DanglingRows, ImportFormatError) as error:
        print(f"poam-bot: {error}", file=sys.stderr)
        return 1
    except DBAPIError as error:
        print(f"poam-bot: database error: {_first_line(error)}", file=sys.stderr)
        return 1
    except SlackClientError as error:
        print(f"poam-bot: Slack error: {_first_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"poam-bot: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
