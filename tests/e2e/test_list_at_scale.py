"""A 10,000-item POA&M listed through Slack (issue 7): a page within Slack's
limits that says how many items there are and how to see more, never an error.

The workspace gets one item through the domain (workspace, default system,
counters) and the rest as Core bulk inserts, a fifth of them closed, some
overdue, some with the longest title allowed, full of characters that
escaping lengthens. Then signed ``/poam list all`` and ``/poam list open``,
the Next button, a page deep in the list and the page after the last.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from bot.commands import metadata
from bot.commands.ids import ActionId
from bot.poam import item_lists, items
from bot.poam.item_lists import is_overdue
from bot.poam.lifecycle import Status
from bot.poam.severity import Severity
from bot.store.engine import unit_of_work
from bot.store.models import Item, Workspace
from tests.e2e.conftest import wait_for
from tests.e2e.test_commands import (  # noqa: F401  (fast_teardown is an autouse fixture)
    ALICE,
    BOB,
    TEAM,
    TODAY,
    fast_teardown,
    strings,
)
from tests.fake_slack import FakeSlack
from tests.slack_driver import Answer, SlackDriver

ITEMS = 10_000
CLOSED_EVERY = 5  # items 5, 10, 15… are closed: 8,000 stay open
PAGE = 20
SLACK_SECONDS = 3  # Slack shows the user an error when a command takes longer
LONG_TITLE = ("Heap overflow in <parser> & friends " * 10)[:300]


def fill_workspace(engine: Engine, make_actor: Any) -> None:
    """Item 1 logged as a user would; items 2…ITEMS copied from it in bulk."""
    with unit_of_work(engine) as session:
        first = items.log_item(session, make_actor(ALICE), title="Finding 1", severity=Severity.HIGH)
        template = first.model_dump(exclude={"id"})
    rows = []
    for number in range(2, ITEMS + 1):
        closed = number % CLOSED_EVERY == 0
        rows.append({
            **template,
            "number": number,
            "title": LONG_TITLE if number % 7 == 0 else f"Finding {number}",
            "status": Status.CLOSED if closed else Status.IN_PROGRESS,
            "owner_id": BOB,
            "due_on": TODAY + timedelta(days=number % 400 - 30),  # about 600 overdue
            "closed_at": template["created_at"] if closed else None,
            "closure": "remediated" if closed else None,
        })
    with engine.begin() as connection:
        connection.execute(sa.insert(Item), rows)
        connection.execute(sa.update(Workspace).where(Workspace.team_id == TEAM).values(last_item_number=ITEMS))


# ---------------------------------------------------------------- checks


def check_fits_slack(message: dict[str, Any]) -> None:
    """Slack's limits for a message: 50 blocks, 3,000 characters of section
    text, 150 of header text; buttons with 75 characters of text, values of
    2,000, action ids of 255; at most 25 elements in an actions block."""
    blocks = message["blocks"]
    assert message["text"] and 0 < len(blocks) <= 50, message
    for block in blocks:
        limit = 150 if block["type"] == "header" else 3000
        assert len(block.get("text", {}).get("text", "")) <= limit, block
        buttons = [block["accessory"]] if "accessory" in block else block.get("elements", [])
        assert len(buttons) <= 25, block
        for button in buttons:
            assert len(button["text"]["text"]) <= 75 and len(button["value"]) <= 2000, button
            assert len(button["action_id"]) <= 255, button


def counted(total: int, last: int) -> str:
    """How a page ending at item ``last`` of ``total`` tells the count: exactly,
    or as ``N+`` where the count stopped (``item_lists.COUNT_LIMIT``, in steps past
    the page)."""
    limit = item_lists.COUNT_LIMIT * (last // item_lists.COUNT_LIMIT + 1)
    return f"{limit:,}+" if total > limit else f"{total:,}"


def check_page(message: dict[str, Any], *, first: int, last: int, total: int) -> list[int]:
    """A page of items ``first``…``last`` (1-based) out of ``total``: its first
    line says so (:func:`counted`), and Previous / Next buttons lead to the
    pages around it. Returns the item numbers shown, in order."""
    check_fits_slack(message)
    text = strings(message)
    assert ":no_entry:" not in text and "went wrong" not in text, text
    heading = f"({first:,}–{last:,} of {counted(total, last)})"
    assert heading in message["blocks"][0]["text"]["text"], (heading, message["blocks"][0])
    shown = [int(n) for n in re.findall(r"\*POAM-(\d+)\*", text)]
    assert len(shown) == len(set(shown)) == last - first + 1, shown
    assert [button["text"]["text"] for button in navigation(message)] == (
        ["Previous"] * (first > 1) + ["Next"] * (last < total)
    )
    return shown


def navigation(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [element for block in message["blocks"] if block["type"] == "actions" for element in block["elements"]]


def command(slack: SlackDriver, text: str) -> dict[str, Any]:
    """A signed ``/poam <text>``, answered within Slack's time, privately."""
    started = time.monotonic()
    answer = slack.command(text, user=ALICE)
    assert time.monotonic() - started < SLACK_SECONDS
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body.get("response_type", "ephemeral") == "ephemeral", body
    return body


