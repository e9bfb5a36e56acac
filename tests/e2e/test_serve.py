"""``poam-bot serve`` as a newcomer runs it: HTTP under gunicorn, against the fake Slack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SIGNING_SECRET, SlackDriver

ALICE = "U00000ALICE"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def served(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-serve-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'poam.db'}",
        "PORT": str(port),
    }
    env.pop("SLACK_APP_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base + "/healthz") or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_new_user_logs_claims_plans_and_shows(served: str, fake_slack: FakeSlack) -> None:
    slack = SlackDriver(served + "/slack/events", team_id=fake_slack.team_id, response_url=fake_slack.response_url())
    logged = slack.command('log Admin console reachable from the internet sev:high control:AC-17', user=ALICE)
    assert logged.status == 200 and "Logged *POAM-1*" in logged.text, logged.body
    claimed = slack.command("claim POAM-1", user=ALICE)
    assert "You now own *POAM-1*" in claimed.text, claimed.body
    added = slack.command('milestone POAM-1 add "Restrict the console to the VPN" due:+7d', user=ALICE)
    assert "Added *M1* to *POAM-1*" in added.text, added.body
    shown = slack.command("show poam-1", user=ALICE)
    assert "Restrict the console to the VPN" in shown.text and "Admin console reachable" in shown.text
    posts = wait_for(lambda: len(fake_slack.calls_to("chat.postMessage")) >= 2 and fake_slack.calls_to("chat.postMessage"))
    assert "logged *POAM-1*" in posts[0].params["text"]
    assert posts[1].params["thread_ts"] == "1700000000.000001"  # the claim went into the item's thread
