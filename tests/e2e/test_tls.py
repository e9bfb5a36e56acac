"""Slack over HTTPS, as in production: the fake Slack served with a certificate
of a throwaway CA that the bot is told to trust (``SSL_CERT_FILE``).

Every call the bot makes (``auth.test`` when the app is built, ``users.info``,
the DM of a change, a response URL post, a file download) goes over TLS on
the process's one context (``bot.tls``): none builds a context of its own,
which would load the CA certificates again for each connection; and calls
share connections kept open (``bot.slack_http``), so few pay a handshake. And the
certificate is checked: a Slack whose certificate the bot does not trust
gets no request at all.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.commands.ids import ActionId, BlockId
from bot.tls import tls_context
from tests.e2e.conftest import ADMIN, wait_for
from tests.e2e.test_import_check import NESSUS
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver
from tests.tls_certs import write_ca_and_server

OWNER, VERIFIER = "U0000OWNER", "U00VERIFY1"


@pytest.fixture
def ca_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """A throwaway CA, a certificate it signed for 127.0.0.1 (with its key), and
    this process told to trust that CA alone; (CA file, server cert+key file)."""
    ca_path, server_path = write_ca_and_server(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    tls_context.cache_clear()  # made again, now trusting the test CA
    yield ca_path, server_path
    tls_context.cache_clear()


@pytest.fixture
def contexts_made_per_connection(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the default contexts Python builds for HTTPS connections given none
    (``ssl._create_default_https_context``, the hook PEP 476 documents)."""
    made: list[int] = []
    default = ssl._create_default_https_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(1)
        return default(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "_create_default_https_context", counted)
    return made


@pytest.fixture
def fake_slack(ca_file: tuple[Path, Path]) -> Iterator[FakeSlack]:
    """The e2e fixtures' fake Slack, over HTTPS with the test CA's certificate."""
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(ca_file[1])
    fake = FakeSlack(tls=served).start()
    yield fake
    fake.stop()


def _settled(fake: FakeSlack) -> None:
    """Wait until the bot has made no Slack call for 0.2 s."""
    seen = -1
    while seen != len(fake.calls) + len(fake.responses):
        seen = len(fake.calls) + len(fake.responses)
        time.sleep(0.2)


def _dms_to(fake: FakeSlack, user: str) -> list[dict[str, object]]:
    return [c.params for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == user]


def test_every_slack_call_goes_over_tls_on_one_context(
    contexts_made_per_connection: list[int], slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    """(Counting from before the app is built, with its ``auth.test``.)"""
    assert fake_slack.base_url.startswith("https://") and slack.response_url.startswith("https://")
    assert fake_slack.calls_to("auth.test")  # building the app called Slack over TLS
    assert "is now" in slack.raw_command(f"role <@{VERIFIER}|v> +verifier", user=ADMIN).text
    assert "Logged *POAM-1*" in slack.command("log Old TLS on the VPN sev:low", user=OWNER).text
    assert "You now own" in slack.command("claim 1", user=OWNER).text
    assert fake_slack.calls_to("users.info")
    assert "submitted for verification" in slack.command("submit 1", user=OWNER).text
    wait_for(lambda: _dms_to(fake_slack, VERIFIER))  # the change's DM, after the ack
    assert slack.click(ActionId.SHOW, json.dumps({"number": 1, "milestone": None}), user=OWNER).status == 200
    wait_for(lambda: [r for r in fake_slack.responses if "Old TLS on the VPN" in json.dumps(r)])  # respond()
    assert contexts_made_per_connection == []
    # One handshake serves many calls: connections are kept open (bot.slack_http);
    # a few at most, as work after an ack may overlap the next request's calls.
    assert fake_slack.connections <= 3 < len(fake_slack.calls) + len(fake_slack.responses)
    _settled(fake_slack)  # the work after the acks above is done
    opened = fake_slack.connections
    for _ in range(3):  # Bolt's respond and client are swapped for ones on the kept connections
        posted = len(fake_slack.responses)
        slack.click(ActionId.SHOW, json.dumps({"number": 1, "milestone": None}), user=OWNER)
        wait_for(lambda: len(fake_slack.responses) > posted)  # noqa: B023 (used at once)
        _settled(fake_slack)  # the bot has read the answer and put the connection back
    assert fake_slack.connections == opened


def test_a_file_to_import_is_downloaded_over_tls_on_the_same_context(
    slack: SlackDriver, fake_slack: FakeSlack, contexts_made_per_connection: list[int]
) -> None:
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    url = fake_slack.host_file("weekly.nessus", NESSUS)
    assert url.startswith("https://")
    upload = {"type": "file_input", "files": [{"id": "F1", "name": "weekly.nessus", "url_private_download": url}]}
    slack.submit(form, {BlockId.FILE: upload}, user=ADMIN)
    checked = json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)
    assert "would bring: 5 new, 0 updated, 0 unchanged, 3 skipped" in checked
    assert contexts_made_per_connection == []


@pytest.mark.parametrize("wrong", ["another CA", "another address"])
def test_a_slack_whose_certificate_is_not_trusted_gets_no_request(
    wrong: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    """Signed by a CA the bot does not trust, or by a trusted CA but for another
    host (the fake Slack is at 127.0.0.1): the handshake fails, nothing is sent."""
    from slack_sdk.errors import SlackClientError

    from bot.app import build_app
    from bot.config import Settings

    if wrong == "another CA":
        _, served_pem = write_ca_and_server(tmp_path, name="served")
        trusted, _ = write_ca_and_server(tmp_path, name="trusted")
    else:
        trusted, served_pem = write_ca_and_server(tmp_path, name="trusted", address="127.0.0.2")
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(served_pem)
    fake = FakeSlack(tls=served).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(trusted))
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        tls_context.cache_clear()
        settings = Settings(_env_file=None, slack_bot_token="xoxb-e2e-test",  # type: ignore[call-arg]
                            slack_signing_secret="s" * 32, slack_api_url=fake.base_url)
        with pytest.raises((SlackClientError, OSError)) as refused:
            build_app(settings, engine=engine)  # auth.test: the handshake fails on the certificate
        assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value)
        assert fake.calls == []
    finally:
        fake.stop()
        tls_context.cache_clear()
