"""People a change names (an owner set by someone else) are asked about in
Slack after the change: the exports write their names and their reminders come
in their own time zone, though they never used the bot themselves."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.commands.context import Services, SlackRequest
from bot.commands.ids import BlockId
from bot.commands.named_people import MAX_LOOKUPS, _learn
from bot.commands.users import UserDirectory
from bot.config import Settings
from bot.interchange.fedramp import COLUMNS
from bot.poam.clock import FixedClock
from bot.poam.items import log_item
from bot.poam.severity import Severity
from bot.store.engine import unit_of_work
from bot.store.models import Person
from tests.e2e.conftest import ADMIN, wait_for
from tests.e2e.test_commands import (  # noqa: F401  (fast_teardown is an autouse fixture)
    ALICE,
    BOB,
    CAROL,
    TEAM,
    at,
    fast_teardown,
    item_row,
    log_via_slack,
    reply,
    settle,
)
from tests.e2e.test_interactions import form_values, log_form
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

DAVE = "U0000DAVE1"


def person(engine: Engine, user_id: str) -> tuple[str | None, str | None] | None:
    with unit_of_work(engine, read_only=True) as session:
        found = session.get(Person, (TEAM, user_id))
        return (found.name, found.tz) if found is not None else None


def asked_about(fake_slack: FakeSlack, user_id: str) -> int:
    return len([call for call in fake_slack.calls_to("users.info") if call.params.get("user") == user_id])


def test_an_owner_assigned_by_an_admin_is_learnt_once(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any, clock: FixedClock
) -> None:
    fake_slack.user(CAROL, tz="Asia/Tokyo", real_name="Carol Danvers")
    fake_slack.user(DAVE, real_name="Dave Bowman")
    log_via_slack(slack, engine, "Weak TLS sev:high")
    log_via_slack(slack, engine, "Old OpenSSH sev:low")
    assert person(engine, CAROL) is None
    reply(slack.raw_command(f"assign 1 {at(CAROL)}", user=ADMIN))
    assert wait_for(lambda: person(engine, CAROL)) == ("Carol Danvers", "Asia/Tokyo")
    clock.advance(hours=2)  # past the hour users.info answers are cached
    asked = asked_about(fake_slack, CAROL)
    import_contacts(slack, fake_slack, [CAROL, DAVE])  # one job, in this order
    assert wait_for(lambda: person(engine, DAVE)) == ("Dave Bowman", "UTC")
    assert asked_about(fake_slack, CAROL) == asked  # a name on record: Slack is not asked again


def test_an_owner_named_when_logging_is_learnt(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    fake_slack.user(CAROL, real_name="Carol Danvers")
    fake_slack.user(BOB, tz="Europe/Paris", real_name="Bob Lazar")
    log_via_slack(slack, engine, f"Weak TLS owner:{at(CAROL)}")
    assert wait_for(lambda: person(engine, CAROL)) == ("Carol Danvers", "UTC")
    view = log_form(slack, fake_slack)  # the form names BOB as the owner
    assert slack.submit(view, form_values(), user=ALICE).status == 200
    assert wait_for(lambda: person(engine, BOB)) == ("Bob Lazar", "Europe/Paris")


def test_a_person_slack_cannot_tell_about_is_not_recorded(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    log_via_slack(slack, engine, "Weak TLS sev:high")
    reply(slack.command("show 1", user=ADMIN))  # the admin's own users.info is behind us
    fake_slack.user(CAROL, real_name="Carol Danvers")
    fake_slack.fail("users.info", error="user_not_found")
    reply(slack.raw_command(f"assign 1 {at(CAROL)}", user=ADMIN))
    wait_for(lambda: asked_about(fake_slack, CAROL) == 1)
    settle()
    assert item_row(engine, make_actor, 1).owner_id == CAROL and person(engine, CAROL) is None


def test_a_slack_refusing_lookups_is_not_asked_about_the_rest(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """Rate-limited (or failing), Slack is not asked about the other people
    an import names; a later change naming them asks again."""
    contacts = [DAVE, CAROL, BOB]
    fake_slack.user(CAROL, real_name="Carol Danvers")
    reply(slack.command("log Warm-up", user=ADMIN))  # the admin's own users.info is behind us
    fake_slack.fail("users.info", status=429, retry_after=1)
    import_contacts(slack, fake_slack, contacts)
    wait_for(lambda: asked_about(fake_slack, DAVE) == 1)
    settle()
    assert [asked_about(fake_slack, user_id) for user_id in contacts] == [1, 0, 0]
    reply(slack.raw_command(f"assign 1 {at(CAROL)}", user=ADMIN))
    assert wait_for(lambda: person(engine, CAROL)) == ("Carol Danvers", "UTC")


def test_the_points_of_contact_of_an_import_are_learnt_up_to_a_limit(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    contacts = [DAVE] + [f"U0PERSON{n:02d}" for n in range(MAX_LOOKUPS + 5)]
    for n, user_id in enumerate(contacts):
        fake_slack.user(user_id, tz="America/Chicago", real_name=f"Person {n}")
    summary = import_contacts(slack, fake_slack, contacts, confirm=False)
    assert f"would bring: {len(contacts)} new" in json.dumps(summary), summary
    assert person(engine, DAVE) is None  # a check changes nothing and names nobody
    slack.submit(summary, {}, user=ADMIN)
    assert wait_for(lambda: person(engine, DAVE)) == ("Person 0", "America/Chicago")
    wait_for(lambda: person(engine, contacts[MAX_LOOKUPS - 1]))
    settle()
    assert sum(asked_about(fake_slack, user_id) for user_id in contacts) == MAX_LOOKUPS
    assert person(engine, contacts[MAX_LOOKUPS]) is None  # asked about when a later change names them
    # The same file again changes nothing (all unchanged): it names nobody.
    again = import_contacts(slack, fake_slack, contacts)
    assert f"would bring: 0 new, 0 updated, {len(contacts)} unchanged" in json.dumps(again), again
    wait_for(lambda: "Imported" in json.dumps(fake_slack.calls_to("views.update")[-1].view))
    settle()
    assert sum(asked_about(fake_slack, user_id) for user_id in contacts) == MAX_LOOKUPS


def test_an_ao_and_a_role_holder_named_are_learnt(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    fake_slack.user(CAROL, tz="Asia/Tokyo", real_name="Carol Danvers")
    fake_slack.user(DAVE, real_name="Dave Bowman")
    log_via_slack(slack, engine, "Weak TLS")  # the workspace exists
    reply(slack.raw_command(f"system add Payroll ao:{at(CAROL)}", user=ADMIN))
    assert wait_for(lambda: person(engine, CAROL)) == ("Carol Danvers", "Asia/Tokyo")
    reply(slack.raw_command(f"role {at(DAVE)} +verifier", user=ADMIN))
    assert wait_for(lambda: person(engine, DAVE)) == ("Dave Bowman", "UTC")


def import_contacts(
    slack: SlackDriver, fake_slack: FakeSlack, contacts: list[str], *, confirm: bool = True
) -> dict[str, Any]:
    """Check a CSV in the template's columns, one row per Point of Contact, and
    (``confirm``) import it; the form's last view."""
    header = ",".join(f'"{column}"' for column in COLUMNS)
    rows = []
    for n, user_id in enumerate(contacts):
        cells = {"POAM ID": f"V-{n}", "Weakness Name": f"Weak TLS {n}", "Original Risk Rating": "Low",
                 "Point of Contact": user_id}
        rows.append(",".join(f'"{cells.get(column, "")}"' for column in COLUMNS))
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[-1].view
    url = fake_slack.host_file("poam.csv", "\n".join([header, *rows, ""]).encode())
    upload = {"type": "file_input", "files": [{"id": "F1", "name": "poam.csv", "url_private_download": url}]}
    updates = len(fake_slack.calls_to("views.update"))
    slack.submit(form, {BlockId.FILE: upload}, user=ADMIN)
    summary = wait_for(lambda: fake_slack.calls_to("views.update")[updates:])[0].view
    if confirm:
        slack.submit(summary, {}, user=ADMIN)
    return summary




