"""Every ``/poam`` subcommand of issue 3 end to end: success, refusal and malformed forms.

The bot runs as the real WSGI app on a loopback port; requests are signed as
Slack signs them; its Web API calls go to the fake Slack. Each refusal and
malformed form is an ephemeral answer (the HTTP body of the slash command)
that says what was wrong, and leaves every table exactly as it was.

The shared helpers here (``snapshot``, ``fast_teardown``, the users…) are
imported by ``test_interactions.py`` and ``test_security.py``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, select

import bot.store.models  # noqa: F401  (registers every table on SQLModel.metadata)
from bot.blockkit.text import escape
from bot.commands.ids import ActionId
from bot.commands.specs import SPECS
from bot.poam import item_details, items
from bot.poam.clock import FixedClock
from bot.poam.severity import Severity
from bot.store.engine import unit_of_work
from bot.store.models import AuditEvent, Item, Milestone, MilestoneChange, RoleGrant
from bot.web import EVENTS_PATH
from tests.db import snapshot, statements
from tests.e2e.conftest import ADMIN, wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import Answer, SlackDriver

ALICE = "U00000ALICE"
BOB = "U000000BOB"
CAROL = "U0000CAROL"
CHANNEL = "C0CHANNEL1"
TEAM = "T0001"
TODAY = date(2026, 11, 20)  # the fixed clock: Fri 2026-11-20 15:00 UTC


def at(user: str, name: str | None = None) -> str:
    """A mention as Slack sends it in command text: ``<@U…|name>``."""
    return f"<@{user}|{name or user.lower()}>"


# ---------------------------------------------------------------- harness helpers


@pytest.fixture(autouse=True)
def fast_teardown(server_url: str, fake_slack: FakeSlack) -> Iterator[None]:
    """Make the two loopback servers stop at once instead of after their 0.5 s poll.

    ``shutdown()`` waits for ``serve_forever`` to wake from ``select``; a
    connection wakes it. This keeps the e2e suite well under its time budget
    without touching the shared fixtures.
    """
    yield
    addresses = [urlsplit(server_url)[1], urlsplit(fake_slack.base_url)[1]]
    stop_at = time.monotonic() + 3

    def poke() -> None:
        while time.monotonic() < stop_at and addresses:
            for address in list(addresses):
                host, port = address.split(":")
                try:
                    socket.create_connection((host, int(port)), timeout=0.2).close()
                except OSError:
                    addresses.remove(address)
            time.sleep(0.01)

    threading.Thread(target=poke, daemon=True).start()


def audit_actions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT action FROM audit_events ORDER BY seq"))]


def strings(data: Any) -> str:
    """Every string inside a JSON value (texts, values, ids…), one per line, decoded."""
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        return "\n".join(strings(value) for value in data.values())
    if isinstance(data, list):
        return "\n".join(strings(value) for value in data)
    return ""


def reply(answer: Answer) -> str:
    """The slash command's answer: HTTP 200, private (ephemeral); all its text."""
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body.get("response_type", "ephemeral") == "ephemeral", body
    assert body.get("text"), body
    return strings(body)


def usage(key: str) -> str:
    """The usage line of a subcommand as the app writes it in an answer (escaped)."""
    return next(escape(spec.usage) for spec in SPECS if spec.key == key)


def item_row(engine: Engine, make_actor: Any, number: int) -> Item:
    with unit_of_work(engine, read_only=True) as session:
        return items.load_item(session, make_actor(ALICE), number=number)


def milestone_rows(engine: Engine, number: int) -> list[Milestone]:
    with unit_of_work(engine, read_only=True) as session:
        found = session.exec(
            select(Milestone)
            .join(Item, col(Item.id) == col(Milestone.item_id))
            .where(Item.team_id == TEAM, Item.number == number)
            .order_by(col(Milestone.number))
        ).all()
        return list(found)


def posts(fake_slack: FakeSlack) -> list[dict[str, Any]]:
    return [call.params for call in fake_slack.calls_to("chat.postMessage")]


def thread_of(engine: Engine, number: int) -> str | None:
    with engine.connect() as connection:
        return connection.execute(  # type: ignore[no-any-return]
            text("SELECT origin_thread_ts FROM items WHERE team_id = :team AND number = :number"),
            {"team": TEAM, "number": number},
        ).scalar()


def wait_threads(engine: Engine, *numbers: int) -> None:
    """Wait until each item's "logged" post is in and its thread recorded (work after the ack)."""
    for number in numbers:
        wait_for(lambda: thread_of(engine, number))  # noqa: B023


def log_via_slack(slack: SlackDriver, engine: Engine, words: str, *, user: str = ALICE) -> int:
    """``/poam log <words>``; waits until its channel post started the item's thread."""
    answer = slack.command(f"log {words}", user=user)
    body = reply(answer)
    assert "Logged *POAM-" in body, body
    number = int(body.split("Logged *POAM-", 1)[1].split("*", 1)[0])
    wait_for(lambda: thread_of(engine, number))
    return number


def claimed_item(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, *, owner: str = ALICE, words: str = "Weak TLS sev:high"
) -> int:
    """An item logged and claimed by ``owner``, its two channel posts done."""
    number = log_via_slack(slack, engine, words, user=owner)
    assert "You now own" in reply(slack.command(f"claim {number}", user=owner))
    wait_for(lambda: posts_settled(engine))
    return number


def posts_settled(engine: Engine) -> bool:
    """Whether every post in the outbox has been sent and marked so (work after the ack)."""
    with engine.connect() as connection:
        return not connection.execute(text("SELECT 1 FROM outbox WHERE status <> 'sent'")).first()


def log_direct(
    engine: Engine,
    make_actor: Any,
    title: str,
    *,
    user: str = ALICE,
    severity: Severity = Severity.MODERATE,
    owner: str | None = None,
    detected: date | None = None,
    due: date | None = None,
    controls: tuple[str, ...] = (),
    status: str | None = None,
) -> int:
    """An item logged through the domain (no Slack round trip): for lists and homes."""
    with unit_of_work(engine) as session:
        item = items.log_item(
            session, make_actor(user), title=title, severity=severity, owner_id=owner,
            detected_on=detected, due_on=due, controls=controls,
        )
        if status is not None:
            item.status = status
        return item.number


def settle() -> None:
    """Time for any (unexpected) work after the ack to show up."""
    time.sleep(0.3)


def assert_malformed(
    slack: SlackDriver,
    engine: Engine,
    command: str,
    *,
    problem: str,
    key: str | None = None,
    usage_text: str | None = None,
    user: str = ALICE,
    raw: bool = False,
) -> str:
    """A malformed command: ephemeral, names the problem, shows the usage, changes nothing."""
    before = snapshot(engine)
    answer = (slack.raw_command if raw else slack.command)(command, user=user)
    body = reply(answer)
    assert problem in body, body
    expected = usage_text or usage(key or "")
    assert "Usage:" in body and expected in body, body
    assert snapshot(engine) == before
    return body


