"""Block Kit views are pure functions: checked here against Slack's limits and escaping."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.blockkit.blocks import MESSAGE_TEXT_BUDGET, day, lines_within, text_size
from bot.blockkit.text import clip_markup
from bot.commands import metadata
from bot.commands.ids import BlockId
from bot.commands.specs import SPECS
from bot.commands.views import cards
from bot.commands.views.home import home_view
from bot.commands.views.modals import log_modal
from bot.poam.actor import Actor, Rules
from bot.poam.clock import FixedClock
from bot.poam.errors import InvalidInput
from bot.poam.item_details import ItemDetail, MilestoneRow, RequestRow
from bot.poam.item_lists import Direction, ItemLine, ItemPage
from bot.poam.review import RequestKind, RequestStatus, WaitingOn
from bot.reminders.departures import Holdings, departure_message
from bot.store.models import AuditEvent, InfoSystem, Item

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
NASTY = "<!channel> <@U123> & <https://x|y>"


def _item(number: int = 1, *, owner: str | None = "U0OWNER", title: str = NASTY, due: date = date(2026, 11, 10)) -> Item:
    return Item(
        id=number, team_id="T1", number=number, system_id=1, title=title, description=NASTY * 200,
        source="scan", assets=[NASTY] * 3, cves=["CVE-2024-3094"], severity="high", status="in_progress",
        owner_id=owner, detected_on=date(2026, 11, 1), scheduled_completion_on=due, due_on=due,
        remediation_plan=NASTY * 300, resources_required=NASTY, created_by="U0OWNER", created_at=NOW, updated_at=NOW,
    )


def _line(item: Item) -> ItemLine:
    """The item as a list page holds it."""
    return ItemLine(**{name: getattr(item, name) for name in ItemLine._fields})


def _detail(item: Item, milestones: int = 50) -> ItemDetail:
    return ItemDetail(
        item=item,
        system=InfoSystem(id=1, team_id="T1", name=NASTY, name_key="x", impact="high", created_by="U1", created_at=NOW),
        controls=["AC-2"],
        milestones=[
            MilestoneRow(id=i, item_id=item.id, number=i, description=NASTY * 20, planned_due_on=date(2026, 11, 25),
                         due_on=date(2026, 11, 26), completed_at=None, completed_by=None, created_by="U1", created_at=NOW)
            for i in range(1, milestones + 1)
        ],
        changes=[],
        requests=[],
    )


def _viewer(user: str = "U0OWNER") -> Actor:
    return Actor(team_id="T1", user_id=user, roles=frozenset(), tz=ZoneInfo("UTC"), clock=FixedClock(NOW), rules=Rules())


def _texts(blocks: Any) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def _assert_within_limits(blocks: list[dict[str, Any]], *, max_blocks: int = 50) -> None:
    assert len(blocks) <= max_blocks
    for text in _texts(blocks):
        assert len(text) <= 3000
    for block in blocks:
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= 75
                assert len(element.get("value", "")) <= 2000


def _assert_escaped(blocks: Any) -> None:
    rendered = json.dumps(blocks)
    for raw in ("<!channel>", "<@U123>", "<https://x|y>"):
        assert raw not in rendered
    assert "&lt;!channel&gt;" in rendered


def test_item_card_stays_within_limits_and_escapes_everything() -> None:
    blocks = cards.item_card(_detail(_item()), viewer=_viewer())
    _assert_within_limits(blocks)
    _assert_escaped(blocks)
    assert "overdue 10d" in json.dumps(blocks)


@pytest.mark.parametrize("description", ["x" + "&" * 2799, "xy" + "<" * 2798, "ab" + "> &" * 933])
def test_a_cut_in_escaped_text_never_leaves_half_an_entity(description: str) -> None:
    """The description is clipped, then escaped to more than a section holds:
    the section's own cut fell inside an entity, and Slack showed "&am…"."""
    item = _item()
    item.description = description
    text = next(t for t in _texts(cards.item_card(_detail(item, 1), viewer=_viewer())) if t.startswith("*Description*"))
    assert len(text) <= 3000
    assert text.endswith("…")
    assert re.fullmatch(r"(?:[^&<]|&(?:amp|lt|gt);)*…", text.removeprefix("*Description*\n"))


