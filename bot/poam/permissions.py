"""Who may do what. Each check raises :class:`PermissionDenied` naming the rule.

Messages are plain text (the surface escapes them); they never embed mention
markup, so a refusal can never ping anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.poam.actor import Actor, Role
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


@dataclass(frozen=True)
class Remediators:
    """Everyone who worked on an item's fix, from whom its verifier and its
    authorizing official must be separate (``review.remediators``)."""

    #: Its owner, and everyone who owned it before (claimed, assigned or logged as owner).
    owners: frozenset[str]
    #: Everyone who submitted a fix of it, sent back or not.
    submitters: frozenset[str]
    #: Everyone who completed one of its milestones.
    completers: frozenset[str]

    @property
    def everyone(self) -> frozenset[str]:
        return self.owners | self.submitters | self.completers


def require_verifier(actor: Actor, item: Item, *, submitter: str | None, remediators: Remediators) -> None:
    """A verifier, and a *separate* one (CMMC 3.12.2[c]): never a remediator
    of the item (COMMANDS.md): not its owner, nor anyone who owned it before,
    submitted a fix of it, or completed one of its milestones. Admins get no
    bypass."""
    refusal = _verifier_refusal(actor, item, submitter=submitter, remediators=remediators)
    if refusal is not None:
        raise PermissionDenied(refusal)


def is_separate_verifier(actor: Actor, item: Item, *, submitter: str | None, remediators: Remediators) -> bool:
    """:func:`require_verifier` as a yes/no, for lists of what waits on someone."""
    return _verifier_refusal(actor, item, submitter=submitter, remediators=remediators) is None


def _verifier_refusal(actor: Actor, item: Item, *, submitter: str | None, remediators: Remediators) -> str | None:
    """Why ``actor`` may not verify ``item``'s fix; None when they may."""
    label = actor.rules.label(item.number)
    if Role.VERIFIER not in actor.roles:
        return f"Only a verifier can verify {label}; an admin can grant the role."
    user = actor.user_id
    if user == item.owner_id:
        return f"You own {label}; a separate person must verify the fix."
    if user == submitter:
        return f"You submitted the fix for {label}; a separate person must verify it."
    part = _part_in_the_work(user, label, remediators)
    return None if part is None else f"{part}; a separate person must verify the fix."


def _part_in_the_work(user: str, label: str, remediators: Remediators) -> str | None:
    """How ``user`` worked on the item, told to them; None when they did not."""
    if user in remediators.completers:
        return f"You completed a milestone of {label}"
    if user in remediators.submitters:
        return f"You submitted a fix for {label}"
    if user in remediators.owners:
        return f"You owned {label} before"
    return None


class NamesAO(Protocol):
    """A system as stored (``InfoSystem``) or as a card reads it (``SystemRow``)."""

    @property
    def ao_user_id(self) -> str | None: ...


def is_authorizing_official(actor: Actor, system: NamesAO) -> bool:
    """The AO of the item's system, or anyone holding the AO role."""
    return Role.AO in actor.roles or system.ao_user_id == actor.user_id


def may_decide(
    actor: Actor, item: Item, system: NamesAO, *, requester: str | None = None, remediators: Remediators
) -> bool:
    """:func:`require_authorizing_official` as a yes/no, for lists of what waits on someone."""
    return (is_authorizing_official(actor, system) and actor.user_id not in (item.owner_id, requester)
            and actor.user_id not in remediators.everyone)


def require_authorizing_official(
    actor: Actor, item: Item, system: NamesAO, doing: str, *, requester: str | None = None,
    remediators: Remediators,
) -> None:
    """The authorizing official, and one apart from the work: never on an item
    they own or asked about, nor (as a verifier) one they owned before,
    submitted a fix of or completed a milestone of: an AO who did part of the
    work and then handed the item on would otherwise approve its plan, accept
    its risk or close it as a false positive themselves."""
    label = actor.rules.label(item.number)
    if not is_authorizing_official(actor, system):
        raise PermissionDenied(f"Only the authorizing official can {doing}.")
    user = actor.user_id
    if user == item.owner_id:
        raise PermissionDenied(f"You own {label}; another authorizing official must {doing}.")
    if requester is not None and user == requester:
        raise PermissionDenied(f"You asked for this on {label}; another authorizing official must decide.")
    part = _part_in_the_work(user, label, remediators)
    if part is not None:
        raise PermissionDenied(f"{part}; another authorizing official must {doing}.")
