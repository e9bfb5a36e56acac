"""Form submissions (*Log a finding*, *Add milestone*) and the message shortcut.

A refused submission keeps the form open with the message beside the field at
fault; an accepted one turns the form into a confirmation.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.blockkit.blocks import Block, section
from bot.blockkit.text import escape, plain_text
from bot.commands import handlers, interchange_handlers, metadata, review_handlers, thread_posts
from bot.commands.actions import answered, request_from, through_response_url
from bot.commands.context import Reply, Services, SlackRequest, signature_of
from bot.commands.errors import BUSY, unexpected
from bot.commands.followup import (
    ack_then_work,
    after_ack,
    answer_after,
    follow_up,
    in_turn,
    say_privately,
    tell,
)
from bot.commands.home import publish_home
from bot.commands.ids import VALUE, BlockId, CallbackId
from bot.commands.named_people import learn_about
from bot.commands.saved_forms import SavedBefore, save_once
from bot.commands.users import quick_client
from bot.commands.views import cards
from bot.commands.views.modals import LOG_FIELD_BLOCKS, item_modal, log_modal
from bot.interchange.findings import ImportFormatError
from bot.poam import items, milestones, systems
from bot.poam.errors import AlreadyDecided, InvalidInput, PoamError
from bot.poam.fields import Source
from bot.poam.severity import Severity
from bot.rate_limits import waiting_longer
from bot.store.engine import is_busy

log = logging.getLogger(__name__)


class FormValues:
    """The values of a submitted view's input blocks, by block id."""

    def __init__(self, view: dict[str, Any]) -> None:
        self._values: dict[str, dict[str, Any]] = (view.get("state") or {}).get("values") or {}

    def _element(self, block: BlockId) -> dict[str, Any]:
        return self._values.get(block, {}).get(VALUE) or {}

    def text(self, block: BlockId) -> str | None:
        value = self._element(block).get("value")
        return value if isinstance(value, str) and value.strip() else None

    def words(self, block: BlockId) -> list[str]:
        return [word.strip() for word in (self.text(block) or "").replace("\n", ",").split(",") if word.strip()]

    def selected(self, block: BlockId) -> str | None:
        chosen = self._element(block).get("selected_option") or {}
        value = chosen.get("value")
        return value if isinstance(value, str) else None

    def user(self, block: BlockId) -> str | None:
        value = self._element(block).get("selected_user")
        return value if isinstance(value, str) else None

    def day(self, block: BlockId, *, field: str) -> date | None:
        """The picked date; ``field`` names the operation's argument for errors."""
        value = self._element(block).get("selected_date")
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise InvalidInput("That is not a date.", field=field) from None


def _refuse(ack: Ack, services: Services, request: SlackRequest | None, error: PoamError, *,
            blocks: dict[str, BlockId], fallback: BlockId) -> None:
    field = error.field if isinstance(error, InvalidInput) else None
    block = blocks.get(field or "", fallback)
    ack(response_action="errors", errors={block: error.message[:300]})
    _refused_late(services, request, error.message)


def _failed(ack: Ack, services: Services, request: SlackRequest | None, error: Exception, *,
            fallback: BlockId) -> None:
    """A busy database or a bug while saving a form: said on the form (logged
    with a reference), never Slack's bare "couldn't connect" error."""
    message = BUSY if is_busy(error) else unexpected(error, "saving the form")
    ack(response_action="errors", errors={fallback: message[:300]})
    _refused_late(services, request, message)


def _refused_late(services: Services, request: SlackRequest | None, message: str,
                  blocks: list[Block] | None = None) -> None:
    """A refusal answered past Slack's wait for the ack (``answered_late``):
    the ack still says it on the form (should Slack be listening yet), and
    a private message says it too, since Slack showed only that it could not
    connect, and nothing was saved."""
    if request is not None and services.answered_late():
        said = blocks or cards.refusal(f"Your form was not saved: {message}")
        answer_after(services, request, Reply(text=escape(message), blocks=said), respond=None)


def _confirmation(reply: Reply) -> dict[str, Any]:
    return item_modal(label="POA&M", blocks=reply.blocks)


def _confirm(ack: Ack, services: Services, request: SlackRequest, reply: Reply, *, from_home: bool | None) -> None:
    """The form becomes ``reply``'s confirmation; when the save took longer
    than Slack waits for the ack, the form is closed and the confirmation
    goes by DM. A form opened from the App Home (``from_home``) publishes it
    again, to show what was saved."""
    if services.answered_late():
        ack()
        answer_after(services, request, reply, respond=None)
    else:
        ack(response_action="update", view=_confirmation(reply))
    if from_home:
        after_ack(services, publish_home, request)


def _saved_before(ack: Ack, services: Services, request: SlackRequest | None, error: SavedBefore) -> None:
    ack(response_action="update", view=_confirmation(Reply(text=error.message, blocks=cards.done(error.message))))
    _refused_late(services, request, error.message, cards.done(error.message))


