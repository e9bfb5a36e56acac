"""The ``/poam`` slash command: parse, run the handler, answer privately, then follow up."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from bot.commands import interchange_handlers, reminder_handlers, review_handlers
from bot.commands.context import Reply, Services, SlackRequest, signature_of
from bot.commands.errors import answer
from bot.commands.followup import answer_after, follow_up
from bot.commands.grammar import ParseContext, UsageError, parse
from bot.commands.handlers import HANDLERS
from bot.commands.specs import SPECS
from bot.poam.clock import local_today
from bot.poam.errors import InvalidCombination

COMMAND = "/poam"
#: The handler modules; each registers its subcommands in HANDLERS when imported.
HANDLER_MODULES = (review_handlers, reminder_handlers, interchange_handlers)


def dispatch(request: SlackRequest, text: str) -> Reply:
    """Parse ``text`` (what follows ``/poam``) and run its handler; options
    that do not go together get the usage too, as any malformed command
    (COMMANDS.md)."""
    context = ParseContext(
        today=local_today(request.services.clock, request.tz),
        id_prefix=request.services.settings.poam_id_prefix,
    )
    parsed = parse(text, SPECS, context)
    try:
        return HANDLERS[parsed.spec.key](request, parsed)
    except InvalidCombination as error:  # malformed as much as a missing word is
        raise UsageError(error.message, usage=[parsed.spec.usage]) from None


def register(app: App, services: Services) -> None:
    @app.command(COMMAND)
    @services.turns.taking_turns
    def on_poam(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, req: BoltRequest) -> None:
        request_box: list[SlackRequest] = []

        def work() -> Reply:
            request = SlackRequest(
                services,
                client,
                team_id=str(body.get("team_id", "")),
                user_id=str(body.get("user_id", "")),
                channel_id=body.get("channel_id"),
                trigger_id=body.get("trigger_id"),
                signature=signature_of(req),
            )
            request_box.append(request)
            return dispatch(request, str(body.get("text", "")))

        reply = answer(work)
        late = services.answered_late()
        if reply.modal is not None or late:
            ack()
        else:
            ack(text=reply.text, blocks=reply.blocks)
        if not request_box:
            return
        if late and reply.modal is None:  # Slack no longer waits for the ack: the answer must not be lost with it
            answer_after(services, request_box[0], reply, respond=respond)
        follow_up(services, request_box[0], reply, respond=respond)
