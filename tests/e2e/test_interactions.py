"""Buttons, modals, the App Home, the message shortcut and ``user_change``, end to end.

Buttons are pressed with the ``value`` the app itself rendered; modals are
submitted from the ``view`` the app sent to ``views.open``. A button or form
used by someone without the right is refused and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, select

from bot.commands import metadata
from bot.commands.actions import NO_ONE_TO_ACT_AS
from bot.commands.ids import ActionId, BlockId
from bot.poam import milestones
from bot.poam.clock import FixedClock
from bot.poam.severity import Severity
from bot.store.engine import unit_of_work
from bot.store.models import Item, Person
from tests.e2e.conftest import wait_for
from tests.e2e.test_commands import (  # noqa: F401  (fast_teardown is an autouse fixture)
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    TEAM,
    card_buttons,
    claimed_item,
    fast_teardown,
    item_row,
    log_direct,
    log_via_slack,
    milestone_rows,
    posts,
    reply,
    settle,
    snapshot,
    strings,
    wait_threads,
)
from tests.fake_slack import FakeSlack
from tests.slack_driver import Answer, SlackDriver


def item_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM items")).scalar_one())


def acked(answer: Answer) -> None:
    """A button's ack: HTTP 200 with an empty body (the answer follows via response_url)."""
    assert answer.status == 200 and answer.body == "", (answer.status, answer.body)


def ephemerals(fake_slack: FakeSlack) -> list[dict[str, Any]]:
    return [call.params for call in fake_slack.calls_to("chat.postEphemeral")]


def next_response(fake_slack: FakeSlack, seen: int) -> dict[str, Any]:
    """The first response_url post after the ``seen`` ones."""
    return wait_for(lambda: fake_slack.responses[seen:])[0]


def press(
    slack: SlackDriver, fake_slack: FakeSlack, button: dict[str, Any], *, user: str
) -> dict[str, Any]:
    """Press ``button`` (as rendered by the app) in a message; returns what came back via response_url."""
    seen = len(fake_slack.responses)
    acked(slack.click(button["action_id"], button["value"], user=user))
    return next_response(fake_slack, seen)


def card(slack: SlackDriver, number: int, *, user: str) -> dict[str, dict[str, Any]]:
    """The buttons of ``/poam show <number>`` as ``user`` sees it."""
    answer = slack.command(f"show {number}", user=user)
    reply(answer)
    return card_buttons(answer.json()["blocks"])


def opened_view(fake_slack: FakeSlack, seen: int = 0) -> dict[str, Any]:
    """The view of the first views.open after the ``seen`` ones."""
    call = wait_for(lambda: fake_slack.calls_to("views.open")[seen:])[0]
    view: dict[str, Any] = call.params["view"]
    return view


# ---------------------------------------------------------------- buttons


