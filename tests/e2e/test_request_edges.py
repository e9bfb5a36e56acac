"""Requests no Slack sends, answered before Bolt's signature check could
refuse them (too large, not shaped as Slack's), what is logged of a refused
one, and a HEAD health check."""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from bot.web import EVENTS_PATH, MAX_BODY_BYTES
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver


def _unsigned_post(url: str, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": "v0=0"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _raw(server_url: str, request: bytes) -> bytes:
    """``request`` sent as it is, and the whole answer (the server closes: HTTP/1.0)."""
    address = urlsplit(server_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    return answer


def test_a_body_over_the_cap_is_refused_unread(server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Any body was read whole, and an unsigned one written whole to the log.
    Its length is enough: the answer comes with none of it sent (a server
    that read it would wait for it)."""
    head = (f"POST {EVENTS_PATH} HTTP/1.0\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n")
    assert _raw(server_url, head.encode()).startswith(b"HTTP/1.0 413")
    with caplog.at_level(logging.INFO, logger="slack_bolt.RequestVerification"):
        assert _unsigned_post(server_url + EVENTS_PATH, b"z" * MAX_BODY_BYTES)[0] == 401  # at the cap: read, checked
    assert "z" * 100 not in caplog.text


def test_a_refused_signature_is_logged_without_the_body(
    slack: SlackDriver, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt logs the body of a request whose signature it refuses: anyone's,
    of any size, and a real one's response URL (which can post for half an hour)."""
    body = slack.command_body("log Old request", user="U00000ALICE")
    with caplog.at_level(logging.INFO, logger="slack_bolt.RequestVerification"):
        assert _unsigned_post(slack.events_url, body.encode())[0] == 401
    (refused,) = [r.getMessage() for r in caplog.records if r.name == "slack_bolt.RequestVerification"]
    assert refused.startswith("Invalid request signature detected (signature: v0=0, timestamp: 1700000000")
    assert "respond" not in refused and "Old+request" not in refused, refused


@pytest.mark.parametrize(("body", "content_type"), [
    (b"[1]", "application/json"),
    (b'"x"', "application/json"),
    (b"5", "application/json"),
    (b'{"team": 5}', "application/json"),
    (b"payload=%22x%22", "application/x-www-form-urlencoded"),
    (b"payload=null", "application/x-www-form-urlencoded"),
    (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),
])
def test_a_body_not_shaped_as_slacks_is_refused_without_a_traceback(
    server_url: str, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    """Bolt reads ids out of the parsed body before any signature check: JSON
    that is not an object (or an object whose "team" is no object) failed
    there, with gunicorn's 500 and a traceback in the log."""
    with caplog.at_level(logging.DEBUG):
        assert _unsigned_post(server_url + EVENTS_PATH, body, content_type) == (400, "unreadable request\n")
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def test_a_head_health_check_gets_no_body(server_url: str) -> None:
    """The app gave a HEAD a body, for the server to drop (or, as this one, send)."""
    answer = _raw(server_url, b"HEAD /healthz HTTP/1.0\r\nHost: bot\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and body == b"", answer
