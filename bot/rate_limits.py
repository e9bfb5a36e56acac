"""Slack's 429 answers: how long a call may wait one out in its own thread.

slack_sdk's ``RateLimitErrorRetryHandler`` sleeps as long as ``Retry-After``
says, however long that is, and fails with a ``ValueError`` when the header
is not a number. A send from the outbox holds its row's claim for
``CLAIM_HOLD`` (2 minutes): a send that outlasted it could be sent a second
time by the dispatcher, and an after-ack thread asleep for minutes holds up
the work queued behind it. :class:`ShortRateLimitRetryHandler` waits only a
short ``Retry-After`` in the thread; a longer one (or one that is not a count
of seconds) reaches the caller as Slack's 429, and the outbox puts the row
back until then (``bot.reminders.dispatch``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

#: The longest ``Retry-After`` a call waits out in its own thread.
LONGEST_WAIT_SECONDS = 10
#: ... and for work no outbox claim depends on (an export's upload, an
#: import's result on its form, a note telling someone what failed), which
#: would otherwise be lost to a 429.
PATIENT_WAIT_SECONDS = 60


def retry_after_seconds(value: str | None) -> int | None:
    """``Retry-After`` as whole seconds; None when missing, or not a count of
    seconds (Slack sends seconds; an HTTP date or a negative number is not)."""
    try:
        seconds = int((value or "").strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def header(headers: Mapping[str, Sequence[str] | str], name: str) -> str | None:
    """A header, by any case of its name, from slack_sdk's answers: a retry
    handler's (values in lists) or a ``SlackResponse``'s (plain values). An
    empty list reads as an empty value."""
    wanted = name.lower()
    for key, values in headers.items():
        if key.lower() == wanted:
            return values if isinstance(values, str) else (values[0] if values else "")
    return None


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, for ``Retry-After`` up to ``longest_wait``
    seconds (or missing: it then waits about a second)."""

    def __init__(self, *, max_retry_count: int, longest_wait: float = LONGEST_WAIT_SECONDS) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.longest_wait = longest_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        value = header(response.headers, "Retry-After")
        if value is None:
            return True
        seconds = retry_after_seconds(value)
        return seconds is not None and seconds <= self.longest_wait


def waiting_longer(client: WebClient) -> WebClient:
    """``client``, its 429s waited out up to ``PATIENT_WAIT_SECONDS`` in the
    thread: for slow work after the ack that no outbox claim depends on."""
    patient = copy.copy(client)
    patient.retry_handlers = [
        ShortRateLimitRetryHandler(max_retry_count=handler.max_retry_count, longest_wait=PATIENT_WAIT_SECONDS)
        if isinstance(handler, ShortRateLimitRetryHandler) else handler
        for handler in client.retry_handlers
    ]
    return patient
