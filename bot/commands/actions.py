"""Buttons: in item cards, lists and the App Home.

Every button goes through the same handler functions, and so the same domain
operations and permission checks, as the command it stands for. Its value
names only the item (``metadata.ItemRef``); the workspace and the user come
from Slack's signed request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.commands import handlers, metadata, review_handlers
from bot.commands.context import Reply, Services, SlackRequest, signature_of
from bot.commands.errors import answer
from bot.commands.followup import (
    ack_then_work,
    after_ack,
    finish,
    on_form_threads,
    open_form,
    open_view,
    say_privately,
)
from bot.commands.home import publish_home
from bot.commands.ids import ActionId
from bot.commands.views.modals import item_modal, log_modal, milestone_modal, opened_from_home
from bot.commands.views.review import reject_modal
from bot.poam import milestones, review, systems
from bot.poam.errors import InvalidInput

log = logging.getLogger(__name__)

#: The answer to a payload Slack signed that names no workspace or user id.
NO_ONE_TO_ACT_AS = "Slack sent this without a workspace or user the bot can act for; nothing was done. Try again."


def request_from(services: Services, client: WebClient, body: dict[str, Any], *, signature: str | None) -> SlackRequest:
    """The request of an interaction payload (button, shortcut, form), signed
    ``signature`` (``signature_of`` Bolt's request)."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    try:
        return SlackRequest(
            services,
            client,
            team_id=str(team.get("id") or user.get("team_id") or ""),
            user_id=str(user.get("id", "")),
            channel_id=(body.get("channel") or {}).get("id"),
            trigger_id=body.get("trigger_id"),
            in_modal=(body.get("view") or {}).get("type") == "modal",
            signature=signature,
        )
    except InvalidInput:  # its advice is for ids people type
        raise InvalidInput(NO_ONE_TO_ACT_AS) from None


def _pattern(action: ActionId) -> re.Pattern[str]:
    """Matches the action id and its numbered variants (``poam.show.12``)."""
    return re.compile(rf"^{re.escape(action)}(\.[a-z0-9]+)?$")


def deliver(services: Services, request: SlackRequest, body: dict[str, Any], reply: Reply, respond: Respond) -> None:
    """Show ``reply`` where the button was: privately in the channel, or in a
    modal. Views open on the form threads (their trigger id expires); the
    rest is queued."""
    view = body.get("view")
    if reply.modal is not None or (view is not None and reply.blocks):
        on_form_threads(services, _open_then_answer, services, request, view, reply, respond)
    else:
        after_ack(services, _answer_and_finish, request, view, reply, [], respond, shown=False)


def _open_then_answer(
    services: Services, request: SlackRequest, view: dict[str, Any] | None, reply: Reply, respond: Respond
) -> None:
    shown = False
    if view is not None and reply.blocks:
        try:
            open_view(request, item_modal(label="POA&M", blocks=reply.blocks, from_home=opened_from_home(view)))
            shown = True
        except (SlackApiError, SlackClientError, OSError, ValueError) as error:  # said another way, below
            log.warning("could not show a reply in a modal: %s", error)
    problems = open_form(request, reply)
    after_ack(services, _answer_and_finish, request, view, reply, problems, respond, shown=shown)


def _answer_and_finish(
    request: SlackRequest, view: dict[str, Any] | None, reply: Reply, problems: list[str], respond: Respond,
    *, shown: bool,
) -> None:
    """Say ``reply`` privately where it was not ``shown`` in a modal (a click in
    a view has no response URL: its answer, a claim's say, goes by DM when
    Slack refuses the modal, its trigger id expired after a wait in line)."""
    if view is None and (reply.blocks or reply.modal is None):  # a reply that only opens a form says nothing
        say_privately(request, reply.text, blocks=reply.blocks, respond=respond)
    elif view is not None and reply.blocks and not shown:
        say_privately(request, reply.text, blocks=reply.blocks, respond=None)
    finish(request, reply, problems, respond=respond if view is None else None)
    if opened_from_home(view):  # what was done there shows on the Home at once
        publish_home(request)


def answered(
    services: Services, client: WebClient, body: dict[str, Any], signature: str | None,
    work: Callable[[SlackRequest], Reply],
) -> tuple[SlackRequest | None, Reply]:
    """``work``'s reply to the interaction in ``body`` (a button, a message
    shortcut), and the request it ran as: None when the payload names no
    workspace or user the bot can act as, whose reply says so."""
    made: list[SlackRequest] = []

    def run() -> Reply:
        made.append(request_from(services, client, body, signature=signature))
        return work(made[0])

    reply = answer(run)
    return (made[0] if made else None), reply


def through_response_url(services: Services, reply: Reply, respond: Respond) -> None:
    """After the ack, ``reply`` to a payload that names no one to answer by
    name: its response URL is the only way back, and a click in a view (the
    App Home, a modal) has none: there is nobody to tell."""
    if respond.response_url is None:
        log.warning("a click names no one to answer, and has no response URL: %s", reply.text)
        return
    after_ack(services, respond, text=reply.text, blocks=reply.blocks, response_type="ephemeral",
              replace_original=False)


def register(app: App, services: Services) -> None:
    def on(action: ActionId, work: Callable[[SlackRequest, dict[str, Any]], Reply]) -> None:
        def clicked(body: dict[str, Any], client: WebClient, respond: Respond, signature: str | None) -> None:
            request, reply = answered(services, client, body, signature, lambda request: work(request, body))
            if request is None:
                through_response_url(services, reply, respond)
            else:
                deliver(services, request, body, reply, respond)

        @app.action(_pattern(action))
        def listener(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, req: BoltRequest) -> None:
            ack_then_work(ack, services, clicked, body, client, respond, signature_of(req))

    def ref(body: dict[str, Any]) -> metadata.ItemRef:
        return metadata.load(metadata.ItemRef, body["actions"][0].get("value"))

    on(ActionId.CLAIM, lambda request, body: handlers.claim_item(request, ref(body).number))
    on(ActionId.SHOW, lambda request, body: handlers.show_card(request, ref(body).number))
    on(ActionId.HISTORY, lambda request, body: handlers.history_of(request, ref(body).number))

    def complete(request: SlackRequest, body: dict[str, Any]) -> Reply:
        target = ref(body)
        if target.milestone is None:
            raise metadata.stale()
        return handlers.complete_milestone(request, number=target.number, milestone=target.milestone)

    on(ActionId.COMPLETE_MILESTONE, complete)

    def open_milestone_form(request: SlackRequest, body: dict[str, Any]) -> Reply:
        number = ref(body).number
        with request.transaction(read_only=True) as (session, actor):
            milestones.editable_item(session, actor, number=number, doing="add milestones")
            label = actor.rules.label(number)
        return Reply(text="Opening the form…", modal=milestone_modal(
            number=number, label=label, from_home=opened_from_home(body.get("view"))))

    on(ActionId.ADD_MILESTONE, open_milestone_form)

    def open_log_form(request: SlackRequest, body: dict[str, Any]) -> Reply:
        origin = metadata.LogOrigin(from_home=True if opened_from_home(body.get("view")) else None)
        with request.transaction(read_only=True) as (session, actor):
            found = systems.list_systems(session, actor)
            view = log_modal(origin=origin, today=actor.today(), systems=found)
        return Reply(text="Opening the form…", modal=view)

    on(ActionId.LOG_FINDING, open_log_form)

    def request_ref(body: dict[str, Any]) -> metadata.RequestRef:
        return metadata.load(metadata.RequestRef, body["actions"][0].get("value"))

    on(ActionId.VERIFY, lambda request, body: review_handlers.verify_item(
        request, number=request_ref(body).number, request_id=request_ref(body).request))
    on(ActionId.APPROVE_PLAN, lambda request, body: review_handlers.approve_plan_of(
        request, ref(body).number, seen_version=ref(body).version))
    on(ActionId.DECIDE_APPROVE, lambda request, body: review_handlers.decide_request(
        request, number=request_ref(body).number, approve=True, request_id=request_ref(body).request))
    on(ActionId.DECIDE_REJECT, lambda request, body: review_handlers.decide_request(
        request, number=request_ref(body).number, approve=False, request_id=request_ref(body).request))

    def open_reject_form(request: SlackRequest, body: dict[str, Any]) -> Reply:
        target = replace(request_ref(body), from_home=True if opened_from_home(body.get("view")) else None)
        with request.transaction(read_only=True) as (session, actor):
            review.may_verify(session, actor, number=target.number, request_id=target.request)
        label = request.services.settings.rules.label(target.number)
        return Reply(text="Opening the form…", modal=reject_modal(target, label=label))

    on(ActionId.REJECT_FIX, open_reject_form)

    def turn_page(body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        def page(request: SlackRequest) -> Reply:
            return handlers.list_query(request, metadata.load(metadata.ListPage, body["actions"][0].get("value")))

        request, reply = answered(services, client, body, None, page)  # reads only: no signature to record
        if request is None:
            through_response_url(services, reply, respond)
        else:
            after_ack(services, say_privately, request, reply.text, blocks=reply.blocks, respond=respond,
                      replace_original=True)

    @app.action(_pattern(ActionId.LIST_PAGE))
    def on_page(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack_then_work(ack, services, turn_page, body, client, respond)
