"""What Slack knows about a user that the bot needs: time zone, admin flag, name, whether a bot.

``users.info`` answers are cached per workspace and user for an hour and
replaced when a ``user_change`` event arrives; a workspace admin's for five
minutes only, since being one grants POA&M admin rights and the event reaches
one worker process of several, whose neighbours would otherwise honour rights
Slack took back for up to the hour. When Slack cannot answer, the
user gets the workspace's default time zone and no admin rights (never more
rights than Slack confirmed), and nothing is cached, so the next request asks
again.

Each answer carries when Slack described the user so (:attr:`SlackUser.seen_at`):
a ``users.info`` answer that was asked for before a ``user_change`` event was
handled may describe them as they were before it, and never replaces what
the event said, here or on record (``remember_person``).
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from ssl import SSLContext
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.poam.clock import Clock
from bot.poam.presence import SLACKBOT
from bot.slack_http import PooledWebClient, SlackConnections

log = logging.getLogger(__name__)
CACHE_TTL = timedelta(hours=1)
ADMIN_CACHE_TTL = timedelta(minutes=5)
QUICK_TIMEOUT_SECONDS = 1.5


@dataclass(frozen=True)
class SlackUser:
    tz: ZoneInfo
    workspace_admin: bool
    #: Their real name in Slack (else their display name), for exports; None when unknown.
    name: str | None = None
    #: Just read from Slack (not the cache): worth recording (``people``: the reminder planner, the exports).
    fresh: bool = False
    #: When Slack described them so: a ``users.info`` call's start, a ``user_change`` event's handling.
    seen_at: datetime | None = None
    #: Deactivated in Slack: a message to them is taken and read by nobody.
    deleted: bool = False
    #: A bot (an app's user, Slackbot): nobody to do what a person is asked.
    bot: bool = False
    #: Slack did not answer: ``tz`` is the workspace's default, not theirs.
    unanswered: bool = False


def quick_client(client: WebClient) -> WebClient:
    """A client for calls made before the ack: one try, a short timeout, no
    retry sleeps. Slack gives a listener 3 seconds to answer; a slow or failing
    Slack must not eat them (callers fall back instead). It shares ``client``'s
    kept-open connections (``bot.slack_http``); a client without any gets a
    pool of its own."""
    connections = client.connections if isinstance(client, PooledWebClient) else None
    return _quick_client(client.token, client.base_url, client.ssl, connections)


@functools.lru_cache(maxsize=8)
def _quick_client(
    token: str | None, base_url: str, tls: SSLContext | None, connections: SlackConnections | None
) -> WebClient:
    return PooledWebClient(token=token, base_url=base_url, timeout=QUICK_TIMEOUT_SECONDS, retry_handlers=[], ssl=tls,
                           connections=connections or SlackConnections())


class UserDirectory:
    def __init__(self, *, default_tz: ZoneInfo, clock: Clock, ttl: timedelta = CACHE_TTL) -> None:
        self._default_tz = default_tz
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[datetime, SlackUser]] = {}

    def get(self, client: WebClient, *, team_id: str, user_id: str) -> SlackUser:
        """What Slack says of the user, or the default time zone (``unanswered``)
        and no admin rights when it cannot say."""
        found = self.look_up(client, team_id=team_id, user_id=user_id)
        if found is None:
            log.warning("using the default time zone and no admin rights for %s", user_id)
            return SlackUser(tz=self._default_tz, workspace_admin=False, unanswered=True)
        return found

    def look_up(self, client: WebClient, *, team_id: str, user_id: str) -> SlackUser | None:
        """What Slack says of the user (cached); None when Slack did not answer (logged)."""
        key = (team_id, user_id)
        now = self._clock.now()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = quick_client(client).users_info(user=user_id)
        except (SlackApiError, SlackClientError, OSError) as error:
            log.warning("users.info for %s failed (%s)", user_id, error)
            return None
        return replace(self.remember(team_id=team_id, user=response["user"], seen_at=now), fresh=True)

    def remember(self, *, team_id: str, user: dict[str, Any], seen_at: datetime | None = None) -> SlackUser:
        """Cache what a ``users.info`` answer or a ``user_change`` event says
        about a user as Slack described them at ``seen_at`` (default: now);
        what was cached from a later description stays, and is returned."""
        at = seen_at or self._clock.now()
        found = SlackUser(
            tz=self._zone(user.get("tz")),
            workspace_admin=bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")),
            name=_name(user),
            seen_at=at,
            deleted=user.get("deleted") is True,
            bot=user.get("is_bot") is True or user.get("id") == SLACKBOT,
        )
        ttl = min(self._ttl, ADMIN_CACHE_TTL) if found.workspace_admin else self._ttl
        key = (team_id, str(user.get("id")))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1].seen_at is not None and cached[1].seen_at > at:
                return cached[1]
            self._cache[key] = (self._clock.now() + ttl, found)
        return found

    def _zone(self, name: Any) -> ZoneInfo:
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown time zone %r from Slack; using the default", name)
        return self._default_tz


def described_at(event_time: Any, *, now: datetime) -> datetime:
    """When a ``user_change`` event describes the user: the second after its
    ``event_time`` (Slack's clock, in whole seconds: the change fell within
    it), never later than ``now``; ``now`` without one. A copy Slack sends
    again minutes later (when an ack came late) then loses to what was
    learnt since."""
    if isinstance(event_time, int | float) and not isinstance(event_time, bool) and event_time > 0:
        try:
            return min(datetime.fromtimestamp(int(event_time) + 1, tz=UTC), now)
        except (OverflowError, OSError, ValueError):
            return now
    return now


def _name(user: dict[str, Any]) -> str | None:
    """The name a person goes by in Slack: the real name, else the display name."""
    profile = user.get("profile") or {}
    for name in (user.get("real_name"), profile.get("real_name"), profile.get("display_name")):
        if isinstance(name, str) and name.strip():
            return name.strip()[:200]
    return None
