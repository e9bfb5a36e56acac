"""``poam-bot``: the command line (``python -m bot`` too).

Every failure a user can cause or meet (bad settings, an unreachable or
unmigrated database, an unknown workspace) ends in one line on stderr and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from bot.config import ConfigError, Settings, load_settings
from bot.interchange.csv_export import write_csv
from bot.interchange.json_export import write_json
from bot.poam.audit import verify_all, verify_chain
from bot.poam.clock import SystemClock
from bot.poam.errors import PoamError
from bot.poam.items import iter_item_details
from bot.poam.review import expire_risk_acceptances
from bot.store.engine import make_engine, unit_of_work
from bot.store.migrate import SchemaOutOfDate, current_revision, require_current, upgrade

Handler = Callable[[argparse.Namespace, Settings], int]


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    print(f"Database schema is up to date (revision {current_revision(engine)}).")
    return 0


def _ready_engine(settings: Settings) -> Engine:
    engine = make_engine(settings.database_url)
    require_current(engine)
    return engine


def _export(args: argparse.Namespace, settings: Settings) -> int:
    engine = _ready_engine(settings)
    with ExitStack() as stack:
        out: TextIO = (
            stack.enter_context(open(args.output, "w", encoding="utf-8", newline=""))
            if args.output
            else sys.stdout
        )
        session = stack.enter_context(unit_of_work(engine, read_only=True))
        details = iter_item_details(session, team_id=args.team, system_name=args.system)
        if args.format == "csv":
            count = write_csv(details, out, rules=settings.rules)
        else:
            count = write_json(
                details,
                out,
                rules=settings.rules,
                exported_at=SystemClock().now(),
                team_id=args.team,
                system_name=args.system,
            )
    if args.output:
        print(f"Exported {count} item(s) to {args.output}.", file=sys.stderr)
    return 0


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    engine = _ready_engine(settings)
    with unit_of_work(engine, read_only=True) as session:
        reports = [verify_chain(session, team_id=args.team)] if args.team else verify_all(session)
    for report in reports:
        if report.ok:
            print(f"{report.team_id}: {report.events} audit event(s), chain intact.")
        else:
            print(f"BROKEN: {report.broken}", file=sys.stderr)
    if not reports:
        print("No workspaces in this database yet; nothing to verify.")
    return 0 if all(report.ok for report in reports) else 1


def _review_expire(args: argparse.Namespace, settings: Settings) -> int:
    engine = _ready_engine(settings)
    with unit_of_work(engine) as session:
        expired = expire_risk_acceptances(session, clock=SystemClock(), rules=settings.rules)
    for item in expired:
        print(f"{item.team_id} {settings.rules.label(item.number)}: risk acceptance until {item.until} ended; back in work.")
    print(f"{len(expired)} risk acceptance(s) ended.")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve  # Slack and gunicorn are only loaded to serve

    serve(settings, host=args.host)
    return 0


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

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=_migrate)

    export = commands.add_parser("export", help="write the POA&M as JSON or CSV")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--team", help="only this workspace (team id, e.g. T0123ABCD)")
    export.add_argument("--system", help="only this information system (by name)")
    export.add_argument("-o", "--output", help="write to FILE instead of standard output", metavar="FILE")
    export.set_defaults(handler=_export)

    audit = commands.add_parser("audit", help="audit trail tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="check every workspace's hash chain; exit 1 naming the first broken event"
    )
    verify.add_argument("--team", help="only this workspace")
    verify.set_defaults(handler=_audit_verify)
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
        logging.basicConfig(level=settings.poam_log_level, format="%(levelname)s %(name)s: %(message)s")
        if settings.poam_log_level != "DEBUG":
            logging.getLogger("alembic").setLevel(logging.WARNING)
        handler: Handler = args.handler
        return handler(args, settings)
    except ConfigError as error:
        print(f"poam-bot: configuration error: {error}", file=sys.stderr)
        return 2
    except (PoamError, SchemaOutOfDate) as error:
        print(f"poam-bot: {error}", file=sys.stderr)
        return 1
    except DBAPIError as error:
        print(f"poam-bot: database error: {_first_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"poam-bot: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