def test_a_lookup_answered_after_a_profile_change_does_not_undo_it(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """``users.info`` asked about someone just before they changed their
    profile can answer after the ``user_change`` event was handled, with the
    person as they were: the change stays, in the cache and on record."""
    fake_slack.user(CAROL, tz="Asia/Tokyo")  # no name yet: an assignment asks Slack about her
    log_via_slack(slack, engine, "Weak TLS sev:high")
    reply(slack.command("remind at:08:30", user=CAROL))
    assert person(engine, CAROL) == (None, "Asia/Tokyo")
    fake_slack.user(CAROL, tz="Asia/Tokyo", real_name="Carol Danvers")  # what the late answer says
    clock.advance(hours=2)  # past the hour users.info answers are cached
    reply(slack.command("show 1", user=ADMIN))  # the admin's own users.info is behind us
    with fake_slack.hold("users.info"):
        reply(slack.raw_command(f"assign 1 {at(CAROL)}", user=ADMIN))
        wait_for(lambda: asked_about(fake_slack, CAROL) == 2)
        clock.advance(seconds=1)
        slack.event({"type": "user_change", "event_ts": "1700000000.5",
                     "user": {"id": CAROL, "team_id": TEAM, "tz": "Europe/Paris", "real_name": "Carol Marvel"}})
        wait_for(lambda: person(engine, CAROL) == ("Carol Marvel", "Europe/Paris"))
    settle()
    settle()  # the late answer's job is done by now
    # It came in time (within the lookup's 1.5 s): the bot had it to refuse.
    assert "users.info for U0000CAROL failed" not in caplog.text
    assert person(engine, CAROL) == ("Carol Marvel", "Europe/Paris")
    # The cache too: in Paris it is still the 20th (in Tokyo, the 21st), and Slack was not asked again.
    assert "today is 2026-11-20" in reply(slack.command("log Probe detected:2026-11-30", user=CAROL))
    assert asked_about(fake_slack, CAROL) == 2


def test_two_imports_learning_the_same_people_at_once_do_not_deadlock(
    engine: Engine, settings: Settings, clock: FixedClock, fake_slack: FakeSlack, make_actor: Any
) -> None:
    """Each recorded its people in its file's order: two naming the same
    people in another order deadlocked, and the people only the loser named
    were never recorded."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    with unit_of_work(engine) as session:
        log_item(session, make_actor(ADMIN, team=TEAM), title="A weakness", severity=Severity.LOW)
    services = Services(engine=engine, settings=settings, clock=clock,
                        users=UserDirectory(default_tz=settings.timezone, clock=clock))
    client = WebClient(token="xoxb-x", base_url=fake_slack.base_url)
    failures: list[Exception] = []
    named: list[str] = []
    for round_number in range(8):
        people = [f"U0R{round_number}P{n:04d}" for n in range(6)]
        for user_id in people:
            fake_slack.user(user_id, real_name=f"Person {user_id}")
        start = threading.Barrier(2)

        def learn(user_ids: list[str], start: threading.Barrier = start) -> None:
            start.wait()
            try:
                _learn(SlackRequest(services, client, TEAM, ADMIN), user_ids)
            except Exception as error:  # reported below
                failures.append(error)

        threads = [threading.Thread(target=learn, args=(ids,)) for ids in (people[:4], people[2:][::-1])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        named += people
    assert failures == []
    assert all(person(engine, user_id) == (f"Person {user_id}", "UTC") for user_id in named)
