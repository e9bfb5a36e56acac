"""Messages of the review workflow: asks to verifiers and the AO, decision lines."""

from __future__ import annotations

from typing import Any

from bot.blockkit.blocks import Block, actions, context, day, plain, section
from bot.blockkit.text import clip, escape, mention
from bot.commands import metadata
from bot.commands.ids import VALUE, BlockId, CallbackId
from bot.commands.views.cards import (
    decision_buttons,
    due_if_approved,
    severity_text,
    show_button,
    verification_buttons,
    what_is_asked,
)
from bot.poam.actor import Rules
from bot.poam.review import MAX_TEXT
from bot.store.models import Item, ReviewRequest


def _item_line(item: Item, rules: Rules) -> str:
    return f"*{rules.label(item.number)}* · {escape(clip(item.title, 200))} · {severity_text(item.adjusted_severity or item.severity)}"


def verification_ask(item: Item, request: ReviewRequest, *, rules: Rules) -> list[Block]:
    """The DM a verifier gets when a fix is submitted: Verify or Reject."""
    ref = metadata.dump(metadata.RequestRef(number=item.number, request=request.id))  # type: ignore[arg-type]
    label = rules.label(item.number)
    blocks: list[Block] = [
        section(f":mag: {mention(request.requested_by)} asks you to verify the fix for {_item_line(item, rules)}"),
    ]
    if request.text:
        blocks.append(section(f"*Evidence*\n{escape(clip(request.text, 2800))}"))
    blocks.append(
        actions(*verification_buttons(ref, label=label), show_button(item.number))
    )
    return blocks


def decision_ask(item: Item, request: ReviewRequest, *, rules: Rules) -> list[Block]:
    """The DM the authorizing official gets for a deviation or extension request."""
    ref = metadata.dump(metadata.RequestRef(number=item.number, request=request.id))  # type: ignore[arg-type]
    label = rules.label(item.number)
    asked = what_is_asked(request)
    return [
        section(f":scales: {mention(request.requested_by)} asks for {asked} on {_item_line(item, rules)}"),
        section(f"*Why*\n{escape(clip(request.text or '', 2800))}"),
        context(f"Due {day(item.due_on)} (scheduled {day(item.scheduled_completion_on)})"
                f"{due_if_approved(item, request, rules=rules)}"),
        actions(*decision_buttons(ref, label=label, asked_for=asked), show_button(item.number)),
    ]


def reject_modal(ref: metadata.RequestRef, *, label: str) -> dict[str, Any]:
    """Asks a verifier why the fix goes back."""
    return {
        "type": "modal",
        "callback_id": CallbackId.REJECT_MODAL,
        "title": plain("Send the fix back", 24),
        "submit": plain("Send back"),
        "close": plain("Cancel"),
        "private_metadata": metadata.dump(ref),
        "blocks": [
            section(f"Why does the fix for *{label}* not hold? The owner gets your reason."),
            {
                "type": "input",
                "block_id": BlockId.REASON,
                "label": plain("Reason"),
                "element": {"type": "plain_text_input", "action_id": VALUE, "multiline": True, "max_length": min(MAX_TEXT, 3000)},
            },
        ],
    }