@pytest.mark.parametrize("words", ["plain words ", "a<b & c>d "])
def test_a_card_of_every_text_near_its_most_fits_one_message(words: str) -> None:
    """Each part was clipped on its own: together they came to 11,356
    characters (12,169 escaped), and Slack refused the card."""
    item = _item(title=words * 30)
    item.description, item.remediation_plan, item.resources_required = words * 1000, words * 1000, words * 200
    item.assets, item.cves = [f"host-{n:02d}.example.gov" for n in range(40)], [f"CVE-2024-{n:05d}" for n in range(40)]
    detail = dataclasses.replace(_detail(item, 12), requests=[RequestRow(
        id=1, item_id=item.id, kind=RequestKind.DEVIATION, deviation="or", status=RequestStatus.PENDING,
        text=words * 400, adjusted_severity=None, until_on=date(2027, 5, 1), new_due_on=None, requested_by="U0OWNER",
        requested_at=NOW, decided_by=None, decided_at=None, decision_note=None)])
    blocks = cards.item_card(detail, viewer=_viewer())
    assert text_size(blocks) <= MESSAGE_TEXT_BUDGET
    shown = "\n".join(_texts(blocks))
    for heading in ("*Description*", "*Plan*", "*Resources:*", "*Waiting*", "*Milestones*", "*M1*"):
        assert heading in shown
    _assert_within_limits(blocks)


def test_a_cut_in_markup_never_leaves_half_a_mention() -> None:
    assert clip_markup("x" * 10 + "<@U12345>", 14) == "x" * 10 + "…"
    assert clip_markup("x" * 10 + "<@U12345> and more", 20) == "x" * 10 + "<@U12345>…"


def test_a_card_of_more_milestones_than_fit_shows_whole_lines_and_counts_the_rest() -> None:
    """50 long milestones: the section was cut mid-line ("*M21* fi…"), with
    nothing saying 29 more existed."""
    (text,) = [t for t in _texts(cards.item_card(_detail(_item()), viewer=_viewer())) if t.startswith("*Milestones*")]
    listed, _, more = text.rpartition("\n")
    shown = listed.count("(planned Wed 25 Nov 2026)")  # the end of each milestone's line
    assert 1 <= shown < 50 and more == f"…and {50 - shown} more."
    assert listed.endswith("(planned Wed 25 Nov 2026)") and len(text) <= 3000  # a whole line last


@pytest.mark.parametrize(("status", "late"), [("in_progress", True), ("pending_verification", True),
                                              ("risk_accepted", False), ("closed", False)])
def test_a_milestone_past_its_date_is_late_only_while_the_items_dates_count(status: str, late: bool) -> None:
    detail = _detail(_item(), milestones=1)
    detail.item.status = status
    detail.milestones[0] = detail.milestones[0]._replace(due_on=date(2026, 11, 2), planned_due_on=date(2026, 11, 2))
    assert (":warning: late" in json.dumps(cards.item_card(detail, viewer=_viewer()))) is late


def test_item_card_offers_owner_buttons_only_to_the_owner() -> None:
    detail = _detail(_item(), milestones=2)
    owner_actions = [e["action_id"] for e in cards.item_card(detail, viewer=_viewer())[-1]["elements"]]
    other_actions = [e["action_id"] for e in cards.item_card(detail, viewer=_viewer("U0OTHER"))[-1]["elements"]]
    assert owner_actions == ["poam.milestone.add", "poam.milestone.done.1", "poam.milestone.done.2", "poam.history"]
    assert other_actions == ["poam.history"]
    unowned = _detail(_item(owner=None), milestones=0)
    unowned.item.status = "open"
    assert [e["action_id"] for e in cards.item_card(unowned, viewer=_viewer())[-1]["elements"]] == ["poam.claim", "poam.history"]


