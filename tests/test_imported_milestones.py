"""A file's Planned Milestones and Milestone Changes replayed into an item's
milestones: what each says now, and changes that cannot have happened refused."""

from __future__ import annotations

from datetime import date

import pytest

from bot.interchange.findings import Milestone, MilestoneChange
from bot.poam.errors import InvalidInput
from bot.poam.imported_milestones import ReplayedChange, ReplayedMilestone, replay
from bot.poam.milestones import ChangeKind

NEW, UPDATE, COMPLETE = ChangeKind.NEW, ChangeKind.UPDATE, ChangeKind.COMPLETE
TODAY = date(2026, 12, 7)
PLAN = (Milestone(date(2026, 12, 1), "Patch", 1), Milestone(date(2026, 12, 10), "Rescan", 3))


def test_the_changes_move_complete_and_add_in_order() -> None:
    history = replay(PLAN, [
        MilestoneChange(3, UPDATE, date(2026, 12, 12), "window moved", moved_from=date(2026, 12, 10)),
        MilestoneChange(2, NEW, date(2026, 12, 11), "Tell the customer"),
        MilestoneChange(1, COMPLETE, date(2026, 12, 2), ""),
        MilestoneChange(3, UPDATE, date(2026, 12, 14), "again"),
        MilestoneChange(2, COMPLETE, TODAY, "Sent"),
    ], latest=TODAY)
    assert history.milestones == [
        ReplayedMilestone(1, "Patch", date(2026, 12, 1), date(2026, 12, 1), completed_on=date(2026, 12, 2)),
        ReplayedMilestone(3, "Rescan", date(2026, 12, 10), date(2026, 12, 14)),  # its number in the file
        ReplayedMilestone(2, "Tell the customer", date(2026, 12, 11), date(2026, 12, 11), completed_on=TODAY),
    ]
    assert history.changes == [
        ReplayedChange(3, UPDATE, date(2026, 12, 10), date(2026, 12, 12), "window moved"),
        ReplayedChange(2, NEW, None, date(2026, 12, 11), "Tell the customer"),
        ReplayedChange(1, COMPLETE, date(2026, 12, 1), date(2026, 12, 2), "Milestone M1 completed."),
        ReplayedChange(3, UPDATE, date(2026, 12, 12), date(2026, 12, 14), "again"),  # from where it was
        ReplayedChange(2, COMPLETE, date(2026, 12, 11), TODAY, "Sent"),
    ]


def test_a_plan_numbered_alike_is_numbered_in_order_where_no_change_names_them() -> None:
    plan = (Milestone(date(2026, 12, 1), "Patch", 1), Milestone(date(2026, 12, 2), "Rescan", 1),
            Milestone(date(2026, 12, 3), "Report"))
    assert [m.number for m in replay(plan, [], latest=TODAY).milestones] == [1, 2, 3]


@pytest.mark.parametrize(("plan", "change", "problem"), [
    (PLAN, MilestoneChange(2, UPDATE, date(2026, 12, 9), "moved"),
     "Milestone Changes entry (02) names a milestone that is neither planned nor added before it"),
    (PLAN, MilestoneChange(3, NEW, date(2026, 12, 9), "Rescan again"),
     "Milestone Changes entry (03) adds a milestone (03) planned or added before it"),
    (PLAN, MilestoneChange(1, COMPLETE, date(2026, 12, 8), "done"),
     "Milestone Changes entry (01) completes it on 2026-12-08, in the future"),
    (PLAN, MilestoneChange(1, UPDATE, date(2026, 12, 9), " "), "Milestone Changes entry (01)'s reason is missing."),
    (PLAN, MilestoneChange(2, NEW, date(2026, 12, 9), ""), "Milestone Changes entry (02)'s description is missing."),
    ((Milestone(date(2026, 12, 1), "Patch", 1), Milestone(date(2026, 12, 2), "Rescan", 1)),
     MilestoneChange(1, UPDATE, date(2026, 12, 9), "moved"), "Planned Milestones number two alike"),
    ((Milestone(date(2026, 12, 1), "Patch", 0),), MilestoneChange(1, NEW, date(2026, 12, 9), "Rescan"),
     "Planned Milestones number two alike (or one 00)"),
])
def test_a_change_that_cannot_have_happened_is_refused(
    plan: tuple[Milestone, ...], change: MilestoneChange, problem: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        replay(plan, [change], latest=TODAY)
    assert problem in refused.value.message


def test_nothing_changes_a_milestone_once_completed() -> None:
    done = MilestoneChange(1, COMPLETE, date(2026, 12, 2), "done")
    for after in (MilestoneChange(1, UPDATE, date(2026, 12, 9), "moved"), done):
        with pytest.raises(InvalidInput, match=r"entry \(01\) changes a milestone completed before it"):
            replay(PLAN, [done, after], latest=TODAY)
