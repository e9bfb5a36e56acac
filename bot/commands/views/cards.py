"""Messages and cards: an item, a list of items, a history, roles, systems, help."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from bot.blockkit.blocks import (
    MAX_MESSAGE_BLOCKS,
    MESSAGE_TEXT_BUDGET,
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    day,
    fair_shares,
    fields_section,
    lines_within,
    moment,
    option,
    section,
    sections,
    text_size,
)
from bot.blockkit.text import clip, clip_markup, escape, mention
from bot.commands import metadata
from bot.commands.grammar import Spec
from bot.commands.ids import ActionId
from bot.poam.actor import Actor, Role, Rules
from bot.poam.errors import PermissionDenied
from bot.poam.item_details import ItemDetail, MilestoneRow, RequestRow
from bot.poam.item_lists import ItemLine, ItemPage, Scope, is_overdue
from bot.poam.lifecycle import ACTIVE, Action, Status, allowed_from
from bot.poam.permissions import Remediators, is_authorizing_official, require_authorizing_official, require_verifier
from bot.poam.review import Deviation, RequestKind, RequestStatus, awaits_plan_approval, due_after_adjustment
from bot.poam.severity import Severity
from bot.store.models import AuditEvent, InfoSystem, Item, ReviewRequest
from bot.store.rows import Columns

LIST_PAGE_SIZE = 20
HISTORY_LIMIT = 40
#: A card's milestones, in characters (a section holds 3,000): whole lines, the rest counted.
MILESTONES_TEXT = 2_800
#: The most characters of a card's own words around its free text (headings,
#: "Waiting on …", "…and 3 more.").
CARD_WORDING = 500

_SEVERITY_MARK = {
    Severity.CRITICAL: ":red_circle: Critical",
    Severity.HIGH: ":large_orange_circle: High",
    Severity.MODERATE: ":large_yellow_circle: Moderate",
    Severity.LOW: ":white_circle: Low",
}


def severity_text(value: str) -> str:
    return _SEVERITY_MARK[Severity(value)]


def status_text(item: Item | ItemLine | Columns) -> str:
    """``closed (false positive)``, ``risk accepted until Fri 1 Jan 2027``…"""
    text = Status(item.status).label
    if item.closure:
        text += f" ({item.closure.replace('_', ' ')})"
    if item.risk_accepted_until and item.status == Status.RISK_ACCEPTED:
        text += f" until {day(item.risk_accepted_until)}"
    return text


def rating_text(item: Item | Columns) -> str:
    """The severity, with the original one when a risk adjustment changed it."""
    if item.adjusted_severity and item.adjusted_severity != item.severity:
        return f"{severity_text(item.adjusted_severity)} (adjusted from {item.severity})"
    return severity_text(item.severity)


def owner_text(item: Item | ItemLine | Columns) -> str:
    return mention(item.owner_id) if item.owner_id else "_unclaimed_"


def due_text(item: Item | ItemLine | Columns, today: date) -> str:
    text = day(item.due_on)
    if is_overdue(item, today=today):
        text += f" :warning: *overdue {(today - item.due_on).days}d*"
    return text


def next_milestone(milestones: Sequence[MilestoneRow]) -> MilestoneRow | None:
    pending = [m for m in milestones if m.completed_at is None]
    return min(pending, key=lambda m: (m.due_on, m.number)) if pending else None


def _milestone_line(milestone: MilestoneRow, today: date, *, dates_count: bool) -> str:
    """A milestone of the card; late only where the item's dates still count
    (``dates_count``: not once it closed, nor while its risk is accepted)."""
    text = f"*M{milestone.number}* {escape(milestone.description)} · due {day(milestone.due_on)}"
    if milestone.due_on != milestone.planned_due_on:
        text += f" (planned {day(milestone.planned_due_on)})"
    if milestone.completed_at is not None:
        text = f":white_check_mark: ~{text}~"
    elif dates_count and milestone.due_on < today:
        text += " :warning: late"
    return text


def item_card(detail: ItemDetail, *, viewer: Actor, remediators: Remediators | None = None) -> list[Block]:
    """``/poam show``: the item, its milestones, and the buttons this viewer may
    use: those of a verifier or an authorizing official only given who worked
    on the fix (``remediators``, :func:`needs_remediators`).

    Its free text (description, plan, resources, the request waiting, the
    milestones) shares what a message holds beside the rest: each part near
    its most at once made a card Slack refused (``msg_blocks_too_long``)."""
    item, today, rules = detail.item, viewer.today(), viewer.rules
    label = rules.label(item.number)
    head: list[Block] = [
        section(f"*{label}* · {escape(item.title)}"),
        fields_section(
            [
                ("Status", status_text(item)),
                ("Severity", rating_text(item)),
                ("Owner", owner_text(item)),
                ("Due", due_text(item, today)),
                ("Detected", day(item.detected_on)),
                ("System", escape(detail.system.name)),
                ("Controls", escape(", ".join(detail.controls)) or "—"),
                # 350 characters: escaped (& is &amp;), still within a field's 2,000.
                ("Assets", escape(clip(", ".join(item.assets), 350)) or "—"),
                ("CVEs", escape(clip(", ".join(item.cves), 500)) or "—"),
            ]
        ),
    ]
    tail: list[Block] = []
    if item.recurs_number is not None:
        tail.append(context(f"Found again after *{rules.label(item.recurs_number)}* was closed."))
    if item.source_message_url:
        tail.append(context(f"<{escape(item.source_message_url)}|Logged from this message>"))
    buttons = _card_buttons(detail, viewer, remediators)
    if buttons:
        tail.append(actions(*buttons))
    waiting = pending_of(detail)
    dates_count = item.status in ACTIVE
    lines = [_milestone_line(m, today, dates_count=dates_count) for m in detail.milestones]
    texts = [escape(clip(text, most)) if text else "" for text, most in (
        (item.description, 2800), (item.remediation_plan, 2000), (item.resources_required, 700),
        (waiting.text if waiting is not None else None, 1500))]
    limits = fair_shares([*map(len, texts), min(sum(len(line) + 1 for line in lines), MILESTONES_TEXT)],
                         MESSAGE_TEXT_BUDGET - text_size(head + tail) - CARD_WORDING)
    description, plan, resources, why = (clip_markup(text, limit) for text, limit in zip(texts, limits[:-1], strict=True))
    body: list[Block] = []
    if description:
        body.append(section(f"*Description*\n{description}"))
    plan = plan or "_No plan yet._"
    if resources:
        plan += f"\n*Resources:* {resources}"
    if item.plan_approved_by:
        plan += f"\n:white_check_mark: Approved by {mention(item.plan_approved_by)}"
    elif item.remediation_plan:
        plan += "\n_Not approved by the authorizing official yet._"
    body.append(section(f"*Plan*\n{plan}"))
    if waiting is not None:
        due = due_if_approved(item, waiting, rules=rules)
        body.append(section(f":hourglass: *Waiting* on {what_is_asked(waiting)}{due}, "
                            f"asked by {mention(waiting.requested_by)}{': ' + why if why else ''}"))
    if lines:
        (shown,) = lines_within([lines], most=len(lines), budget=limits[-1])
        listed = clip_markup("\n".join(lines[:shown]), limits[-1])  # cut only when one line outgrows it all
        more = f"\n…and {len(lines) - shown} more." if shown < len(lines) else ""
        body.append(section(f"*Milestones*\n{listed}{more}"))
    return head + body + tail


def needs_remediators(detail: ItemDetail, viewer: Actor) -> bool:
    """Whether the card may offer ``viewer`` a decision that must be apart from
    the work (the check of who worked on it is a statement more): Verify, when
    a fix waits and they verify; Approve and Reject a request, or Approve
    plan, when they are its authorizing official and do not own it."""
    waiting = pending_of(detail)
    verifying = waiting is not None and waiting.kind == RequestKind.VERIFICATION
    if verifying and Role.VERIFIER in viewer.roles:
        return True
    item = detail.item
    awaits_ao = (waiting is not None and not verifying) or awaits_plan_approval(item)
    return awaits_ao and item.owner_id != viewer.user_id and is_authorizing_official(viewer, detail.system)


#: Slack's most elements in one actions block.
MAX_ACTIONS = 25


def _card_buttons(detail: ItemDetail, viewer: Actor, remediators: Remediators | None) -> list[dict[str, Any]]:
    """The card's buttons, with one Complete per open milestone after Add
    milestone for as many as the block has room for beside the others
    (``/poam milestone … done`` completes the rest)."""
    item = detail.item
    ref = metadata.dump(metadata.ItemRef(number=item.number))
    buttons = []
    completes = []
    if item.owner_id is None and item.status in allowed_from(Action.CLAIM):
        buttons.append(button("Claim", ActionId.CLAIM, ref, style="primary"))
    if item.owner_id == viewer.user_id and item.status in allowed_from(Action.EDIT_PLAN):
        buttons.append(button("Add milestone", ActionId.ADD_MILESTONE, ref))
        completes = [
            button(f"Complete M{m.number}", ActionId.COMPLETE_MILESTONE + f".{m.number}",
                   metadata.dump(metadata.ItemRef(number=item.number, milestone=m.number)))
            for m in detail.milestones
            if m.completed_at is None
        ]
    waiting = pending_of(detail)
    if waiting is not None:
        asked = metadata.dump(metadata.RequestRef(number=item.number, request=waiting.id))
        label = viewer.rules.label(item.number)
        if waiting.kind == RequestKind.VERIFICATION and remediators is not None and _allowed(
            require_verifier, viewer, item, submitter=waiting.requested_by, remediators=remediators
        ):
            buttons += verification_buttons(asked, label=label)
        elif waiting.kind != RequestKind.VERIFICATION and remediators is not None and _allowed(
            require_authorizing_official, viewer, item, detail.system, "decide it", requester=waiting.requested_by,
            remediators=remediators,
        ):
            buttons += decision_buttons(asked, label=label, asked_for=what_is_asked(waiting))
    if (
        awaits_plan_approval(item)
        and remediators is not None
        and _allowed(require_authorizing_official, viewer, item, detail.system, "approve its plan",
                     remediators=remediators)
    ):
        shown = metadata.dump(metadata.ItemRef(number=item.number, version=item.version))
        buttons.append(button("Approve plan", ActionId.APPROVE_PLAN, shown))
    buttons.append(button("History", ActionId.HISTORY, ref))
    lead = 1 if completes else 0  # Add milestone, which they follow
    return buttons[:lead] + completes[: MAX_ACTIONS - len(buttons)] + buttons[lead:]


def _allowed(check: Callable[..., None], *args: Any, **kwargs: Any) -> bool:
    """Whether a domain permission check passes (cards only offer what would work)."""
    try:
        check(*args, **kwargs)
    except PermissionDenied:
        return False
    return True


def what_is_asked(request: ReviewRequest | RequestRow) -> str:
    """The request in words, e.g. "a false positive" or "an extension to Fri 1 Jan 2027"."""
    if request.kind == RequestKind.VERIFICATION:
        return "verification of the fix"
    if request.kind == RequestKind.EXTENSION and request.new_due_on:
        return f"an extension to {day(request.new_due_on)}"
    deviation = Deviation.asked(request.deviation)
    asked = f"{'an' if deviation.label[0] in 'aeiou' else 'a'} {deviation.label}"
    if deviation is Deviation.RISK_ADJUSTMENT and request.adjusted_severity:
        asked += f" to {severity_text(request.adjusted_severity)}"
    if request.until_on:
        asked += f" until {day(request.until_on)}"
    return asked


def due_if_approved(item: Item | Columns, request: ReviewRequest | RequestRow, *, rules: Rules) -> str:
    """``; approving makes it due Fri 4 Dec 2026`` where approving a risk
    adjustment moves the due date (nothing said otherwise): what the AO decides too."""
    if request.deviation != Deviation.RISK_ADJUSTMENT or not request.adjusted_severity:
        return ""
    after = due_after_adjustment(item, Severity(request.adjusted_severity), rules=rules)
    return "" if after == item.due_on else f"; approving makes it due {day(after)}"


def pending_of(detail: ItemDetail) -> RequestRow | None:
    return next((r for r in detail.requests if r.status == RequestStatus.PENDING), None)


def verification_buttons(ref: str, *, label: str) -> list[dict[str, Any]]:
    """Verify (asking first: the item closes for good) and Reject, wherever a
    verifier is asked (a card, the DM)."""
    return [
        button("Verify", ActionId.VERIFY, ref, style="primary",
               confirm=confirm_dialog(f"Verify {label}?", "The item closes as remediated, on the record under your name.",
                                      "Verify")),
        button("Reject", ActionId.REJECT_FIX, ref, style="danger"),
    ]


def decision_buttons(ref: str, *, label: str, asked_for: str) -> list[dict[str, Any]]:
    """Approve and Reject of a request to the AO, each asking first, wherever the AO is asked."""
    return [
        button("Approve", ActionId.DECIDE_APPROVE, ref, style="primary",
               confirm=confirm_dialog(f"Approve for {label}?", f"You approve {asked_for}.", "Approve")),
        button("Reject", ActionId.DECIDE_REJECT, ref, style="danger",
               confirm=confirm_dialog(f"Reject for {label}?", f"You reject {asked_for}.", "Reject")),
    ]


def show_button(number: int) -> dict[str, Any]:
    """The Show button beside an item anywhere: opens its card."""
    return button("Show", ActionId.SHOW + f".{number}", metadata.dump(metadata.ItemRef(number=number)))


def item_line(item: Item | ItemLine, *, rules: Rules, today: date) -> str:
    return (
        f"*{rules.label(item.number)}* {escape(clip(item.title, 150))}\n"
        f"{severity_text(item.adjusted_severity or item.severity)} · {status_text(item)} · due {due_text(item, today)}"
        f" · {owner_text(item)}"
    )


def item_list(page: ItemPage, *, rules: Rules, query: metadata.ListPage, title: str) -> list[Block]:
    """A page of ``/poam list``; every item has a Show button, with Previous/Next below."""
    if not page.items and page.total:  # past the end: items closed since the page was shown
        first_page = metadata.dump(replace(query, offset=0, after=None, before=None, day=None))
        return [
            section(f"*{title}*: no more items past {page.offset:,}; there are {page.total_text} now."),
            actions(button("First page", ActionId.LIST_PAGE + ".first", first_page)),
        ]
    if not page.items:
        return [section(f"*{title}*: nothing here.")]
    first, last = page.offset + 1, page.offset + len(page.items)
    blocks: list[Block] = [section(f"*{title}* ({first:,}–{last:,} of {page.total_text})")]
    for item in page.items:
        blocks.append(section(item_line(item, rules=rules, today=page.today), accessory=show_button(item.number)))
    navigation = []
    if page.more_before:
        previous = replace(query, offset=max(0, page.offset - LIST_PAGE_SIZE), after=None,
                           before=query.place(page.position(page.items[0])), day=page.ordered_on.isoformat())
        navigation.append(button("Previous", ActionId.LIST_PAGE + ".prev", metadata.dump(previous)))
    if page.has_more:
        following = replace(query, offset=last, after=query.place(page.position(page.items[-1])), before=None,
                            day=page.ordered_on.isoformat())
        navigation.append(button("Next", ActionId.LIST_PAGE + ".next", metadata.dump(following)))
    if navigation:
        blocks.append(actions(*navigation))
    return blocks[:MAX_MESSAGE_BLOCKS]


def list_title(scope: Scope) -> str:
    return {
        Scope.MINE: "Your open items",
        Scope.OPEN: "Open items",
        Scope.OVERDUE: "Overdue items",
        Scope.UNCLAIMED: "Unclaimed items",
        Scope.REVIEW: "Waiting for verification",
        Scope.CLOSED: "Closed items",
        Scope.ALL: "All items",
    }[scope]


_ACTION_WORDS = {
    "item.logged": "logged it",
    "item.claimed": "claimed it",
    "item.released": "released it",
    "item.assigned": "assigned it",
    "item.plan_set": "set the plan",
    "milestone.added": "added a milestone",
    "milestone.completed": "completed a milestone",
    "milestone.moved": "moved a milestone",
    "item.imported": "imported it",
    "item.snoozed": "snoozed its reminders",
    "plan.approved": "approved the plan",
    "fix.submitted": "submitted the fix",
    "fix.verified": "verified the fix",
    "fix.rejected": "sent the fix back",
    "deviation.requested": "asked for a deviation",
    "extension.requested": "asked for an extension",
    "request.withdrawn": "withdrew a request",
    "request.approved": "approved a request",
    "request.rejected": "rejected a request",
    "risk.accepted": "accepted the risk",
    "risk.renewed": "renewed the risk acceptance",
    "risk.expired": "ended the risk acceptance",
    "risk.ended": "ended the risk acceptance",
    "vendor.updated": "updated the vendor dependency",
    "vendor.shipped": "recorded that the vendor's fix shipped",
}
#: Events whose line says all there is (what they record is the item itself, shown on its card).
_WITHOUT_DETAIL = frozenset({"item.logged"})
#: Events that change the owner, whose line says who: what else they recorded follows (the status, a snooze ended).
_OWNER_CHANGES = frozenset({"item.claimed", "item.released", "item.assigned"})
#: The most characters of one value (evidence, a reason) a history line
#: quotes (all the lines one answer shows: ``MESSAGE_TEXT_BUDGET``, newest kept).
DETAIL_VALUE_LIMIT = 150


def _event_detail(event: AuditEvent) -> str:
    details = event.details
    if event.action in _WITHOUT_DETAIL:
        return ""
    if event.action in _OWNER_CHANGES:
        return _owner_change(event) + _recorded({k: v for k, v in details.items() if k != "owner"})
    if event.action == "milestone.added":
        return f": M{details.get('milestone')} {_quoted(details.get('description'))}, due {details.get('due_on')}"
    if event.action == "milestone.moved":
        due = details.get("due_on", {})
        return f": M{details.get('milestone')} {due.get('from')} → {due.get('to')} ({_quoted(details.get('reason'))})"
    if event.action == "milestone.completed":
        note = details.get("note")
        return f": M{details.get('milestone')}" + (f" ({_quoted(note)})" if note else "")
    if event.action == "item.imported":
        return f" from {_quoted(details.get('source'))}"
    return _recorded(details)


def _owner_change(event: AuditEvent) -> str:
    """Whose it was and whose it became, where the line does not say already:
    `` @Alice → @Bob`` for an assignment, `` from @Bob`` for someone else's
    release (a claim's actor is its new owner)."""
    owner = event.details.get("owner")
    was, to = (owner.get("from"), owner.get("to")) if isinstance(owner, dict) else (None, None)
    if event.action == "item.assigned" and to:
        return f" {mention(was)} → {mention(to)}" if was else f" → {mention(to)}"
    if event.action == "item.released" and was and was != event.actor_id:
        return f" from {mention(was)}"
    return ""


def _recorded(details: dict[str, Any]) -> str:
    """What an event recorded, from what to what: ``: reason too soon; due on 2026-12-02 → 2027-03-01``
    (the ids of requests left out: the line already says which)."""
    parts = []
    for key, value in details.items():
        if key == "request" or value in (None, "", [], {}):
            continue
        name = key.replace("_", " ")
        if isinstance(value, dict) and set(value) == {"from", "to"}:
            parts.append(f"{name} {_quoted(value['from'])} → {_quoted(value['to'])}")
        else:
            parts.append(f"{name} {_quoted(value)}")
    return ": " + "; ".join(parts) if parts else ""


def _quoted(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return escape(clip(" ".join(text.split()), DETAIL_VALUE_LIMIT))


def history(events: Sequence[AuditEvent], *, label: str) -> list[Block]:
    """``/poam history``: newest events last; older ones summarised beyond the limit."""
    if not events:
        return [section(f"*{label}* has no history yet.")]
    lines = [
        f"{moment(event.at)} · {mention(event.actor_id)} "
        f"{_ACTION_WORDS.get(event.action, escape(event.action))}{_event_detail(event)}"
        for event in list(events)[-HISTORY_LIMIT:]
    ]
    while len(lines) > 1 and sum(len(line) for line in lines) > MESSAGE_TEXT_BUDGET:
        lines.pop(0)
    blocks: list[Block] = [section(f"*History of {label}*")]
    if len(events) > len(lines):
        blocks.append(context(f"{len(events) - len(lines)} earlier event(s) not shown; "
                              f"`poam-bot audit export --item {label}` has them all."))
    blocks.extend(sections(lines))
    return blocks[:MAX_MESSAGE_BLOCKS]


def roles(
    by_user: dict[str, list[Role]], configured_admins: Sequence[str], system_aos: Sequence[tuple[str, str]] = ()
) -> list[Block]:
    """Who holds which role; ``system_aos``: (system name, its AO), who decide for that system only."""
    lines = [f"{mention(user)}: {', '.join(r.value for r in user_roles)}" for user, user_roles in by_user.items()]
    if configured_admins:
        lines.append("Admins by configuration: " + ", ".join(mention(u) for u in configured_admins))
    if system_aos:
        lines.append("Authorizing officials of one system: "
                     + ", ".join(f"*{escape(name)}* {mention(user)}" for name, user in system_aos))
    lines.append("_Slack workspace admins and owners are POA&M admins too._")
    return [section("*Roles*\n" + clip_markup("\n".join(lines), 2900))]


def systems(found: Sequence[InfoSystem]) -> list[Block]:
    lines = []
    for system in found:
        line = f"*{escape(system.name)}* · {system.impact} impact"
        if system.organization:
            line += f" · {escape(system.organization)}"
        if system.ao_user_id:
            line += f" · AO {mention(system.ao_user_id)}"
        if system.fedramp_id:
            line += f" · FedRAMP {escape(system.fedramp_id)}"
        if system.is_default:
            line += " · _default_"
        lines.append(line)
    return [section("*Information systems*\n" + clip_markup("\n".join(lines), 2900))]


def help_blocks(specs: Sequence[Spec], *, topic: str | None = None, id_prefix: str) -> list[Block]:
    """Every subcommand's usage, or one's (``milestone``: its verbs; ``milestone add``: that one)."""
    wanted = " ".join(topic.lower().split()) if topic else ""
    chosen = [s for s in specs if not wanted or s.key == wanted] or [
        s for s in specs if s.name == wanted.split(maxsplit=1)[0]]
    if not chosen:
        return [section(f"`{escape(topic or '')}` is not a subcommand. `/poam help` lists them.")]
    if wanted:
        topic = chosen[0].name if len(chosen) > 1 else chosen[0].key
    lines = [f"`{escape(s.usage)}`\n{s.summary} _({s.who})_" for s in chosen]
    blocks: list[Block] = [section("*/poam* — your POA&M in Slack" if topic is None else f"*/poam {escape(topic)}*")]
    blocks.extend(sections(lines, separator="\n\n"))
    if topic is None:
        blocks.append(
            context(
                f"Ids: `{escape(id_prefix)}-12` or `12`. Dates: `2026-12-31`, `today`, `+10d`, `+2w`, `+3m`, `friday`, "
                "`Dec 31`. "
                'Quote text with spaces: `reason:"vendor patch slipped"`.'
            )
        )
    return blocks


def usage_error(problem: str, usage: Sequence[str]) -> list[Block]:
    return [
        section(f":warning: {escape(problem)}"),
        context("Usage: " + "  ·  ".join(f"`{escape(u)}`" for u in usage)),
    ]


def refusal(message: str, *, owner_id: str | None = None, decided_by: str | None = None) -> list[Block]:
    """A refusal; ``owner_id`` adds who owns the item (a claim that lost the race),
    ``decided_by`` who decided first (a second Verify or Approve)."""
    text = f":no_entry: {escape(message)}"
    if owner_id:
        text += f" Owner: {mention(owner_id)}."
    if decided_by:
        text += f" Decided by {mention(decided_by)}."
    return [section(text)]


def done(message: str) -> list[Block]:
    """A success line; ``message`` is mrkdwn we built (user text in it already escaped)."""
    return [section(f":white_check_mark: {message}")]


def severity_options() -> list[dict[str, Any]]:
    return [option(_SEVERITY_MARK[s].split(" ", 1)[1], s.value) for s in Severity]

