"""Modal views: *Log a finding*, *Add milestone*, and an item card in a modal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.blockkit.blocks import MAX_VIEW_BLOCKS, Block, option, plain
from bot.blockkit.text import clip
from bot.commands import metadata
from bot.commands.ids import VALUE, BlockId, CallbackId
from bot.commands.views.cards import severity_options
from bot.poam.fields import Source
from bot.poam.items import MAX_TITLE
from bot.poam.milestones import MAX_DESCRIPTION as MAX_MILESTONE
from bot.store.models import InfoSystem

View = dict[str, Any]


#: The options Slack takes in a static select.
MAX_OPTIONS = 100


def _input(block_id: BlockId, label: str, element: dict[str, Any], *, optional: bool = False, hint: str | None = None) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "element": {**element, "action_id": VALUE},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 150)
    return block


def _text(initial: str | None = None, *, multiline: bool = False, max_length: int = 3000, placeholder: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline, "max_length": max_length}
    if initial:
        element["initial_value"] = clip(initial, max_length)
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    return element


def _date(initial: date | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "datepicker"}
    if initial is not None:
        element["initial_date"] = initial.isoformat()
    return element


_SOURCE_LABELS = {
    Source.SELF: "Self-identified",
    Source.SCAN: "Vulnerability scan",
    Source.ASSESSMENT: "Security assessment",
    Source.PENTEST: "Penetration test",
    Source.AUDIT: "Audit",
    Source.CONMON: "Continuous monitoring",
}


def log_modal(
    *,
    origin: metadata.LogOrigin,
    today: date,
    systems: Sequence[InfoSystem],
    title: str | None = None,
    description: str | None = None,
) -> View:
    """The *Log a finding* form; ``title``/``description`` prefill it (message shortcut)."""
    severities = severity_options()
    sources = [option(label, source.value) for source, label in _SOURCE_LABELS.items()]
    blocks: list[Block] = [
        _input(BlockId.TITLE, "Weakness", _text(title, max_length=MAX_TITLE, placeholder="TLS 1.0 enabled on the load balancer")),
        _input(BlockId.DESCRIPTION, "Description", _text(description, multiline=True, max_length=3000), optional=True),
        _input(
            BlockId.SEVERITY,
            "Severity",
            {"type": "static_select", "options": severities, "initial_option": severities[2]},
        ),
        _input(BlockId.CONTROLS, "Controls", _text(placeholder="AC-2, SI-2"), optional=True),
        _input(
            BlockId.SOURCE,
            "Found by",
            {"type": "static_select", "options": sources, "initial_option": sources[0]},
        ),
        _input(BlockId.ASSETS, "Assets", _text(placeholder="web-01, db-02"), optional=True),
        _input(BlockId.CVES, "CVEs", _text(placeholder="CVE-2024-3094"), optional=True),
        _input(BlockId.DETECTED, "Detected on", _date(today)),
        _input(
            BlockId.DUE, "Due", _date(), optional=True,
            hint="Leave empty to use the deadline policy for the severity.",
        ),
        _input(BlockId.OWNER, "Owner", {"type": "users_select"}, optional=True),
    ]
    if len(systems) > 1:
        choices = [option(system.name, system.name) for system in systems[:MAX_OPTIONS]]
        more = (f"Slack lists {MAX_OPTIONS} of the {len(systems)} systems; /poam log … system:Name logs in any."
                if len(systems) > MAX_OPTIONS else None)
        blocks.append(_input(BlockId.SYSTEM, "System", {"type": "static_select", "options": choices,
                                                         "initial_option": choices[0]}, hint=more))
    return {
        "type": "modal",
        "callback_id": CallbackId.LOG_MODAL,
        "title": plain("Log a finding", 24),
        "submit": plain("Log"),
        "close": plain("Cancel"),
        "private_metadata": metadata.dump(origin),
        "blocks": blocks,
    }


def milestone_modal(*, number: int, label: str, from_home: bool = False) -> View:
    return {
        "type": "modal",
        "callback_id": CallbackId.MILESTONE_MODAL,
        "title": plain("Add milestone", 24),
        "submit": plain("Add"),
        "close": plain("Cancel"),
        "private_metadata": metadata.dump(metadata.ItemRef(number=number, from_home=from_home or None)),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Milestone for *{label}*"}},
            _input(BlockId.MILESTONE_TEXT, "What will be done", _text(multiline=True, max_length=MAX_MILESTONE)),
            _input(BlockId.MILESTONE_DUE, "Due", _date()),
        ],
    }


#: The ``private_metadata`` of a modal opened from the App Home, directly or
#: from another such modal: a change made in it publishes the Home again.
FROM_HOME = "from-home"


def opened_from_home(view: dict[str, Any] | None) -> bool:
    """Whether ``view``, where a button was clicked, is the App Home or a modal opened from it."""
    return view is not None and (view.get("type") == "home" or view.get("private_metadata") == FROM_HOME)


def item_modal(*, label: str, blocks: list[Block], from_home: bool = False) -> View:
    """An item card shown in a modal (from the App Home, where there is no channel)."""
    view: View = {
        "type": "modal",
        "callback_id": CallbackId.ITEM_MODAL,
        "title": plain(label, 24),
        "close": plain("Close"),
        "blocks": blocks[:MAX_VIEW_BLOCKS],
    }
    if from_home:
        view["private_metadata"] = FROM_HOME
    return view


#: Which form field shows an error about which argument of ``log_item``.
LOG_FIELD_BLOCKS = {
    "title": BlockId.TITLE,
    "description": BlockId.DESCRIPTION,
    "controls": BlockId.CONTROLS,
    "assets": BlockId.ASSETS,
    "cves": BlockId.CVES,
    "detected_on": BlockId.DETECTED,
    "due_on": BlockId.DUE,
    "owner_id": BlockId.OWNER,
}
