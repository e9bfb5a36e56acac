"""What happens after the ack: open a form, post in the item's thread, send DMs,
report failures to the person who acted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.client import HTTPException
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.blockkit.blocks import section
from bot.commands import thread_posts
from bot.commands.context import Later, Reply, Services, SlackRequest
from bot.commands.direct_messages import send_queued
from bot.commands.errors import unexpected
from bot.commands.users import quick_client
from bot.rate_limits import waiting_longer

log = logging.getLogger(__name__)


def after_ack(services: Services, work: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
    """Run ``work(*args, **kwargs)`` on the after-ack threads, not in a
    listener's turn (``turns``): turns are few, and a slow Slack call (retries,
    Retry-After waits) in one would hold up everyone's acks."""
    _submit(services.after_ack.submit, work, args, kwargs)


def ack_then_work(ack: Ack, services: Services, work: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
    """For a listener whose ack carries nothing (a button, a shortcut): ack now,
    without waiting for a turn, then run ``work`` in one (``turns``), on a
    listener thread: it may wait up to 2 s for the database (a form it answers
    with opens on the form threads)."""
    ack()
    _submit(services.turns.later, work, args, kwargs)


def on_form_threads(services: Services, work: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
    """Run ``work``, which opens a view, on the form threads: a trigger id
    expires 3 seconds after the request, too soon to wait in the after-ack
    queue, and a listener's turn is not for waiting on Slack."""
    _submit(services.forms.submit, work, args, kwargs)


def in_turn(services: Services, work: Callable[..., object], /, *args: Any, **kwargs: Any) -> None:
    """Run an export or an import on the heavy-work threads, a few at a time
    (``HEAVY_WORK_AT_ONCE``), so that few files sit in memory at once; the
    others wait in the queue, not on a thread."""
    _submit(services.heavy_work.submit, work, args, kwargs)


def _submit(
    submit: Callable[[Callable[[], None]], object],
    work: Callable[..., object],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """``work`` tells the user about the failures it expects; anything else that
    escapes it is logged here with its traceback (a thread pool would keep it
    in a future nobody reads). ``submit`` hands ``run`` to a pool."""

    def run() -> None:
        try:
            work(*args, **kwargs)
        except Exception:
            log.exception("work after the ack failed (%s)", getattr(work, "__qualname__", work))

    submit(run)


def answer_after(services: Services, request: SlackRequest, reply: Reply, *, respond: Respond | None) -> None:
    """Give ``reply`` after the ack: by the response URL, else privately in the
    channel, else by DM (:func:`say_privately`)."""
    after_ack(services, say_privately, request, reply.text, blocks=reply.blocks, respond=respond)


def follow_up(services: Services, request: SlackRequest, reply: Reply, *, respond: Respond | None) -> None:
    """After the ack: open the reply's form, if it has one, on the form threads
    (the answer need not wait for it), then queue the rest (:func:`finish`) on
    the after-ack threads, if there is any."""
    if reply.modal is not None:
        on_form_threads(services, _open_form_then_finish, services, request, reply, respond=respond)
    else:
        _finish_later(services, request, reply, [], respond=respond)


def _open_form_then_finish(services: Services, request: SlackRequest, reply: Reply, *, respond: Respond | None) -> None:
    _finish_later(services, request, reply, open_form(request, reply), respond=respond)


def _finish_later(
    services: Services, request: SlackRequest, reply: Reply, problems: list[str], *, respond: Respond | None
) -> None:
    if problems or reply.thread_post is not None or reply.queued_messages or reply.later:
        after_ack(services, finish, request, reply, problems, respond=respond)


def open_form(request: SlackRequest, reply: Reply) -> list[str]:
    """Open the reply's modal now: its trigger id expires 3 seconds after the
    click, too soon to wait in a queue. The problem to tell the user, if it
    could not be opened."""
    if reply.modal is None:
        return []
    try:
        open_view(request, reply.modal)
    except (SlackApiError, SlackClientError, OSError, ValueError) as error:
        log.warning("views.open failed: %s", error)
        return ["I couldn't open the form (Slack said no); try again in a moment."]
    return []


def finish(request: SlackRequest, reply: Reply, problems: list[str], *, respond: Respond | None) -> None:
    """Send the reply's post in the item's thread and its DMs, and tell the
    user what failed (``problems`` so far included); queue its slow work
    (:func:`in_turn`)."""
    problems = list(problems)
    if reply.thread_post is not None:
        try:
            problem = thread_posts.send(request, reply.thread_post)
        except Exception as error:  # the dispatcher sends it later; the user hears why not now
            problem = unexpected(error, "posting in the item's thread")
        if problem:
            problems.append(problem)
    if reply.queued_messages:
        try:
            problems += send_queued(request, ids=reply.queued_messages)
        except Exception as error:  # the dispatcher sends them later; the user hears why not now
            problems.append(unexpected(error, "sending the messages about it"))
    for problem in problems:
        tell(request, problem, respond=respond)
    for work in reply.later:
        in_turn(request.services, _later, request, work, respond=respond)


def _later(request: SlackRequest, work: Later, *, respond: Respond | None) -> None:
    """Run slow work (an export), then tell the user what failed, if anything."""
    try:
        problem = work(request)
    except Exception as error:  # reported to the user below, with a logged reference
        problem = unexpected(error, "finishing your request")
    if problem:
        tell(request, problem, respond=respond)


def open_view(request: SlackRequest, view: dict[str, Any]) -> None:
    """Open ``view`` where the user is: pushed onto their open modal, else a new
    one. One quick try (the trigger id is good for 3 seconds: a retry after a
    timeout would come too late). Raises Slack's errors, or ValueError when the
    request has no trigger id."""
    if request.trigger_id is None:
        raise ValueError("no trigger id")
    client = quick_client(request.client)
    opening = client.views_push if request.in_modal else client.views_open
    opening(trigger_id=request.trigger_id, view=view)


def tell(request: SlackRequest, text: str, *, respond: Respond | None) -> None:
    """A private note to the requester saying what failed (:func:`say_privately`).

    ``text`` is mrkdwn we wrote (any user text in it already escaped)."""
    say_privately(request, text, blocks=[section(text)], respond=respond)


def say_privately(
    request: SlackRequest, text: str, *, blocks: list[dict[str, Any]], respond: Respond | None,
    replace_original: bool = False,
) -> None:
    """Show ``text`` and ``blocks`` to the requester alone: through the
    response URL when there is one (``replace_original`` there only); when
    there is none, or Slack refuses the post (a URL is good for 5 posts in 30
    minutes), as a new ephemeral message in the request's channel; when that
    is refused too (the bot is not in the channel), as a direct message. Each
    step is logged, not raised: this is the answer to a change already made,
    and it must not be lost. (A step that timed out may have reached Slack
    all the same: then the answer shows twice, which is better than never.)

    No outbox row keeps it: it waits out a 429 of up to a minute
    (``rate_limits.waiting_longer``) rather than be lost.
    """
    if respond is not None and respond.response_url is not None:  # a click in a view has none
        try:
            if respond(text=text, blocks=blocks, response_type="ephemeral",
                       replace_original=replace_original).status_code == 200:
                return
        except (SlackClientError, OSError, HTTPException) as error:
            log.warning("a response URL post to %s failed: %s", request.user_id, error)
    client = waiting_longer(request.client)
    if request.channel_id:
        try:
            client.chat_postEphemeral(channel=request.channel_id, user=request.user_id, text=text, blocks=blocks)
            return
        except (SlackApiError, SlackClientError, OSError) as error:
            log.warning("an ephemeral message to %s failed: %s", request.user_id, error)
    try:
        client.chat_postMessage(channel=request.user_id, text=text, blocks=blocks)
    except (SlackApiError, SlackClientError, OSError) as error:
        log.warning("could not tell %s: %s (%s)", request.user_id, text[:200], error)
