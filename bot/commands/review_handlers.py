"""Handlers of the review workflow: submit, verify, reject, approve, deviate,
extend, decide, accept-risk, vendor, withdraw.

Verifiers are asked by DM when a fix is submitted, the authorizing official
when a deviation or extension is requested; the owner gets a DM with every
decision, and the item's channel thread one line per decision. The DMs are
queued in the change's own transaction (``direct_messages``).
"""

from __future__ import annotations

from sqlmodel import Session

from bot.blockkit.blocks import day, section
from bot.blockkit.text import escape, mention
from bot.commands import direct_messages, thread_posts
from bot.commands.context import DirectMessage, Reply, SlackRequest
from bot.commands.grammar import Parsed
from bot.commands.handlers import handles
from bot.commands.saved_forms import save_once
from bot.commands.specs import NOW
from bot.commands.views import cards
from bot.commands.views.cards import what_is_asked
from bot.commands.views.review import decision_ask, verification_ask
from bot.poam import milestones, review
from bot.poam.actor import Actor
from bot.poam.errors import InvalidCombination
from bot.poam.lifecycle import ACTIVE
from bot.store.models import Item, ReviewRequest


def _to_owner(item: Item, actor: Actor, text: str) -> list[DirectMessage]:
    """The owner hears of a decision by DM (unless they made it)."""
    if item.owner_id is None or item.owner_id == actor.user_id:
        return []
    return [DirectMessage(item.owner_id, text, [section(text)])]


def _decision(session: Session, actor: Actor, item: Item, line: str, *, reply: str) -> Reply:
    """A decision's reply, its line in the item's thread, and the owner's DM,
    queued in the decision's transaction (``session``)."""
    return Reply(
        text=reply,
        blocks=cards.done(reply),
        thread_post=thread_posts.queue(session, actor, item, line),
        queued_messages=direct_messages.queue(session, actor, number=item.number, messages=_to_owner(item, actor, line)),
    )


def _item_of(session: Session, asked: ReviewRequest) -> Item:
    """The request's item as the domain operation just loaded it: from the
    session's identity map, without a second query."""
    item = session.get(Item, asked.item_id)
    assert item is not None  # the operation has just read or written it
    return item