def assert_refused(
    slack: SlackDriver, engine: Engine, command: str, *, problem: str, user: str, raw: bool = False
) -> str:
    """A refusal: ephemeral, says why, changes nothing."""
    before = snapshot(engine)
    answer = (slack.raw_command if raw else slack.command)(command, user=user)
    body = reply(answer)
    assert escape(problem) in body, body  # refusals are escaped like any text that may quote the user
    assert ":no_entry:" in body, body
    assert snapshot(engine) == before
    return body


# ---------------------------------------------------------------- help


def test_help_lists_every_subcommand_with_its_usage(slack: SlackDriver, engine: Engine) -> None:
    before = snapshot(engine)
    for text_ in ("", "help"):
        body = reply(slack.command(text_, user=ALICE))
        for key in (
            "help", "log", "list", "show", "claim", "release", "assign", "plan", "milestone add",
            "milestone done", "milestone move", "history", "systems", "system add", "system set", "roles", "role",
        ):
            assert usage(key) in body, (key, body)
    assert snapshot(engine) == before


def test_help_for_one_subcommand_shows_only_its_forms(slack: SlackDriver) -> None:
    body = reply(slack.command("help milestone", user=ALICE))
    for key in ("milestone add", "milestone done", "milestone move"):
        assert usage(key) in body, body
    assert usage("claim") not in body and usage("log") not in body


def test_help_for_one_verb_shows_only_it(slack: SlackDriver) -> None:
    body = reply(slack.command("help milestone add", user=ALICE))
    assert usage("milestone add") in body and usage("milestone done") not in body, body
    assert "I don't know what to do with" not in body


def test_help_for_an_unknown_topic_says_so(slack: SlackDriver) -> None:
    body = reply(slack.command("help frobnicate", user=ALICE))
    assert "`frobnicate` is not a subcommand" in body, body


def test_unknown_subcommand_is_malformed_with_usage(slack: SlackDriver, engine: Engine) -> None:
    body = assert_malformed(
        slack, engine, "frobnicate 12", problem="`frobnicate` is not a /poam subcommand", usage_text="`/poam help`"
    )
    assert "Logged" not in body


def test_an_option_in_place_of_the_subcommand_is_malformed(slack: SlackDriver, engine: Engine) -> None:
    assert_malformed(slack, engine, "sev:high", problem="Start with a subcommand", usage_text="`/poam help`")


# ---------------------------------------------------------------- log


def test_a_command_whose_text_says_payload_is_handled(slack: SlackDriver, engine: Engine) -> None:
    """Bolt read a form saying "payload" anywhere as an interaction's, found no
    such field, and routed the command nowhere: its user was told nothing."""
    answer = slack.command("log Upload payload size is not limited sev:low", user=ALICE)
    assert "Logged *POAM-1*" in answer.text, answer.body
    assert "Upload payload size is not limited" in slack.command("show 1", user=ALICE).body


