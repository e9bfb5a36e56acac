"""An item's news in the channel where it was logged, as one thread, through the outbox.

The first post about an item (the "logged" line) starts the thread or, for an
item logged from a message, replies under that message; later ones go into
it. Each post is written to the outbox in the change's own transaction, as
anything that must happen is (DESIGN.md: work held only in a thread pool is
lost if the process dies), already claimed by the request, and sent just
after the ack (:func:`send`). What Slack does not take then, or what a
process that died left unsent, the scheduler's dispatcher sends later, into
the same thread: a post written before its item's thread began finds the
thread when it is sent (``bot.reminders.dispatch``).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlmodel import Session

from bot.commands.context import SlackRequest
from bot.poam.actor import Actor
from bot.reminders.dispatch import CLAIM_HOLD, send_claimed
from bot.store import outbox
from bot.store.models import OutboxMessage

#: Slack's answers that mean the bot is not in the channel (or it is gone).
NOT_THERE = frozenset({"not_in_channel", "channel_not_found"})


class PostedAbout(Protocol):
    """What a post needs of its item (an ``Item``, or a claim's ``ClaimedItem``)."""

    @property
    def number(self) -> int: ...
    @property
    def origin_channel_id(self) -> str | None: ...
    @property
    def origin_thread_ts(self) -> str | None: ...


def queue(session: Session, actor: Actor, item: PostedAbout, text: str) -> OutboxMessage | None:
    """Write a post about ``item`` to the outbox in ``session``'s transaction,
    claimed for :func:`send` after the commit; None for an item logged outside
    any channel. Each change writes its own post (``outbox.change_subject``);
    its writer is told by DM if the dispatcher gives it up later
    (``dispatch._undelivered``).

    Call it after the change's audit event is recorded, as every change
    does: recording takes the workspace's audit counter (``counters``), held
    until the commit, so the posts of one workspace get their ids in the
    order their changes commit, and a post being sent sees every post written
    before it (``outbox.earlier_unsent`` goes by id)."""
    if item.origin_channel_id is None:
        return None
    now = actor.now()
    values: dict[str, Any] = {
        "team_id": actor.team_id, "recipient": item.origin_channel_id, "kind": outbox.THREAD_POST,
        "subject": outbox.change_subject(actor.rules.label(item.number)), "local_day": actor.today(),
        "text": text, "blocks": [], "thread_ts": item.origin_thread_ts, "item_number": item.number,
        "status": outbox.SENDING, "attempts": 1, "claimed_until": now + CLAIM_HOLD, "next_attempt_at": now,
        "created_at": now, "requested_by": actor.user_id,
    }
    row_id = outbox.insert_once(session, **values)
    return OutboxMessage(id=row_id, **values)


def send(request: SlackRequest, post: OutboxMessage) -> str | None:
    """Send ``post`` (:func:`queue`, committed); what to tell the user when Slack did not take it."""
    outcome = send_claimed(request.services.engine, request.client, post, clock=request.services.clock)
    channel = f"<#{post.recipient}>"
    if outcome.error is None:  # sent, waiting for its thread, or left to the dispatcher
        return None
    if outcome.error in NOT_THERE:
        return f"I couldn't post in {channel}: invite me there with `/invite @POA&M` to get item threads."
    if outcome.status == outbox.PENDING:
        return f"Done, but Slack did not take my post in {channel} yet; I will keep trying."
    return f"Done, but I couldn't post it in {channel} ({outcome.error})."