def test_a_list_page_has_twenty_items_and_navigation() -> None:
    items = [_line(_item(n)) for n in range(21, 41)]
    page = ItemPage(items=items, total=95, offset=20, today=TODAY, ordered_on=TODAY, more_before=True, has_more=True)
    query = metadata.ListPage(scope="open", offset=20, sev="high", after=[1, "2026-12-01", 20])
    blocks = cards.item_list(page, rules=Rules(), query=query, title="Open items")
    _assert_within_limits(blocks)
    _assert_escaped(blocks)
    assert "(21–40 of 95)" in blocks[0]["text"]["text"]
    navigation = blocks[-1]["elements"]
    previous, following = (metadata.load(metadata.ListPage, b["value"]) for b in navigation)
    assert (previous.offset, previous.sev, previous.start()) == (0, "high", (Direction.BEFORE, page.position(items[0])))
    assert (following.offset, following.sev, following.start()) == (40, "high", (Direction.AFTER, page.position(items[-1])))


@pytest.mark.parametrize("value", [
    '{"scope":"open","offset":20}',  # a button of the version that paged by offset
    '{"scope":"open","offset":20,"after":[1,"2026-12-01",3],"before":[1,"2026-12-01",3]}',
    '{"scope":"open","offset":0,"before":[2,"2026-12-01",3]}',
    '{"scope":"open","offset":0,"before":[1,"2026-12-32",3]}',
    '{"scope":"open","offset":0,"after":[1,"2026-12-01",0]}',
    '{"scope":"open","offset":20,"after":[1,"2026-12-01",2147483648]}',  # past the database's integers
    '{"scope":"open","offset":0,"after":[true,"2026-12-01",3]}',
    '{"scope":"open","offset":0,"after":"1,2026-12-01,3"}',
    "[" * 1000 + "]" * 1000,  # within a button value's 2,000 characters, too deep for the JSON parser
])
def test_a_list_page_button_of_another_shape_is_refused_as_stale(value: str) -> None:
    with pytest.raises(InvalidInput, match="out of date"):
        metadata.load(metadata.ListPage, value)


def test_history_of_hundreds_of_events_is_summarised() -> None:
    events = [
        AuditEvent(team_id="T1", seq=i, item_id=1, actor_id="U1", action="milestone.moved", at=NOW,
                   details={"milestone": 1, "due_on": {"from": "2026-11-25", "to": "2026-11-26"}, "reason": NASTY * 10},
                   prev_hash="", hash="")
        for i in range(1, 301)
    ]
    blocks = cards.history(events, label="POAM-1")
    _assert_within_limits(blocks)
    _assert_escaped(blocks)
    shown = sum(text.count("moved a milestone") for text in _texts(blocks))
    assert 0 < shown <= cards.HISTORY_LIMIT
    assert f"{300 - shown} earlier event(s)" in json.dumps(blocks)
    assert "<!date^1795186800^{date_short_pretty} {time}|2026-11-20 15:00 UTC>" in json.dumps(blocks)


def test_history_names_whose_an_item_was_when_it_changes_hands() -> None:
    def owner_change(seq: int, actor: str, action: str, was: str | None, to: str | None) -> AuditEvent:
        return AuditEvent(team_id="T1", seq=seq, item_id=1, actor_id=actor, action=action, at=NOW,
                          details={"owner": {"from": was, "to": to}}, prev_hash="", hash="")

    lines = [line for text in _texts(cards.history([
        owner_change(1, "U0ALICE", "item.claimed", None, "U0ALICE"),
        owner_change(2, "U0ADMIN", "item.assigned", "U0ALICE", "U0BOB"),
        owner_change(3, "U0ADMIN", "item.released", "U0BOB", None),
        owner_change(4, "U0ADMIN", "item.assigned", None, "U0CAROL"),
        owner_change(5, "U0CAROL", "item.released", "U0CAROL", None),
    ], label="POAM-1")) for line in text.splitlines() if "<!date^" in line]
    assert [line.split(" · ", 1)[1] for line in lines] == [
        "<@U0ALICE> claimed it", "<@U0ADMIN> assigned it <@U0ALICE> → <@U0BOB>",
        "<@U0ADMIN> released it from <@U0BOB>", "<@U0ADMIN> assigned it → <@U0CAROL>", "<@U0CAROL> released it",
    ]