def test_log_with_every_option_stores_the_item_and_posts_once(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    answer = slack.raw_command(
        "log TLS 1.0 enabled on the load balancer sev:high control:AC-2,si-2 source:scan "
        "asset:web-01,db-02 cve:CVE-2024-3094 detected:2026-11-18 due:+10d "
        f'owner:{at(BOB)} desc:"Found by the weekly scan" system:default',
        user=ALICE,
    )
    body = reply(answer)
    assert "Logged *POAM-1*" in body and "TLS 1.0 enabled on the load balancer" in body, body
    assert "Mon 30 Nov 2026" in body, body  # due:+10d from Fri 20 Nov
    item = item_row(engine, make_actor, 1)
    assert item.title == "TLS 1.0 enabled on the load balancer"
    assert item.severity == "high" and item.source == "scan" and item.status == "in_progress"
    assert item.assets == ["web-01", "db-02"] and item.cves == ["CVE-2024-3094"]
    assert item.detected_on == date(2026, 11, 18) and item.due_on == date(2026, 11, 30)
    assert item.owner_id == BOB and item.created_by == ALICE
    assert item.description == "Found by the weekly scan"
    with unit_of_work(engine, read_only=True) as session:
        assert item_details.show_item(session, make_actor(ALICE), number=1).controls == ["AC-2", "SI-2"]
    assert audit_actions(engine).count("item.logged") == 1

    channel_posts = wait_for(lambda: posts(fake_slack))
    settle()
    assert len(posts(fake_slack)) == 1, posts(fake_slack)
    post = channel_posts[0]
    assert post["channel"] == CHANNEL and "thread_ts" not in post
    assert "POAM-1" in post["text"] and f"<@{ALICE}>" in post["text"] and f"<@{BOB}>" in post["text"]
    # The post's ts becomes the item's thread.
    wait_for(lambda: item_row(engine, make_actor, 1).origin_thread_ts)
    assert item_row(engine, make_actor, 1).origin_thread_ts == "1700000000.000001"
    assert item_row(engine, make_actor, 1).origin_channel_id == CHANNEL


def test_log_defaults_due_date_and_severity_from_policy(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    body = reply(slack.command("log Missing audit log rotation", user=ALICE))
    assert "severity defaulted to moderate" in body, body
    item = item_row(engine, make_actor, 1)
    assert item.severity == "moderate" and item.detected_on == TODAY
    assert item.due_on == TODAY + timedelta(days=90)  # FedRAMP: moderate within 90 days
    assert item.owner_id is None and item.status == "open"
    wait_for(lambda: posts(fake_slack))
    reply(slack.command("log Root login over SSH sev:low", user=ALICE))
    assert item_row(engine, make_actor, 2).due_on == TODAY + timedelta(days=180)
    wait_threads(engine, 1, 2)


def test_log_without_words_opens_the_form_with_the_trigger_id(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    answer = slack.command("log", user=ALICE)
    assert answer.status == 200 and answer.body == "", answer.body
    call = wait_for(lambda: fake_slack.calls_to("views.open"))[0]
    assert call.params["trigger_id"] == slack.last_trigger_id
    view = call.params["view"]
    assert view["type"] == "modal" and view["callback_id"] == "poam.log.modal"
    assert view["title"]["text"] == "Log a finding"
    assert {block.get("block_id") for block in view["blocks"]} >= {"title", "severity", "due", "owner", "cves"}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 0
    assert not fake_slack.calls_to("chat.postMessage")


def test_log_with_options_but_no_title_is_malformed(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    log_via_slack(slack, engine, "Existing finding")
    assert_malformed(slack, engine, "log sev:high control:AC-2", problem="The title is missing.", key="log")
    assert not fake_slack.calls_to("views.open")


def test_log_malformed(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    log_via_slack(slack, engine, "Existing finding")
    for command, problem in [
        ("log Weak ciphers sev:urgent", "`urgent` is not a severity"),
        ("log Weak ciphers colour:red", "`colour:` is not an option of /poam log"),
        ("log Weak ciphers due:someday", "`someday` is not a date I understand"),
        ("log Weak ciphers due:2026-02-30", "`2026-02-30` is not a real calendar date"),
        ("log Weak ciphers source:rumour", "`rumour` is not a source"),
        ("log Weak ciphers owner:bob", "`bob` is not a person"),
        ("log Weak ciphers sev:high severity:low", "`sev:` is given twice"),
        ("log Weak ciphers due:", "`due:` needs a value"),
        ("log Weak ciphers cve:CVE-24-1", "`CVE-24-1` is not a CVE id"),
        ("log Weak ciphers control:AC_2!", "`AC_2!` is not a control id"),
        ("log Weak ciphers asset:" + "a" * 201, "An asset id is 201 characters long"),
    ]:
        body = assert_malformed(slack, engine, command, problem=problem, key="log")
        assert "Logged" not in body
    assert len(posts(fake_slack)) == 1


def test_log_refused_by_the_domain(slack: SlackDriver, engine: Engine) -> None:
    log_via_slack(slack, engine, "Existing finding")
    for command, problem in [
        ("log Weak ciphers sev:high due:2027-06-01", "later than the high deadline (2026-12-20"),
        ("log Weak ciphers detected:2026-11-10 due:2026-11-01", "is before the detection date"),
        ("log Weak ciphers system:Payroll", "There is no system called `Payroll`"),
        # ``detected:`` prefers the past, so only an explicit future date reaches the domain.
        ("log Weak ciphers detected:2026-11-25", "The detection date 2026-11-25 is in the future"),
    ]:
        assert_refused(slack, engine, command, problem=problem, user=ALICE)


def test_unclosed_quote_says_so_and_changes_nothing(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    log_via_slack(slack, engine, "Existing finding")
    before = snapshot(engine)
    body = reply(slack.command('log Weak ciphers desc:"never closed', user=ALICE))
    assert "A quote is not closed" in body, body
    assert snapshot(engine) == before


def test_unclosed_quote_shows_the_usage(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    log_via_slack(slack, engine, "Existing finding")
    assert_malformed(
        slack, engine, 'milestone 1 move M1 due:+3d reason:"vendor slipped', problem="A quote is not closed",
        key="milestone move",
    )


# ---------------------------------------------------------------- channel posts and Slack failures


def test_claim_posts_once_as_a_reply_in_the_items_thread(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    log_via_slack(slack, engine, "Admin console exposed sev:critical")
    logged_ts = wait_for(lambda: item_row(engine, make_actor, 1).origin_thread_ts)
    body = reply(slack.command("claim POAM-1", user=BOB))
    assert "You now own *POAM-1*" in body, body
    wait_for(lambda: len(posts(fake_slack)) == 2)
    settle()
    first, second = posts(fake_slack)
    assert len(posts(fake_slack)) == 2
    assert "thread_ts" not in first and "logged *POAM-1*" in first["text"]
    assert second["channel"] == CHANNEL and second["thread_ts"] == logged_ts
    assert f"<@{BOB}> claimed *POAM-1*" in second["text"]
    assert item_row(engine, make_actor, 1).owner_id == BOB
    assert audit_actions(engine)[-1] == "item.claimed"
    assert not fake_slack.responses  # nothing went wrong, nothing to tell


def test_not_in_channel_keeps_the_item_and_tells_the_user_privately(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    fake_slack.fail("chat.postMessage", error="not_in_channel")
    body = reply(slack.command("log Unpatched kernel sev:high", user=ALICE))
    assert "Logged *POAM-1*" in body
    note = wait_for(lambda: fake_slack.responses)[0]
    assert "invite me" in note["text"] and CHANNEL in note["text"], note
    assert note.get("response_type") == "ephemeral" and note.get("replace_original") is False
    item = item_row(engine, make_actor, 1)
    assert item.title == "Unpatched kernel" and item.origin_thread_ts is None
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_a_500_from_slack_is_retried_and_the_post_delivered(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    fake_slack.fail("chat.postMessage", status=500)
    reply(slack.command("log Weak SSH ciphers sev:low", user=ALICE))
    wait_for(lambda: item_row(engine, make_actor, 1).origin_thread_ts, timeout=10)
    calls = fake_slack.calls_to("chat.postMessage")
    assert len(calls) == 2 and calls[0].params == calls[1].params
    # The first (failed) call used ts 0; the answer to the retry is the thread.
    assert item_row(engine, make_actor, 1).origin_thread_ts == "1700000000.000001"
    assert not fake_slack.responses


def test_a_429_with_retry_after_is_honoured_then_delivered(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)
    reply(slack.command("log Weak SSH ciphers sev:low", user=ALICE))
    wait_for(lambda: fake_slack.calls_to("chat.postMessage"))
    first = time.monotonic()
    wait_for(lambda: len(fake_slack.calls_to("chat.postMessage")) == 2, timeout=10)
    waited = time.monotonic() - first
    assert waited >= 0.95, waited  # Retry-After: 1
    wait_for(lambda: item_row(engine, make_actor, 1).origin_thread_ts)
    assert not fake_slack.responses


# ---------------------------------------------------------------- list


def titles_in_order(body: str, titles: list[str]) -> list[str]:
    """The ``titles`` that appear in ``body``, in the order they appear."""
    found = [(body.index(title), title) for title in titles if title in body]
    return [title for _, title in sorted(found)]


LIST_TITLES = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"]


@pytest.fixture
def list_items(engine: Engine, make_actor: Any) -> None:
    log_direct(engine, make_actor, "Alpha unowned", controls=("AC-2",))  # due 2027-02-18
    log_direct(engine, make_actor, "Bravo owned by bob", severity=Severity.HIGH, owner=BOB, controls=("SI-2",))
    log_direct(  # due 2026-10-01: 50 days overdue
        engine, make_actor, "Charlie overdue", severity=Severity.HIGH, owner=ALICE,
        detected=date(2026, 9, 1), controls=("AC-2",),
    )
    log_direct(engine, make_actor, "Delta low", severity=Severity.LOW)
    log_direct(engine, make_actor, "Echo closed", owner=ALICE, status="closed")
    log_direct(engine, make_actor, "Foxtrot in review", owner=BOB, status="pending_verification")


LIST_CASES = [
    ("list", ["Charlie", "Bravo", "Alpha", "Foxtrot", "Delta"]),  # overdue first, then by due date, then id
    ("list open", ["Charlie", "Bravo", "Alpha", "Foxtrot", "Delta"]),
    ("list mine", ["Charlie"]),
    ("list overdue", ["Charlie"]),
    ("list unclaimed", ["Alpha", "Delta"]),
    ("list review", ["Foxtrot"]),
    ("list closed", ["Echo"]),
    ("list all", ["Charlie", "Bravo", "Alpha", "Echo", "Foxtrot", "Delta"]),
    ("list sev:high", ["Charlie", "Bravo"]),
    ("list all severity:low", ["Delta"]),
    ("list control:ac-2", ["Charlie", "Alpha"]),
    (f"list owner:{at(BOB)}", ["Bravo", "Foxtrot"]),
    (f"list all owner:{at(ALICE)} sev:moderate", ["Echo"]),
    ("list unclaimed sev:critical", []),
    ("list system:default", ["Charlie", "Bravo", "Alpha", "Foxtrot", "Delta"]),
]


@pytest.mark.usefixtures("list_items")
def test_list_scopes_and_filters(slack: SlackDriver, engine: Engine) -> None:
    before = snapshot(engine)
    for command, expected in LIST_CASES:
        body = reply(slack.raw_command(command, user=ALICE))
        assert titles_in_order(body, LIST_TITLES) == expected, (command, body)
        if not expected:
            assert "nothing here" in body, (command, body)
        if "Charlie" in expected:
            assert "overdue 50d" in body, (command, body)
    assert snapshot(engine) == before


@pytest.mark.usefixtures("list_items")
def test_list_malformed_and_refused(slack: SlackDriver, engine: Engine) -> None:
    for command, problem in [
        ("list bogus", "`bogus` is not a list; use one of mine, open, overdue"),
        ("list sev:urgent", "`urgent` is not a severity"),
        ("list colour:red", "`colour:` is not an option of /poam list"),
        ("list owner:bob", "`bob` is not a person"),
        ("list open extra", "I don't know what to do with `extra`"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key="list")
    assert_refused(slack, engine, "list system:Payroll", problem="There is no system called `Payroll`", user=ALICE)


def test_list_pages_of_twenty_with_next_and_previous_buttons(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    for n in range(1, 24):
        log_direct(engine, make_actor, f"Finding {n:02d}")
    answer = slack.command("list", user=BOB)
    body = answer.json()
    blocks = body["blocks"]
    assert "Open items* (1–20 of 23)" in reply(answer)
    shows = [b for b in blocks if b.get("accessory", {}).get("action_id", "").startswith("poam.show")]
    assert len(shows) == 20 and "Finding 01" in strings(shows[0]) and "Finding 20" in strings(shows[-1])
    assert "Finding 21" not in reply(answer)
    navigation = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [e["text"]["text"] for e in navigation] == ["Next"]
    assert len(blocks) <= 50

    before = snapshot(engine)
    click = slack.click(navigation[0]["action_id"], navigation[0]["value"], user=BOB)
    assert click.status == 200 and click.body == ""
    page = wait_for(lambda: fake_slack.responses)[0]
    assert page["replace_original"] is True and page.get("response_type") == "ephemeral"
    text_ = strings(page)
    assert "(21–23 of 23)" in text_ and all(f"Finding {n}" in text_ for n in (21, 22, 23))
    assert "Finding 20" not in text_
    buttons = [e for b in page["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["text"]["text"] for e in buttons] == ["Previous"]

    slack.click(buttons[0]["action_id"], buttons[0]["value"], user=BOB)
    back = wait_for(lambda: fake_slack.responses[1:])[0]
    assert "(1–20 of 23)" in strings(back) and back["replace_original"] is True
    assert snapshot(engine) == before


# ---------------------------------------------------------------- show


def card_buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The buttons of an item card by their text."""
    return {e["text"]["text"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def test_show_card_with_the_buttons_this_viewer_may_use(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    log_via_slack(slack, engine, 'Admin console exposed sev:high control:AC-17 asset:web-01 desc:"Port 8443"')
    before = snapshot(engine)
    answer = slack.command("show POAM-1", user=BOB)
    body = reply(answer)
    for expected in ("POAM-1", "Admin console exposed", "open", "High", "_unclaimed_", "Sun 20 Dec 2026",
                     "AC-17", "web-01", "Port 8443", "No plan yet", "Default"):
        assert expected in body, (expected, body)
    assert set(card_buttons(answer.json()["blocks"])) == {"Claim", "History"}
    assert snapshot(engine) == before

    reply(slack.command("claim 1", user=ALICE))
    reply(slack.command("milestone 1 add Restrict to the VPN due:+5d", user=ALICE))
    owner_view = slack.command("show poam-1", user=ALICE)
    assert "Restrict to the VPN" in reply(owner_view) and f"<@{ALICE}>" in reply(owner_view)
    assert set(card_buttons(owner_view.json()["blocks"])) == {"Add milestone", "Complete M1", "History"}
    other_view = slack.command("show 1", user=BOB)
    assert set(card_buttons(other_view.json()["blocks"])) == {"History"}
    wait_for(lambda: len(posts(fake_slack)) == 2)


def test_show_malformed_and_unknown(slack: SlackDriver, engine: Engine) -> None:
    log_via_slack(slack, engine, "Existing finding")
    for command, problem in [
        ("show", "The id is missing."),
        ("show abc", "`abc` is not an item id; use POAM-12 or 12."),
        ("show 1 2", "I don't know what to do with `2`"),
        ("show 1 sev:high", "`sev:` is not an option of /poam show (options: none)"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key="show")
    assert_refused(slack, engine, "show POAM-99", problem="There is no item POAM-99 in this workspace.", user=ALICE)


# ---------------------------------------------------------------- claim, release, assign


def test_claim_refusals_name_the_owner_and_change_nothing(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    assert len(posts(fake_slack)) == 2
    body = assert_refused(slack, engine, "claim POAM-1", problem="POAM-1 is already claimed by someone else.", user=BOB)
    assert f"Owner: <@{ALICE}>" in body, body
    body = assert_refused(slack, engine, "claim 1", problem="You already own POAM-1.", user=ALICE)
    assert_refused(slack, engine, "claim 7", problem="There is no item POAM-7 in this workspace.", user=BOB)
    for command, problem in [("claim", "The id is missing."), ("claim POAM-x", "`POAM-x` is not an item id")]:
        assert_malformed(slack, engine, command, problem=problem, key="claim")
    settle()
    assert len(posts(fake_slack)) == 2  # refusals post nothing in the channel


def test_claiming_a_closed_item_says_it_is_closed_even_to_its_owner(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """Its owner was told "You already own POAM-1", as if there were work left."""
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    assert "is now" in reply(slack.raw_command(f"role {at(BOB)} +verifier", user=ADMIN))
    assert "submitted for verification" in reply(slack.command("submit 1", user=ALICE))
    assert "You verified *POAM-1*" in reply(slack.command("verify 1", user=BOB))
    for user in (ALICE, BOB):
        assert_refused(slack, engine, "claim 1", problem="POAM-1 is closed; a closed item never reopens.", user=user)


def test_release_by_owner_and_admin_and_refusals(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    assert_refused(slack, engine, "release 1", problem="Only the owner of POAM-1 can release it.", user=BOB)
    body = reply(slack.command("release POAM-1", user=ALICE))
    assert "*POAM-1* is unowned again." in body, body
    item = item_row(engine, make_actor, 1)
    assert item.owner_id is None and item.status == "open"
    assert audit_actions(engine)[-1] == "item.released"
    assert_refused(slack, engine, "release 1", problem="POAM-1", user=ALICE)  # nobody owns it now

    reply(slack.command("claim 1", user=BOB))
    body = reply(slack.command("release 1", user=ADMIN))
    assert "unowned again" in body and item_row(engine, make_actor, 1).owner_id is None
    for command, problem in [("release", "The id is missing."), ("release one", "`one` is not an item id")]:
        assert_malformed(slack, engine, command, problem=problem, key="release")
    wait_for(lambda: len(posts(fake_slack)) == 3)  # logged, claimed by Alice, claimed by Bob


def test_assign_by_admins_only(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any, clock: FixedClock
) -> None:
    log_via_slack(slack, engine, "Unowned finding")
    assert_refused(
        slack, engine, f"assign 1 {at(BOB)}", problem="Only a POA&M admin can assign owners.", user=ALICE, raw=True
    )
    body = reply(slack.raw_command(f"assign POAM-1 {at(BOB)}", user=ADMIN))
    assert f"*POAM-1* is now owned by <@{BOB}>." in body, body
    item = item_row(engine, make_actor, 1)
    assert item.owner_id == BOB and item.status == "in_progress"
    assert audit_actions(engine)[-1] == "item.assigned"
    assert_refused(
        slack, engine, f"assign 1 {at(BOB)}", problem="POAM-1 is already owned by that person.", user=ADMIN, raw=True
    )
    # A Slack workspace admin (users.info is_admin) is a POA&M admin too.
    fake_slack.user(CAROL, is_admin=True)
    reply(slack.raw_command(f"assign 1 {at(ALICE)}", user=CAROL))
    assert item_row(engine, make_actor, 1).owner_id == ALICE
    # Demoted in Slack, with the user_change event gone to another worker: the
    # rights end when this worker's copy of the admin answer expires, not an hour on.
    fake_slack.user(CAROL, is_admin=False)

    def carol_looked_up() -> int:
        return len([call for call in fake_slack.calls_to("users.info") if call.params.get("user") == CAROL])

    asked = carol_looked_up()
    clock.advance(minutes=4)  # the admin answer is still this worker's
    reply(slack.raw_command(f"assign 1 {at(BOB)}", user=CAROL))
    assert item_row(engine, make_actor, 1).owner_id == BOB and carol_looked_up() == asked
    clock.advance(minutes=2)
    assert_refused(
        slack, engine, f"assign 1 {at(ALICE)}", problem="Only a POA&M admin can assign owners.", user=CAROL, raw=True
    )
    asked = carol_looked_up()
    clock.advance(minutes=50)  # a member's answer is kept for the hour
    assert_refused(
        slack, engine, f"assign 1 {at(ALICE)}", problem="Only a POA&M admin can assign owners.", user=CAROL, raw=True
    )
    assert carol_looked_up() == asked
    for command, problem in [
        ("assign 1 bob", "`bob` is not a person"),
        ("assign 1 U0NOBODY99", "`U0NOBODY99` is not a person"),  # a typed id: Slack vouched for nobody
        ("assign 1", "The @user is missing."),
        (f"assign {at(BOB)} 1", "is not an item id"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key="assign", user=ADMIN, raw=True)


# ---------------------------------------------------------------- plan


def test_plan_by_the_owner_only(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any) -> None:
    log_via_slack(slack, engine, "Unowned finding")
    assert_refused(slack, engine, "plan 1 Patch it", problem="and POAM-1 has none; claim it first.", user=ALICE)
    reply(slack.command("claim 1", user=ALICE))
    wait_for(lambda: len(posts(fake_slack)) == 2)
    assert_refused(slack, engine, "plan 1 Patch it", problem="Only the owner of POAM-1 can set its plan.", user=BOB)
    assert_refused(slack, engine, "plan 1 Patch it", problem="Only the owner of POAM-1 can set its plan.", user=ADMIN)
    body = reply(slack.command('plan POAM-1 Upgrade the firmware, then rescan resources:"2 engineer days"', user=ALICE))
    assert "Plan set for *POAM-1*" in body, body
    item = item_row(engine, make_actor, 1)
    assert item.remediation_plan == "Upgrade the firmware, then rescan"
    assert item.resources_required == "2 engineer days"
    assert audit_actions(engine)[-1] == "item.plan_set"
    for command, problem in [
        ("plan 1", "The plan is missing."),
        ("plan 1 Patch it budget:5", "`budget:` is not an option of /poam plan"),
        ("plan x Patch it", "`x` is not an item id"),
        ('plan 1 Patch it resources:""', "`resources:` needs a value"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key="plan")


# ---------------------------------------------------------------- milestones


def test_milestone_add_done_move_success(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)  # high: due Sun 20 Dec 2026
    body = reply(slack.command("milestone 1 add Patch the load balancer due:+5d", user=ALICE))
    assert "Added *M1* to *POAM-1*, due Wed 25 Nov 2026." in body, body
    body = reply(slack.command('milestone POAM-1 add "Rescan to confirm" due:2026-12-10', user=ALICE))
    assert "Added *M2*" in body
    found = milestone_rows(engine, 1)
    assert [(m.number, m.description, m.due_on) for m in found] == [
        (1, "Patch the load balancer", date(2026, 11, 25)),
        (2, "Rescan to confirm", date(2026, 12, 10)),
    ]

    body = reply(slack.command("milestone 1 done M1", user=ALICE))
    assert "*M1* of *POAM-1* is complete." in body, body
    assert milestone_rows(engine, 1)[0].completed_by == ALICE

    body = reply(slack.command('milestone 1 move m2 due:2026-12-15 reason:"vendor patch slipped"', user=ALICE))
    assert "*M2* of *POAM-1* is now due Tue 15 Dec 2026 (planned Thu 10 Dec 2026)" in body, body
    moved = milestone_rows(engine, 1)[1]
    assert moved.due_on == date(2026, 12, 15) and moved.planned_due_on == date(2026, 12, 10)
    with unit_of_work(engine, read_only=True) as session:
        changes = session.exec(select(MilestoneChange).order_by(col(MilestoneChange.seq))).all()
    assert [(c.kind, c.reason) for c in changes] == [
        ("complete", "Milestone M1 completed."),
        ("update", "vendor patch slipped"),
    ]
    assert audit_actions(engine)[-4:] == ["milestone.added", "milestone.added", "milestone.completed", "milestone.moved"]


def test_milestone_refusals_change_nothing(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    reply(slack.command("milestone 1 add Patch due:+5d", user=ALICE))
    reply(slack.command("milestone 1 add Rescan due:+10d", user=ALICE))
    reply(slack.command("milestone 1 done 2", user=ALICE))
    for command, problem in [
        ("milestone 1 add Extra due:+3d", "Only the owner of POAM-1 can add milestones."),
        ("milestone 1 done M1", "Only the owner of POAM-1 can complete milestones."),
        ('milestone 1 move M1 due:+7d reason:"late"', "Only the owner of POAM-1 can move milestones."),
    ]:
        assert_refused(slack, engine, command, problem=problem, user=BOB)
    for command, problem in [
        ("milestone 1 add Extra due:2026-11-01", "The milestone date 2026-11-01 is in the past; today is 2026-11-20."),
        ("milestone 1 add Extra due:2027-01-15", "is after POAM-1's due date (2026-12-20)"),
        ("milestone 1 done M2", "M2 of POAM-1 is already complete."),
        ("milestone 1 done M9", "POAM-1 has no milestone M9."),
        ('milestone 1 move M2 due:+7d reason:"late"', "M2 of POAM-1 is complete; it cannot move."),
        ('milestone 1 move M1 due:2026-11-25 reason:"same"', "M1 is already due 2026-11-25."),
        ("milestone 9 add Extra due:+3d", "There is no item POAM-9"),
    ]:
        assert_refused(slack, engine, command, problem=problem, user=ALICE)


def test_milestone_malformed_shows_the_verbs_usage(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    reply(slack.command("milestone 1 add Patch due:+5d", user=ALICE))
    for command, problem, key in [
        ("milestone 1 add Patch the load balancer", "`due:` is required.", "milestone add"),
        ("milestone 1 add Patch due:soonish", "`soonish` is not a date I understand", "milestone add"),
        ("milestone 1 add due:+3d", "The milestone is missing.", "milestone add"),
        ("milestone x add Patch due:+3d", "`x` is not an item id", "milestone add"),
        ("milestone 1 add Patch due:+3d owner:me", "`owner:` is not an option of /poam milestone", "milestone add"),
        ("milestone 1 done", "Which milestone? Add its number: M1, M2…", "milestone done"),
        ("milestone add 1 Patch due:+3d", "`add` is out of place: write it where the usage below shows.",
         "milestone add"),
        ("milestone 1 done X1", "`X1` is not a milestone; use M1 or 1.", "milestone done"),
        ('milestone 1 move M1 due:+7d', "`reason:` is required.", "milestone move"),
        ('milestone 1 move M1 reason:"late"', "`due:` is required.", "milestone move"),
        ('milestone 1 move M1 due:31/12/2026 reason:"late"', "`31/12/2026` is not a date I understand", "milestone move"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key=key)
    body = ""
    for command in ("milestone 1 frob", "milestone 1", "milestone"):
        body = assert_malformed(
            slack, engine, command, problem="`/poam milestone` needs one of: add, done, move.", key="milestone add"
        )
        assert usage("milestone done") in body and usage("milestone move") in body


# ---------------------------------------------------------------- history


def test_history_lists_the_audit_trail(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE)
    reply(slack.command("milestone 1 add Patch due:2026-11-25", user=ALICE))
    reply(slack.command('milestone 1 move M1 due:2026-11-27 reason:"waiting on vendor"', user=ALICE))
    before = snapshot(engine)
    body = reply(slack.command("history POAM-1", user=BOB))
    assert "History of POAM-1" in body
    lines = [line for line in body.splitlines() if "<!date^" in line]
    assert len(lines) == 4, body
    assert titles_in_order(
        body, ["logged it", "claimed it", "added a milestone: M1 Patch, due 2026-11-25", "moved a milestone: M1 2026-11-25 → 2026-11-27 (waiting on vendor)"]
    ) == ["logged it", "claimed it", "added a milestone: M1 Patch, due 2026-11-25",
          "moved a milestone: M1 2026-11-25 → 2026-11-27 (waiting on vendor)"]
    assert f"<@{ALICE}> logged it" in body and "|2026-11-20 15:00 UTC>" in body
    claimed = next(line for line in lines if "claimed it" in line)
    assert "claimed it: status" in claimed and "open" in claimed and "in_progress" in claimed, claimed
    assert snapshot(engine) == before
    assert_refused(slack, engine, "history 5", problem="There is no item POAM-5", user=BOB)
    for command, problem in [("history", "The id is missing."), ("history 1 2", "I don't know what to do with `2`")]:
        assert_malformed(slack, engine, command, problem=problem, key="history")


# ---------------------------------------------------------------- roles


def test_roles_and_role_changes(slack: SlackDriver, engine: Engine) -> None:
    body = reply(slack.command("roles", user=ALICE))
    assert f"Admins by configuration: <@{ADMIN}>" in body, body
    body = reply(slack.raw_command(f"role {at(BOB)} +verifier", user=ADMIN))
    assert f"<@{BOB}> is now a verifier." in body, body
    with unit_of_work(engine, read_only=True) as session:
        grants = session.exec(select(RoleGrant)).all()
    assert [(g.user_id, g.role, g.granted_by) for g in grants] == [(BOB, "verifier", ADMIN)]
    assert f"<@{BOB}>: verifier" in reply(slack.command("roles", user=CAROL))

    assert_refused(slack, engine, f"role {at(CAROL)} +admin", problem="Only a POA&M admin can change roles.",
                   user=ALICE, raw=True)
    assert_refused(slack, engine, f"role {at(BOB)} -verifier", problem="Only a POA&M admin can change roles.",
                   user=BOB, raw=True)
    assert_refused(slack, engine, f"role {at(BOB)} +verifier", problem="That person is already a verifier.",
                   user=ADMIN, raw=True)
    assert_refused(slack, engine, f"role {at(BOB)} -ao", problem="That person is not an authorizing official",
                   user=ADMIN, raw=True)
    for command, problem in [
        (f"role {at(BOB)} +king", "`+king` is not a role change"),
        (f"role {at(BOB)} verifier", "`verifier` is not a role change"),
        ("role bob +verifier", "`bob` is not a person"),
        (f"role {at(BOB)}", "Add one of: `+verifier`, `-verifier`, `+ao`, `-ao`, `+admin`, `-admin`."),
        (f"role {at(BOB)} +ao extra", "I don't know what to do with `extra`"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key="role", user=ADMIN, raw=True)

    body = reply(slack.raw_command(f"role {at(BOB)} -verifier", user=ADMIN))
    assert f"<@{BOB}> is no longer a verifier." in body
    with unit_of_work(engine, read_only=True) as session:
        assert session.exec(select(RoleGrant)).all() == []
    assert audit_actions(engine)[-2:] == ["role.granted", "role.revoked"]


def test_the_ao_a_system_names_is_listed_and_outlasts_the_role(slack: SlackDriver, engine: Engine) -> None:
    """An assessor asking who may approve gets every AO: those by role and
    those a system names, who keep deciding for it when their role goes."""
    reply(slack.raw_command(f'system add "Pay & Roll" ao:{at(CAROL)}', user=ADMIN))
    reply(slack.raw_command(f"role {at(CAROL)} +ao", user=ADMIN))
    body = reply(slack.command("roles", user=ALICE))
    assert f"<@{CAROL}>: ao" in body and f"Authorizing officials of one system: *Pay &amp; Roll* <@{CAROL}>" in body
    body = reply(slack.raw_command(f"role {at(CAROL)} -ao", user=ADMIN))
    assert (f"<@{CAROL}> is no longer an authorizing official by role, and is still the authorizing official of "
            "*Pay &amp; Roll*, as the system names them (`/poam system set &lt;name&gt; ao:…` changes that).") in body, body
    body = reply(slack.raw_command(f"role {at(CAROL)} +verifier", user=ADMIN))
    body = reply(slack.raw_command(f"role {at(CAROL)} -verifier", user=ADMIN))
    assert body.endswith(f"<@{CAROL}> is no longer a verifier."), body
    assert f"Authorizing officials of one system: *Pay &amp; Roll* <@{CAROL}>" in reply(slack.command("roles", user=ALICE))
    assert_refused(slack, engine, f"role {at(CAROL)} -ao", user=ADMIN, raw=True, problem=(
        "That person is not an authorizing official (by grant). They still decide for the system Pay & Roll, "
        "named there as the authorizing official (`/poam system set <name> ao:…` changes that)."))
    body = reply(slack.raw_command('system set "pay & roll" ao:none', user=ADMIN))
    assert f"Changed *Pay &amp; Roll*: no authorizing official (was <@{CAROL}>)." in body, body
    assert "Authorizing officials of one system" not in reply(slack.command("roles", user=ALICE))
    body = reply(slack.raw_command('system set "Pay & Roll" ao:none', user=ADMIN))
    assert "*Pay &amp; Roll* already has those settings; nothing changed." in body, body


def test_only_requests_that_check_a_role_read_the_grants(slack: SlackDriver, engine: Engine) -> None:
    """A list, a card and a claim check no role, so they skip the grants query
    (a quarter of a list's CPU); a role check reads them, and gets them right."""
    reply(slack.raw_command(f"role {at(BOB)} +verifier", user=ADMIN))
    log_via_slack(slack, engine, "Admin console exposed sev:critical")

    def grant_reads(command: str) -> tuple[int, str]:
        with statements(engine) as seen:
            body = reply(slack.raw_command(command, user=BOB))
        return sum("FROM role_grants" in statement for statement, _ in seen), body

    for command, said in (("list", "POAM-1"), ("show 1", "POAM-1"), ("claim 1", "You now own *POAM-1*")):
        reads, body = grant_reads(command)
        assert (reads, said in body) == (0, True), (command, body)
    reads, body = grant_reads(f"role {at(CAROL)} +ao")
    assert (reads, "Only a POA&amp;M admin can change roles." in body) == (1, True), body


# ---------------------------------------------------------------- systems


def test_systems_and_system_add(slack: SlackDriver, engine: Engine, make_actor: Any) -> None:
    body = reply(slack.command("systems", user=ALICE))
    assert "*Default* · moderate impact · _default_" in body, body
    assert_refused(slack, engine, "system add HR portal", problem="Only a POA&M admin can add a system.", user=ALICE)
    body = reply(slack.raw_command(
        f'system add Payroll impact:high org:"Finance dept" ao:{at(CAROL)} fedramp:F1603047866', user=ADMIN))
    assert "Added the system *Payroll* (high impact)." in body, body
    body = reply(slack.command("systems", user=BOB))
    assert f"*Payroll* · high impact · Finance dept · AO <@{CAROL}> · FedRAMP F1603047866" in body, body
    assert_refused(slack, engine, "system add payroll", problem="A system called `payroll` already exists.", user=ADMIN)
    reply(slack.raw_command("system add HR portal org:None", user=ADMIN))  # none means none, as on `system set`
    assert "*HR portal* · moderate impact" + "\n" in reply(slack.command("systems", user=BOB)) + "\n"
    for command, problem in [
        ("system add", "The name is missing."),
        ("system add HR impact:extreme", "`extreme` is not an impact level"),
        ("system add HR colour:red", "`colour:` is not an option of /poam system"),
        ("system add HR ao:carol", "`carol` is not a person"),
        ("system add HR fedramp:none", "`none` is not a FedRAMP package ID"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key="system add", user=ADMIN)
    assert_malformed(slack, engine, "system remove HR", problem="`/poam system` needs one of: add, set.",
                     key="system add", user=ADMIN)
    # The new system is usable at once.
    reply(slack.command("log Payroll export unencrypted system:payroll", user=ALICE))
    body = reply(slack.command("list system:Payroll", user=ALICE))
    assert "Payroll export unencrypted" in body
    assert "Payroll export unencrypted" not in reply(slack.command("list", user=ALICE))
    wait_threads(engine, 1)


def test_system_set_changes_a_system_and_records_it(slack: SlackDriver, engine: Engine) -> None:
    """The default system is created at moderate impact with no AO: what the
    exports print of it and who decides must be settable afterwards."""
    assert_refused(slack, engine, "system set default impact:high", user=ALICE,
                   problem="Only a POA&M admin can change a system.")
    body = reply(slack.raw_command(f'system set DEFAULT impact:high org:"Acme & Co" ao:{at(CAROL)}', user=ADMIN))
    assert (f"Changed *Default*: impact high (was moderate); organization Acme &amp; Co (was none); "
            f"authorizing official <@{CAROL}> (was none).") in body, body
    assert f"*Default* · high impact · Acme &amp; Co · AO <@{CAROL}> · _default_" in reply(
        slack.command("systems", user=ALICE))
    with unit_of_work(engine, read_only=True) as session:
        event = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).first()
    assert event is not None and (event.action, event.details) == ("system.changed", {
        "system": "Default", "impact": {"from": "moderate", "to": "high"},
        "organization": {"from": None, "to": "Acme & Co"}, "ao": {"from": None, "to": CAROL},
    })
    body = reply(slack.raw_command("system set default org:NONE", user=ADMIN))
    assert "Changed *Default*: no organization (was Acme &amp; Co)." in body, body
    body = reply(slack.raw_command("system set default fedramp:f1603047866", user=ADMIN))
    assert "Changed *Default*: FedRAMP package ID F1603047866 (was none)." in body, body
    assert "· FedRAMP F1603047866 · _default_" in reply(slack.command("systems", user=ALICE))
    body = reply(slack.raw_command("system set default fedramp:none", user=ADMIN))
    assert "Changed *Default*: no FedRAMP package ID (was F1603047866)." in body, body
    assert_refused(slack, engine, "system set Payroll impact:low", user=ADMIN,
                   problem="There is no system called `Payroll`; `/poam systems` lists them.")
    for command, problem in [
        ("system set default", "Say what to change: `impact:`, `org:`, `ao:` or `fedramp:` (`none` removes an "
                               "organization, an AO or a FedRAMP package ID)."),
        ("system set default fedramp:1603047866", "`1603047866` is not a FedRAMP package ID"),
        ("system set", "The name is missing."),
        ("system set default impact:extreme", "`extreme` is not an impact level"),
        ("system set default ao:carol", "`carol` is not a person"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key="system set", user=ADMIN)


def test_options_that_do_not_go_together_show_the_usage(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """COMMANDS.md: anything malformed shows the subcommand's usage. Whether
    an option belongs depends here on a word before it (``sev:`` only with
    ``ra``), which the operation checks: its answer is malformed all the same."""
    claimed_item(slack, fake_slack, engine, owner=ALICE, words="Weak TLS sev:moderate")
    for command, problem, key in [
        ("deviate 1 ra Behind the VPN", "A risk adjustment needs the adjusted severity: `sev:low`.", "deviate"),
        ("deviate 1 fp Not our package sev:low", "Only a risk adjustment (ra) takes `sev:`.", "deviate"),
        ("deviate 99 fp Not our package sev:low", "Only a risk adjustment (ra) takes `sev:`.", "deviate"),
        ("deviate 1 or Needed by the mainframe", "An operational requirement needs a re-review date: `until:+6m`.",
         "deviate"),
        ("deviate 1 ra Behind the VPN sev:low until:+3m", "Only an operational requirement (or) takes `until:`.",
         "deviate"),
        ('vendor 1 shipped product:"Acme LB"', "`product:` names what waits on a vendor; it does not go with `shipped`.",
         "vendor"),
    ]:
        assert_malformed(slack, engine, command, problem=problem, key=key)
    assert_malformed(slack, engine, "subscribe off day:friday", problem="`off` takes no day: or at:.",
                     key="subscribe", user=ADMIN)
    # A refusal that is not about the command's shape stays one, without the usage.
    body = assert_refused(slack, engine, "deviate 1 ra Behind the VPN sev:moderate", user=ALICE,
                          problem="POAM-1 is already rated moderate.")
    assert "Usage:" not in body, body


def test_every_field_of_a_card_fits_slacks_limit_however_its_text_escapes(slack: SlackDriver, engine: Engine) -> None:
    """Escaping makes ``&`` five characters: three assets of 200 made a field
    of 2,481, past the 2,000 Slack allows in one."""
    assets = ",".join("&" * 199 + str(n) for n in range(3))
    log_via_slack(slack, engine, f"Ampersands asset:{assets}")
    body = slack.command("show 1", user=ALICE).json()
    fields = [field["text"] for block in body["blocks"] for field in block.get("fields", [])]
    assert fields and max(len(text) for text in fields) <= 2000, [len(text) for text in fields]
    assert any(text.startswith("*Assets*\n&amp;&amp;") for text in fields)


def test_a_list_filtered_by_a_padded_control_pages_on(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    """The Next button keeps the filters as the list read them, not as typed."""
    for n in range(22):
        reply(slack.command(f"log Weakness {n} control:AC-2", user=ALICE))
    padded = " " * 75 + "ac-2" + " " * 75
    first = slack.command(f'list open control:"{padded}"', user=ALICE).json()
    assert "1–20 of 22" in json.dumps(first, ensure_ascii=False), first
    value = next(element["value"] for block in first["blocks"] for element in block.get("elements", [])
                 if element.get("action_id") == ActionId.LIST_PAGE + ".next")
    assert json.loads(value)["control"] == "AC-2"
    fake_slack.clear()
    slack.click(ActionId.LIST_PAGE + ".next", value, user=ALICE)
    assert "21–22 of 22" in json.dumps(wait_for(lambda: list(fake_slack.responses)), ensure_ascii=False)


def test_a_card_with_more_open_milestones_than_buttons_keeps_its_own(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """An actions block holds 25 buttons: the item's own come first, then as
    many Complete buttons as fit (the command completes the others)."""
    claimed_item(slack, fake_slack, engine, owner=ALICE, words="Weak TLS sev:low")
    for n in range(30):
        assert "Added *M" in reply(slack.command(f"milestone 1 add Step {n} due:+{n + 1}d", user=ALICE))
    buttons = card_buttons(slack.command("show 1", user=ALICE).json()["blocks"])
    assert len(buttons) == 25 and {"Add milestone", "History", "Complete M1", "Complete M23"} <= set(buttons)
    assert "Complete M24" not in buttons


def test_a_new_workspaces_first_reads_at_once_are_all_answered(
    server_url: str, fake_slack: FakeSlack, engine: Engine
) -> None:
    """A read-only unit made the workspace on its first use: on SQLite its
    read became a write, refused at once when another request had written
    since its read began ("Too many changes at once")."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL reads take no write lock: the race is SQLite's")
    answers: list[str] = []
    for round_number in range(4):
        team = f"T0NEW{round_number:04d}"
        driver = SlackDriver(server_url + EVENTS_PATH, team_id=team, response_url=fake_slack.response_url())
        start = threading.Barrier(6)

        def read(user: str, driver: SlackDriver = driver, start: threading.Barrier = start) -> None:
            start.wait()
            answers.append(reply(driver.command("systems", user=user)))

        threads = [threading.Thread(target=read, args=(f"U0READER{n}",)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == 24
    assert all("*Default*" in answer for answer in answers), [a for a in answers if "*Default*" not in a][:1]