@handles("submit")
def submit(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        asked = review.submit_fix(session, actor, number=cmd["item"], evidence=cmd["evidence"])
        item = _item_of(session, asked)
        verifiers = review.verifiers_for(session, item, asked)
        blocks = verification_ask(item, asked, rules=actor.rules)
        label = actor.rules.label(item.number)
        asks = [DirectMessage(user, f"Please verify {label}", blocks) for user in verifiers]
        queued = direct_messages.queue(session, actor, number=item.number, messages=asks)
    text = f"{label} is submitted for verification."
    if verifiers:
        text += " Asked: " + ", ".join(mention(user) for user in verifiers) + "."
    else:
        text += (" Nobody can verify it yet: every verifier worked on it or left Slack, or there is none. An admin grants the"
                 " role to someone separate with `/poam role @someone +verifier`.")
    return Reply(text=text, blocks=cards.done(text), queued_messages=queued)


def verify_item(request: SlackRequest, *, number: int, note: str | None = None, request_id: int | None = None) -> Reply:
    with request.transaction() as (session, actor):
        item = review.verify_fix(session, actor, number=number, note=note, request_id=request_id)
        label = actor.rules.label(number)
        line = f":white_check_mark: {mention(actor.user_id)} verified the fix: *{label}* is closed (remediated)."
        return _decision(session, actor, item, line, reply=f"You verified *{label}*; it is closed.")


@handles("verify")
def verify(request: SlackRequest, cmd: Parsed) -> Reply:
    return verify_item(request, number=cmd["item"], note=cmd["note"])


def reject_item(request: SlackRequest, *, number: int, reason: str, request_id: int | None = None,
                view_id: str | None = None) -> Reply:
    """Send a fix back; from the Reject form ``view_id``, once (``saved_forms``)."""
    with request.transaction() as (session, actor):
        save_once(session, request, view_id, what="sent back")
        item = review.reject_fix(session, actor, number=number, reason=reason, request_id=request_id)
        label = actor.rules.label(number)
        line = f":leftwards_arrow_with_hook: {mention(actor.user_id)} sent the fix for *{label}* back: {escape(reason)}"
        return _decision(session, actor, item, line, reply=f"You sent *{label}* back to its owner.")


@handles("reject")
def reject(request: SlackRequest, cmd: Parsed) -> Reply:
    return reject_item(request, number=cmd["item"], reason=cmd["reason"])


def approve_plan_of(request: SlackRequest, number: int, *, seen_version: int | None = None) -> Reply:
    with request.transaction() as (session, actor):
        item = review.approve_plan(session, actor, number=number, seen_version=seen_version)
        label = actor.rules.label(number)
        line = f":memo: {mention(actor.user_id)} approved the remediation plan of *{label}*."
        return _decision(session, actor, item, line, reply=f"You approved the plan of *{label}*.")


@handles("approve")
def approve(request: SlackRequest, cmd: Parsed) -> Reply:
    return approve_plan_of(request, cmd["item"])


def _asked_the_ao(
    session: Session, actor: Actor, item: Item, asked: ReviewRequest, deciders: list[str], *, before: str = ""
) -> Reply:
    """The requester's reply (after ``before``, what else was done) and the
    deciders' DMs, queued in the request's transaction (``session``)."""
    label = actor.rules.label(item.number)
    text = f"{before} You asked for {what_is_asked(asked)} on *{label}*.".lstrip()
    if deciders:
        text += " Asked: " + ", ".join(mention(user) for user in deciders) + "."
    else:
        text += escape(" Nobody can decide it yet: every authorizing official worked on it or left Slack, or"
                       " there is none. An admin grants the role with `/poam role @someone +ao`, or names the"
                       " system's with `/poam system set <name> ao:@someone`.")
    blocks = decision_ask(item, asked, rules=actor.rules)
    asks = [DirectMessage(user, f"Decision needed on {label}", blocks) for user in deciders]
    queued = direct_messages.queue(session, actor, number=item.number, messages=asks)
    return Reply(text=text, blocks=cards.done(text), queued_messages=queued)


@handles("deviate")
def deviate(request: SlackRequest, cmd: Parsed) -> Reply:
    review.check_deviation_shape(cmd["deviation"], adjusted_severity=cmd["sev"], until=cmd["until"])
    with request.transaction() as (session, actor):
        asked = review.request_deviation(
            session, actor, number=cmd["item"], deviation=cmd["deviation"], rationale=cmd["rationale"],
            adjusted_severity=cmd["sev"], until=cmd["until"],
        )
        item = _item_of(session, asked)
        deciders = review.deciders_for(session, item, asked)
        return _asked_the_ao(session, actor, item, asked, deciders)


@handles("extend")
def extend(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        asked = review.request_extension(session, actor, number=cmd["item"], due_on=cmd["due"], reason=cmd["reason"])
        item = _item_of(session, asked)
        deciders = review.deciders_for(session, item, asked)
        return _asked_the_ao(session, actor, item, asked, deciders)


def decide_request(
    request: SlackRequest, *, number: int, approve: bool, reason: str | None = None, request_id: int | None = None
) -> Reply:
    with request.transaction() as (session, actor):
        decided = review.decide(session, actor, number=number, approve=approve, reason=reason, request_id=request_id)
        item = _item_of(session, decided)
        label = actor.rules.label(number)
        verb = "approved" if approve else "rejected"
        line = f":scales: {mention(actor.user_id)} {verb} {what_is_asked(decided)} on *{label}*"
        if reason:
            line += f": {escape(reason)}"
        reply = f"You {verb} {what_is_asked(decided)} on *{label}*."
        if approve:
            line += f" · now {cards.status_text(item)}, due {day(item.due_on)}"
            # A raised rating's shorter deadline may pass milestones (their dates count while it is worked on).
            late = milestones.open_after_due(session, item) if item.status in ACTIVE else []
            if late:
                after = (f" {', '.join(f'M{m.number} (due {day(m.due_on)})' for m in late)} now "
                         f"{'falls' if len(late) == 1 else 'fall'} after its due date, {day(item.due_on)}: "
                         f"`/poam milestone {label} move` or `/poam extend {label}`.")
                line, reply = line + "." + after, reply + after
        return _decision(session, actor, item, line, reply=reply)


@handles("decide")
def decide(request: SlackRequest, cmd: Parsed) -> Reply:
    return decide_request(request, number=cmd["item"], approve=cmd["approve"], reason=cmd["reason"])


@handles("accept-risk")
def accept_risk(request: SlackRequest, cmd: Parsed) -> Reply:
    if cmd["until"] == NOW:
        return _end_acceptance(request, cmd)
    with request.transaction() as (session, actor):
        done = review.accept_risk(session, actor, number=cmd["item"], until=cmd["until"], rationale=cmd["rationale"])
        label = actor.rules.label(done.item.number)
        did = ("accepted the risk of" if done.renewed_from is None
               else f"renewed the risk acceptance (until {day(done.renewed_from)}) of")
        line = f":shield: {mention(actor.user_id)} {did} *{label}* until {day(cmd['until'])}: {escape(cmd['rationale'])}"
        reply = f"You {did} *{label}* until {day(cmd['until'])}."
        return _decision(session, actor, done.item, line, reply=reply)


def _end_acceptance(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        item = review.end_risk_acceptance(session, actor, number=cmd["item"], rationale=cmd["rationale"])
        label = actor.rules.label(item.number)
        line = (f":shield: {mention(actor.user_id)} ended the risk acceptance of *{label}*: "
                f"{escape(cmd['rationale'])}")
        reply = f"You ended the risk acceptance of *{label}*: it is {cards.status_text(item)} again, due {day(item.due_on)}."
        return _decision(session, actor, item, line, reply=reply)


@handles("vendor")
def vendor(request: SlackRequest, cmd: Parsed) -> Reply:
    if cmd["event"] == "shipped":
        return _vendor_shipped(request, cmd)
    with request.transaction() as (session, actor):
        item = review.set_vendor(session, actor, number=cmd["item"], product=cmd["product"],
                                 checkin=cmd["event"] == "checkin")
        label = actor.rules.label(item.number)
    text = f"*{label}* waits on a vendor"
    if item.vendor_product:
        text += f" ({escape(item.vendor_product)})"
    if item.last_vendor_checkin_on:
        text += f"; last check-in {day(item.last_vendor_checkin_on)}"
    return Reply(text=f"{label} vendor dependency", blocks=cards.done(text + "."))


def _vendor_shipped(request: SlackRequest, cmd: Parsed) -> Reply:
    if cmd["product"] is not None:
        raise InvalidCombination("`product:` names what waits on a vendor; it does not go with `shipped`.")
    with request.transaction() as (session, actor):
        shipped = review.vendor_shipped(session, actor, number=cmd["item"])
        label = actor.rules.label(shipped.item.number)
        done = f"*{label}* no longer waits on a vendor."
        if shipped.extension is None:
            return Reply(text=f"{label} no longer waits on a vendor",
                         blocks=cards.done(f"{done} It stays due {day(shipped.item.due_on)}."))
        deciders = review.deciders_for(session, shipped.item, shipped.extension)
        return _asked_the_ao(session, actor, shipped.item, shipped.extension, deciders, before=done)


@handles("withdraw")
def withdraw(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        withdrawn = review.withdraw_request(session, actor, number=cmd["item"])
        label = actor.rules.label(cmd["item"])
    return Reply(text="Withdrawn", blocks=cards.done(f"You withdrew {what_is_asked(withdrawn)} on *{label}*."))
