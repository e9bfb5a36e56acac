"""Posting an item's news in the channel where it was logged, as one thread.

The first post about an item starts the thread (or, for an item logged from a
message, replies under that message); later ones go into it. Posting happens
after the change is committed: if Slack refuses, the change stands and the
person who made it is told the post failed.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.commands.context import Announcement, SlackRequest
from bot.poam import items
from bot.store.engine import unit_of_work

log = logging.getLogger(__name__)
THREAD_WAIT_SECONDS = 3.0
FRESH_ITEM = timedelta(seconds=30)


def _thread_of(request: SlackRequest, announcement: Announcement) -> tuple[str | None, str | None]:
    """The item's channel and thread.

    A follow-up about an item logged moments ago may overtake the "logged" post,
    still on its way to Slack; it waits a little for that thread to exist
    rather than start a second one.
    """
    channel, thread_ts = announcement.channel_id, announcement.thread_ts
    fresh = request.services.clock.now() - announcement.logged_at < FRESH_ITEM
    deadline = time.monotonic() + THREAD_WAIT_SECONDS
    while channel and not thread_ts and not announcement.starts_thread and fresh and time.monotonic() < deadline:
        time.sleep(0.1)
        with request.transaction(read_only=True) as (session, actor):
            item = items.load_item(session, actor, number=announcement.number)
        channel, thread_ts = item.origin_channel_id, item.origin_thread_ts
    return channel, thread_ts


def announce(request: SlackRequest, announcement: Announcement) -> str | None:
    """Post ``announcement``; returns a problem to tell the user, or None when posted."""
    services = request.services
    channel, thread_ts = _thread_of(request, announcement)
    if channel is None:
        return None
    try:
        response = request.client.chat_postMessage(
            channel=channel, text=announcement.text, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False
        )
    except (SlackApiError, SlackClientError, OSError) as error:
        reason = error.response.get("error") if isinstance(error, SlackApiError) else type(error).__name__
        log.warning("posting about item %s in %s failed: %s", announcement.number, channel, reason)
        if reason == "not_in_channel" or reason == "channel_not_found":
            return f"I couldn't post in <#{channel}>: invite me there with `/invite @POA&M` to get item threads."
        return f"Done, but I couldn't post it in <#{channel}> ({reason})."
    if thread_ts is None:
        with unit_of_work(services.engine) as session:
            items.record_thread(
                session, team_id=request.team_id, number=announcement.number, channel_id=channel, thread_ts=response["ts"]
            )
    return None
