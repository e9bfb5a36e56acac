"""Request signing, escaping of user text, size limits, workspace isolation, health.

Every request the bot acts on must carry a valid Slack signature over a fresh
timestamp; user text never reaches Slack as markup (no ``@channel``, no forged
mentions or links); a crafted payload naming another workspace cannot see or
change this one's items.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from bot.app import build_app
from bot.commands import context
from bot.commands.turns import ListenerTurns
from bot.config import Settings
from bot.poam.clock import FixedClock
from bot.reminders.scheduler import Scheduler
from bot.store import counters
from bot.store.engine import unit_of_work
from bot.web import SlackWsgi
from tests.e2e.conftest import serving, wait_for
from tests.e2e.test_commands import (  # noqa: F401  (fast_teardown is an autouse fixture)
    ALICE,
    BOB,
    TEAM,
    card_buttons,
    claimed_item,
    fast_teardown,
    item_row,
    log_via_slack,
    posts,
    reply,
    snapshot,
    strings,
    wait_threads,
)
from tests.e2e.test_interactions import form_values, log_form, opened_view
from tests.fake_slack import FakeSlack
from tests.slack_driver import SIGNING_SECRET, Answer, SlackDriver, sign

OTHER_TEAM = "T0002"
EVIL = "<!channel> <@U123> & <https://x|y>"
MARKUP = ("<!channel>", "<@U123>", "<https://x|y>")


def item_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM items")).scalar_one())


def rejected(answer: Answer) -> None:
    assert answer.status == 401, (answer.status, answer.body)


# ---------------------------------------------------------------- signatures


def test_forged_signatures_are_rejected_and_change_nothing(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    log_via_slack(slack, engine, "Existing finding")
    before, calls = snapshot(engine), len(fake_slack.calls)
    now = int(time.time())
    body = slack.command_body("log Forged finding sev:critical", user=ALICE)
    rejected(slack.post(body, signature="v0=" + "0" * 64))
    rejected(slack.post(body, signature=sign(body, now, secret="not-the-signing-secret")))
    rejected(slack.post(body, signature="v1=" + sign(body, now)[3:]))
    # No signature headers at all.
    request = urllib.request.Request(
        slack.events_url, data=body.encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=5)
    assert unsigned.value.code == 401
    # A button press, forged.
    claim = json.dumps({"number": 1})
    payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": BOB, "team_id": TEAM},
               "actions": [{"action_id": "poam.claim", "value": claim, "type": "button"}],
               "response_url": fake_slack.response_url(), "trigger_id": "1.2.3"}
    forged = urlencode({"payload": json.dumps(payload)})
    rejected(slack.post(forged, signature=sign(forged, now, secret="guessed")))
    time.sleep(0.2)
    assert snapshot(engine) == before
    assert len(fake_slack.calls) == calls and not fake_slack.responses


def _raw_post(slack: SlackDriver, body: bytes, timestamp: str, signature: str) -> tuple[int, str]:
    request = urllib.request.Request(slack.events_url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_body_or_timestamp_bolt_cannot_read_is_refused_without_a_traceback(
    slack: SlackDriver, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt decoded the body, parsed its JSON and read the timestamp as a
    number before any signature check: a body that is not UTF-8, a payload
    that is not JSON or a timestamp that is not a number got a 500 and a
    traceback in the log, signed or not."""
    now = str(int(time.time()))
    body = b"command=%2Fpoam&text=log+x&user_id=U00000ALICE\xff\xfe"
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), b"v0:" + now.encode() + b":" + body, hashlib.sha256).hexdigest()
    with caplog.at_level(logging.DEBUG):
        assert _raw_post(slack, body, now, signature) == (400, "unreadable request\n")
        assert _raw_post(slack, b"payload=%7Bnot-json", now, "v0=" + "0" * 64) == (400, "unreadable request\n")
        assert _raw_post(slack, b"text=log", "12x4", "v0=" + "0" * 64) == (401, "invalid request\n")
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert item_count(engine) == 0
    assert "Logged *POAM-1*" in slack.command("log Still served sev:low", user=ALICE).text  # the body went on whole


