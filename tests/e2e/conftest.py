"""The real WSGI app on a loopback port, a fake Slack Web API, a signed-request driver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from sqlalchemy import Engine

from bot.app import build_app
from bot.config import Settings
from bot.poam.clock import FixedClock
from bot.web import EVENTS_PATH, SlackWsgi
from tests.fake_slack import FakeSlack
from tests.slack_driver import SIGNING_SECRET, SlackDriver

ADMIN = "U0000ADMIN"
T = TypeVar("T")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(fake_slack: FakeSlack, database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-e2e-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.base_url,
        database_url=database_url,
        poam_admins=frozenset({ADMIN}),
    )


@contextmanager
def serving(wsgi: SlackWsgi) -> Iterator[str]:
    """``wsgi``'s base URL, served by a threaded WSGI server on 127.0.0.1 for the block."""
    server = make_server("127.0.0.1", 0, wsgi, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server_url(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[str]:
    """The bot's base URL."""
    with serving(SlackWsgi(build_app(settings, engine=engine, clock=clock), engine)) as url:
        yield url


@pytest.fixture
def slack(server_url: str, fake_slack: FakeSlack) -> SlackDriver:
    return SlackDriver(server_url + EVENTS_PATH, team_id=fake_slack.team_id, response_url=fake_slack.response_url())


def wait_for(condition: Callable[[], T], *, timeout: float = 5.0) -> T:
    """Poll until ``condition()`` is truthy (work Bolt does after the ack is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
