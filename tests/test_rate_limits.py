"""How long a call to Slack waits out a 429 in its own thread (``bot.rate_limits``);
the dispatcher's side of it is in ``tests/test_dispatch.py``."""

from __future__ import annotations

import pytest
from slack_sdk.http_retry import jitter

from bot.app import web_client
from bot.config import Settings
from bot.rate_limits import ShortRateLimitRetryHandler, retry_after_seconds
from bot.reminders.dispatch import CLAIM_LEFT_TO_SEND, PER_CHANNEL_INTERVAL


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("0", 0), ("7", 7), (" 12 ", 12), (None, None), ("", None), ("soon", None), ("-3", None), ("1.5", None),
     ("Wed, 21 Oct 2026 07:28:00 GMT", None)],
)
def test_retry_after_is_read_as_whole_seconds_or_not_at_all(header: str | None, seconds: int | None) -> None:
    assert retry_after_seconds(header) == seconds


def test_the_longest_send_of_the_bots_client_ends_before_its_claim_runs_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread post sent after its ack starts with at least CLAIM_LEFT_TO_SEND
    of its claim left; every try, each waiting its whole timeout, and every
    wait between tries (the longest Retry-After waited in the thread, each
    handler's backoff, jitter at its most) must end before the claim does,
    or the dispatcher could send the post a second time."""
    monkeypatch.setattr(jitter.random, "random", lambda: 1.0)
    settings = Settings(_env_file=None, slack_bot_token="xoxb-x", slack_api_url="http://127.0.0.1:9/api/")  # type: ignore[call-arg]
    client = web_client(settings)
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

    longest = PER_CHANNEL_INTERVAL + (retries + 1) * client.timeout + sum(longest_wait(a) for a in range(retries))
    assert longest < CLAIM_LEFT_TO_SEND.total_seconds(), longest
