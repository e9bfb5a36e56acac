"""People who left Slack, end to end: Slack says so (a ``user_change`` event,
a ``users.info`` answer), the bot stops writing to them, tells the admins and
the AOs of their items' systems once, lists them in the digest, and refuses
them as owners, AOs and role holders.

Slack takes a DM to a deactivated person without an error, so nothing but
what Slack says of them tells the bot."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.commands import user_events
from bot.poam.actor import Actor, Role
from bot.poam.audit import verify_chain
from bot.poam.clock import FixedClock
from bot.poam.errors import InvalidInput
from bot.poam.items import assign_item
from bot.reminders.departures import KIND
from bot.reminders.people import remember_person
from bot.reminders.scheduler import Scheduler
from bot.store.counters import lock_workspace
from bot.store.engine import unit_of_work
from bot.store.models import AuditEvent, Item, OutboxMessage, Person
from tests.db import wait_for_a_lock_wait
from tests.e2e import test_reminders_e2e as reminders
from tests.e2e.conftest import ADMIN, wait_for
from tests.e2e.test_commands import fast_teardown, reply  # noqa: F401  (fast_teardown is an autouse fixture)
from tests.e2e.test_reminders_e2e import AO, BOB, NEW_YORK, OWNER, all_text, dms, utc
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

overdue = reminders.overdue  # POAM-1, the OWNER's, 20 days overdue on Fri 20 Nov; AO holds the AO role
scheduler = reminders.scheduler
TEAM = "T0001"
CAROL = "U00000CAROL"


def recorded(engine: Engine, user: str, what: str) -> Any:
    """What the person's record says of ``what`` (a ``Person`` column); None when they have none."""
    with unit_of_work(engine, read_only=True) as session:
        person = session.get(Person, (TEAM, user))
        return None if person is None else getattr(person, what)


def left_at(engine: Engine, user: str) -> datetime | None:
    return recorded(engine, user, "left_at")  # type: ignore[no-any-return]


def user_change(slack: SlackDriver, user: str, *, deleted: bool) -> None:
    """Slack's event, sent now (its ``event_time``, later than the test's clock, counts as the clock's now)."""
    profile: dict[str, Any] = {"id": user, "team_id": TEAM, "tz": NEW_YORK, "is_admin": False,
                               "real_name": "Olive Owner", "deleted": deleted}
    assert slack.event({"type": "user_change", "user": profile}).status == 200


