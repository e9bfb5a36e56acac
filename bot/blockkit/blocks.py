"""Block Kit primitives: small pure functions, data in, dict out.

Slack enforces limits these helpers respect: section text 3,000 characters,
button text 75, option text 75, 50 blocks a message, 100 a view, and 11,000
to 13,000 characters of text in a message's blocks (``msg_blocks_too_long``,
not documented: :data:`MESSAGE_TEXT_BUDGET`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.blockkit.text import clip_markup

Block = dict[str, Any]
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_BUTTON_TEXT = 75
#: The most characters of lines one message shows: Slack refuses a message
#: whose blocks hold more than 11,000 to 13,000 characters of text, headings
#: and the rest included.
MESSAGE_TEXT_BUDGET = 9_500
# English whatever the process's locale (strftime's %a and %b follow it), and
# a seventh of strftime's CPU: a list page shows dozens of dates.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def plain(text: str, limit: int = MAX_BUTTON_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip_markup(text, limit), "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip_markup(text)}


def section(text: str, *, accessory: dict[str, Any] | None = None, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = block_id
    return block


#: Slack's most characters in one of a section's fields.
MAX_FIELD_TEXT = 2000


def fields_section(pairs: list[tuple[str, str]]) -> Block:
    """Up to 10 ``*label*\\nvalue`` fields side by side (each within Slack's limit)."""
    return {"type": "section",
            "fields": [mrkdwn(clip_markup(f"*{label}*\n{value}", MAX_FIELD_TEXT)) for label, value in pairs[:10]]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, 150)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(clip_markup(text, 2000))]}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str, action_id: str, value: str, *, style: str | None = None, confirm: dict[str, Any] | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "text": plain(text), "action_id": action_id, "value": value}
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, yes: str) -> dict[str, Any]:
    """A button's "are you sure?" (``text`` mrkdwn we built)."""
    return {"title": plain(title, 100), "text": {"type": "mrkdwn", "text": text}, "confirm": plain(yes, 30),
            "deny": plain("Cancel", 30)}


def actions(*elements: dict[str, Any]) -> Block:
    return {"type": "actions", "elements": list(elements)[:25]}


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text), "value": value}


def day(value: date) -> str:
    """A calendar date as text, e.g. ``Fri 27 Nov 2026``.

    Due and detection dates are calendar dates, not instants, so they are not
    put through ``<!date^…>``: that renders an instant in the reader's zone and
    would show the day before or after for readers far from UTC.
    """
    return f"{_WEEKDAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]} {value.year}"


def moment(value: datetime) -> str:
    """An instant in the reader's own time zone, with a UTC fallback."""
    fallback = value.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(value.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def sections(lines: list[str], *, separator: str = "\n", limit: int = 2900) -> list[Block]:
    """Lines packed into as few sections as the 3,000-character limit allows."""
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in (clip_markup(line, limit) for line in lines):
        if chunk and size + len(separator) + len(line) > limit:
            blocks.append(section(separator.join(chunk)))
            chunk, size = [], 0
        size += len(line) + (len(separator) if chunk else 0)
        chunk.append(line)
    if chunk:
        blocks.append(section(separator.join(chunk)))
    return blocks


def lines_within(lists: list[list[str]], *, most: int, budget: int = MESSAGE_TEXT_BUDGET) -> list[int]:
    """How many lines of each of ``lists`` a message shows: at most ``most``
    of each, and as many as fit in ``budget`` characters in all, the list
    showing the most lines giving one up first (a line each at least)."""
    shown = [min(len(lines), most) for lines in lists]
    total = sum(len(line) + 1 for lines, count in zip(lists, shown, strict=True) for line in lines[:count])
    while total > budget and any(count > 1 for count in shown):
        longest = max(range(len(shown)), key=lambda index: shown[index])
        shown[longest] -= 1
        total -= len(lists[longest][shown[longest]]) + 1
    return shown


def text_size(blocks: list[Block]) -> int:
    """How many characters of text ``blocks`` hold, every element's, as a
    message's limit counts them (:data:`MESSAGE_TEXT_BUDGET`)."""
    def count(value: Any) -> int:
        if isinstance(value, dict):
            return sum(len(v) if k == "text" and isinstance(v, str) else count(v) for k, v in value.items())
        if isinstance(value, list):
            return sum(count(v) for v in value)
        return 0

    return count(blocks)


def fair_shares(sizes: list[int], budget: int) -> list[int]:
    """How much of each of several texts of ``sizes`` to show within ``budget``
    in all: each whole while they fit; else the short ones whole and the long
    ones cut to equal shares of what is left."""
    limits = list(sizes)
    if sum(sizes) <= budget:
        return limits
    left, count = max(budget, 0), len(sizes)
    for index in sorted(range(len(sizes)), key=sizes.__getitem__):
        limits[index] = min(sizes[index], left // count)
        left -= limits[index]
        count -= 1
    return limits
