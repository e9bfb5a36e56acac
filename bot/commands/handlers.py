"""One function per ``/poam`` subcommand: parsed command in, :class:`Reply` out.

Handlers call the domain operations and build views; they never check
permissions themselves (the domain does), and each commits its change before
returning, so the reply and any later Slack call describe a committed state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from bot.blockkit.blocks import day
from bot.blockkit.text import escape, mention
from bot.commands import metadata, thread_posts
from bot.commands.context import Reply, SlackRequest
from bot.commands.grammar import Parsed
from bot.commands.named_people import learn_about
from bot.commands.specs import NONE, SPECS, TypedUserId
from bot.commands.views import cards
from bot.commands.views.modals import log_modal
from bot.poam import item_details, item_lists, items, milestones, review, roles, systems
from bot.poam.actor import Actor, Role
from bot.poam.errors import InvalidInput
from bot.poam.fields import Source
from bot.poam.item_lists import Scope
from bot.poam.severity import Severity
from bot.store.models import Item

Handler = Callable[[SlackRequest, Parsed], Reply]
HANDLERS: dict[str, Handler] = {}


def handles(key: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[key] = handler
        return handler

    return register


def _label(actor: Actor, number: int) -> str:
    return actor.rules.label(number)


@handles("help")
def help_(request: SlackRequest, cmd: Parsed) -> Reply:
    return Reply(text="/poam help", blocks=cards.help_blocks(SPECS, topic=cmd["topic"], id_prefix=request.services.settings.poam_id_prefix))


@handles("log")
def log(request: SlackRequest, cmd: Parsed) -> Reply:
    if cmd["title"] is None:
        if cmd.values:
            return Reply(text="A title is needed", blocks=cards.usage_error("The title is missing.", [cmd.spec.usage]))
        with request.transaction(read_only=True) as (session, actor):
            found = systems.list_systems(session, actor)
            view = log_modal(
                origin=metadata.LogOrigin(channel_id=request.channel_id), today=actor.today(), systems=found
            )
        return Reply(text="Opening the form…", modal=view)
    with request.transaction() as (session, actor):
        item = items.log_item(
            session,
            actor,
            title=cmd["title"],
            severity=cmd["sev"] or Severity.MODERATE,
            description=cmd["desc"],
            controls=cmd["control"] or (),
            source=cmd["source"] or Source.SELF,
            assets=cmd["asset"] or (),
            cves=cmd["cve"] or (),
            detected_on=cmd["detected"],
            due_on=cmd["due"],
            owner_id=cmd["owner"],
            system_name=cmd["system"],
            origin_channel_id=request.channel_id,
        )
        label = _label(actor, item.number)
        post = thread_posts.queue(session, actor, item, logged_line(label, item))
    learn_about(request, [item.owner_id])
    return Reply(
        text=f"Logged {label}",
        blocks=cards.done(
            f"Logged *{label}* · {escape(item.title)} · {cards.severity_text(item.severity)} · due {day(item.due_on)}"
            + ("" if cmd["sev"] else " _(severity defaulted to moderate; say `sev:` to set it)_")
        ),
        thread_post=post,
    )


def logged_line(label: str, item: Item) -> str:
    owner = f", owner {mention(item.owner_id)}" if item.owner_id else ", unclaimed"
    return (
        f":memo: {mention(item.created_by)} logged *{label}* · {escape(item.title)} · "
        f"{cards.severity_text(item.severity)} · due {day(item.due_on)}{owner}"
    )


def list_query(request: SlackRequest, query: metadata.ListPage) -> Reply:
    """A page of items; also what the Previous/Next buttons call."""
    scope = Scope(query.scope)
    with request.transaction(read_only=True) as (session, actor):
        page = item_lists.list_items(
            session,
            actor,
            scope=scope,
            severity=Severity.parse(query.sev) if query.sev else None,
            control=query.control,
            owner_id=query.owner,
            system_name=query.system,
            limit=cards.LIST_PAGE_SIZE,
            start=query.start(),
            offset=query.offset,
            ordered_on=query.ordered_on(),
        )
        blocks = cards.item_list(page, rules=actor.rules, query=query, title=cards.list_title(scope))
    return Reply(text=cards.list_title(scope), blocks=blocks)


@handles("list")
def list_(request: SlackRequest, cmd: Parsed) -> Reply:
    # The filters as the list reads them: the Next button keeps them (in at most 100 characters each).
    query = metadata.ListPage(
        scope=(cmd["scope"] or Scope.OPEN).value,
        offset=0,
        sev=cmd["sev"].value if cmd["sev"] else None,
        control=item_lists.control_filter(cmd["control"]) if cmd["control"] is not None else None,
        owner=cmd["owner"],
        system=cmd["system"].strip() if cmd["system"] is not None else None,
    )
    return list_query(request, query)


def show_card(request: SlackRequest, number: int) -> Reply:
    with request.transaction(read_only=True) as (session, actor):
        detail = item_details.show_item(session, actor, number=number, with_changes=False)
        worked_on = None
        if cards.needs_remediators(detail, actor):
            item = detail.item
            assert item.id is not None  # a stored item's
            worked_on = review.remediators(session, team_id=actor.team_id, item_id=item.id, owner_id=item.owner_id)
        blocks = cards.item_card(detail, viewer=actor, remediators=worked_on)
        label = _label(actor, number)
    return Reply(text=label, blocks=blocks)


@handles("show")
def show(request: SlackRequest, cmd: Parsed) -> Reply:
    return show_card(request, cmd["item"])


def claim_item(request: SlackRequest, number: int) -> Reply:
    with request.transaction() as (session, actor):
        item = items.claim_item(session, actor, number=number)
        label = _label(actor, number)
        post = thread_posts.queue(session, actor, item, f":raising_hand: {mention(request.user_id)} claimed *{label}*")
    return Reply(
        text=f"You own {label}",
        blocks=cards.done(f"You now own *{label}* · {escape(item.title)}. Next: `/poam plan {label} …`"),
        thread_post=post,
    )


@handles("claim")
def claim(request: SlackRequest, cmd: Parsed) -> Reply:
    return claim_item(request, cmd["item"])


@handles("release")
def release(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        items.release_item(session, actor, number=cmd["item"])
        label = _label(actor, cmd["item"])
    return Reply(text=f"Released {label}", blocks=cards.done(f"*{label}* is unowned again."))


@handles("assign")
def assign(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        items.assign_item(session, actor, number=cmd["item"], owner_id=cmd["user"])
        label = _label(actor, cmd["item"])
    learn_about(request, [cmd["user"]])
    return Reply(text=f"Assigned {label}", blocks=cards.done(f"*{label}* is now owned by {mention(cmd['user'])}."))


@handles("plan")
def plan(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        items.set_plan(session, actor, number=cmd["item"], plan=cmd["plan"], resources=cmd["resources"])
        label = _label(actor, cmd["item"])
    return Reply(
        text=f"Plan set for {label}",
        blocks=cards.done(f"Plan set for *{label}*. Add milestones: `/poam milestone {label} add … due:…`"),
    )


def add_milestone(request: SlackRequest, *, number: int, text: str, due_on: date) -> Reply:
    with request.transaction() as (session, actor):
        milestone = milestones.add_milestone(session, actor, number=number, description=text, due_on=due_on)
        label = _label(actor, number)
    return Reply(
        text=f"Added M{milestone.number}",
        blocks=cards.done(f"Added *M{milestone.number}* to *{label}*, due {day(milestone.due_on)}."),
    )


@handles("milestone add")
def milestone_add(request: SlackRequest, cmd: Parsed) -> Reply:
    return add_milestone(request, number=cmd["item"], text=cmd["text"], due_on=cmd["due"])


def complete_milestone(request: SlackRequest, *, number: int, milestone: int, note: str | None = None) -> Reply:
    with request.transaction() as (session, actor):
        milestones.complete_milestone(session, actor, number=number, milestone=milestone, note=note)
        label = _label(actor, number)
    return Reply(text=f"M{milestone} done", blocks=cards.done(f"*M{milestone}* of *{label}* is complete."))


@handles("milestone done")
def milestone_done(request: SlackRequest, cmd: Parsed) -> Reply:
    return complete_milestone(request, number=cmd["item"], milestone=cmd["milestone"], note=cmd["note"])


@handles("milestone move")
def milestone_move(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        moved = milestones.move_milestone(
            session, actor, number=cmd["item"], milestone=cmd["milestone"], due_on=cmd["due"], reason=cmd["reason"]
        )
        label = _label(actor, cmd["item"])
    return Reply(
        text=f"Moved M{moved.number}",
        blocks=cards.done(
            f"*M{moved.number}* of *{label}* is now due {day(moved.due_on)} "
            f"(planned {day(moved.planned_due_on)}); the change is on the record."
        ),
    )


def history_of(request: SlackRequest, number: int) -> Reply:
    with request.transaction(read_only=True) as (session, actor):
        events = items.item_history(session, actor, number=number)
        label = _label(actor, number)
    return Reply(text=f"History of {label}", blocks=cards.history(events, label=label))


@handles("history")
def history(request: SlackRequest, cmd: Parsed) -> Reply:
    return history_of(request, cmd["item"])


@handles("systems")
def systems_(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction(read_only=True) as (session, actor):
        found = systems.list_systems(session, actor)
        blocks = cards.systems(found)
    return Reply(text="Information systems", blocks=blocks)


@handles("system add")
def system_add(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction() as (session, actor):
        system = systems.add_system(
            session,
            actor,
            name=cmd["name"],
            impact=cmd["impact"] or systems.Impact.MODERATE,
            organization=None if cmd["org"] == NONE else cmd["org"],  # as on `system set`: no organization
            ao_user_id=cmd["ao"],
            fedramp=cmd["fedramp"],
        )
    learn_about(request, [cmd["ao"]])
    return Reply(
        text="System added",
        blocks=cards.done(f"Added the system *{escape(system.name)}* ({system.impact} impact)."),
    )


@handles("system set")
def system_set(request: SlackRequest, cmd: Parsed) -> Reply:
    ao, org, fedramp = cmd["ao"], cmd["org"], cmd["fedramp"]
    with request.transaction() as (session, actor):
        system, changes = systems.change_system(
            session,
            actor,
            name=cmd["name"],
            impact=cmd["impact"],
            organization=None if org == NONE else org,
            ao_user_id=None if ao == NONE else ao,
            fedramp=None if fedramp == NONE else fedramp,
            remove_organization=org == NONE,
            remove_ao=ao == NONE,
            remove_fedramp=fedramp == NONE,
        )
    name = f"*{escape(system.name)}*"
    if not changes:
        return Reply(text="Nothing changed", blocks=cards.done(f"{name} already has those settings; nothing changed."))
    if ao and ao != NONE:
        learn_about(request, [ao])
    return Reply(text="System changed", blocks=cards.done(f"Changed {name}: " + "; ".join(
        _system_change(what, change) for what, change in changes.items()
    ) + "."))


def _system_change(what: str, change: dict[str, object]) -> str:
    """``authorizing official <@U1> (was <@U2>)``, ``impact high (was moderate)``,
    ``no organization (was Acme)``."""
    def shown(value: object) -> str:
        if value is None:
            return "none"
        return mention(str(value)) if what == "ao" else escape(str(value))

    label = {"ao": "authorizing official", "impact": "impact", "organization": "organization",
             "fedramp_id": "FedRAMP package ID"}[what]
    if change["to"] is None:
        return f"no {label} (was {shown(change['from'])})"
    return f"{label} {shown(change['to'])} (was {shown(change['from'])})"


@handles("roles")
def roles_(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction(read_only=True) as (session, actor):
        by_user = roles.list_roles(session, actor)
        found = systems.list_systems(session, actor)
    system_aos = [(system.name, system.ao_user_id) for system in found if system.ao_user_id]
    return Reply(text="Roles", blocks=cards.roles(by_user, sorted(request.services.settings.poam_admins), system_aos))


@handles("role")
def role(request: SlackRequest, cmd: Parsed) -> Reply:
    grant, which = cmd["change"]
    user = cmd["user"]
    if grant and isinstance(user, TypedUserId):
        raise InvalidInput("Mention the person to give them a role; a typed id only takes one back.")
    with request.transaction() as (session, actor):
        if grant:
            roles.grant_role(session, actor, user_id=user, role=which)
        else:
            roles.revoke_role(session, actor, user_id=user, role=which)
        still_ao_of = systems.named_ao_of(session, actor, user_id=user) if which is Role.AO and not grant else []
    if grant:
        learn_about(request, [user])
    said = f"{mention(user)} {'is now' if grant else 'is no longer'} {which.noun}"
    if still_ao_of:  # the AO a system names decides for it whatever their roles
        said += (" by role, and is still the authorizing official of "
                 + ", ".join(f"*{escape(name)}*" for name in still_ao_of)
                 + ", as the system names them" + escape(" (`/poam system set <name> ao:…` changes that)"))
    return Reply(text="Roles changed", blocks=cards.done(said + "."))

