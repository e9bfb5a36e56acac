"""How long a call to Slack waits out a 429 in its own thread (``bot.rate_limits``),
against the fake Slack Web API; the dispatcher's side of it is in
``tests/test_dispatch.py``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers, jitter
from sqlalchemy import Engine

from bot.app import web_client
from bot.commands.context import Services, SlackRequest
from bot.commands.followup import tell
from bot.commands.users import UserDirectory
from bot.config import Settings
from bot.poam.clock import FixedClock
from bot.rate_limits import (
    LONGEST_WAIT_SECONDS,
    PATIENT_WAIT_SECONDS,
    ShortRateLimitRetryHandler,
    header,
    retry_after_seconds,
    waiting_longer,
)
from bot.reminders.dispatch import CLAIM_LEFT_TO_SEND, THREAD_WAIT_SECONDS
from bot.slack_http import PooledWebClient
from tests import test_reminders as harness
from tests.fake_slack import FakeSlack

# The fixtures of the reminders' harness: one fake Slack per module, cleared per test.
fake_api, fake = harness.fake_api, harness.fake


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What slack_sdk's 429 handler slept, without sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=waits.append))
    return waits


def bots_client(base_url: str) -> PooledWebClient:
    settings = Settings(_env_file=None, slack_bot_token="xoxb-x", slack_api_url=base_url)  # type: ignore[call-arg]
    client = web_client(settings)
    assert isinstance(client, PooledWebClient)
    return client


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0), ("7", 7), (" 12 ", 12), (None, None), ("", None), ("soon", None), ("-3", None), ("1.5", None),
     ("Wed, 21 Oct 2026 07:28:00 GMT", None)],
)
def test_retry_after_is_read_as_whole_seconds_or_not_at_all(value: str | None, seconds: int | None) -> None:
    assert retry_after_seconds(value) == seconds


def test_a_header_is_found_by_any_case_in_either_shape_slack_sdk_gives() -> None:
    assert header({"RETRY-AFTER": ["120"]}, "Retry-After") == "120"  # a retry handler's: values in lists
    assert header({"retry-after": "7"}, "Retry-After") == "7"  # a SlackResponse's
    assert header({"Retry-After": []}, "Retry-After") == ""  # read as unreadable, not as missing
    assert header({"Content-Type": "application/json"}, "Retry-After") is None


@pytest.mark.parametrize("value", [0, LONGEST_WAIT_SECONDS])
def test_a_short_retry_after_is_waited_out_in_the_thread(fake: FakeSlack, slept: list[float], value: int) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=value)
    assert bots_client(fake.base_url).chat_postMessage(channel="C1", text="hi")["ok"]
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert len(slept) == 1 and value <= slept[0] < value + 1  # slack_sdk adds up to a second


@pytest.mark.parametrize("value", [str(LONGEST_WAIT_SECONDS + 1), "soon", "100000000000000"])
def test_a_long_or_unreadable_retry_after_reaches_the_caller_at_once(
    fake: FakeSlack, slept: list[float], value: str
) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=value)
    with pytest.raises(SlackApiError) as raised:
        bots_client(fake.base_url).chat_postMessage(channel="C1", text="hi")
    assert raised.value.response.status_code == 429
    assert header(raised.value.response.headers, "Retry-After") == value
    assert len(fake.calls_to("chat.postMessage")) == 1 and slept == []


def test_work_no_claim_depends_on_waits_longer(fake: FakeSlack, slept: list[float]) -> None:
    """An export's upload or an import's outcome, lost to a 429, would have to
    be done again; they wait up to PATIENT_WAIT_SECONDS."""
    client = bots_client(fake.base_url)
    patient = waiting_longer(client)
    fake.fail("chat.postMessage", status=429, retry_after=PATIENT_WAIT_SECONDS)
    assert patient.chat_postMessage(channel="C1", text="hi")["ok"]
    assert len(slept) == 1 and PATIENT_WAIT_SECONDS <= slept[0] < PATIENT_WAIT_SECONDS + 1
    fake.fail("chat.postMessage", status=429, retry_after=PATIENT_WAIT_SECONDS)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="hi")  # the client it was made from is as it was
    assert len(slept) == 1


def test_a_note_to_the_requester_waits_out_a_longer_429(
    fake: FakeSlack, slept: list[float], engine: Engine, clock: FixedClock
) -> None:
    """What failed is told once, and no outbox row keeps it: it waits like an export."""
    settings = Settings(_env_file=None, slack_bot_token="xoxb-x", slack_api_url=fake.base_url)  # type: ignore[call-arg]
    services = Services(engine=engine, settings=settings, clock=clock,
                        users=UserDirectory(default_tz=settings.timezone, clock=clock))
    request = SlackRequest(services, bots_client(fake.base_url), team_id="T0001", user_id="U00000ALICE",
                           channel_id="C0CHANNEL1")
    fake.fail("chat.postEphemeral", status=429, retry_after=30)
    tell(request, "Done, but I couldn't post it.", respond=None)
    assert [call.params["text"] for call in fake.calls_to("chat.postEphemeral")] == ["Done, but I couldn't post it."] * 2
    assert len(slept) == 1 and 30 <= slept[0] < 31


def test_a_thread_post_sent_after_its_ack_ends_before_its_claim_runs_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread post is sent after its ack only while CLAIM_LEFT_TO_SEND of its
    claim is left; waiting for its item's thread, every try (each answered or
    given up within the client's timeout) and every wait between tries (the
    longest Retry-After waited in the thread, each handler's backoff, jitter
    at its most) must end before the claim does, or the dispatcher could send
    the post a second time. A try's timeout bounds the whole try, a dripped
    answer included (``bot.call_deadlines``, ``tests/test_slack_http.py``);
    only a new connection's connect and TLS handshake are bounded per socket
    operation. (Should a try outlast the claim even so, the dispatcher's
    outcome is kept, not overwritten: ``tests/test_thread_posts.py``.)"""
    monkeypatch.setattr(jitter.random, "random", lambda: 1.0)
    client = bots_client("http://127.0.0.1:9/api/")
    handlers = client.retry_handlers
    assert any(isinstance(handler, ShortRateLimitRetryHandler) for handler in handlers)
    retries = max(handler.max_retry_count for handler in handlers)  # they share one count of tries

    def longest_wait(attempt: int) -> float:
        return max(
            handler.longest_wait + 1.0  # slack_sdk adds up to a second
            if isinstance(handler, ShortRateLimitRetryHandler)
            else handler.interval_calculator.calculate_sleep_duration(attempt)
            for handler in handlers
        )

    longest = THREAD_WAIT_SECONDS + (retries + 1) * client.timeout + sum(longest_wait(a) for a in range(retries))
    assert longest < CLAIM_LEFT_TO_SEND.total_seconds(), longest
