"""The App Home tab: published when opened, and again after an action taken there."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.commands.context import Services, SlackRequest
from bot.commands.followup import after_ack
from bot.commands.views.home import HOME_ITEMS, WAITING_ITEMS, home_view
from bot.poam import review
from bot.poam.errors import PoamError
from bot.poam.item_details import milestones_of
from bot.poam.item_lists import Scope, list_items

log = logging.getLogger(__name__)


def publish_home(request: SlackRequest) -> None:
    """Build "My POA&M" for the requester and publish it; failures are logged only
    (the tab shows its previous state, and the next open retries)."""
    try:
        with request.transaction(read_only=True) as (session, actor):
            mine = list_items(session, actor, scope=Scope.MINE, every_system=True, limit=HOME_ITEMS)
            overdue = list_items(session, actor, scope=Scope.OVERDUE, owner_id=actor.user_id, every_system=True, limit=1)
            unclaimed = list_items(session, actor, scope=Scope.UNCLAIMED, every_system=True, limit=1)
            waiting = review.waiting_on(session, actor, limit=WAITING_ITEMS + 1)  # one more: are there more?
            milestones = milestones_of(session, team_id=actor.team_id, item_ids=[i.id for i in mine.items])
            view = home_view(mine, milestones, rules=actor.rules, overdue=overdue.total_text,
                             unclaimed=unclaimed.total_text, waiting=waiting)
        request.client.views_publish(user_id=request.user_id, view=view)
    except (PoamError, SlackApiError, SlackClientError, OSError) as error:
        log.warning("could not publish the App Home of %s: %s", request.user_id, error)


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") != "home":
            return
        try:
            request = SlackRequest(
                services, client, team_id=str(body.get("team_id", "")), user_id=str(event.get("user", ""))
            )
        except PoamError as error:
            log.warning("ignoring app_home_opened: %s", error)
            return
        after_ack(services, publish_home, request)