def departure_dms(fake_slack: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [dm for dm in dms(fake_slack, user) if "no longer active in Slack" in dm["text"]]


def owner_of(engine: Engine, number: int) -> str | None:
    with unit_of_work(engine, read_only=True) as session:
        return session.exec(select(Item.owner_id).where(Item.team_id == TEAM, Item.number == number)).one()


def test_an_owner_deactivated_in_slack_gets_no_more_reminders_and_the_admins_are_told_once(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    assert "is now" in reply(slack.raw_command(f"role <@{BOB}|bob> +admin", user=ADMIN))
    user_change(slack, OWNER, deleted=True)
    first = wait_for(lambda: left_at(engine, OWNER))
    user_change(slack, OWNER, deleted=True)  # Slack's copy of the event, or a later one
    clock.set(utc(11, 20, 14, 0))  # Friday 09:00 in New York: the owner's reminder time
    scheduler.tick()

    assert dms(fake_slack, OWNER) == []
    for admin in (ADMIN, BOB):  # configured and granted: both can assign
        (told,) = departure_dms(fake_slack, admin)
        text = all_text(told)
        assert f"<@{OWNER}> is no longer active in Slack (deactivated)" in text
        assert "they own 1 open item: POAM-1. `/poam assign POAM-1 @someone` hands one on." in text
        assert "they are an authorizing official" not in text
    assert departure_dms(fake_slack, AO) == []  # an AO by role, of no named system: not asked to reassign
    assert len(dms(fake_slack, AO)) == 1  # but still hears of the overdue item

    clock.set(utc(11, 23, 14, 0))  # Monday: no reminder, and nobody told again
    user_change(slack, OWNER, deleted=True)
    scheduler.tick()
    assert dms(fake_slack, OWNER) == []
    assert len(departure_dms(fake_slack, ADMIN)) == len(departure_dms(fake_slack, BOB)) == 1
    assert left_at(engine, OWNER) == first  # when Slack first said so

    user_change(slack, OWNER, deleted=False)  # reactivated
    wait_for(lambda: left_at(engine, OWNER) is None)
    clock.set(utc(11, 24, 14, 0))
    scheduler.tick()
    (reminder,) = dms(fake_slack, OWNER)
    assert reminder["text"] == "Your POA&M for Tue 24 Nov 2026"


def test_leaving_and_coming_back_are_on_the_audit_trail(overdue: int, slack: SlackDriver, engine: Engine) -> None:
    """Slack's word decides who may be named owner, AO or verifier; the
    change left no event, while everything else that changes that does."""
    def people_events() -> list[tuple[str, str, dict[str, Any]]]:
        with unit_of_work(engine, read_only=True) as session:
            return [(e.actor_id, e.action, e.details) for e in session.exec(
                select(AuditEvent).where(AuditEvent.team_id == TEAM, col(AuditEvent.action).startswith("person."))
                .order_by(col(AuditEvent.seq)))]

    user_change(slack, OWNER, deleted=True)
    wait_for(lambda: left_at(engine, OWNER))
    user_change(slack, OWNER, deleted=True)  # Slack's copy: nothing more
    user_change(slack, OWNER, deleted=False)
    wait_for(lambda: left_at(engine, OWNER) is None)
    user_change(slack, OWNER, deleted=False)
    wait_for(lambda: len(people_events()) >= 2)
    assert people_events() == [("system", "person.left", {"person": OWNER}),
                               ("system", "person.returned", {"person": OWNER})]
    with unit_of_work(engine, read_only=True) as session:
        assert verify_chain(session, team_id=TEAM).ok


def test_a_named_ao_and_a_verifier_who_left_are_named_to_the_admins(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    assert "Added" in reply(slack.raw_command(f"system add Payroll ao:<@{CAROL}|carol>", user=ADMIN))
    assert "is now" in reply(slack.raw_command(f"role <@{CAROL}|carol> +verifier", user=ADMIN))
    assert "Logged *POAM-2*" in reply(slack.raw_command(f"log Weak TLS system:Payroll owner:<@{OWNER}|o>", user=OWNER))
    user_change(slack, OWNER, deleted=True)
    wait_for(lambda: left_at(engine, OWNER))
    scheduler.tick()
    (to_carol,) = departure_dms(fake_slack, CAROL)  # the named AO of POAM-2's system, not an admin
    assert ("they own 1 open item in the systems you are the authorizing official of: POAM-2. An admin hands "
            "them on with `/poam assign`.") in all_text(to_carol)
    (to_admin,) = departure_dms(fake_slack, ADMIN)
    assert "they own 2 open items: POAM-1, POAM-2. `/poam assign POAM-1 @someone` hands one on." in all_text(to_admin)

    user_change(slack, CAROL, deleted=True)
    wait_for(lambda: left_at(engine, CAROL))
    scheduler.tick()
    (told,) = [dm for dm in departure_dms(fake_slack, ADMIN) if f"<@{CAROL}>" in dm["text"]]
    text = all_text(told)
    assert "they are the authorizing official of *Payroll*. `/poam system set Payroll ao:@someone` names another." \
        in text
    assert f"they are a verifier: `/poam role {CAROL} -verifier` takes it back." in text
    assert "open item" not in text
    # Slack offers no mention of someone deactivated: the id as the note gives it does
    assert "no longer" in reply(slack.command(f"role {CAROL} -verifier", user=ADMIN))


def test_nobody_is_told_of_someone_who_held_nothing(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, engine: Engine
) -> None:
    user_change(slack, CAROL, deleted=True)  # never used the bot: recorded all the same
    wait_for(lambda: left_at(engine, CAROL))
    scheduler.tick()
    with unit_of_work(engine, read_only=True) as session:
        assert session.exec(select(OutboxMessage).where(OutboxMessage.kind == KIND)).all() == []


def test_someone_who_left_is_refused_as_owner_ao_or_role_holder(
    overdue: int, slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    user_change(slack, CAROL, deleted=True)
    wait_for(lambda: left_at(engine, CAROL))
    carol = f"<@{CAROL}|carol>"
    for command in (f"assign POAM-1 {carol}", f"log Weak TLS owner:{carol}", f"system add Payroll ao:{carol}",
                    f"system set default ao:{carol}", f"role {carol} +verifier"):
        body = reply(slack.raw_command(command, user=ADMIN))
        assert "That person was deactivated in Slack (on 2026-11-20)" in body, (command, body)
        assert "choose someone who is still here" in body
    assert owner_of(engine, 1) == OWNER
    assert reply(slack.command("list open", user=ADMIN)).count("POAM-") == 1
    assert "Payroll" not in reply(slack.command("systems", user=ADMIN))
    assert CAROL not in reply(slack.command("roles", user=ADMIN))
    # A typed id names nobody Slack vouched for: it lists items and takes roles back, never gives one.
    assert "Mention the person to give them a role" in reply(slack.command("role U0NOBODY98 +ao", user=ADMIN))
    assert "not a person" not in reply(slack.command("role UABCDEFGHJ -ao", user=ADMIN))  # an older id, no digit
    assert "POAM-1" in reply(slack.command(f"list open owner:{OWNER}", user=ADMIN))


def the_admin_is_told_carol_left_owning_poam_1(engine: Engine, scheduler: Scheduler, fake_slack: FakeSlack) -> None:
    wait_for(lambda: left_at(engine, CAROL))
    scheduler.tick()
    (told,) = departure_dms(fake_slack, ADMIN)
    assert f"<@{CAROL}> is no longer active in Slack" in told["text"]
    assert "they own 1 open item: POAM-1." in all_text(told)


def test_an_assignee_slack_says_was_deactivated_is_recorded_and_the_admins_told(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, engine: Engine
) -> None:
    """Assigned before the bot knew: the look-up after the change
    (``named_people``) learns it, and the admin who assigned hears of it."""
    fake_slack.user(CAROL, tz=NEW_YORK, real_name="Carol")
    fake_slack.users[CAROL]["deleted"] = True
    assert "now owned by" in reply(slack.raw_command(f"assign POAM-1 <@{CAROL}|carol>", user=ADMIN))
    the_admin_is_told_carol_left_owning_poam_1(engine, scheduler, fake_slack)


def test_the_digest_lists_owners_who_left(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, clock: FixedClock, engine: Engine
) -> None:
    assert "weekly digest" in reply(slack.command("subscribe", user=ADMIN))
    user_change(slack, OWNER, deleted=True)
    wait_for(lambda: left_at(engine, OWNER))
    clock.set(utc(11, 23, 10))  # Monday 10:00 UTC: the digest's hour
    scheduler.tick()
    (digest,) = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "C0CHANNEL1"
                 and c.params.get("text", "").startswith("Weekly POA&M digest")]
    text = all_text(digest)
    assert "*Owners no longer in Slack*" in text
    assert f"• <@{OWNER}> · 1 open item\n" in text + "\n" and "1 open items" not in text


def test_review_requests_pass_over_people_who_left(
    overdue: int, slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """A request put only to a named AO who left waited on nobody; a fix was
    put to a verifier who left; an owner who left was DMed the decision."""
    assert "Added" in reply(slack.raw_command(f"system add Payroll ao:<@{CAROL}|carol>", user=ADMIN))
    assert "is now" in reply(slack.raw_command(f"role <@{CAROL}|carol> +verifier", user=ADMIN))
    assert "Logged *POAM-2*" in reply(slack.raw_command(f"log Weak TLS system:Payroll owner:<@{OWNER}|o>", user=OWNER))
    user_change(slack, CAROL, deleted=True)
    wait_for(lambda: left_at(engine, CAROL))

    asked = reply(slack.command("deviate 2 fp Scanner misreads the banner", user=OWNER))
    assert f"Asked: <@{AO}>." in asked, asked  # the AO by role, in place of the named AO who left
    submitted = reply(slack.command("submit 1", user=OWNER))
    assert "Nobody can verify it yet: every verifier worked on it or left Slack" in submitted, submitted
    assert dms(fake_slack, CAROL) == []

    user_change(slack, OWNER, deleted=True)
    wait_for(lambda: left_at(engine, OWNER))
    fake_slack.clear()
    assert "You approved" in reply(slack.command("decide 2 approve", user=AO))
    with unit_of_work(engine, read_only=True) as session:  # queued in the decision's transaction, or not at all
        assert session.exec(select(OutboxMessage).where(OutboxMessage.recipient == OWNER)).all() == []


def test_slacks_workspace_admins_the_bot_has_seen_are_told_too(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, engine: Engine
) -> None:
    """Slack's workspace admins and owners are POA&M admins, but the bot could
    not list them: in an install without POAM_ADMINS or granted admins a
    departure was told to nobody."""
    slack_admin, demoted = "U0SLACKADM1", "U0SLACKADM2"
    for user in (slack_admin, demoted):
        fake_slack.user(user, is_admin=True)
        assert "You get a DM at" in reply(slack.command("remind at:08:00", user=user))  # a change: recorded
    user_change(slack, demoted, deleted=False)  # no longer an admin, says Slack (the event's is_admin False)
    wait_for(lambda: recorded(engine, demoted, "slack_admin") is False)
    user_change(slack, OWNER, deleted=True)
    wait_for(lambda: left_at(engine, OWNER))
    scheduler.tick()
    (told,) = departure_dms(fake_slack, slack_admin)
    assert "they own 1 open item: POAM-1." in all_text(told)
    assert departure_dms(fake_slack, demoted) == []


def test_an_owner_named_as_their_departure_is_recorded_is_in_the_admins_note(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, engine: Engine,
    make_actor: Callable[..., Actor],
) -> None:
    """An assignment not yet committed when Slack said its new owner left:
    what they held was read before it, so they left owning the item, and the
    admins' note (once only) did not name it (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    admin = make_actor(ADMIN, Role.ADMIN, team=TEAM)
    with unit_of_work(engine) as session:
        assign_item(session, admin, number=1, owner_id=CAROL)
        user_change(slack, CAROL, deleted=True)  # recorded after the ack: it waits for this change
        wait_for_a_lock_wait(engine)
    the_admin_is_told_carol_left_owning_poam_1(engine, scheduler, fake_slack)


def test_an_owner_whose_departure_is_being_recorded_is_refused(
    overdue: int, engine: Engine, clock: FixedClock, make_actor: Callable[..., Actor]
) -> None:
    """The other way round: the assignment waits for the departure, then
    refuses the owner, who would otherwise hold it unknown to anyone (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers run one at a time: the race cannot open")
    admin = make_actor(ADMIN, Role.ADMIN, team=TEAM)
    outcome: list[BaseException | None] = []

    def assign() -> None:
        try:
            with unit_of_work(engine) as session:
                assign_item(session, admin, number=1, owner_id=CAROL)
            outcome.append(None)
        except InvalidInput as refused:
            outcome.append(refused)

    with unit_of_work(engine) as session:  # as ``user_events.record_person`` does
        remember_person(session, team_id=TEAM, user_id=CAROL, tz=ZoneInfo(NEW_YORK), name="Carol", clock=clock,
                        left=True)
        lock_workspace(session, team_id=TEAM)
        assigning = threading.Thread(target=assign)
        assigning.start()
        wait_for_a_lock_wait(engine)
    assigning.join(30)
    (refused,) = outcome
    assert refused is not None and "deactivated in Slack" in str(refused)
    assert owner_of(engine, 1) == OWNER


def test_a_departure_the_database_refused_for_a_while_is_recorded_when_it_takes_it(
    overdue: int, slack: SlackDriver, scheduler: Scheduler, fake_slack: FakeSlack, engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slack does not send an answered event again: a write lock held past
    the wait (a long import) lost the departure, and nobody was told."""
    monkeypatch.setattr(user_events, "RECORD_MAX_WAIT", 0.3)
    monkeypatch.setattr(user_events, "RECORD_PAUSES", (0.5, 0.5, 0.5, 5.0))
    with held_write_lock(engine):
        user_change(slack, OWNER, deleted=True)
        time.sleep(1.5)  # the first two tries refused
        assert left_at(engine, OWNER) is None
    wait_for(lambda: left_at(engine, OWNER), timeout=10)
    scheduler.tick()
    assert len(departure_dms(fake_slack, ADMIN)) == 1


@contextmanager
def held_write_lock(engine: Engine) -> Iterator[None]:
    """Another writer holding the people table: SQLite's one write lock, a
    PostgreSQL table lock."""
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        if engine.dialect.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        else:
            raw.execute("BEGIN")
            raw.execute("LOCK TABLE people IN EXCLUSIVE MODE")  # readers pass
        try:
            yield
        finally:
            raw.rollback()