def register(app: App, services: Services) -> None:
    @app.view(CallbackId.LOG_MODAL)
    @services.turns.taking_turns
    def on_log_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, req: BoltRequest) -> None:
        request = None
        try:
            request = request_from(services, client, body, signature=signature_of(req))
            origin = metadata.load(metadata.LogOrigin, view.get("private_metadata"))
            form = FormValues(view)
            with request.transaction() as (session, actor):
                save_once(session, request, view.get("id"), what="logged")
                item = items.log_item(
                    session,
                    actor,
                    title=form.text(BlockId.TITLE) or "",
                    severity=Severity.parse(form.selected(BlockId.SEVERITY) or "moderate"),
                    description=form.text(BlockId.DESCRIPTION),
                    controls=form.words(BlockId.CONTROLS),
                    source=Source.parse(form.selected(BlockId.SOURCE) or "self"),
                    assets=form.words(BlockId.ASSETS),
                    cves=form.words(BlockId.CVES),
                    detected_on=form.day(BlockId.DETECTED, field="detected_on"),
                    due_on=form.day(BlockId.DUE, field="due_on"),
                    owner_id=form.user(BlockId.OWNER),
                    system_name=form.selected(BlockId.SYSTEM),
                    origin_channel_id=origin.channel_id,
                    origin_thread_ts=origin.message_ts,
                    source_message_url=origin.permalink,
                )
                label = actor.rules.label(item.number)
                post = thread_posts.queue(session, actor, item, handlers.logged_line(label, item))
        except SavedBefore as error:
            _saved_before(ack, services, request, error)
            return
        except PoamError as error:
            _refuse(ack, services, request, error, blocks=dict(LOG_FIELD_BLOCKS), fallback=BlockId.TITLE)
            return
        except Exception as error:
            _failed(ack, services, request, error, fallback=BlockId.TITLE)
            return
        reply = Reply(
            text=f"Logged {label}",
            blocks=cards.done(f"Logged *{label}*. `/poam show {label}` shows it; `/poam claim {label}` takes it."),
            thread_post=post,
        )
        _confirm(ack, services, request, reply, from_home=origin.from_home)
        follow_up(services, request, reply, respond=None)
        learn_about(request, [item.owner_id])

    @app.view(CallbackId.MILESTONE_MODAL)
    @services.turns.taking_turns
    def on_milestone_submitted(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, req: BoltRequest
    ) -> None:
        form = FormValues(view)
        request = None
        try:
            request = request_from(services, client, body, signature=signature_of(req))
            target = metadata.load(metadata.ItemRef, view.get("private_metadata"))
            due_on = form.day(BlockId.MILESTONE_DUE, field="due_on")
            if due_on is None:
                raise InvalidInput("Pick a date.", field="due_on")
            with request.transaction() as (session, actor):
                save_once(session, request, view.get("id"), what="added")
                milestone = milestones.add_milestone(
                    session, actor, number=target.number, description=form.text(BlockId.MILESTONE_TEXT) or "", due_on=due_on
                )
                label = actor.rules.label(target.number)
        except SavedBefore as error:
            _saved_before(ack, services, request, error)
            return
        except PoamError as error:
            _refuse(
                ack,
                services,
                request,
                error,
                blocks={"due_on": BlockId.MILESTONE_DUE, "description": BlockId.MILESTONE_TEXT},
                fallback=BlockId.MILESTONE_TEXT,
            )
            return
        except Exception as error:
            _failed(ack, services, request, error, fallback=BlockId.MILESTONE_TEXT)
            return
        added = Reply(text="Added", blocks=cards.done(f"Added *M{milestone.number}* to *{label}*."))
        _confirm(ack, services, request, added, from_home=target.from_home)

    @app.view(CallbackId.REJECT_MODAL)
    @services.turns.taking_turns
    def on_reject_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, req: BoltRequest) -> None:
        request = None
        try:
            request = request_from(services, client, body, signature=signature_of(req))
            target = metadata.load(metadata.RequestRef, view.get("private_metadata"))
            reply = review_handlers.reject_item(
                request, number=target.number, reason=FormValues(view).text(BlockId.REASON) or "", request_id=target.request,
                view_id=view.get("id"),
            )
        except SavedBefore as error:
            _saved_before(ack, services, request, error)
            return
        except AlreadyDecided as error:  # someone decided while the form was open: who, in its place
            refused = cards.refusal(error.message, decided_by=error.decided_by)
            ack(response_action="update", view=item_modal(label="POA&M", blocks=refused))
            _refused_late(services, request, error.message, refused)
            return
        except PoamError as error:
            _refuse(ack, services, request, error, blocks={}, fallback=BlockId.REASON)
            return
        except Exception as error:
            _failed(ack, services, request, error, fallback=BlockId.REASON)
            return
        _confirm(ack, services, request, reply, from_home=target.from_home)
        follow_up(services, request, reply, respond=None)

    def _import_step(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, req: BoltRequest, *, confirm: bool
    ) -> None:
        """Check (or, confirmed, run) an import after the ack; the form shows the outcome."""
        try:
            request = request_from(services, client, body, signature=signature_of(req))
            upload = (
                metadata.load(metadata.UploadedFile, view.get("private_metadata"))
                if confirm
                else interchange_handlers.uploaded_file(view)
            )
        except (PoamError, ImportFormatError) as error:
            if confirm:  # the checked form has no input block for Slack to show an error under
                ack(response_action="update", view=item_modal(label="Import findings", blocks=cards.refusal(str(error)[:300])))
            else:
                ack(response_action="errors", errors={BlockId.FILE: str(error)[:300]})
            return
        working = "Importing…" if confirm else "Checking the file…"
        ack(response_action="update", view=item_modal(label="Import findings", blocks=[section(working)]))
        in_turn(services, _finish_import_step, request, upload, view_id=view.get("id"), client=client, confirm=confirm)

    def _finish_import_step(
        request: SlackRequest, upload: metadata.UploadedFile, *, view_id: str | None, client: WebClient, confirm: bool
    ) -> None:
        """Download, check or import, and show the outcome on the form."""
        try:
            summary, numbers = interchange_handlers.check_or_import(request, upload, confirm=confirm, view_id=view_id)
            result = interchange_handlers.result_view(upload, summary, problem=None, confirmed=confirm, numbers=numbers)
        except SavedBefore as error:  # Import pressed again: the first press's outcome stands
            result = interchange_handlers.result_view(upload, None, problem=None, confirmed=True,
                                                      saved_before=error.message)
        except (PoamError, ImportFormatError) as error:
            result = interchange_handlers.result_view(upload, None, problem=str(error), confirmed=confirm)
        except OSError as error:
            log.warning("downloading %s failed: %s", upload.url, error)
            result = interchange_handlers.result_view(upload, None, problem="I could not download it from Slack.", confirmed=confirm)
        except Exception as error:  # the form must not hang on "Checking…": say so, with a logged reference
            problem = unexpected(error, "importing the file")
            result = interchange_handlers.result_view(upload, None, problem=problem, confirmed=confirm)
        try:  # an import's outcome is not lost to a 429
            waiting_longer(client).views_update(view_id=view_id, view=result)
        except (SlackApiError, SlackClientError, OSError) as error:  # the form closed, or Slack is failing
            log.warning("views.update after an import step failed: %s", error)
            text, blocks = interchange_handlers.result_message(result)
            say_privately(request, text, blocks=blocks, respond=None)

    @app.view(CallbackId.IMPORT_MODAL)
    def on_import_checked(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, req: BoltRequest) -> None:
        _import_step(ack, body, view, client, req, confirm=False)

    @app.view(CallbackId.IMPORT_CONFIRM)
    def on_import_confirmed(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, req: BoltRequest) -> None:
        _import_step(ack, body, view, client, req, confirm=True)

    @app.shortcut(CallbackId.LOG_FROM_MESSAGE)
    def on_log_from_message(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond,
                            req: BoltRequest) -> None:
        ack_then_work(ack, services, open_log_form, body, client, respond, signature_of(req))

    def open_log_form(body: dict[str, Any], client: WebClient, respond: Respond, signature: str | None) -> None:
        def work(request: SlackRequest) -> Reply:
            message = body.get("message") or {}
            text = plain_text(str(message.get("text") or "")).strip()
            first_line = text.splitlines()[0] if text else ""
            # A reply in a thread is posted about in that thread (Slack threads are one level deep).
            thread = message.get("thread_ts") or message.get("ts")
            link = _permalink(client, request.channel_id, message.get("ts"))  # to the message itself, not its thread
            origin = metadata.LogOrigin(channel_id=request.channel_id, message_ts=thread, permalink=link)
            with request.transaction(read_only=True) as (session, actor):
                found = systems.list_systems(session, actor)
                view = log_modal(
                    origin=origin,
                    today=actor.today(),
                    systems=found,
                    title=first_line[: items.MAX_TITLE],
                    description=text,
                )
            return Reply(text="Opening the form…", modal=view)

        request, reply = answered(services, client, body, signature, work)
        if request is None:
            through_response_url(services, reply, respond)
            return
        follow_up(services, request, reply, respond=None)
        if reply.modal is None:  # a refusal, told like a change's answer
            after_ack(services, tell, request, reply.text, respond=None)


def _permalink(client: WebClient, channel_id: str | None, message_ts: str | None) -> str | None:
    """A link back to the message a finding is logged from, if Slack gives one."""
    if channel_id is None or message_ts is None:
        return None
    try:
        answer = quick_client(client).chat_getPermalink(channel=channel_id, message_ts=message_ts)
        return str(answer["permalink"])
    except (SlackApiError, SlackClientError, OSError, KeyError) as error:
        log.warning("chat.getPermalink failed: %s", error)
        return None