def test_history_with_long_evidence_keeps_its_newest_lines_within_a_budget() -> None:
    """Each value is quoted up to DETAIL_VALUE_LIMIT characters (five times
    that escaped); the answer keeps the newest lines that fit MESSAGE_TEXT_BUDGET."""
    events = [
        AuditEvent(team_id="T1", seq=i, item_id=1, actor_id="U1", action="fix.submitted", at=NOW,
                   details={"request": i, "evidence": f"{i:03d} " + NASTY * 20,
                            "status": {"from": "in_progress", "to": "pending_verification"}},
                   prev_hash="", hash="")
        for i in range(1, 41)
    ]
    blocks = cards.history(events, label="POAM-1")
    _assert_within_limits(blocks)
    _assert_escaped(blocks)
    lines = [line for text in _texts(blocks) for line in text.splitlines() if "submitted the fix" in line]
    assert sum(len(line) for line in lines) <= MESSAGE_TEXT_BUDGET < sum(len(line) for line in lines) * 2
    assert "evidence 040 &lt;!channel&gt;" in lines[-1] and lines[-1].endswith("…; status in_progress → pending_verification")
    assert f"{40 - len(lines)} earlier event(s) not shown" in json.dumps(blocks)


def test_help_fits_one_message() -> None:
    blocks = cards.help_blocks(SPECS, id_prefix="POAM")
    _assert_within_limits(blocks)
    text = "\n".join(_texts(blocks))
    assert all(spec.usage.replace("<", "&lt;").replace(">", "&gt;") in text for spec in SPECS)


def test_help_writes_ids_with_the_workspaces_prefix() -> None:
    text = json.dumps(cards.help_blocks(SPECS, id_prefix="ACME"))
    assert "`ACME-12` or `12`" in text and "POAM-12" not in text


def test_home_view_stays_within_the_view_limit() -> None:
    items = [_item(n) for n in range(1, 41)]
    page = ItemPage(items=[_line(i) for i in items], total=140, offset=0, today=TODAY, ordered_on=TODAY, has_more=True)
    waiting = WaitingOn(verifications=[], decisions=[], plans=items[:20], is_ao=True)
    milestones = {i.id: _detail(i, milestones=3).milestones for i in items}
    view = home_view(page, milestones, rules=Rules(), overdue="45", unclaimed="7", waiting=waiting)
    _assert_within_limits(view["blocks"], max_blocks=100)
    _assert_escaped(view)
    assert "100 more" in json.dumps(view)
    assert "Next: *M1*" in json.dumps(view)
    # Counted apart from what is shown: overdue ones past the 30 shown too.
    assert "You own *140* open item(s), *45* overdue." in json.dumps(view)
    assert "Waiting on me (20)" in json.dumps(view)


def test_home_says_more_wait_than_it_shows() -> None:
    items = [_item(n) for n in range(1, 23)]
    page = ItemPage(items=[], total=0, offset=0, today=TODAY, ordered_on=TODAY)
    waiting = WaitingOn(verifications=[], decisions=[], plans=items[:21], is_ao=True)  # one past the 20 shown
    view = json.dumps(home_view(page, {}, rules=Rules(), overdue="0", unclaimed="0", waiting=waiting))
    assert "Waiting on me (20+)" in view and view.count("approve its remediation plan") == 20
    assert "You own *0* open item(s). " in view  # no "0 overdue"


