"""Who may do what. Each check raises :class:`PermissionDenied` naming the rule.

Messages are plain text (the surface escapes them); they never embed mention
markup, so a refusal can never ping anyone.
"""

from __future__ import annotations

from bot.poam.actor import Actor
from bot.poam.errors import PermissionDenied
from bot.store.models import Item


def require_admin(actor: Actor, doing: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"Only a POA&M admin can {doing}.")


def require_owner(actor: Actor, item: Item, doing: str) -> None:
    """Owner-only actions: the item's point of contact, nobody else (admins included)."""
    if item.owner_id != actor.user_id:
        label = actor.rules.label(item.number)
        if item.owner_id is None:
            raise PermissionDenied(f"Only the owner can {doing}, and {label} has none; claim it first.")
        raise PermissionDenied(f"Only the owner of {label} can {doing}.")


def require_owner_or_admin(actor: Actor, item: Item, doing: str) -> None:
    if not actor.is_admin:
        require_owner(actor, item, doing)
