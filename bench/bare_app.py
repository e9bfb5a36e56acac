"""The floor for ``bench/load.py``: a bare Bolt app that only acks, served like the bot.

    gunicorn --worker-class gthread --threads 8 --pythonpath . bench.bare_app:application

It reads the same environment as the bot (``SLACK_BOT_TOKEN``,
``SLACK_SIGNING_SECRET``, ``SLACK_API_URL``), checks signatures the same way
(Bolt's request verification), answers ``/poam`` and every ``poam.*`` button
with an empty ack and does nothing else: no database, no Web API calls after
the ``auth.test`` Bolt makes when it is built. It is built on the first
request, in the worker process (``bot.web.application`` as its worker
starts: either way before the measured requests). It serves only
``POST /slack/events``; anything else gets Bolt's 404 (which ``load.py``
takes as "up").

With ``BARE_LISTENERS=turns`` (``load.py --bare-listeners turns``) its
listeners run as the bot's do (``bot.commands.turns``: on the request's
thread, two at a time) instead of on Bolt's default pool, which answers at
its next 10 ms check: the floor of the bot's own way of running listeners.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

EVENTS_PATH = "/slack/events"  # the bot's path (bot.web.EVENTS_PATH)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment


class BareWsgi:
    """Bolt's WSGI adapter around an app whose listeners only ack."""

    def __init__(self, app: App) -> None:
        self._slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._slack(environ, start_response)


def build_bare_app() -> App:
    client = WebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
        timeout=10,
    )
    app = App(name="bare-bolt", client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"],
              listener_executor=_listener_executor())

    @app.command("/poam")
    def on_command(ack: Ack) -> None:
        ack()

    @app.action(re.compile(r"^poam\..+$"))
    def on_action(ack: Ack) -> None:
        ack()

    return app


def _listener_executor() -> Executor | None:
    """None (Bolt's default pool), or with ``BARE_LISTENERS=turns`` the bot's;
    imported only then, so that the default floor carries none of the bot's modules."""
    if os.environ.get("BARE_LISTENERS") != "turns":
        return None
    from bot.commands.context import listener_turns

    return listener_turns().executor


class _Lazy:
    """Builds the app on the first request, once per worker (as ``bot.web.LazyWsgi`` does without gunicorn's hook)."""

    def __init__(self) -> None:
        self._app: BareWsgi | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = BareWsgi(build_bare_app())
        return self._app(environ, start_response)


application = _Lazy()