def click(slack: SlackDriver, fake_slack: FakeSlack, action_id: str, value: str) -> dict[str, Any]:
    """A button click: acknowledged at once, the page replaced within Slack's time."""
    before = len(fake_slack.responses)
    started = time.monotonic()
    answer: Answer = slack.click(action_id, value, user=ALICE)
    assert (answer.status, answer.body) == (200, "")
    page = wait_for(lambda: fake_slack.responses[before:], timeout=SLACK_SECONDS)[0]
    assert time.monotonic() - started < SLACK_SECONDS
    assert page["replace_original"] is True and page.get("response_type") == "ephemeral", page
    return page  # type: ignore[no-any-return]


def page_at(engine: Engine, scope: str, offset: int) -> str:
    """The value of a Next button after the list's ``offset``-th item, as the app
    builds it (the order found here, by sorting the list's items)."""
    with unit_of_work(engine, read_only=True) as session:
        rows = session.execute(sa.select(Item.number, Item.status, Item.due_on).where(Item.team_id == TEAM)).all()
    order = sorted(
        item_lists.Position(0 if is_overdue(row, today=TODAY) else 1, row.due_on, row.number)
        for row in rows if scope == "all" or row.status != Status.CLOSED
    )
    after = metadata.ListPage.place(order[offset - 1])
    return metadata.dump(metadata.ListPage(scope=scope, offset=offset, after=after))


# ---------------------------------------------------------------- the test


def test_ten_thousand_items_are_listed_a_page_at_a_time(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    fill_workspace(engine, make_actor)
    open_count = ITEMS - ITEMS // CLOSED_EVERY

    first = command(slack, "list all")
    page_one = check_page(first, first=1, last=PAGE, total=ITEMS)
    assert "(1–20 of 1,000+)" in strings(first)  # counting all 10,000 cost more than the page
    assert "&lt;parser&gt; &amp; friends" in strings(first)  # some longest titles, escaped, fit too
    opened = command(slack, "list open")
    check_page(opened, first=1, last=PAGE, total=open_count)

    (following,) = navigation(first)
    second = click(slack, fake_slack, following["action_id"], following["value"])
    page_two = check_page(second, first=PAGE + 1, last=2 * PAGE, total=ITEMS)
    assert not set(page_one) & set(page_two)
    previous = navigation(second)[0]
    assert check_page(click(slack, fake_slack, previous["action_id"], previous["value"]),
                      first=1, last=PAGE, total=ITEMS) == page_one

    # Deep in the list, then Next to the very end.
    deep = click(slack, fake_slack, ActionId.LIST_PAGE + ".next", page_at(engine, "all", 9_950))
    check_page(deep, first=9_951, last=9_970, total=ITEMS)
    assert "(9,951–9,970 of 10,000)" in strings(deep)  # exact once the count reaches the end
    for start in (9_970, 9_990):
        following = navigation(deep)[-1]
        deep = click(slack, fake_slack, following["action_id"], following["value"])
        check_page(deep, first=start + 1, last=min(start + PAGE, ITEMS), total=ITEMS)
    open_end = click(slack, fake_slack, ActionId.LIST_PAGE + ".next", page_at(engine, "open", open_count - 5))
    check_page(open_end, first=open_count - 4, last=open_count, total=open_count)

    # The page after the last (a stale Next after items closed) says so and offers the first page.
    beyond = click(slack, fake_slack, ActionId.LIST_PAGE + ".next", page_at(engine, "all", ITEMS))
    check_fits_slack(beyond)
    assert ":no_entry:" not in strings(beyond) and "went wrong" not in strings(beyond), beyond
    assert f"there are {ITEMS:,} now" in strings(beyond), beyond
    (back,) = navigation(beyond)
    assert back["text"]["text"] == "First page"
    check_page(click(slack, fake_slack, back["action_id"], back["value"]), first=1, last=PAGE, total=ITEMS)

    assert not fake_slack.calls_to("chat.postEphemeral")  # nothing reported on the side
