"""Handlers for reminders and digests: remind, snooze, digest, subscribe."""

from __future__ import annotations

from bot.blockkit.blocks import day
from bot.commands.context import Reply, SlackRequest
from bot.commands.grammar import Parsed
from bot.commands.handlers import handles
from bot.commands.views import cards
from bot.poam import items
from bot.poam.errors import InvalidCombination
from bot.reminders import people, subscriptions
from bot.reminders.digest import digest_message


@handles("remind")
def remind(request: SlackRequest, cmd: Parsed) -> Reply:
    if cmd["switch"] is None and cmd["at"] is None:
        with request.transaction(read_only=True) as (session, actor):  # no wait for a writer to show them
            person = people.preferences(session, actor)
    else:
        with request.transaction() as (session, actor):
            person = people.set_preferences(session, actor, remind_at=cmd["at"], on=cmd["switch"])
    if not person.reminders_on:
        return Reply(text="Reminders off", blocks=cards.done("Your morning reminders are *off*. `/poam remind on` brings them back."))
    at = person.remind_at.strftime("%H:%M")
    return Reply(
        text="Reminders on",
        blocks=cards.done(
            f"You get a DM at *{at}* ({person.tz or 'workspace time'}) on weekdays when something needs you. "
            "`/poam remind at:08:30` changes the time; `/poam remind off` stops them."
        ),
    )


@handles("snooze")
def snooze(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        item = items.snooze_item(session, actor, number=cmd["item"], days=cmd["days"])
        label = actor.rules.label(item.number)
    assert item.snoozed_until is not None
    return Reply(text="Snoozed", blocks=cards.done(f"No reminders about *{label}* through {day(item.snoozed_until)}."))


@handles("digest")
def digest(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction(read_only=True) as (session, actor):
        text, blocks = digest_message(session, team_id=actor.team_id, clock=request.services.clock, rules=actor.rules)
    return Reply(text=text, blocks=blocks)


@handles("subscribe")
def subscribe(request: SlackRequest, cmd: Parsed) -> Reply:
    channel = request.channel_id or ""
    if cmd["weekly"] is False and (cmd["day"] is not None or cmd["at"] is not None):
        raise InvalidCombination("`off` takes no day: or at:.")
    with request.transaction() as (session, actor):
        if cmd["weekly"] is False:
            subscriptions.unsubscribe(session, actor, channel_id=channel)
            return Reply(text="Unsubscribed", blocks=cards.done("This channel no longer gets the weekly digest."))
        found = subscriptions.subscribe(session, actor, channel_id=channel, weekday=cmd["day"], post_at=cmd["at"])
    when = f"{subscriptions.WEEKDAYS[found.weekday].capitalize()}s at {found.post_at.strftime('%H:%M')}"
    return Reply(
        text="Subscribed",
        blocks=cards.done(
            f"This channel gets the weekly digest on {when} ({request.services.settings.poam_timezone}). "
            "`/poam digest` previews it."
        ),
    )
