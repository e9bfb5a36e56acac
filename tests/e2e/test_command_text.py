"""How ``/poam`` reads what was typed: Slack's markup in free text, and the
user's "today" when Slack cannot say where they are."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine

from bot.blockkit.text import escape
from bot.poam.clock import FixedClock
from tests.e2e.test_commands import (  # noqa: F401  (fast_teardown is an autouse fixture)
    ALICE,
    CAROL,
    at,
    claimed_item,
    fast_teardown,
    item_row,
    milestone_rows,
    posts,
    reply,
    wait_threads,
)
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver


def test_mentions_channels_and_links_are_stored_as_read_not_as_markup(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    """With ``should_escape`` Slack sends them as markup; stored so, a card
    showed ``Title with &lt;#C0123|general&gt;``. A person option still
    takes the mention's user id."""
    markup = "<#C0123|general> and <@U0000CAROL|carol> and <https://ex.com|the advisory> R&amp;D <!here>"
    read = "#general and @carol and the advisory (https://ex.com) R&D @here"
    answer = slack.raw_command(f'log Title with {markup} sev:low desc:"{markup}" owner:{at(CAROL)}', user=ALICE)
    assert "Logged *POAM-1*" in reply(answer)
    item = item_row(engine, make_actor, 1)
    assert (item.title, item.description, item.owner_id) == (f"Title with {read}", read, CAROL)
    assert escape(f"Title with {read}") in reply(slack.command("show 1", user=ALICE))
    wait_threads(engine, 1)
    assert "&lt;#C0123" not in posts(fake_slack)[0]["text"]

    reply(slack.raw_command(f"plan 1 Patch, as {markup} says", user=CAROL))
    reply(slack.raw_command(f"milestone 1 add Tell {markup} due:+3d", user=CAROL))
    assert item_row(engine, make_actor, 1).remediation_plan == f"Patch, as {read} says"
    assert milestone_rows(engine, 1)[0].description == f"Tell {read}"


def test_today_is_the_recorded_zones_when_slack_does_not_answer(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, clock: FixedClock
) -> None:
    """``due:today`` was read in the workspace's zone but checked in the
    user's recorded one: "The milestone date 2026-11-20 is in the past;
    today is 2026-11-21" to someone in Kiritimati (UTC+14)."""
    fake_slack.user(ALICE, tz="Pacific/Kiritimati")
    claimed_item(slack, fake_slack, engine, owner=ALICE)  # records her zone
    clock.advance(hours=2)  # Slack's answer leaves the cache; Sat 21 Nov 07:00 in Kiritimati
    fake_slack.fail("users.info", times=20, status=500)
    body = reply(slack.command("milestone 1 add Patch due:today", user=ALICE))
    assert "Added *M1* to *POAM-1*, due Sat 21 Nov 2026." in body, body
    assert milestone_rows(engine, 1)[0].due_on == date(2026, 11, 21)
