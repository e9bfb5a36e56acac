"""Bots named for work: Slack offers a bot (an app's user, Slackbot) to
mention like anyone, but it fixes, verifies and decides nothing, and Slack
refuses a DM to it (``cannot_dm_bot``). Known from Slack (a ``users.info``
answer after the change that named it), it is refused from then on, gets no
reminders, and whoever named it is told."""

from __future__ import annotations

from sqlalchemy import Engine

from bot.poam.clock import FixedClock
from bot.reminders.scheduler import Scheduler
from tests.e2e import test_reminders_e2e as reminders
from tests.e2e.conftest import ADMIN, wait_for
from tests.e2e.test_commands import fast_teardown, reply  # noqa: F401  (fast_teardown is an autouse fixture)
from tests.e2e.test_departures import recorded
from tests.e2e.test_reminders_e2e import AO, OWNER, dms
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

overdue = reminders.overdue  # POAM-1, the OWNER's, 20 days overdue on Fri 20 Nov; AO holds the AO role
scheduler = reminders.scheduler
JIRA = "U0000JIRABOT"


def is_bot(engine: Engine, user: str) -> bool | None:
    return recorded(engine, user, "is_bot")  # type: ignore[no-any-return]


def test_a_bot_made_owner_is_learnt_the_admin_told_and_it_is_refused_and_never_reminded(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, engine: Engine
) -> None:
    fake_slack.user(JIRA, real_name="Jira Cloud", is_bot=True)
    assert "now owned by" in reply(slack.raw_command(f"assign POAM-1 <@{JIRA}|jira>", user=ADMIN))
    wait_for(lambda: is_bot(engine, JIRA))
    wait_for(lambda: [dm for dm in dms(fake_slack, ADMIN) if "is a bot, not a person" in dm["text"]])
    (told,) = [dm for dm in dms(fake_slack, ADMIN) if "is a bot, not a person" in dm["text"]]
    assert told["text"].startswith(f"You named <@{JIRA}> for POA&M work")

    refusals = {
        "assign POAM-1": f"assign POAM-1 <@{JIRA}|jira>",
        "owner:": f"log Weak TLS owner:<@{JIRA}|jira>",
        "ao:": f"system add Payroll ao:<@{JIRA}|jira>",
        "role": f"role <@{JIRA}|jira> +verifier",
    }
    for what, command in refusals.items():
        answer = reply(slack.raw_command(command, user=ADMIN))
        assert "That is a bot, not a person" in answer, (what, answer)

    fake_slack.clear()
    scheduler.tick()  # POAM-1, overdue, is the bot's: no reminder to it
    assert dms(fake_slack, JIRA) == []


def test_slackbot_is_refused_though_slack_calls_it_no_bot(overdue: int, slack: SlackDriver) -> None:
    answer = reply(slack.raw_command("assign POAM-1 <@USLACKBOT|slackbot>", user=ADMIN))
    assert "That is a bot, not a person" in answer, answer


def test_a_person_named_is_no_bot_and_nobody_is_told(
    overdue: int, slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    carol = "U00000CAROL"
    fake_slack.user(carol, real_name="Carol")
    assert "now owned by" in reply(slack.raw_command(f"assign POAM-1 <@{carol}|carol>", user=ADMIN))
    wait_for(lambda: is_bot(engine, carol) is False)
    assert [dm for dm in dms(fake_slack, ADMIN) if "is a bot" in dm["text"]] == []


def test_a_bot_named_ao_before_it_was_known_is_passed_over_for_decisions(
    overdue: int, slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The change that first names an unknown bot stands: a request in its
    system was put to it alone, and waited on nobody."""
    fake_slack.user(JIRA, real_name="Jira Cloud", is_bot=True)
    assert "Added" in reply(slack.raw_command(f"system add Payroll ao:<@{JIRA}|jira>", user=ADMIN))
    wait_for(lambda: is_bot(engine, JIRA))
    assert "Logged *POAM-2*" in reply(slack.raw_command(f"log Weak TLS system:Payroll owner:<@{OWNER}|o>", user=OWNER))
    asked = reply(slack.command("deviate 2 fp Scanner misreads the banner", user=OWNER))
    assert f"Asked: <@{AO}>." in asked, asked  # the AO by role, in the bot's place
    assert dms(fake_slack, JIRA) == []


def test_a_bot_slack_refuses_a_reminder_to_is_recorded_as_one(
    overdue: int, scheduler: Scheduler, fake_slack: FakeSlack, engine: Engine, clock: FixedClock
) -> None:
    """Named before the bot knew bots, a bot got a reminder a day, each refused."""
    fake_slack.fail("chat.postMessage", error="cannot_dm_bot")
    scheduler.tick()  # the AO's escalation (the owner's reminder comes at nine in New York): refused as to a bot
    assert is_bot(engine, AO) is True
    clock.advance(days=3, hours=1)  # Monday, ten in New York: the escalation is due again, but goes to no bot
    fake_slack.clear()
    scheduler.tick()
    assert dms(fake_slack, AO) == [] and dms(fake_slack, OWNER)  # the owner's reminder did go
