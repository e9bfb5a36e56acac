"""Slack calls over kept-open connections (``bot.slack_http``), against the fake
Slack Web API on loopback: calls and response URL posts share connections,
a connection Slack closed or left idle too long is replaced without the call
failing or going twice, errors surface as slack_sdk's own clients raise them,
and threads calling at once never share a connection."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import RemoteDisconnected
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from bot.slack_http import IDLE_SECONDS, PooledRespond, PooledWebClient, PooledWebhookClient, SlackConnections
from tests.e2e.conftest import wait_for
from tests.fake_slack import FakeSlack

TOKEN = "xoxb-e2e-test"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def connections() -> Iterator[SlackConnections]:
    pool = SlackConnections()
    yield pool
    pool.close()


def pooled(fake: FakeSlack, connections: SlackConnections, **kwargs: Any) -> PooledWebClient:
    kwargs.setdefault("retry_handlers", [])
    return PooledWebClient(token=TOKEN, base_url=fake.base_url, connections=connections, **kwargs)


def test_web_api_calls_share_one_connection(fake: FakeSlack, connections: SlackConnections) -> None:
    client = pooled(fake, connections)
    for n in range(5):
        assert client.users_info(user=f"U{n}")["user"]["id"] == f"U{n}"
    assert fake.connections == 1
    plain = WebClient(token=TOKEN, base_url=fake.base_url, retry_handlers=[])
    for n in range(3):
        plain.users_info(user=f"U{n}")
    assert fake.connections == 4  # slack_sdk's own client: one connection per call


def test_response_url_posts_share_the_connection(fake: FakeSlack, connections: SlackConnections) -> None:
    pooled(fake, connections).auth_test()
    for n in range(3):
        respond = PooledRespond(response_url=fake.response_url(f"r{n}"), proxy=None, ssl=None,
                                connections=connections)
        assert respond(text=f"answer {n}", response_type="ephemeral", replace_original=False).status_code == 200
    wait_for(lambda: len(fake.responses) == 3)  # each is noted just after it is answered
    assert [body["text"] for body in fake.responses] == ["answer 0", "answer 1", "answer 2"]
    assert fake.responses[0] == {"text": "answer 0", "response_type": "ephemeral", "replace_original": False}
    assert fake.connections == 1


def test_a_connection_slack_closed_is_replaced_and_the_call_goes_once(
    fake: FakeSlack, connections: SlackConnections
) -> None:
    client = pooled(fake, connections)
    client.chat_postMessage(channel="C1", text="first")
    client.chat_postMessage(channel="C1", text="second")
    assert fake.connections == 1
    fake.close_connections()
    time.sleep(0.05)  # the close reaches this side
    client.chat_postMessage(channel="C1", text="third")
    assert [call.params["text"] for call in fake.calls_to("chat.postMessage")] == ["first", "second", "third"]
    assert fake.connections == 2


def test_a_kept_connection_closed_as_the_call_goes_out_is_retried_on_a_new_one(
    fake: FakeSlack, connections: SlackConnections
) -> None:
    """Slack closes the connection just as the request arrives (after the idle
    check): the call goes again on a new connection, with no retry handler of
    slack_sdk's (the quick client's way), and is answered once."""
    client = pooled(fake, connections)  # no retry handlers
    client.users_info(user="U1")
    fake.drop_next_request()
    assert client.users_info(user="U2")["user"]["id"] == "U2"
    assert [call.params["user"] for call in fake.calls_to("users.info")] == ["U1", "U2"]
    assert fake.connections == 2


@pytest.mark.parametrize("kind", ["pooled", "slack_sdk"])
def test_a_new_connection_closed_without_an_answer_fails_as_with_slack_sdk(
    fake: FakeSlack, connections: SlackConnections, kind: str
) -> None:
    """Only a kept connection is retried: on a new one the request may have been
    read, and the failure is the caller's to handle, as with slack_sdk's client."""
    if kind == "pooled":
        client: WebClient = pooled(fake, connections)
    else:
        client = WebClient(token=TOKEN, base_url=fake.base_url, retry_handlers=[])
    fake.drop_next_request()
    with pytest.raises(RemoteDisconnected):
        client.chat_postMessage(channel="C1", text="dropped")
    assert fake.connections == 1


def test_a_connection_idle_too_long_is_not_reused(fake: FakeSlack) -> None:
    now = [1000.0]
    pool = SlackConnections(clock=lambda: now[0])
    client = pooled(fake, pool)
    client.auth_test()
    now[0] += IDLE_SECONDS / 2
    client.auth_test()
    assert fake.connections == 1
    now[0] += IDLE_SECONDS + 1
    client.auth_test()
    assert fake.connections == 2
    pool.close()


def test_a_response_url_post_slack_refuses_is_logged(
    fake: FakeSlack, connections: SlackConnections, caplog: pytest.LogCaptureFixture
) -> None:
    """slack_sdk returns a failed response URL post instead of raising: a card a
    click asked for would not appear, and nobody would know why."""
    respond = PooledRespond(response_url=fake.response_url("r1"), proxy=None, ssl=None, connections=connections)
    fake.fail("respond", status=404, error="expired_url")
    with caplog.at_level(logging.WARNING, logger="bot.slack_http"):
        assert respond(text="too late").status_code == 404
    assert [record.getMessage() for record in caplog.records] == [
        "a response URL post was answered 404: expired_url"
    ]
    assert fake.responses == []


def test_a_response_url_post_waits_out_a_short_429(fake: FakeSlack, connections: SlackConnections) -> None:
    respond = PooledRespond(response_url=fake.response_url("r1"), proxy=None, ssl=None, connections=connections)
    fake.fail("respond", status=429, retry_after=0)
    assert respond(text="after a 429").status_code == 200
    assert [body["text"] for body in wait_for(lambda: fake.responses)] == ["after a 429"]  # noted after answering


@pytest.mark.parametrize("kind", ["pooled", "slack_sdk"])
def test_errors_are_slack_sdks_own(fake: FakeSlack, connections: SlackConnections, kind: str) -> None:
    """The same failures give the same answers and exceptions as slack_sdk's own
    client: 429 and 500 retried by its handlers, an error answer raised, an
    HTTP error raised with its status, and the connection used again after."""
    at_once = FixedValueRetryIntervalCalculator(fixed_internal=0.01)
    handlers = [RateLimitErrorRetryHandler(max_retry_count=1),
                ServerErrorRetryHandler(max_retry_count=1, interval_calculator=at_once)]
    if kind == "pooled":
        client: WebClient = pooled(fake, connections, retry_handlers=handlers)
    else:
        client = WebClient(token=TOKEN, base_url=fake.base_url, retry_handlers=handlers)
    fake.fail("chat.postMessage", status=429, retry_after=0)
    assert client.chat_postMessage(channel="C1", text="after a 429")["ok"]
    fake.fail("chat.postMessage", status=500)
    assert client.chat_postMessage(channel="C1", text="after a 500")["ok"]
    fake.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C1", text="refused")
    assert refused.value.response["error"] == "channel_not_found"
    fake.fail("chat.postMessage", status=500, times=2)
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C1", text="failed")
    assert failed.value.response.status_code == 500
    assert len(fake.calls_to("chat.postMessage")) == 7
    assert fake.connections == (1 if kind == "pooled" else 7)


@pytest.mark.parametrize("kind", ["pooled", "slack_sdk"])
def test_a_slack_that_is_gone_fails_as_with_slack_sdk(connections: SlackConnections, kind: str) -> None:
    fake = FakeSlack().start()
    base_url = fake.base_url
    fake.stop()
    if kind == "pooled":
        client: WebClient = PooledWebClient(token=TOKEN, base_url=base_url, retry_handlers=[], connections=connections)
    else:
        client = WebClient(token=TOKEN, base_url=base_url, retry_handlers=[])
    with pytest.raises(Exception) as failed:
        client.auth_test()
    assert type(failed.value).__name__ == "URLError"
    assert isinstance(failed.value.reason, ConnectionRefusedError)  # type: ignore[attr-defined]


def test_threads_calling_at_once_each_get_their_own_answers(fake: FakeSlack, connections: SlackConnections) -> None:
    client = pooled(fake, connections)
    wrong: list[str] = []

    def caller(n: int) -> None:
        for m in range(20):
            user = f"U{n}x{m}"
            if client.users_info(user=user)["user"]["id"] != user:
                wrong.append(user)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(fake.calls_to("users.info")) == 160
    assert fake.connections <= 8


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` serving on loopback, a thread per connection; its Web API URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/"
    finally:
        server.shutdown()
        server.server_close()


def _answer_json(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _ClosingHandler(BaseHTTPRequestHandler):
    """A server that closes after every answer (HTTP/1.0, the standard library's default)."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _answer_json(self, b'{"ok": true, "user_id": "U1", "team_id": "T1"}')

    def log_message(self, *args: object) -> None:
        return


def test_a_server_that_closes_each_connection_still_answers(connections: SlackConnections) -> None:
    with _serving(_ClosingHandler) as url:
        client = PooledWebClient(token=TOKEN, base_url=url, retry_handlers=[], connections=connections)
        for _ in range(3):
            assert client.auth_test()["ok"]


class _DrippingHandler(BaseHTTPRequestHandler):
    """Answers ``{"ok": true}`` padded to 200 bytes, one byte every 0.1 s:
    every read gets something well within any timeout of a second or more."""

    protocol_version = "HTTP/1.1"
    requests = 0
    #: False: no Content-Length, the answer ends where the connection does.
    delimited = True

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests += 1
        body = b'{"ok": true}'.ljust(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.delimited:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        for byte in body:
            time.sleep(0.1)
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # the caller gave up
                return

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(params=[True, False], ids=["length", "until-closed"])
def dripping(request: pytest.FixtureRequest) -> Iterator[str]:
    """The Web API URL of a server that drips its answers, of a given length
    or ending where the connection does."""
    _DrippingHandler.requests = 0
    _DrippingHandler.delimited = request.param
    with _serving(_DrippingHandler) as url:
        yield url


def test_an_answer_dripped_slower_than_the_timeout_ends_the_call_at_it(
    dripping: str, connections: SlackConnections
) -> None:
    """slack_sdk's timeout bounds each read: a dripped answer (20 s here) would
    outlast an outbox claim, and the post could be sent twice. The whole call
    ends at its timeout, as a timeout (not retried by the bot's handlers, nor
    taken for a short answer), and once."""
    client = PooledWebClient(token=TOKEN, base_url=dripping, timeout=1, connections=connections,
                             retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                                             ServerErrorRetryHandler(max_retry_count=2)])
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C1", text="slowly")
    assert 1.0 <= time.monotonic() - began < 1.5
    assert _DrippingHandler.requests == 1


def test_a_response_url_post_dripped_slower_than_the_timeout_ends_at_it(
    dripping: str, connections: SlackConnections
) -> None:
    webhook = PooledWebhookClient(url=dripping + "respond", connections=connections, timeout=1)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        webhook.send(text="slowly")
    assert 1.0 <= time.monotonic() - began < 1.5


def test_calls_that_answer_in_time_keep_their_connection(fake: FakeSlack, connections: SlackConnections) -> None:
    """The deadline does not cut a call that ends before it, nor its kept connection."""
    client = pooled(fake, connections, timeout=0.5)
    for n in range(3):
        assert client.users_info(user=f"U{n}")["ok"]
        time.sleep(0.3)  # the next call outlives the last one's deadline
    assert fake.connections == 1


class _DroppingHandler(BaseHTTPRequestHandler):
    """Answers the first request on a connection; closes the connection 0.5 s
    into the next one without an answer; never answers on a second connection."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1
        self.answered = False
        self.hang = type(self).connections > 1

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.hang:
            time.sleep(3)
            self.close_connection = True
            return
        if self.answered:
            time.sleep(0.5)
            self.close_connection = True
            return
        self.answered = True
        _answer_json(self, b'{"ok": true}')

    def log_message(self, *args: object) -> None:
        return


def test_a_call_sent_again_on_a_new_connection_has_what_is_left_of_its_timeout(connections: SlackConnections) -> None:
    """A kept connection the server closed without an answer: the call goes
    once more on a new one, but within the one timeout it had, not a new one."""
    _DroppingHandler.connections = 0
    with _serving(_DroppingHandler) as url:
        client = PooledWebClient(token=TOKEN, base_url=url, timeout=1, retry_handlers=[], connections=connections)
        assert client.auth_test()["ok"]  # the connection is kept
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            client.auth_test()
        assert 0.9 <= time.monotonic() - began < 1.4  # 0.5 s closing, then the 0.5 s left: not 0.5 + 1
        assert _DroppingHandler.connections == 2