def test_stale_timestamps_are_rejected_even_when_correctly_signed(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    log_via_slack(slack, engine, "Existing finding")
    before, calls = snapshot(engine), len(fake_slack.calls)
    body = slack.command_body("log Stale finding", user=ALICE)
    for age in (301, 600, 86_400, -400):  # older than five minutes, or far in the future
        stamp = int(time.time()) - age
        rejected(slack.post(body, timestamp=stamp, signature=sign(body, stamp)))
    assert snapshot(engine) == before and len(fake_slack.calls) == calls


def test_a_replayed_old_request_is_rejected(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    log_via_slack(slack, engine, "Existing finding")
    before = snapshot(engine)
    # A request captured six minutes ago, replayed as is…
    captured_at = int(time.time()) - 360
    body = slack.command_body("claim 1", user=BOB)
    signature = sign(body, captured_at)
    rejected(slack.post(body, timestamp=captured_at, signature=signature))
    # …or with its timestamp refreshed (the signature covers the timestamp)…
    rejected(slack.post(body, timestamp=int(time.time()), signature=signature))
    # …or its fresh signature reused for another body.
    now = int(time.time())
    rejected(slack.post(slack.command_body("claim 1", user=ALICE), timestamp=now, signature=sign(body, now)))
    assert snapshot(engine) == before
    # The same request, signed now, is accepted: the rejections were about freshness and integrity.
    assert "You now own *POAM-1*" in reply(slack.post(body, timestamp=now, signature=sign(body, now)))
    wait_for(lambda: len(posts(fake_slack)) == 2)


def owner_of(engine: Engine, number: int) -> str | None:
    with engine.connect() as connection:
        return connection.execute(text("SELECT owner_id FROM items WHERE number = :n"), {"n": number}).scalar_one()


def test_the_same_signed_request_sent_again_changes_nothing(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """Within Slack's five minutes a captured request passes the signature and
    timestamp checks; its change is made once, and the copy is told so."""
    now = int(time.time())
    logged = slack.command_body("log Replayed finding sev:low", user=ALICE)
    assert "Logged *POAM-1*" in reply(slack.post(logged, timestamp=now, signature=sign(logged, now)))
    wait_threads(engine, 1)
    before, sent = snapshot(engine), len(posts(fake_slack))
    again = reply(slack.post(logged, timestamp=now, signature=sign(logged, now)))
    assert "already handled, so nothing was changed" in again and ":no_entry:" in again
    assert snapshot(engine) == before and item_count(engine) == 1

    # A button's click: acked both times, the claim made once, the copy told privately.
    claim = card_buttons(slack.command("show 1", user=BOB).json()["blocks"])["Claim"]
    clicked = slack.click_body(claim["action_id"], claim["value"], user=BOB)
    assert slack.post(clicked, timestamp=now, signature=sign(clicked, now)).status == 200
    wait_for(lambda: owner_of(engine, 1) == BOB and len(posts(fake_slack)) == sent + 1)  # and its line in the thread
    before = snapshot(engine)
    assert slack.post(clicked, timestamp=now, signature=sign(clicked, now)).status == 200
    wait_for(lambda: [r for r in fake_slack.responses if "already handled" in json.dumps(r)])
    assert snapshot(engine) == before and len(posts(fake_slack)) == sent + 1

    # Reading requests change nothing, so a copy is simply answered again.
    shown = slack.command_body("show 1", user=ALICE)
    for _ in range(2):
        assert "Replayed finding" in reply(slack.post(shown, timestamp=now, signature=sign(shown, now)))


def handled_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM handled_requests")).scalar_one())


def test_a_copy_of_a_refused_request_stays_refused_after_things_change(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """A refused request is recorded too (just after its answer): once the owner
    lets the item go, its copy must not take it."""
    log_via_slack(slack, engine, "Refused first sev:low")
    assert "You now own" in reply(slack.command("claim 1", user=ALICE))
    now = int(time.time())
    body = slack.command_body("claim 1", user=BOB)
    assert "already claimed" in reply(slack.post(body, timestamp=now, signature=sign(body, now)))
    wait_for(lambda: handled_count(engine) == 3)  # the log, Alice's claim and Bob's refused one
    assert "unowned" in reply(slack.command("release 1", user=ALICE))
    again = reply(slack.post(body, timestamp=now, signature=sign(body, now)))
    assert "already handled, so nothing was changed" in again
    assert owner_of(engine, 1) is None


def test_a_copy_of_a_request_that_found_the_database_busy_changes_nothing(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told "nothing was changed", the user sends it again (a new request): a copy
    of the first, sent after that, must not log the finding a second time."""
    monkeypatch.setattr(context, "REQUEST_MAX_WAIT", 0.5)
    log_via_slack(slack, engine, "Existing finding")
    now = int(time.time())
    captured = slack.command_body("log Printer firmware outdated sev:low", user=ALICE)
    with unit_of_work(engine) as session:
        counters.lock_workspace(session, team_id=TEAM)  # another writer holds the turn
        told = slack.post(captured, timestamp=now, signature=sign(captured, now))
    assert "nothing was changed" in told.text, told.text
    wait_for(lambda: handled_count(engine) == 2)  # recorded just after the answer
    assert "Logged *POAM-2*" in reply(slack.command("log Printer firmware outdated sev:low", user=ALICE))
    assert "already handled" in reply(slack.post(captured, timestamp=now, signature=sign(captured, now)))
    assert item_count(engine) == 2


def test_a_copy_of_a_submitted_form_changes_nothing(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    view = log_form(slack, fake_slack)
    now = int(time.time())
    body = slack.submit_body(view, form_values(), user=ALICE)
    assert "Logged *POAM-1*" in slack.post(body, timestamp=now, signature=sign(body, now)).text
    again = slack.post(body, timestamp=now, signature=sign(body, now))
    assert again.status == 200 and "already handled" in again.text, again.text
    assert item_count(engine) == 1


def test_copies_of_one_request_at_the_same_moment_make_one_change(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    now = int(time.time())
    body = slack.command_body("log Sent four times at once sev:low", user=ALICE)
    answers: list[str] = []
    start = threading.Barrier(4)

    def send() -> None:
        start.wait()
        answers.append(reply(slack.post(body, timestamp=now, signature=sign(body, now))))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert item_count(engine) == 1
    assert sorted("Logged *POAM-1*" in answer for answer in answers) == [False, False, False, True]
    assert all("already handled" in answer for answer in answers if "Logged" not in answer)


def test_handled_requests_are_forgotten_once_no_replay_can_match(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, clock: FixedClock, settings: Settings
) -> None:
    """The scheduler's tick deletes what Slack's five minutes (ten, with room)
    make stale; a saved form's view id, a day later (Submit pressed again on a
    form left open)."""
    assert "Logged *POAM-1*" in reply(slack.command("log Kept a while sev:low", user=ALICE))
    assert "Logged *POAM-2*" in slack.submit(log_form(slack, fake_slack), form_values(), user=ALICE).text
    scheduler = Scheduler(engine=engine, client=WebClient(token="xoxb-x", base_url=settings.slack_api_url),
                          settings=settings, clock=clock)

    def handled() -> list[str]:
        """What is kept: each request's signature, each saved form's view id."""
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT signature FROM handled_requests")).scalars()
            return sorted("form" if key.startswith("view:") else "request" for key in keys)

    assert handled() == ["form", "request", "request"]
    clock.advance(minutes=9)
    scheduler.tick()
    assert handled() == ["form", "request", "request"]
    clock.advance(minutes=2)
    scheduler.tick()
    assert handled() == ["form"]
    clock.advance(hours=23, minutes=48)
    scheduler.tick()
    assert handled() == ["form"]
    clock.advance(minutes=2)
    scheduler.tick()
    assert handled() == []


# ---------------------------------------------------------------- escaping


def test_markup_in_user_text_never_reaches_slack_unescaped(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, make_actor: Any
) -> None:
    answers: list[Answer] = []

    def run(command: str, user: str = ALICE) -> str:
        answer = slack.command(command, user=user)
        answers.append(answer)
        return reply(answer)

    assert "Logged *POAM-1*" in run(f"log {EVIL} sev:high")
    assert item_row(engine, make_actor, 1).title == EVIL  # stored exactly as typed
    wait_for(lambda: item_row(engine, make_actor, 1).origin_thread_ts)
    run("claim 1")
    run(f"plan 1 Tell {EVIL} resources:\"{EVIL}\"")
    run(f'milestone 1 add "{EVIL}" due:+5d')
    run(f'milestone 1 move M1 due:+6d reason:"{EVIL}"')
    assert "Logged *POAM-2*" in run(f'log {EVIL} desc:"{EVIL}" asset:{EVIL.split()[0]} control:AC-2')
    for command in ("show 1", "show 2", "list mine", "history 1"):
        run(command)
    listing = slack.command("list", user=BOB)
    answers.append(listing)
    run(f"help {EVIL.split()[0]}")
    # A Show button and the App Home show the title as well.
    shows = [b["accessory"] for b in listing.json()["blocks"] if "accessory" in b]
    assert len(shows) == 2
    for show in shows:
        seen = len(fake_slack.responses)
        slack.click(show["action_id"], show["value"], user=BOB)
        assert EVIL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in strings(
            wait_for(lambda: fake_slack.responses[seen:])[0]  # noqa: B023
        )
    slack.event({"type": "app_home_opened", "user": ALICE, "tab": "home", "event_ts": "1.1"})
    assert "&lt;!channel&gt;" in strings(wait_for(lambda: fake_slack.calls_to("views.publish"))[0].params)
    # The form, with the same text typed into it (Slack does not escape form input).
    run_form = slack.command("log", user=ALICE)
    view = opened_view(fake_slack)
    submitted = slack.submit(view, form_values(title={"value": EVIL}, description={"value": EVIL}), user=ALICE)
    answers += [run_form, submitted]
    assert submitted.json()["response_action"] == "update", submitted.body
    wait_for(lambda: len([p for p in posts(fake_slack) if "logged" in p["text"]]) == 3)
    assert [row[0] for row in _titles(engine)] == [EVIL, EVIL, EVIL]
    wait_threads(engine, 1, 2, 3)

    everything = fake_slack.outgoing_text() + "\n".join(a.body for a in answers)
    decoded = everything + "\n".join(strings(a.json()) for a in answers if a.body)
    for markup in MARKUP:
        assert markup not in decoded, markup
    assert "&lt;!channel&gt; &lt;@U123&gt; &amp; &lt;https://x|y&gt;" in fake_slack.outgoing_text()
    assert "&lt;!channel&gt;" in "\n".join(a.body for a in answers)
    for post in posts(fake_slack):
        assert "<!" not in post["text"] and "<https" not in post["text"]


def test_refusals_quoting_user_text_escape_it_everywhere(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    log_via_slack(slack, engine, "Existing finding")
    answers = [
        slack.command(f"log Title sev:{EVIL.split()[0]}", user=ALICE),  # usage error
        slack.command(f"show {EVIL.split()[1]}", user=ALICE),  # usage error
        slack.command(f"log Title system:{EVIL.split()[0]}", user=ALICE),  # domain refusal
    ]
    for answer in answers:
        assert "&lt;" in reply(answer), answer.body
    everything = fake_slack.outgoing_text() + "\n".join(strings(a.json()) for a in answers)
    for markup in MARKUP:
        assert markup not in everything, markup


def _titles(engine: Engine) -> list[tuple[str]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text("SELECT title FROM items ORDER BY number"))]


# ---------------------------------------------------------------- limits


def test_a_40000_character_title_is_refused_with_the_limit(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    log_via_slack(slack, engine, "Existing finding")
    before = snapshot(engine)
    body = reply(slack.command("log " + "A" * 40_000, user=ALICE))
    assert "the limit is 12,000" in body, body[:500]
    assert "A" * 100 not in body  # the text is not echoed back
    body = reply(slack.command("log " + "word " * 100 + "B" * 300, user=ALICE))
    assert "The title is" in body and "the limit is 300" in body, body[:500]
    view = (slack.command("log", user=ALICE), opened_view(fake_slack))[1]
    answer = slack.submit(view, form_values(title={"value": "C" * 40_000}), user=ALICE).json()
    assert answer["response_action"] == "errors" and "the limit is 300" in answer["errors"]["title"], answer
    assert snapshot(engine) == before and item_count(engine) == 1


# ---------------------------------------------------------------- workspace isolation


def team_rows(engine: Engine, team: str) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(row) for row in connection.execute(
                    text(f'SELECT * FROM "{table.name}" WHERE team_id = :team'), {"team": team}
                )),
                key=repr,
            )
            for table in SQLModel.metadata.sorted_tables
            if "team_id" in table.c
        }


def test_another_workspace_cannot_see_or_change_this_ones_items(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    claimed_item(slack, fake_slack, engine, owner=ALICE, words="Secret finding of T0001 sev:high")
    reply(slack.command("milestone 1 add Secret milestone due:+5d", user=ALICE))
    buttons = card_buttons(slack.command("show 1", user=ALICE).json()["blocks"])
    mine = team_rows(engine, TEAM)
    posted = len(posts(fake_slack))

    outsider = "U0OUTSIDER"
    for button in (
        {"action_id": "poam.claim", "value": json.dumps({"number": 1})},
        buttons["History"],
        buttons["Complete M1"],
        {"action_id": "poam.show.1", "value": json.dumps({"number": 1})},
    ):
        for user in (outsider, ALICE):  # even the owner's id, sent from the other workspace
            seen = len(fake_slack.responses)
            answer = slack.click(button["action_id"], button["value"], user=user, team_id=OTHER_TEAM)
            assert answer.status == 200
            response = wait_for(lambda seen=seen: fake_slack.responses[seen:])[0]
            shown = strings(response)
            assert "There is no item POAM-1 in this workspace." in shown, (button, shown)
            assert "Secret" not in shown
    other = SlackDriver(slack.events_url, team_id=OTHER_TEAM, response_url=fake_slack.response_url())
    for command in ("show 1", "history 1", "list all", "claim 1", "milestone 1 done M1"):
        body = reply(other.command(command, user=outsider))
        assert "Secret" not in body, (command, body)
    assert "nothing here" in reply(other.command("list all", user=outsider))
    time.sleep(0.2)
    assert team_rows(engine, TEAM) == mine
    assert len(posts(fake_slack)) == posted


# ---------------------------------------------------------------- health


def test_healthz(server_url: str) -> None:
    with urllib.request.urlopen(server_url + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert response.read().decode().strip() == "ok"


def test_healthz_does_not_wait_for_a_writer(server_url: str, engine: Engine) -> None:
    """A health check only reads: on SQLite it must not queue for the write lock
    a long job holds (it used to, for up to the 15 s busy timeout)."""
    with engine.begin() as writer:  # holds SQLite's write lock (PostgreSQL: an open transaction)
        writer.execute(text("SELECT 1"))
        started = time.monotonic()
        with urllib.request.urlopen(server_url + "/healthz", timeout=10) as response:
            assert response.status == 200
        assert time.monotonic() - started < 1.0


def test_a_change_where_the_audit_trail_is_past_its_head_gets_a_clear_answer(
    slack: SlackDriver, engine: Engine
) -> None:
    """A database copied or restored so that the workspace's recorded head is
    behind its events: a change is refused with what to do, not "something
    went wrong", and nothing changes."""
    number = log_via_slack(slack, engine, "Existing finding")
    with engine.begin() as connection:
        connection.execute(text("UPDATE workspaces SET audit_seq = audit_seq - 1 WHERE team_id = :t"), {"t": TEAM})
    before = snapshot(engine)
    body = reply(slack.command(f"claim POAM-{number}", user=BOB))
    assert "Nothing was changed: this workspace's audit trail already holds events past" in body, body
    assert "poam-bot audit verify" in body and "Something went wrong" not in body
    assert snapshot(engine) == before


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_reports_listeners_that_never_come_back(settings: Settings, engine: Engine, clock: FixedClock) -> None:
    """Listeners stuck for good (the deadlock fixed in bot.commands.turns did
    that) leave gunicorn's own loop running and its timeout blind: the health
    check answers 503 once requests have waited 30 s without a turn changing
    hands (bot.stall_watch logs why), then 200 when the line moves."""
    line_clock = _Clock()
    turns = ListenerTurns(context.LISTENERS_AT_ONCE, clock=line_clock)
    app = build_app(settings, engine=engine, clock=clock, turns=turns)
    release = threading.Event()

    def holds_a_turn() -> None:
        with turns.turn():
            release.wait(30)

    holders = [threading.Thread(target=holds_a_turn) for _ in range(context.LISTENERS_AT_ONCE + 1)]
    with serving(SlackWsgi(app, engine, turns=turns)) as url:
        try:
            for holder in holders:
                holder.start()
            wait_for(lambda: turns.waiting == 1)
            line_clock.now += 29
            assert _health(url) == (200, "ok\n")
            line_clock.now += 2
            assert _health(url) == (503, "listeners stuck for 31 s\n")
        finally:
            release.set()
            for holder in holders:
                holder.join(10)
        assert _health(url) == (200, "ok\n")

