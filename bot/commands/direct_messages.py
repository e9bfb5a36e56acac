"""The DMs a change brings (a verifier asked, an authorizing official asked, an
owner told a decision): written to the outbox in the change's own
transaction, sent right after the ack.

Sent only from the after-ack threads, such a DM was lost when Slack failed or
the process stopped between the commit and the send, and nobody would ask
the verifier again. In the outbox it goes with the change or not at all, and
what Slack does not take at once the scheduler's dispatcher sends again, with
its backoff, until Slack takes it or refuses it for good (``poam-bot remind
--status`` lists those; the person whose change wrote it is told by DM,
``requested_by``). Unlike the dispatcher's, these go out unpaced: each
to a different person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session

from bot.blockkit.text import mention
from bot.commands.context import DirectMessage, SlackRequest
from bot.poam.actor import Actor
from bot.poam.presence import unreachable
from bot.reminders.dispatch import send_now
from bot.store import outbox

#: The outbox kind of these messages.
KIND = "review"


def queue(session: Session, actor: Actor, *, number: int, messages: Iterable[DirectMessage]) -> tuple[int, ...]:
    """Write ``messages`` (about item ``number``) to the outbox in ``session``'s
    transaction; their row ids, for :func:`send_queued` after the commit.

    Each change queues its DMs once, so the outbox's unique key has nothing to
    keep out here (``outbox.change_subject``). The row shows in ``poam-bot
    remind --status``. Nothing is written to someone Slack said left (an
    owner told a decision) or to a bot: nobody would read it.
    """
    subject = outbox.change_subject(actor.rules.label(number))
    now = actor.now()
    messages = list(messages)
    gone = unreachable(session, team_id=actor.team_id, user_ids=[message.user_id for message in messages])
    ids = []
    for message in messages:
        if message.user_id in gone:
            continue
        row_id = outbox.insert_once(
            session, team_id=actor.team_id, recipient=message.user_id, kind=KIND, subject=subject,
            local_day=actor.today(), text=message.text, blocks=message.blocks, next_attempt_at=now, created_at=now,
            requested_by=actor.user_id,
        )
        if row_id is not None:
            ids.append(row_id)
    return tuple(ids)


def send_queued(request: SlackRequest, *, ids: Sequence[int]) -> list[str]:
    """Send the DMs :func:`queue` wrote; what to tell the requester about those
    Slack did not take."""
    unsent = send_now(request.services.engine, request.client, ids=ids, clock=request.services.clock)
    return [
        f"Done, but Slack did not take my message to {mention(u.recipient)} yet; I will keep trying."
        if u.retrying
        else f"Done, but I couldn't send {mention(u.recipient)} a message about it."
        for u in unsent
    ]