def test_claim_button_from_a_card_claims_and_answers_privately(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    log_via_slack(slack, engine, "Admin console exposed sev:high")
    thread = item_row(engine, make_actor, 1).origin_thread_ts
    claim = card(slack, 1, user=BOB)["Claim"]
    answer = press(slack, fake_slack, claim, user=BOB)
    assert "You now own *POAM-1*" in strings(answer), answer
    assert answer.get("response_type") == "ephemeral" and answer.get("replace_original") is False
    item = item_row(engine, make_actor, 1)
    assert item.owner_id == BOB and item.status == "in_progress"
    post = wait_for(lambda: posts(fake_slack)[1:])[0]
    assert post["thread_ts"] == thread and f"<@{BOB}> claimed *POAM-1*" in post["text"]
    assert ephemerals(fake_slack) == []  # the response URL took the answer: no second copy

    # The same button, pressed by someone else: refused, naming the owner; nothing changes.
    before = snapshot(engine)
    answer = press(slack, fake_slack, claim, user=CAROL)
    assert "POAM-1 is already claimed by someone else." in strings(answer) and f"<@{BOB}>" in strings(answer)
    settle()
    assert snapshot(engine) == before and len(posts(fake_slack)) == 2


def test_complete_milestone_button_is_for_the_owner_only(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    reply(slack.command("milestone 1 add Patch the load balancer due:+5d", user=ALICE))
    complete = card(slack, 1, user=ALICE)["Complete M1"]
    assert complete["action_id"] == f"{ActionId.COMPLETE_MILESTONE}.1"

    before = snapshot(engine)
    answer = press(slack, fake_slack, complete, user=CAROL)
    assert "Only the owner of POAM-1 can complete milestones." in strings(answer), answer
    assert snapshot(engine) == before

    answer = press(slack, fake_slack, complete, user=ALICE)
    assert "*M1* of *POAM-1* is complete." in strings(answer), answer
    assert milestone_rows(engine, 1)[0].completed_by == ALICE
    answer = press(slack, fake_slack, complete, user=ALICE)  # a second press of the stale button
    assert "M1 of POAM-1 is already complete." in strings(answer)


def test_history_button(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    before = snapshot(engine)
    answer = press(slack, fake_slack, card(slack, 1, user=BOB)["History"], user=BOB)
    body = strings(answer)
    assert "History of POAM-1" in body and f"<@{ALICE}> logged it" in body and f"<@{ALICE}> claimed it" in body
    assert snapshot(engine) == before


def test_show_button_from_a_list(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any) -> None:
    log_direct(engine, make_actor, "First finding")
    log_direct(engine, make_actor, "Second finding", severity=Severity.HIGH, owner=BOB)
    listing = slack.command("list", user=BOB)
    shows = [b["accessory"] for b in listing.json()["blocks"] if "accessory" in b]
    second = next(button for button in shows if button["action_id"] == f"{ActionId.SHOW}.2")
    answer = press(slack, fake_slack, second, user=BOB)
    body = strings(answer)
    assert "*POAM-2* · Second finding" in body and "First finding" not in body
    assert set(card_buttons(answer["blocks"])) == {"Add milestone", "History"}  # Bob owns it


def test_a_click_whose_response_url_is_refused_answers_in_the_channel(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    """A response URL is good for 5 posts in 30 minutes: the claim is made, and
    its answer must not be lost with a refused post."""
    log_via_slack(slack, engine, "Admin console exposed sev:high")
    claim = card(slack, 1, user=BOB)["Claim"]
    fake_slack.fail("respond", status=404, error="used_url")
    acked(slack.click(claim["action_id"], claim["value"], user=BOB))
    sent = wait_for(lambda: ephemerals(fake_slack))
    assert [(params["channel"], params["user"]) for params in sent] == [(CHANNEL, BOB)]
    assert "You now own *POAM-1*" in strings(sent[0])
    assert item_row(engine, make_actor, 1).owner_id == BOB


def test_a_click_answer_refused_everywhere_else_comes_by_direct_message(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    log_direct(engine, make_actor, "First finding", owner=BOB)
    fake_slack.fail("respond", status=404, error="expired_url")
    fake_slack.fail("chat.postEphemeral", error="not_in_channel")
    acked(slack.click(f"{ActionId.SHOW}.1", '{"number": 1}', user=BOB))
    sent = wait_for(lambda: [call.params for call in fake_slack.calls_to("chat.postMessage")
                             if call.params["channel"] == BOB])
    assert len(sent) == 1 and "First finding" in strings(sent[0])
    assert len(ephemerals(fake_slack)) == 1 and fake_slack.responses == []


def test_a_list_page_whose_response_url_is_refused_comes_as_a_new_message(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    log_direct(engine, make_actor, "First finding")
    fake_slack.fail("respond", status=404, error="expired_url")
    acked(slack.click(f"{ActionId.LIST_PAGE}.next", '{"scope": "open", "offset": 0}', user=BOB))
    sent = wait_for(lambda: ephemerals(fake_slack))
    assert [(params["channel"], params["user"]) for params in sent] == [(CHANNEL, BOB)]
    assert "First finding" in strings(sent[0])


def test_a_list_page_clicked_in_a_view_comes_as_a_direct_message(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    """A view's click has no response URL: Bolt's respond raised, and nothing came."""
    log_direct(engine, make_actor, "First finding")
    acked(slack.click(f"{ActionId.LIST_PAGE}.next", '{"scope": "open", "offset": 0}', user=BOB,
                      view={"type": "home", "id": "VH"}))
    sent = wait_for(lambda: [call.params for call in fake_slack.calls_to("chat.postMessage")
                             if call.params["channel"] == BOB])
    assert len(sent) == 1 and "First finding" in strings(sent[0])


GARBAGE = [
    (ActionId.CLAIM, "not json", "out of date"),
    (ActionId.CLAIM, "", "out of date"),
    (ActionId.CLAIM, '{"number": 0}', "out of date"),
    (ActionId.CLAIM, '{"number": "1"}', "out of date"),
    (ActionId.CLAIM, '{"number": true}', "out of date"),
    (ActionId.CLAIM, '{"number": 1, "team_id": "T0002"}', "out of date"),
    (ActionId.CLAIM, "[1]", "out of date"),
    (ActionId.CLAIM, '{"number": 99}', "There is no item POAM-99 in this workspace."),
    (ActionId.CLAIM, '{"number": 99999999999}', "out of date"),  # past the database's integers
    (ActionId.SHOW + ".1", '{"number": 99}', "There is no item POAM-99 in this workspace."),
    (ActionId.HISTORY, "{}", "out of date"),
    (ActionId.COMPLETE_MILESTONE + ".1", '{"number": 1}', "out of date"),
    (ActionId.COMPLETE_MILESTONE + ".1", '{"number": 1, "milestone": 7}', "POAM-1 has no milestone M7."),
    (ActionId.LIST_PAGE + ".next", '{"scope": "open", "offset": -20}', "out of date"),
    (ActionId.LIST_PAGE + ".next", '{"scope": "open", "offset": 0, "sev": "urgent"}', "`urgent` is not a severity"),
]


def test_buttons_with_garbage_or_unknown_items_are_refused(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    before = snapshot(engine)
    for action_id, value, problem in GARBAGE:
        seen = len(fake_slack.responses)
        acked(slack.click(action_id, value, user=ALICE))
        answer = next_response(fake_slack, seen)
        assert problem in strings(answer), (action_id, value, answer)
        assert "Something went wrong" not in strings(answer), (action_id, value, answer)
    assert snapshot(engine) == before
    assert not fake_slack.calls_to("views.open")
    assert len(posts(fake_slack)) == 2


def test_list_page_button_with_an_unknown_scope_is_refused(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    log_via_slack(slack, engine, "Existing finding")
    answer = press(
        slack, fake_slack, {"action_id": ActionId.LIST_PAGE + ".next", "value": '{"scope": "secret", "offset": 0}'},
        user=ALICE,
    )
    assert "out of date" in strings(answer), answer


@pytest.mark.parametrize("action_id, value", [
    (ActionId.CLAIM, '{"number": 1}'),
    (f"{ActionId.LIST_PAGE}.next", '{"scope": "open", "offset": 0}'),
    ("shortcut", ""),
])
def test_a_signed_click_that_names_no_user_is_answered_by_its_response_url(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, action_id: str, value: str
) -> None:
    """Slack signed it, but its user is not a user id: no one to act as or
    to answer by name, so the response URL says what is wrong; nothing changes."""
    log_via_slack(slack, engine, "Existing finding")
    before, seen = snapshot(engine), len(fake_slack.responses)
    if action_id == "shortcut":
        acked(slack.shortcut(user="not-a-user", message={"ts": "1700000000.000100", "text": "Open port 23"}))
    else:
        acked(slack.click(action_id, value, user="not-a-user"))
    answer = next_response(fake_slack, seen)
    assert NO_ONE_TO_ACT_AS in strings(answer), answer
    assert answer.get("response_type") == "ephemeral" and not answer.get("replace_original"), answer
    settle()
    assert snapshot(engine) == before and not ephemerals(fake_slack) and not fake_slack.calls_to("views.open")


def test_a_signed_click_in_a_view_that_names_no_user_is_dropped_without_a_traceback(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A click on the App Home has no response URL: nobody to answer, and
    Bolt's ``respond`` raised, logged as work after the ack that failed."""
    log_via_slack(slack, engine, "Existing finding")
    before = snapshot(engine)
    with caplog.at_level(logging.WARNING):
        acked(slack.click(ActionId.CLAIM, '{"number": 1}', user="not-a-user", view={"type": "home", "id": "VHOME"}))
        settle()
    assert snapshot(engine) == before and not fake_slack.responses and not ephemerals(fake_slack)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert "has no response URL" in caplog.text


def test_add_milestone_button_is_refused_to_non_owners_and_for_unknown_items(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    add = card(slack, 1, user=ALICE)["Add milestone"]
    before = snapshot(engine)
    for button, user, problem in [
        (add, BOB, "Only the owner of POAM-1 can add milestones."),
        ({"action_id": ActionId.ADD_MILESTONE, "value": '{"number": 99}'}, ALICE, "There is no item POAM-99"),
    ]:
        answer = press(slack, fake_slack, button, user=user)
        assert problem in strings(answer), answer
    settle()
    assert not fake_slack.calls_to("views.open")
    assert snapshot(engine) == before


# ---------------------------------------------------------------- the Log a finding modal


def log_form(slack: SlackDriver, fake_slack: FakeSlack) -> dict[str, Any]:
    answer = slack.command("log", user=ALICE)
    assert answer.status == 200 and answer.body == ""
    return opened_view(fake_slack)


def form_values(**overrides: Any) -> dict[str, dict[str, Any]]:
    """Element states of the Log a finding form, as Slack sends them on submit."""
    values: dict[str, dict[str, Any]] = {
        BlockId.TITLE: {"type": "plain_text_input", "value": "Disk encryption off on db-02"},
        BlockId.DESCRIPTION: {"type": "plain_text_input", "value": "Found in the quarterly assessment."},
        BlockId.SEVERITY: {"type": "static_select", "selected_option": {"value": "high"}},
        BlockId.CONTROLS: {"type": "plain_text_input", "value": "SC-28, sc-13"},
        BlockId.SOURCE: {"type": "static_select", "selected_option": {"value": "assessment"}},
        BlockId.ASSETS: {"type": "plain_text_input", "value": "db-02\ndb-03"},
        BlockId.CVES: {"type": "plain_text_input", "value": "CVE-2024-3094"},
        BlockId.DETECTED: {"type": "datepicker", "selected_date": "2026-11-19"},
        BlockId.DUE: {"type": "datepicker", "selected_date": "2026-12-01"},
        BlockId.OWNER: {"type": "users_select", "selected_user": BOB},
    }
    for block, value in overrides.items():
        if value is None:
            values.pop(block)
        else:
            values[block] = {**values[block], **value}
    return values


def test_log_modal_submission_logs_the_item(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    view = log_form(slack, fake_slack)
    answer = slack.submit(view, form_values(), user=ALICE)
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["response_action"] == "update" and "Logged *POAM-1*" in strings(body["view"]), body
    item = item_row(engine, make_actor, 1)
    assert (item.title, item.description, item.severity, item.source) == (
        "Disk encryption off on db-02", "Found in the quarterly assessment.", "high", "assessment",
    )
    assert item.assets == ["db-02", "db-03"] and item.cves == ["CVE-2024-3094"]
    assert item.detected_on == date(2026, 11, 19) and item.due_on == date(2026, 12, 1)
    assert item.owner_id == BOB and item.created_by == ALICE and item.origin_channel_id == CHANNEL
    with engine.connect() as connection:
        controls = [row[0] for row in connection.execute(text("SELECT control FROM item_controls ORDER BY position"))]
    assert controls == ["SC-28", "SC-13"]
    post = wait_for(lambda: posts(fake_slack))[0]
    assert post["channel"] == CHANNEL and "logged *POAM-1*" in post["text"]
    wait_threads(engine, 1)


def test_log_modal_without_a_due_date_uses_the_policy(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    view = log_form(slack, fake_slack)
    answer = slack.submit(view, form_values(due=None, detected={"selected_date": "2026-11-10"}), user=ALICE)
    assert answer.json()["response_action"] == "update", answer.body
    assert item_row(engine, make_actor, 1).due_on == date(2026, 12, 10)  # high: 30 days from detection
    wait_threads(engine, 1)


FIELD_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"due": {"selected_date": "2027-06-01"}}, "due", "later than the high deadline (2026-12-19"),
    ({"due": {"selected_date": "2026-11-01"}}, "due", "is before the detection date"),
    ({"cves": {"value": "CVE-2024-3094, heartbleed"}}, "cves", "`HEARTBLEED` is not a CVE id"),
    ({"title": {"value": "   "}}, "title", "The title is missing."),
    ({"title": None}, "title", "The title is missing."),
    ({"title": {"value": "x" * 301}}, "title", "the limit is 300"),
    ({"controls": {"value": "AC 2!"}}, "controls", "is not a control id"),
    ({"detected": {"selected_date": "2026-11-25"}}, "detected", "is in the future"),
]


def test_log_modal_field_errors_keep_the_form_open(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    view = log_form(slack, fake_slack)
    before = snapshot(engine)
    for overrides, block, problem in FIELD_ERRORS:
        answer = slack.submit(view, form_values(**overrides), user=ALICE)
        assert answer.status == 200, answer.body
        body = answer.json()
        assert body["response_action"] == "errors" and list(body["errors"]) == [block], (overrides, body)
        assert problem in body["errors"][block], (overrides, body)
    assert snapshot(engine) == before and item_count(engine) == 0
    settle()
    assert not posts(fake_slack) and not fake_slack.responses


def test_log_modal_unreadable_date_is_an_error_on_that_date(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    view = log_form(slack, fake_slack)
    body = slack.submit(view, form_values(detected={"selected_date": "not-a-date"}), user=ALICE).json()
    assert body["response_action"] == "errors" and item_count(engine) == 0
    assert body["errors"] == {"detected": "That is not a date."}, body


# ---------------------------------------------------------------- the Add milestone modal


def milestone_form(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, *, user: str = ALICE) -> dict[str, Any]:
    """The owner's card → Add milestone → the form the app opened."""
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    button = card(slack, 1, user=ALICE)["Add milestone"]
    acked(slack.click(button["action_id"], button["value"], user=user))
    call = wait_for(lambda: fake_slack.calls_to("views.open"))[0]
    assert call.params["trigger_id"] == slack.last_trigger_id
    view: dict[str, Any] = call.params["view"]
    assert view["callback_id"] == "poam.milestone.modal" and "POAM-1" in strings(view)
    return view


def milestone_values(description: str = "Rotate the certificates", due: str = "2026-12-01") -> dict[str, Any]:
    return {
        BlockId.MILESTONE_TEXT: {"type": "plain_text_input", "value": description},
        BlockId.MILESTONE_DUE: {"type": "datepicker", "selected_date": due},
    }


def test_add_milestone_button_opens_the_form_and_submitting_adds_it(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    view = milestone_form(slack, fake_slack, engine)
    answer = slack.submit(view, milestone_values(), user=ALICE)
    body = answer.json()
    assert body["response_action"] == "update" and "Added *M1* to *POAM-1*" in strings(body["view"]), body
    found = milestone_rows(engine, 1)
    assert [(m.number, m.description, m.due_on, m.created_by) for m in found] == [
        (1, "Rotate the certificates", date(2026, 12, 1), ALICE)
    ]


def test_milestone_form_refusals(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    view = milestone_form(slack, fake_slack, engine)
    before = snapshot(engine)
    for values, user, block, problem in [
        (milestone_values(due="2026-11-01"), ALICE, "milestone_due", "The milestone date 2026-11-01 is in the past"),
        (milestone_values(due="2027-01-15"), ALICE, "milestone_due", "is after POAM-1's due date"),
        ({BlockId.MILESTONE_TEXT: milestone_values()[BlockId.MILESTONE_TEXT]}, ALICE, "milestone_due", "Pick a date."),
        (milestone_values(description=" "), ALICE, "milestone_text", "The milestone is missing."),
        # The form, submitted by someone who is not the owner (a shared screen, a crafted payload).
        (milestone_values(), BOB, "milestone_text", "Only the owner of POAM-1 can add milestones."),
    ]:
        answer = slack.submit(view, values, user=user)
        body = answer.json()
        assert body["response_action"] == "errors" and list(body["errors"]) == [block], (problem, body)
        assert problem in body["errors"][block], (problem, body)
    assert snapshot(engine) == before and milestone_rows(engine, 1) == []


# ---------------------------------------------------------------- App Home


def test_app_home_lists_what_i_own_overdue_first_with_next_milestones(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    log_direct(engine, make_actor, "Patch the database", owner=ALICE)  # due 2027-02-18
    log_direct(engine, make_actor, "Expired certificate", severity=Severity.HIGH, owner=ALICE,
               detected=date(2026, 9, 1))  # due 2026-10-01: overdue
    log_direct(engine, make_actor, "Rotate keys", severity=Severity.HIGH, owner=ALICE)  # due 2026-12-20
    log_direct(engine, make_actor, "Bob's finding", owner=BOB)
    log_direct(engine, make_actor, "Nobody's finding")
    with unit_of_work(engine) as session:
        alice = make_actor(ALICE)
        milestones.add_milestone(session, alice, number=1, description="Back up", due_on=date(2026, 11, 25))
        milestones.add_milestone(session, alice, number=1, description="Roll out", due_on=date(2026, 12, 15))
        milestones.add_milestone(session, alice, number=1, description="Test in staging", due_on=date(2026, 12, 1))
        milestones.complete_milestone(session, alice, number=1, milestone=1)

    answer = slack.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home",
                          "event_ts": "1700000000.1"})
    assert answer.status == 200
    call = wait_for(lambda: fake_slack.calls_to("views.publish"))[0]
    assert call.params["user_id"] == ALICE and call.params["view"]["type"] == "home"
    body = strings(call.params["view"])
    order = [title for title in ("Expired certificate", "Rotate keys", "Patch the database") if title in body]
    assert sorted(order, key=body.index) == ["Expired certificate", "Rotate keys", "Patch the database"], body
    assert "Bob's finding" not in body and "Nobody's finding" not in body
    assert "You own *3* open item(s), *1* overdue" in body and "*1* item(s) wait for an owner" in body
    assert "Next: *M3* Test in staging · due Tue 1 Dec 2026" in body, body
    assert "overdue 50d" in body
    # "Log a finding" from the Home opens the form.
    log_button = card_buttons(call.params["view"]["blocks"])["Log a finding"]
    acked(slack.click(log_button["action_id"], log_button["value"], user=ALICE, view={"type": "home", "id": "VH"}))
    assert opened_view(fake_slack)["callback_id"] == "poam.log.modal"


def test_show_button_in_app_home_opens_the_card_in_a_modal(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    log_direct(engine, make_actor, "Rotate keys", severity=Severity.HIGH, owner=ALICE)
    slack.event({"type": "app_home_opened", "user": ALICE, "tab": "home", "event_ts": "1.1"})
    home = wait_for(lambda: fake_slack.calls_to("views.publish"))[0].params["view"]
    show = next(b["accessory"] for b in home["blocks"] if "accessory" in b)
    acked(slack.click(show["action_id"], show["value"], user=ALICE, view={**home, "id": "VH"}))
    modal = opened_view(fake_slack)
    assert modal["type"] == "modal" and "*POAM-1* · Rotate keys" in strings(modal)
    wait_for(lambda: len(fake_slack.calls_to("views.publish")) == 2)  # the Home is refreshed
    assert not fake_slack.responses


def test_a_click_in_a_card_modal_whose_answer_slack_refuses_is_answered_by_dm(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    """A click in a modal has no response URL: its answer is pushed onto the
    modal, on a trigger id good for 3 seconds. When Slack refused the push
    (the click's work waited in line), the claim stood and nobody was told."""
    log_direct(engine, make_actor, "Rotate keys", severity=Severity.HIGH, owner=None)
    slack.event({"type": "app_home_opened", "user": BOB, "tab": "home", "event_ts": "1.1"})
    home = wait_for(lambda: fake_slack.calls_to("views.publish"))[0].params["view"]
    acked(slack.click(ActionId.SHOW + ".1", metadata.dump(metadata.ItemRef(number=1)), user=BOB,
                      view={**home, "id": "VH"}))
    claim = card_buttons(opened_view(fake_slack)["blocks"])["Claim"]
    fake_slack.fail("views.push", error="expired_trigger_id")
    acked(slack.click(claim["action_id"], claim["value"], user=BOB, view={"type": "modal", "id": "VM"}))
    dm = wait_for(lambda: [c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == BOB])
    assert "You now own *POAM-1*" in str(dm[0].params), dm
    assert fake_slack.calls_to("views.push") and not fake_slack.responses


def test_the_home_shows_at_once_what_was_done_in_the_modals_it_opened(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    """A claim in the card the Home opened, and a finding logged from its Log
    a finding button, left the Home as it was until the tab was opened again."""

    def home_saying(text: str) -> dict[str, Any]:
        return wait_for(lambda: [c.params["view"] for c in fake_slack.calls_to("views.publish")
                                 if text in strings(c.params["view"])])[-1]  # type: ignore[no-any-return]

    log_direct(engine, make_actor, "Rotate keys", severity=Severity.HIGH, owner=None)
    slack.event({"type": "app_home_opened", "user": BOB, "tab": "home", "event_ts": "1.1"})
    home = home_saying("You own *0* open item(s)")
    acked(slack.click(ActionId.SHOW + ".1", metadata.dump(metadata.ItemRef(number=1)), user=BOB,
                      view={**home, "id": "VH"}))
    modal = opened_view(fake_slack)
    claim = card_buttons(modal["blocks"])["Claim"]
    acked(slack.click(claim["action_id"], claim["value"], user=BOB, view={**modal, "id": "VM"}))
    now = home_saying("You own *1* open item(s)")
    assert "*0* item(s) wait for an owner" in strings(now)
    seen = len(fake_slack.calls_to("views.open"))
    acked(slack.click(ActionId.SHOW + ".1", metadata.dump(metadata.ItemRef(number=1)), user=BOB,
                      view={**now, "id": "VH"}))
    add = card_buttons(opened_view(fake_slack, seen)["blocks"])["Add milestone"]
    acked(slack.click(add["action_id"], add["value"], user=BOB, view={**opened_view(fake_slack, seen), "id": "VM2"}))
    milestone_form = wait_for(lambda: [c.params["view"] for c in fake_slack.calls_to("views.push")
                                       if c.params["view"]["callback_id"] == "poam.milestone.modal"])[0]
    assert "Added *M1*" in slack.submit(milestone_form, milestone_values(), user=BOB).text
    home_saying("Next: *M1*")

    log_button = card_buttons(now["blocks"])["Log a finding"]
    seen = len(fake_slack.calls_to("views.open"))
    acked(slack.click(log_button["action_id"], log_button["value"], user=BOB, view={**now, "id": "VH"}))
    body = slack.submit(opened_view(fake_slack, seen), form_values(owner={"selected_user": BOB}), user=BOB).json()
    assert body["response_action"] == "update", body
    home_saying("You own *2* open item(s)")


def test_app_home_of_someone_who_owns_nothing(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    slack.event({"type": "app_home_opened", "user": CAROL, "tab": "home", "event_ts": "1.1"})
    view = wait_for(lambda: fake_slack.calls_to("views.publish"))[0].params["view"]
    assert "You own *0* open item(s)" in strings(view)
    slack.event({"type": "app_home_opened", "user": CAROL, "tab": "messages", "event_ts": "1.2"})
    settle()
    assert len(fake_slack.calls_to("views.publish")) == 1  # the Messages tab publishes nothing


# ---------------------------------------------------------------- message shortcut


def test_message_shortcut_prefills_the_form_and_links_back(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    message = {
        "type": "message",
        "user": "U0REPORTER",
        "ts": "1700000500.000100",
        "text": "Disk encryption is off on db-02 &amp; db-03\nSeen in Tuesday's scan.",
    }
    answer = slack.shortcut(user=ALICE, message=message)
    assert answer.status == 200 and answer.body == ""
    call = wait_for(lambda: fake_slack.calls_to("views.open"))[0]
    assert call.params["trigger_id"] == slack.last_trigger_id
    view = call.params["view"]
    elements = {block.get("block_id"): block.get("element", {}) for block in view["blocks"]}
    assert elements["title"]["initial_value"] == "Disk encryption is off on db-02 & db-03"
    assert elements["description"]["initial_value"] == "Disk encryption is off on db-02 & db-03\nSeen in Tuesday's scan."

    # The link back is asked for when the form opens, so saving it waits on no Slack call.
    (permalink,) = fake_slack.calls_to("chat.getPermalink")
    assert permalink.params["channel"] == CHANNEL and permalink.params["message_ts"] == "1700000500.000100"
    values = form_values(
        title={"value": elements["title"]["initial_value"]}, due=None, owner=None,
        detected={"selected_date": "2026-11-20"},
    )
    body = slack.submit(view, values, user=ALICE).json()
    assert body["response_action"] == "update", body
    assert len(fake_slack.calls_to("chat.getPermalink")) == 1  # not asked again on saving
    item = item_row(engine, make_actor, 1)
    assert item.title == "Disk encryption is off on db-02 & db-03"
    assert item.source_message_url == "https://test.slack.com/archives/C0CHANNEL1/p1700000500000100"
    post = wait_for(lambda: posts(fake_slack))[0]
    assert post["channel"] == CHANNEL and post["thread_ts"] == "1700000500.000100"
    assert "logged *POAM-1*" in post["text"]
    assert item_row(engine, make_actor, 1).origin_thread_ts == "1700000500.000100"
    shown = reply(slack.command("show 1", user=BOB))
    assert "<https://test.slack.com/archives/C0CHANNEL1/p1700000500000100|Logged from this message>" in shown
    # A later claim goes into the same thread.
    reply(slack.command("claim 1", user=BOB))
    claim_post = wait_for(lambda: posts(fake_slack)[1:])[0]
    assert claim_post["thread_ts"] == "1700000500.000100"


def test_message_shortcut_prefills_plain_words_not_slacks_markup(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    """Stored text is what people read: a mention, a channel, a link or
    @channel as Slack sends them went into the title and description raw."""
    message = {
        "type": "message", "user": "U0REPORTER", "ts": "1700000500.000100",
        "text": "<@U0REPORTER|rita> says TLS 1.0 is on <https://lb.example.com|the load balancer> "
                "&lt;b&gt; <!channel> see <#C0SEC|security>, <https://x.example.com> <!date^1700000000^{date}|Nov 14>",
    }
    acked(slack.shortcut(user=ALICE, message=message))
    view = wait_for(lambda: fake_slack.calls_to("views.open"))[0].params["view"]
    elements = {block.get("block_id"): block.get("element", {}) for block in view["blocks"]}
    assert elements["title"]["initial_value"] == (
        "@rita says TLS 1.0 is on the load balancer (https://lb.example.com) <b> @channel see #security, "
        "https://x.example.com Nov 14"
    )


def test_message_shortcut_on_a_thread_reply_posts_in_that_thread(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    message = {"type": "message", "ts": "1700000600.000200", "thread_ts": "1700000600.000001", "text": "Weak ciphers"}
    slack.shortcut(user=ALICE, message=message)
    view = opened_view(fake_slack)
    body = slack.submit(view, form_values(title={"value": "Weak ciphers"}, due=None), user=ALICE).json()
    assert body["response_action"] == "update", body
    post = wait_for(lambda: posts(fake_slack))[0]
    assert post["thread_ts"] == "1700000600.000001"
    (asked,) = fake_slack.calls_to("chat.getPermalink")  # the item links to the reply it was logged from
    assert asked.params["message_ts"] == "1700000600.000200"


# ---------------------------------------------------------------- user_change


def test_user_change_updates_the_time_zone_without_asking_slack_again(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    reply(slack.command("log Clock drift on ntp-01 detected:today", user=ALICE))
    assert item_row(engine, make_actor, 1).detected_on == date(2026, 11, 20)  # UTC: still Friday
    asked = [c for c in fake_slack.calls_to("users.info") if c.params.get("user") == ALICE]
    assert len(asked) == 1

    answer = slack.event(
        {"type": "user_change", "user": {"id": ALICE, "team_id": TEAM, "tz": "Pacific/Kiritimati", "is_admin": False},
         "event_ts": "1700000000.2"}
    )
    assert answer.status == 200
    # Kiritimati is UTC+14: it is already Saturday 21 November there. (A refused
    # probe shows the user's today without changing anything; events are handled after their ack.)
    probe = "log Probe detected:2026-11-30"
    wait_for(lambda: "today is 2026-11-21" in reply(slack.command(probe, user=ALICE)))
    reply(slack.command("log Clock drift again detected:today due:tomorrow", user=ALICE))
    with unit_of_work(engine, read_only=True) as session:
        latest = session.exec(select(Item).order_by(col(Item.number).desc())).first()
    assert latest is not None and (latest.detected_on, latest.due_on) == (date(2026, 11, 21), date(2026, 11, 22))
    asked = [c for c in fake_slack.calls_to("users.info") if c.params.get("user") == ALICE]
    assert len(asked) == 1, asked
    # Others keep their own zone.
    reply(slack.command("log Bob's probe detected:today", user=BOB))
    with unit_of_work(engine, read_only=True) as session:
        latest = session.exec(select(Item).order_by(col(Item.number).desc())).first()
    assert latest is not None and latest.detected_on == date(2026, 11, 20)
    wait_threads(engine, 1, 2, 3)



def test_user_change_counts_for_the_workspace_the_event_came_for(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """On Enterprise Grid a user's ``team_id`` is their home workspace, which
    need not be the one the event came for (its envelope's ``team_id``):
    requests from that one read the change, in the cache and in the record."""
    fake_slack.user(ALICE, real_name="Alice Liddell")
    reply(slack.command("log Clock drift on ntp-01", user=ALICE))

    def recorded_name() -> str | None:
        with unit_of_work(engine, read_only=True) as session:
            person = session.get(Person, (TEAM, ALICE))
            return person.name if person is not None else None

    wait_for(lambda: recorded_name() == "Alice Liddell")  # the log's lookup (after the ack) is in first
    slack.event({"type": "user_change", "event_ts": "1700000000.4",
                 "user": {"id": ALICE, "team_id": "T0HOMEWS01", "tz": "Pacific/Kiritimati",
                          "profile": {"real_name": "Alice Hargreaves"}}})
    wait_for(lambda: "today is 2026-11-21" in reply(slack.command("log Probe detected:2026-11-30", user=ALICE)))
    wait_for(lambda: recorded_name() == "Alice Hargreaves")  # the record is written after the event's ack
    with unit_of_work(engine, read_only=True) as session:
        assert session.get(Person, ("T0HOMEWS01", ALICE)) is None
    assert len([c for c in fake_slack.calls_to("users.info") if c.params.get("user") == ALICE]) == 1
    wait_threads(engine, 1)


def test_a_profile_event_sent_again_late_does_not_undo_what_was_learnt_since(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, clock: FixedClock
) -> None:
    """Slack sends an event again when its ack came late, minutes after the
    change it tells of: what the bot learnt since stays (record and cache)."""
    fake_slack.user(ALICE, real_name="Alice Liddell")
    reply(slack.command("log Clock drift on ntp-01", user=ALICE))

    def on_record() -> tuple[str | None, str | None] | None:
        with unit_of_work(engine, read_only=True) as session:
            person = session.get(Person, (TEAM, ALICE))
            return (person.name, person.tz) if person is not None else None

    wait_for(lambda: on_record() == ("Alice Liddell", "UTC"))
    five_minutes_ago = int((clock.now() - timedelta(minutes=5)).timestamp())
    slack.event({"type": "user_change", "user": {"id": ALICE, "team_id": TEAM, "tz": "Pacific/Kiritimati",
                                                 "real_name": "Alice Pleasance"}}, event_time=five_minutes_ago)
    settle()
    settle()
    assert on_record() == ("Alice Liddell", "UTC")
    assert "today is 2026-11-20" in reply(slack.command("log Probe detected:2026-11-30", user=ALICE))  # not Kiritimati's 21st
    wait_threads(engine, 1)


def test_names_slack_gives_are_kept_for_exports_and_follow_user_change(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The workbook's Point of Contact names people; the name comes from
    users.info when someone acts, and from user_change when it changes."""
    fake_slack.user(ALICE, real_name="Alice Liddell")
    reply(slack.command("log Clock drift on ntp-01", user=ALICE))  # the workspace's first use, which creates it

    def name_on_record() -> str | None:
        with unit_of_work(engine, read_only=True) as session:
            person = session.get(Person, (TEAM, ALICE))
            return person.name if person is not None else None

    assert name_on_record() == "Alice Liddell"
    slack.event({"type": "user_change", "event_ts": "1700000000.3",
                 "user": {"id": ALICE, "team_id": TEAM, "tz": "UTC", "profile": {"real_name": "Alice Hargreaves"}}})
    wait_for(lambda: name_on_record() == "Alice Hargreaves")