def test_home_view_of_an_owner_past_the_count() -> None:
    items = [_item(n) for n in range(1, 31)]
    page = ItemPage(items=[_line(i) for i in items], total=1000, offset=0, today=TODAY, ordered_on=TODAY, capped=True, has_more=True)
    waiting = WaitingOn(verifications=[], decisions=[], plans=[], is_ao=False)
    text = json.dumps(home_view(page, {}, rules=Rules(), overdue="1,000+", unclaimed="1,000+", waiting=waiting))
    assert "You own *1,000+* open item(s)" in text
    assert "*1,000+* item(s) wait for an owner" in text
    assert "More: `/poam list mine`, with `system:<name>` for a system other than the default." in text
    assert "970 more" not in text


def test_a_day_reads_as_in_english_for_every_day_of_a_leap_cycle() -> None:
    """``day`` spells weekdays and months itself (strftime's follow the locale);
    in the C locale of the tests the two must agree on every date."""
    first = date(2025, 1, 1)
    for offset in range(4 * 366):
        value = first + timedelta(days=offset)
        assert day(value) == value.strftime("%a %-d %b %Y")
    assert day(date(2026, 11, 27)) == "Fri 27 Nov 2026"


def test_payloads_leave_out_what_is_none_by_default() -> None:
    """A process of the version before, running beside this one while it
    deploys, refuses keys it does not know: a button about an item is written
    as it was before ``version`` existed, unless it carries one."""
    assert metadata.dump(metadata.ItemRef(number=3)) == '{"number":3}'
    assert metadata.dump(metadata.ItemRef(number=3, version=7)) == '{"number":3,"version":7}'
    assert metadata.load(metadata.ItemRef, '{"number":3,"milestone":null}') == metadata.ItemRef(number=3)
    page = metadata.ListPage(scope="open", offset=0)
    assert metadata.load(metadata.ListPage, metadata.dump(page)) == page


def test_lines_within_takes_lines_from_the_list_showing_most_until_all_fit() -> None:
    ten = ["x" * 99] * 12  # 100 characters a line, with its newline
    assert lines_within([ten, ten[:3], []], most=10, budget=10_000) == [10, 3, 0]
    assert lines_within([ten, ten[:3], []], most=10, budget=900) == [6, 3, 0]
    assert lines_within([ten, ten], most=10, budget=50) == [1, 1]  # a line each at least


@pytest.mark.parametrize(("count", "hint"), [(100, False), (107, True)])
def test_the_log_form_says_where_the_systems_past_slacks_hundred_options_are(count: int, hint: bool) -> None:
    """Systems past the 100th could not be chosen on the form, and nothing said so."""
    systems = [InfoSystem(team_id="T0001", name=f"System {n:03d}", name_key=f"system {n:03d}", impact="moderate",
                          created_by="U0000ADMIN", created_at=NOW) for n in range(count)]
    form = log_modal(origin=metadata.LogOrigin(), today=TODAY, systems=systems)
    (block,) = [block for block in form["blocks"] if block["block_id"] == BlockId.SYSTEM]
    assert len(block["element"]["options"]) == 100
    assert ("hint" in block) is hint
    if hint:
        assert "100 of the 107 systems" in block["hint"]["text"] and "system:" in block["hint"]["text"]


def test_the_note_of_someone_who_left_names_ten_of_their_systems_and_counts_the_rest() -> None:
    """An AO named for 150 systems: a line each made a message Slack refuses
    (``msg_blocks_too_long``), and no admin learnt they had left."""
    held = Holdings(items=[], item_count=0, systems=[f"System {n:03d} of the agency's cloud" for n in range(150)],
                    roles=[])
    lines = departure_message("U0000CAROL", held, Rules(), admin=True)
    assert len(lines) == 1 + 10 + 1 and lines[-1].startswith("• and of 140 more systems: `/poam systems`")
    assert sum(len(line) for line in lines) < MESSAGE_TEXT_BUDGET
