from __future__ import annotations

from tests.e2e.conftest import wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

ALICE = "U00000ALICE"


def test_log_claim_milestone_show(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    answer = slack.command("log TLS 1.0 on the load balancer sev:high control:SC-8", user=ALICE)
    assert answer.status == 200, answer.body
    assert "POAM-1" in answer.text
    post = wait_for(lambda: fake_slack.calls_to("chat.postMessage"))
    assert "POAM-1" in post[0].params["text"]
    answer = slack.command("claim POAM-1", user=ALICE)
    assert "You now own" in answer.text, answer.text
    answer = slack.command("milestone 1 add Patch the load balancer due:+5d", user=ALICE)
    assert "Added *M1*" in answer.text, answer.text
    answer = slack.command("show 1", user=ALICE)
    assert "Patch the load balancer" in answer.text
