"""HTTP serving: ``POST /slack/events`` (Bolt) and ``GET /healthz``.

``application`` is what gunicorn serves (``gunicorn bot.web:application``). It
builds the Bolt app in the worker as it starts (``post_worker_init``), not at
import, so importing this module never touches the network or the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from http.client import HTTPException
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from slack_bolt import App
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_bolt.context import BoltContext
from slack_bolt.error import BoltError
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_sdk.errors import SlackClientError
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
#: The largest request body read (413 above it, unread): Slack's own are a
#: few KB, the largest a form's submission, which carries the whole form and
#: its state (tens of KB, far under this); anyone may send a body, signed or
#: not, and it is read whole into memory before its signature is checked.
MAX_BODY_BYTES = 1024 * 1024


def _bad_timestamp(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes] | None:
    """A refusal of a timestamp that is not a number (401, as an unsigned
    request): Bolt answers it with a 500 and a traceback. None when it may go on."""
    stamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    if stamp is not None and not (stamp.isascii() and stamp.isdigit()):
        return _plain(start_response, "401 Unauthorized", "invalid request\n")
    return None


def _body(environ: WSGIEnvironment) -> bytes | None:
    """The request's body; None, unread, when it is over :data:`MAX_BODY_BYTES`.
    Read here, not by Bolt's WSGI adapter, which reads ``CONTENT_LENGTH`` bytes
    only: a chunked body (no Content-Length) was read as empty, and its
    signature refused. Without a length it is read to its end when the server
    marks one (``wsgi.input_terminated``: gunicorn), else there is none."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        size = int(length)  # a ValueError for one that is not a number (gunicorn refuses those itself)
        return None if size > MAX_BODY_BYTES else stream.read(size)
    if not environ.get("wsgi.input_terminated"):
        return b""
    body: bytes = stream.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


def _bolt_request(body: str, environ: WSGIEnvironment) -> BoltRequest:
    """Bolt's request of ``body``, a form read as one whatever its words. Bolt
    takes a form that says "payload" anywhere for an interaction's (one field,
    ``payload``) and, finding no such field, reads it as empty: a slash
    command whose text said "payload" reached no listener, and its user was
    told nothing. (A lazy listener, which none of ours is, would get Bolt's
    own reading again: its copy of the request parses the raw body anew.)"""
    request = BoltRequest(body=body, query=environ.get("QUERY_STRING", ""),
                          headers=WsgiHttpRequest(environ).get_headers())
    if not request.body and "payload" in body and request.content_type != "application/json":
        form = dict(parse_qsl(body, keep_blank_values=True))
        if form and "payload" not in form:
            request.body = form
            request.context = build_context(BoltContext({}), form)
    return request


def _plain(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]


class _NoBodies(logging.Filter):
    """Cuts the body off Bolt's "Invalid request signature detected
    (signature: …, timestamp: …, body: …)" (logged at INFO): anyone may send
    a body, of any size, and a real one refused (its timestamp too old) holds
    a response URL, which can post in its channel for half an hour."""

    def filter(self, record: logging.LogRecord) -> bool:
        head, cut, _ = record.getMessage().partition(", body: ")
        if cut:  # the first ", body: " ends the part Bolt put before the body, or comes earlier
            record.msg, record.args = head + ", body not logged)", ()
        return True


_NO_BODIES = _NoBodies()


class SlackWsgi:
    """The WSGI callable around one Bolt app and its database (and the turns
    of its listeners, when given, for the health check)."""

    def __init__(self, app: App, engine: Engine, *, turns: ListenerTurns | None = None) -> None:
        self._app = app
        self._engine = engine
        self._turns = turns
        logging.getLogger("slack_bolt.RequestVerification").addFilter(_NO_BODIES)  # added once, however many apps

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            health = self._health(start_response)
            return [] if method == "HEAD" else health  # a HEAD's answer has no body
        if path != EVENTS_PATH or method != "POST":
            return _plain(start_response, "404 Not Found", "not found\n")
        refused = _bad_timestamp(environ, start_response)
        if refused is not None:
            return refused
        try:
            body = _body(environ)
            if body is None:
                return _plain(start_response, "413 Content Too Large", "request too large\n")
            # Bolt decodes the body, parses it and reads ids from it as it
            # makes the request, before any signature check: a body that is
            # not UTF-8, a payload that is not JSON or not shaped as Slack's
            # (an array, a string; a "team" that is a number) fails there.
            request = _bolt_request(body.decode(), environ)
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("refused a request Bolt could not read: %s", error)
            return _plain(start_response, "400 Bad Request", "unreadable request\n")
        bolt = self._app.dispatch(request)  # what fails in a listener Bolt catches and logs itself
        response = WsgiHttpResponse(status=bolt.status, headers=bolt.headers, body=bolt.body)
        start_response(response.status, response.get_headers())
        return response.get_body()

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
    """Build everything from the environment (what gunicorn's workers do).
    Bolt asks Slack who the bot is as it builds; when Slack fails to answer,
    the worker is built without asking (Bolt asks at its first request from
    Slack): a worker (re)started during an outage must still boot and serve
    /healthz (it stopped the whole server). A token Slack refuses was refused
    before any worker started (``check_token``, ``check_before_serving``)."""
    from bot.app import build_watched_app

    settings = load_settings()
    configure_logging(settings)
    engine = make_engine(settings.database_url)
    try:
        app, turns = build_watched_app(settings, engine=engine)
    except (BoltError, SlackClientError, OSError, HTTPException) as error:
        log.warning("could not ask Slack who the bot is (%s); it asks again at the first request", error)
        app, turns = build_watched_app(settings, engine=engine, verify_token=False)
    return SlackWsgi(app, engine, turns=turns)


class StartRefused(Exception):
    """What stops a server before it serves (its message is the one line it says)."""


def check_before_serving() -> None:
    """What a gunicorn worker of the Procfile checks as it starts, before it
    builds the bot (``post_worker_init``): the settings and
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
    """Builds the real WSGI app once, in the worker process: as it starts
    (:meth:`check_before_serving`), or at the first request under a server
    without that hook."""

    def __init__(self, build: Callable[[], SlackWsgi]) -> None:
        self._build = build
        self._app: SlackWsgi | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._built()(environ, start_response)

    def _built(self) -> SlackWsgi:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        return self._app

    def check_before_serving(self) -> None:
        """:func:`check_before_serving`, then the build (what gunicorn's
        ``post_worker_init`` asks of it): built at the first request, the bot
        made that request, /healthz too, wait for it, or fail with it."""
        check_before_serving()
        self._built()


application = LazyWsgi(from_settings)
