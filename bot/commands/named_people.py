"""Learning about the people a change names, not only the person who made it.

The bot learns someone's name and time zone from Slack when they use it
(``SlackRequest``). An owner set by someone else (``/poam assign``, ``owner:``
on ``/poam log``, the log form, an import's Point of Contact), an AO named
for a system or a role given may never use it: the exports would write a bare
Slack id for them, and their reminders would come at nine in the workspace's
time zone, not theirs. So after such a change, Slack is asked about each
person named whom the bot has no name for, and what it says is recorded.

At most :data:`MAX_LOOKUPS` people per change, and none more once Slack fails
to answer: the lookups share Slack's ``users.info`` rate limit with the
requests, where a refused lookup costs a Slack admin their admin rights for
that request. People left over are asked about when a later change names them.
Someone named who turns out to be a bot is recorded as one (refused from
then on: ``presence``), and the requester is told by DM.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlmodel import Session, col, select

from bot.blockkit.blocks import sections
from bot.blockkit.text import mention
from bot.commands.context import Services, SlackRequest
from bot.commands.followup import after_ack
from bot.commands.user_events import record_person
from bot.commands.users import SlackUser
from bot.poam.clock import local_today
from bot.reminders.dispatch import send_now
from bot.store import outbox
from bot.store.counters import lock_workspace
from bot.store.engine import unit_of_work
from bot.store.models import Person

MAX_LOOKUPS = 20
#: The outbox kind of the DM telling someone that whom they named is a bot.
BOT_NAMED_KIND = "bot-named"
#: Ids per query of who has a name on record.
_CHUNK = 500


def learn_about(request: SlackRequest, user_ids: Iterable[str | None]) -> None:
    """After the ack, ask Slack about the people ``user_ids`` (the actor aside:
    their request records them) whose name the bot does not know. Call it once
    the change naming them is committed."""
    wanted = [user_id for user_id in dict.fromkeys(user_ids) if user_id and user_id != request.user_id]
    if wanted:
        after_ack(request.services, _learn, request, wanted)


def _learn(request: SlackRequest, user_ids: list[str]) -> None:
    services, team_id = request.services, request.team_id
    found: dict[str, SlackUser] = {}
    for user_id in _without_names(services, team_id, user_ids):
        user = services.users.look_up(request.client, team_id=team_id, user_id=user_id)
        if user is None:
            break
        if user.name is not None or user.bot:
            found[user_id] = user
    if not found:
        return
    with unit_of_work(services.engine) as session:
        # Every lock in one order, so that two of these (imports naming the same
        # people) cannot deadlock: the workspace row first, as record_person
        # takes it for someone who left or is back, then people's rows by id.
        lock_workspace(session, team_id=team_id)
        for user_id in sorted(found):
            record_person(session, services, team_id=team_id, user_id=user_id, known=found[user_id])
        told = []
        for user_id, user in found.items():
            row = _tell_of_bot(session, request, bot_id=user_id) if user.bot else None
            if row is not None:
                told.append(row)
    if told:
        send_now(services.engine, request.client, ids=told, clock=services.clock)


def _tell_of_bot(session: Session, request: SlackRequest, *, bot_id: str) -> int | None:
    """Queue the DM telling the requester that someone they just named is a
    bot: known only now, after the change (``presence`` refuses it from now on)."""
    now, today = request.services.clock.now(), local_today(request.services.clock, request.tz)
    text = (f"You named {mention(bot_id)} for POA&M work, but Slack says it is a bot, not a person: it gets no "
            "reminders, and what it was named for waits on nobody. Name a person in its place "
            "(`/poam assign`, `/poam system set … ao:@someone`, `/poam role … -verifier`).")
    return outbox.insert_once(session, team_id=request.team_id, recipient=request.user_id, kind=BOT_NAMED_KIND,
                              subject=f"person:{bot_id}", local_day=today, text=text, blocks=sections([text]),
                              next_attempt_at=now, created_at=now)


def _without_names(services: Services, team_id: str, user_ids: list[str]) -> Iterator[str]:
    """The first :data:`MAX_LOOKUPS` of ``user_ids`` the bot has no name for, in order."""
    left = MAX_LOOKUPS
    for start in range(0, len(user_ids), _CHUNK):
        chunk = user_ids[start:start + _CHUNK]
        with unit_of_work(services.engine, read_only=True) as session:
            named = set(
                session.exec(
                    select(Person.user_id).where(
                        Person.team_id == team_id, col(Person.user_id).in_(chunk), col(Person.name).is_not(None)
                    )
                ).all()
            )
        for user_id in chunk:
            if user_id not in named:
                yield user_id
                left -= 1
                if not left:
                    return
