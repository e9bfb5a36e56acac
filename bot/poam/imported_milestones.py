"""A file's milestones and their changes, replayed into what an item stores.

A FedRAMP workbook writes an item's plan as first approved (Planned
Milestones) and every change after it, in order (Milestone Changes: a
milestone added, moved or completed). Reading only the first brought a
restored item back as first planned: moved milestones on their old dates,
completed ones open (and reminded of as late), added ones missing. Replaying
the changes over the plan gives each milestone its current date and
completion, and keeps the changes themselves, so the restored POA&M says what
the exported one said.

The changes name milestones by their numbers in the file, so those are kept;
a plan numbered twice or not at all is numbered in order, as before, where
no change needs its numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from bot.poam.errors import InvalidInput
from bot.poam.milestones import MAX_DESCRIPTION, MAX_REASON, ChangeKind, completion_note
from bot.poam.text import clean_text


class PlannedMilestone(Protocol):
    """A milestone an importer hands over (read-only, as the frozen dataclasses
    of ``bot.interchange.findings`` are)."""

    @property
    def due_on(self) -> date: ...
    @property
    def description(self) -> str: ...
    @property
    def number(self) -> int | None: ...


class ChangeEntry(Protocol):
    """A milestone change an importer hands over (``bot.interchange.findings.MilestoneChange``)."""

    @property
    def number(self) -> int: ...
    @property
    def kind(self) -> ChangeKind: ...
    @property
    def on(self) -> date: ...
    @property
    def text(self) -> str: ...
    @property
    def moved_from(self) -> date | None: ...


@dataclass
class ReplayedMilestone:
    number: int
    description: str
    planned_due_on: date
    due_on: date
    completed_on: date | None = None


@dataclass(frozen=True)
class ReplayedChange:
    """A ``MilestoneChange`` row to store (its dates as the export writes them back)."""

    number: int
    kind: ChangeKind
    old_due_on: date | None
    new_due_on: date
    reason: str


@dataclass
class MilestoneHistory:
    milestones: list[ReplayedMilestone] = field(default_factory=list)
    changes: list[ReplayedChange] = field(default_factory=list)


def replay(planned: Sequence[PlannedMilestone], changes: Sequence[ChangeEntry], *, latest: date) -> MilestoneHistory:
    """The milestones as they stand after ``changes``, and the changes to
    store; :class:`InvalidInput` for a change that cannot have happened (to a
    milestone never planned, after its completion, or completed after
    ``latest``, the latest day that is not in the future)."""
    history = MilestoneHistory()
    by_number: dict[int, ReplayedMilestone] = {}
    for number, milestone in zip(_numbers(planned, needed=bool(changes)), planned, strict=True):
        description = clean_text(milestone.description, field=f"Milestone ({number:02d})", limit=MAX_DESCRIPTION)
        by_number[number] = ReplayedMilestone(number, description, milestone.due_on, milestone.due_on)
        history.milestones.append(by_number[number])
    for change in changes:
        entry = f"Milestone Changes entry ({change.number:02d})"
        found = by_number.get(change.number)
        if change.kind is ChangeKind.NEW:
            if found is not None:
                raise InvalidInput(f"{entry} adds a milestone ({change.number:02d}) planned or added before it")
            description = clean_text(change.text, field=f"{entry}'s description", limit=MAX_DESCRIPTION)
            by_number[change.number] = ReplayedMilestone(change.number, description, change.on, change.on)
            history.milestones.append(by_number[change.number])
            history.changes.append(ReplayedChange(change.number, change.kind, None, change.on, description))
            continue
        if found is None:
            raise InvalidInput(f"{entry} names a milestone that is neither planned nor added before it")
        if found.completed_on is not None:
            raise InvalidInput(f"{entry} changes a milestone completed before it")
        if change.kind is ChangeKind.COMPLETE and change.on > latest:
            raise InvalidInput(f"{entry} completes it on {change.on}, in the future")
        text = change.text or (completion_note(change.number) if change.kind is ChangeKind.COMPLETE else "")
        reason = clean_text(text, field=f"{entry}'s reason", limit=MAX_REASON)
        history.changes.append(
            ReplayedChange(change.number, change.kind, change.moved_from or found.due_on, change.on, reason)
        )
        if change.kind is ChangeKind.UPDATE:
            found.due_on = change.on
        else:
            found.completed_on = change.on
    return history


def _numbers(planned: Sequence[PlannedMilestone], *, needed: bool) -> list[int]:
    """The planned milestones' numbers in the file, where each has its own;
    else 1, 2, 3… (an error where changes name them by those numbers)."""
    numbers = [number for milestone in planned if (number := milestone.number) is not None and number > 0]
    if len(numbers) == len(planned) and len(set(numbers)) == len(numbers):
        return numbers
    if needed:
        raise InvalidInput(
            "Milestone Changes name milestones by number, and Planned Milestones number two alike (or one 00)"
        )
    return list(range(1, len(planned) + 1))
