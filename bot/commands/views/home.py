"""The App Home tab, "My POA&M"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from bot.blockkit.blocks import MAX_VIEW_BLOCKS, Block, actions, button, context, day, header, section
from bot.blockkit.text import escape, mention
from bot.commands.ids import ActionId
from bot.commands.views.cards import item_line, next_milestone, show_button, what_is_asked
from bot.poam.actor import Rules
from bot.poam.item_details import MilestoneRow
from bot.poam.item_lists import ItemPage
from bot.poam.review import WaitingOn
from bot.store.models import Item, ReviewRequest

HOME_ITEMS = 30
WAITING_ITEMS = 20


def _waiting_blocks(waiting: WaitingOn, rules: Rules, today: date) -> list[Block]:
    """What waits on me, :data:`WAITING_ITEMS` of each kind (``waiting`` holds
    one more of a kind that has more: then the count says so)."""
    verifications, decisions = waiting.verifications[:WAITING_ITEMS], waiting.decisions[:WAITING_ITEMS]
    plans = waiting.plans[:WAITING_ITEMS]
    count = len(verifications) + len(decisions) + len(plans)
    more = "+" if count < waiting.total else ""
    blocks: list[Block] = [header(f"Waiting on me ({count}{more})")]
    for item, request in verifications:
        blocks.append(_ask(item, request, rules, today, f"verify the fix (asked by {mention(request.requested_by)})"))
    for item, request in decisions:
        blocks.append(_ask(item, request, rules, today, f"decide {what_is_asked(request)} (asked by {mention(request.requested_by)})"))
    for item in plans:
        line = item_line(item, rules=rules, today=today) + "\n:memo: approve its remediation plan"
        blocks.append(section(line, accessory=show_button(item.number)))
    return blocks


def _ask(item: Item, request: ReviewRequest, rules: Rules, today: date, what: str) -> Block:
    return section(item_line(item, rules=rules, today=today) + f"\n:hourglass: {what}", accessory=show_button(item.number))


def home_view(
    page: ItemPage, milestones: Mapping[int, list[MilestoneRow]], *, rules: Rules, overdue: str, unclaimed: str,
    waiting: WaitingOn,
) -> dict[str, Any]:
    """What waits on me as verifier or AO; what I own, overdue first, each with its
    next milestone; a button to log a finding. ``overdue`` and ``unclaimed``:
    counts of every system's items (as text: ``1,000+`` past the count)."""
    blocks: list[Block] = [
        header("My POA&M"),
        actions(button("Log a finding", ActionId.LOG_FINDING, "home", style="primary")),
    ]
    if waiting.total:
        blocks += _waiting_blocks(waiting, rules, page.today)
        blocks.append(header("What I own"))
    summary = f"You own *{page.total_text}* open item(s)"
    if overdue != "0":
        summary += f", *{overdue}* overdue"
    # The Home counts every system's items; the command, the default system's unless told.
    blocks.append(section(summary + f". *{unclaimed}* item(s) wait for an owner: `/poam list unclaimed`, with "
                                    "`system:<name>` for a system other than the default."))
    for item in page.items:
        line = item_line(item, rules=rules, today=page.today)
        upcoming = next_milestone(milestones.get(item.id, []))
        if upcoming is not None:
            line += f"\nNext: *M{upcoming.number}* {escape(upcoming.description[:150])} · due {day(upcoming.due_on)}"
        blocks.append(section(line, accessory=show_button(item.number)))
    if page.has_more:
        more = "More" if page.capped else f"{page.total - len(page.items):,} more"
        blocks.append(context(f"{more}: `/poam list mine`, with `system:<name>` for a system other than the default."))
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}
