"""The App Home tab, "My POA&M"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.commands import metadata
from bot.commands.ids import ActionId
from bot.commands.text import escape
from bot.commands.views.blocks import MAX_VIEW_BLOCKS, Block, actions, button, context, day, header, section
from bot.commands.views.cards import item_line, next_milestone
from bot.poam.actor import Rules
from bot.poam.items import ItemDetail, ItemPage

HOME_ITEMS = 40


def home_view(page: ItemPage, details: Sequence[ItemDetail], *, rules: Rules, unclaimed: int) -> dict[str, Any]:
    """What I own, overdue first, each with its next milestone; a button to log a finding."""
    blocks: list[Block] = [
        header("My POA&M"),
        actions(button("Log a finding", ActionId.LOG_FINDING, "home", style="primary")),
    ]
    overdue = sum(1 for item in page.items if page.is_overdue(item))
    summary = f"You own *{page.total}* open item(s)"
    if overdue:
        summary += f", *{overdue}* overdue"
    blocks.append(section(summary + f". *{unclaimed}* item(s) wait for an owner: `/poam list unclaimed`."))
    for detail in details:
        item = detail.item
        line = item_line(item, rules=rules, today=page.today)
        upcoming = next_milestone(detail.milestones)
        if upcoming is not None:
            line += f"\nNext: *M{upcoming.number}* {escape(upcoming.description[:150])} · due {day(upcoming.due_on)}"
        ref = metadata.dump(metadata.ItemRef(number=item.number))
        blocks.append(section(line, accessory=button("Show", ActionId.SHOW + f".{item.number}", ref)))
    if page.total > len(details):
        blocks.append(context(f"{page.total - len(details)} more: `/poam list mine`."))
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}
