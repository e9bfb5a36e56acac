"""HTTP serving: ``POST /slack/events`` (Bolt's WSGI adapter) and ``GET /healthz``.

``application`` is what gunicorn serves (``gunicorn bot.web:application``). It
builds the Bolt app on the first request, not at import, so importing this
module never touches the network or the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.config import ConfigError, configure_logging, load_settings, require_slack
from bot.stall_watch import STUCK_SECONDS
from bot.store.engine import dispose, make_engine, unit_of_work
from bot.store.migrate import SchemaOutOfDate, UnknownRevision, require_current

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from bot.commands.turns import ListenerTurns

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
HEALTH_MAX_WAIT = 2.0


def _bad_timestamp(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes] | None:
    """A refusal of a timestamp that is not a number (401, as an unsigned
    request): Bolt answers it with a 500 and a traceback. None when it may go on."""
    stamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    if stamp is not None and not (stamp.isascii() and stamp.isdigit()):
        return _plain(start_response, "401 Unauthorized", "invalid request\n")
    return None


def _plain(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]


class SlackWsgi:
    """The WSGI callable around one Bolt app and its database (and the turns
    of its listeners, when given, for the health check)."""

    def __init__(self, app: App, engine: Engine, *, turns: ListenerTurns | None = None) -> None:
        self._slack = SlackRequestHandler(app, path=EVENTS_PATH)
        self._engine = engine
        self._turns = turns

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return self._health(start_response)
        refused = _bad_timestamp(environ, start_response)
        if refused is not None:
            return refused
        answered = False

        def answering(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal answered
            answered = True
            return start_response(status, headers) if exc_info is None else start_response(status, headers, exc_info)

        try:
            return self._slack(environ, answering)
        except ValueError as error:
            # Bolt decodes the body and parses its JSON before any signature
            # check (a listener's errors it catches itself): a body that is not
            # UTF-8, or a payload that is not JSON, nothing of ours failed on.
            if answered:
                raise
            log.warning("refused a request Bolt could not read: %s", error)
            return _plain(start_response, "400 Bad Request", "unreadable request\n")

    def _health(self, start_response: StartResponse) -> list[bytes]:
        stalled = self._turns.stalled_for() if self._turns is not None else 0.0
        if stalled > STUCK_SECONDS:
            # 503, so that a liveness probe restarts the process: nothing else
            # would. Why it is stuck: bot.stall_watch logs the threads' stacks.
            log.error("health check: no listener's turn has changed hands for %.0f s while requests wait", stalled)
            return _plain(start_response, "503 Service Unavailable", f"listeners stuck for {stalled:.0f} s\n")
        try:
            # Read-only, with a short wait: a health check must not take SQLite's write lock.
            with unit_of_work(self._engine, read_only=True, max_wait=HEALTH_MAX_WAIT) as session:
                session.connection().execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            log.warning("health check: database unreachable: %s", error)
            return _plain(start_response, "503 Service Unavailable", "database unreachable\n")
        return _plain(start_response, "200 OK", "ok\n")


def from_settings() -> SlackWsgi:
    """Build everything from the environment (what gunicorn's workers do)."""
    from bot.app import build_watched_app

    settings = load_settings()
    configure_logging(settings)
    engine = make_engine(settings.database_url)
    app, turns = build_watched_app(settings, engine=engine)
    return SlackWsgi(app, engine, turns=turns)


class StartRefused(Exception):
    """What stops a server before it serves (its message is the one line it says)."""


def check_before_serving() -> None:
    """What a gunicorn worker of the Procfile checks as it starts, the bot
    itself built at its first request (``post_worker_init``): the settings and
    Slack credentials, that Slack takes the token, that the schema is current.
    Without it a bad setting or token made every request, /healthz too, a
    500, and a database never migrated answered /healthz "ok" and /poam
    "Something went wrong". :class:`StartRefused` for those; a Slack or a
    database that fails to answer is logged, and the worker serves (its
    /healthz says the database is down)."""
    from bot.app import TokenRefused, check_token  # as from_settings: the app's modules load in the worker

    try:
        settings = load_settings()
        require_slack(settings)
    except ConfigError as error:
        raise StartRefused(f"configuration error: {error}") from None
    configure_logging(settings)
    try:
        check_token(settings)
    except TokenRefused as error:
        raise StartRefused(str(error)) from None
    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
    except (SchemaOutOfDate, UnknownRevision) as error:
        raise StartRefused(str(error)) from None
    except DBAPIError as error:
        log.warning("the database did not answer as the worker started (%s); its schema is not checked",
                    str(error.orig or error).strip().splitlines()[0])
    finally:
        dispose(engine)


class LazyWsgi:
    """Builds the real WSGI app on the first request, once, in the worker process."""

    def __init__(self, build: Callable[[], SlackWsgi]) -> None:
        self._build = build
        self._app: SlackWsgi | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        return self._app(environ, start_response)

    @staticmethod
    def check_before_serving() -> None:
        """:func:`check_before_serving` (what gunicorn's ``post_worker_init`` asks of it)."""
        check_before_serving()


application = LazyWsgi(from_settings)
