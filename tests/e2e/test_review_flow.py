"""The review workflow over signed HTTP against the fake Slack."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, select

from bot.commands.ids import ActionId, BlockId
from bot.interchange.json_export import write_json
from bot.poam.actor import Rules
from bot.poam.item_details import iter_item_details
from bot.store import outbox
from bot.store.engine import unit_of_work
from bot.store.models import Item, OutboxMessage, ReviewRequest
from tests.e2e.conftest import ADMIN, wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

OWNER, VERIFIER, VERIFIER2, AO = "U0000OWNER", "U00VERIFY1", "U00VERIFY2", "U000000AO1"


def _dm_to(fake_slack: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [call.params for call in fake_slack.calls_to("chat.postMessage") if call.params.get("channel") == user]


def _button(blocks: Any, action_id: str) -> dict[str, Any]:
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} button in {blocks}")


def _export(engine: Engine) -> dict[str, Any]:
    out = io.StringIO()
    with unit_of_work(engine) as session:
        write_json(iter_item_details(session), out, rules=Rules(), exported_at=datetime(2026, 11, 20, tzinfo=UTC),
                   team_id=None, system_name=None)
    return json.loads(out.getvalue())


@pytest.fixture
def team(slack: SlackDriver) -> SlackDriver:
    """An admin makes one verifier, a second verifier and an AO."""
    for user, role in ((VERIFIER, "+verifier"), (VERIFIER2, "+verifier"), (AO, "+ao")):
        answer = slack.raw_command(f"role <@{user}|x> {role}", user=ADMIN)
        assert "is now" in answer.text, answer.body
    return slack


def test_log_to_verified_with_the_whole_record_exported(team: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    slack = team
    assert "Logged *POAM-1*" in slack.command("log Outdated OpenSSL on web-01 sev:moderate", user=OWNER).text
    assert "You now own" in slack.command("claim 1", user=OWNER).text
    assert "Plan set" in slack.command('plan 1 Upgrade OpenSSL to 3.0.15 resources:"1 engineer-day"', user=OWNER).text
    refused = slack.command("approve 1", user=OWNER)
    assert "Only the authorizing official can approve its plan." in refused.text
    assert "You approved the plan of *POAM-1*" in slack.command("approve 1", user=AO).text
    assert "Added *M1*" in slack.command("milestone 1 add Upgrade package due:+3d", user=OWNER).text
    # Adding a milestone changed the plan: it needs approval again.
    assert "You approved the plan" in slack.command("approve 1", user=AO).text
    assert "is complete" in slack.command("milestone 1 done M1", user=OWNER).text
    submitted = slack.command('submit 1 evidence:"rescan 2026-11-20 shows 3.0.15"', user=OWNER)
    assert "submitted for verification" in submitted.text and f"<@{VERIFIER}>" in submitted.text

    ask = wait_for(lambda: _dm_to(fake_slack, VERIFIER))[0]
    assert "rescan 2026-11-20 shows 3.0.15" in json.dumps(ask)
    wait_for(lambda: _dm_to(fake_slack, VERIFIER2))  # every verifier who may verify is asked
    assert not _dm_to(fake_slack, OWNER) or all("verify" not in json.dumps(m).lower() for m in _dm_to(fake_slack, OWNER))
    verify = _button(ask["blocks"], ActionId.VERIFY)

    own = slack.click(ActionId.VERIFY, verify["value"], user=OWNER)
    assert own.status == 200
    assert wait_for(lambda: [r for r in fake_slack.responses if "Only a verifier" in json.dumps(r)])

    assert slack.click(ActionId.VERIFY, verify["value"], user=VERIFIER).status == 200
    wait_for(lambda: [r for r in fake_slack.responses if "You verified *POAM-1*" in json.dumps(r)])
    owner_dm = wait_for(lambda: [m for m in _dm_to(fake_slack, OWNER) if "verified the fix" in m["text"]])
    assert "closed (remediated)" in owner_dm[0]["text"]
    thread = wait_for(lambda: [c.params for c in fake_slack.calls_to("chat.postMessage") if "verified the fix" in c.params["text"] and c.params.get("channel") == "C0CHANNEL1"])
    assert thread[0]["thread_ts"] == "1700000000.000001"

    late = slack.click(ActionId.VERIFY, verify["value"], user=VERIFIER2)
    assert late.status == 200
    assert wait_for(lambda: [r for r in fake_slack.responses if "was already verified" in json.dumps(r)])

    (item,) = _export(engine)["items"]
    assert item["status"] == "closed" and item["closure"] == "remediated"
    assert item["plan_approval"]["by"] == AO
    assert [(r["kind"], r["status"], r["decided_by"]) for r in item["requests"]] == [
        ("plan_approval", "approved", AO), ("plan_approval", "approved", AO), ("verification", "approved", VERIFIER),
    ]
    assert item["requests"][2]["text"] == "rescan 2026-11-20 shows 3.0.15"
    assert item["milestones"][0]["completed_by"] == OWNER


def _buttons(answer_blocks: Any) -> set[str]:
    return {element.get("action_id") for block in answer_blocks for element in block.get("elements", [])}


def test_a_verifier_who_owned_the_item_before_is_not_asked_nor_offered_verify(
    team: SlackDriver, fake_slack: FakeSlack
) -> None:
    """Separation of duties (COMMANDS.md: "not a remediator of this item"):
    the verifier who worked on it, then handed it over, is not among those
    asked, sees no Verify on its card, and is refused by the command."""
    slack = team
    slack.raw_command(f"log Weak TLS ciphers sev:low owner:<@{VERIFIER}|v>", user=OWNER)
    slack.raw_command(f"assign 1 <@{OWNER}|o>", user=ADMIN)
    assert "submitted for verification" in slack.command("submit 1", user=OWNER).text
    wait_for(lambda: _dm_to(fake_slack, VERIFIER2))
    assert not [m for m in _dm_to(fake_slack, VERIFIER) if "verify" in json.dumps(m).lower()]
    assert ActionId.VERIFY not in _buttons(slack.command("show 1", user=VERIFIER).json()["blocks"])
    assert ActionId.VERIFY in _buttons(slack.command("show 1", user=VERIFIER2).json()["blocks"])
    refused = slack.command("verify 1", user=VERIFIER)
    assert "You owned POAM-1 before; a separate person must verify the fix." in refused.text


def test_a_fix_every_verifier_worked_on_says_someone_separate_is_needed(team: SlackDriver) -> None:
    slack = team
    slack.raw_command(f"log Weak TLS ciphers sev:low owner:<@{VERIFIER}|v>", user=OWNER)
    slack.raw_command(f"assign 1 <@{VERIFIER2}|v>", user=ADMIN)
    slack.raw_command(f"assign 1 <@{OWNER}|o>", user=ADMIN)
    submitted = slack.command("submit 1", user=OWNER).text
    assert "Nobody can verify it yet: every verifier worked on it or left Slack, or there is none." in submitted
    assert "to someone separate with `/poam role @someone +verifier`" in submitted


def test_vendor_checkin_and_shipped_by_command(team: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    slack = team
    slack.raw_command(f"log Appliance firmware sev:high owner:<@{OWNER}|o>", user=OWNER)
    assert "waits on a vendor (Acme)" in slack.command('vendor 1 product:"Acme"', user=OWNER).text
    assert "last check-in" in slack.command("vendor 1 checkin", user=OWNER).text
    refused = slack.command("vendor 1 later", user=OWNER)
    assert "`later` is not understood here" in refused.text and "`shipped`" in refused.text
    refused = slack.command('vendor 1 shipped product:"Other"', user=OWNER)
    assert "it does not go with `shipped`" in refused.text
    shipped = slack.command("vendor 1 shipped", user=OWNER)
    # Found today: the restarted clock gives no later date, so the AO is not asked.
    assert "*POAM-1* no longer waits on a vendor. It stays due" in shipped.text
    with unit_of_work(engine) as session:
        item = session.exec(select(Item).where(Item.number == 1)).one()
    assert item.vendor_dependency is False
    assert "is not marked as waiting on a vendor" in slack.command("vendor 1 shipped", user=OWNER).text


def test_two_verifiers_pressing_verify_at_once_make_one_decision(team: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    slack = team
    slack.command("log Weak TLS ciphers sev:low owner:x", user=OWNER)  # malformed owner: refused
    slack.raw_command(f"log Weak TLS ciphers sev:low owner:<@{OWNER}|o>", user=OWNER)
    slack.command("submit 1", user=OWNER)
    ask = wait_for(lambda: _dm_to(fake_slack, VERIFIER))[0]
    value = _button(ask["blocks"], ActionId.VERIFY)["value"]
    barrier = threading.Barrier(2)

    def press(user: str) -> None:
        barrier.wait()
        slack.click(ActionId.VERIFY, value, user=user)

    threads = [threading.Thread(target=press, args=(user,)) for user in (VERIFIER, VERIFIER2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answers = wait_for(lambda: len(fake_slack.responses) >= 2 and list(fake_slack.responses))
    texts = [json.dumps(r) for r in answers]
    assert sum("You verified" in t for t in texts) == 1
    assert sum("was already verified" in t for t in texts) == 1
    (item,) = _export(engine)["items"]
    assert [r["status"] for r in item["requests"]] == ["approved"]


def test_reject_button_asks_why_and_returns_the_item(team: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    slack = team
    slack.raw_command(f"log Open S3 bucket sev:high owner:<@{OWNER}|o>", user=OWNER)
    slack.command("submit 1", user=OWNER)
    ask = wait_for(lambda: _dm_to(fake_slack, VERIFIER))[0]
    slack.click(ActionId.REJECT_FIX, _button(ask["blocks"], ActionId.REJECT_FIX)["value"], user=VERIFIER)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].params["view"]
    form = json.loads(form) if isinstance(form, str) else form
    empty = slack.submit(form, {BlockId.REASON: {"type": "plain_text_input", "value": ""}}, user=VERIFIER)
    assert empty.json() == {"response_action": "errors", "errors": {"reason": "The reason is missing."}}
    done = slack.submit(form, {BlockId.REASON: {"type": "plain_text_input", "value": "Bucket policy still public"}}, user=VERIFIER)
    assert done.json()["response_action"] == "update"
    (item,) = _export(engine)["items"]
    assert item["status"] == "in_progress"
    assert item["requests"][0]["status"] == "rejected"
    assert item["requests"][0]["decision_note"] == "Bucket policy still public"
    wait_for(lambda: [m for m in _dm_to(fake_slack, OWNER) if "Bucket policy still public" in m["text"]])
    time.sleep(1.1)  # Send back pressed again (Slack could not connect): a new request, of the same form
    again = slack.submit(form, {BlockId.REASON: {"type": "plain_text_input", "value": "Bucket policy still public"}},
                         user=VERIFIER).json()
    assert again["response_action"] == "update"
    assert "This form was saved already, so nothing was sent back again." in json.dumps(again["view"]), again


def test_deviation_goes_to_the_ao_who_decides_by_button(team: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    slack = team
    slack.raw_command(f"log Scanner flags a patched kernel sev:moderate owner:<@{OWNER}|o>", user=OWNER)
    high = slack.command("deviate 1 or Needed for the legacy app until:+3m", user=OWNER)
    assert "re-review" not in high.text  # moderate: an OR may be asked
    assert "You asked for an operational requirement until" in high.text
    ask = wait_for(lambda: _dm_to(fake_slack, AO))[0]
    approve = _button(ask["blocks"], ActionId.DECIDE_APPROVE)
    assert "confirm" in approve
    assert slack.click(ActionId.DECIDE_APPROVE, approve["value"], user=AO).status == 200
    wait_for(lambda: [r for r in fake_slack.responses if "You approved" in json.dumps(r)])
    (item,) = _export(engine)["items"]
    assert item["status"] == "risk_accepted" and item["risk_accepted_until"] == "2027-02-20"
    again = slack.click(ActionId.DECIDE_REJECT, approve["value"], user=AO)
    assert again.status == 200
    wait_for(lambda: [r for r in fake_slack.responses if "was already approved" in json.dumps(r)])
    assert _export(engine)["items"][0]["requests"][0]["status"] == "approved"


def test_a_raised_rating_approved_says_which_milestones_now_fall_after_the_due_date(
    team: SlackDriver, fake_slack: FakeSlack
) -> None:
    """The shorter deadline of a raised rating left M2 after it, told to nobody
    (no milestone may be moved or added there)."""
    slack = team
    slack.raw_command(f"log Weak cipher on the VPN sev:moderate owner:<@{OWNER}|o>", user=OWNER)
    assert "Added *M1*" in slack.command("milestone 1 add Pick the cipher suite due:+10d", user=OWNER).text
    assert "Added *M2*" in slack.command("milestone 1 add Roll out to every site due:+60d", user=OWNER).text
    slack.command("deviate 1 ra The VPN is reachable from the internet sev:high", user=OWNER)
    decided = slack.command("decide 1 approve", user=AO)
    assert "You approved" in decided.text
    assert ("M2 (due Tue 19 Jan 2027) now falls after its due date, Sun 20 Dec 2026: "
            "`/poam milestone POAM-1 move`") in decided.text
    assert "M1" not in decided.text
    wait_for(lambda: [m for m in _dm_to(fake_slack, OWNER) if "now falls after its due date" in json.dumps(m)])
    # A false positive approved then closes the item: its milestones are nobody's work any more.
    slack.command("deviate 1 fp The scanner misread the cipher list", user=OWNER)
    closed = slack.command("decide 1 approve", user=AO)
    assert "You approved" in closed.text and "falls after" not in closed.text


def test_an_extension_keeps_the_original_date_and_the_ao_cannot_approve_their_own(team: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    slack = team
    slack.raw_command(f"log Unsupported OS on build-02 sev:high owner:<@{AO}|ao>", user=AO)
    slack.command('extend 1 due:2027-03-01 reason:"vendor ships in February"', user=AO)
    refused = slack.command("decide 1 approve", user=AO)
    assert "You own POAM-1; another authorizing official must decide it." in refused.text
    slack.raw_command(f"role <@{VERIFIER2}|v> +ao", user=ADMIN)
    assert "You approved an extension" in slack.command("decide 1 approve fine", user=VERIFIER2).text
    (item,) = _export(engine)["items"]
    assert item["due_on"] == "2027-03-01"
    assert item["scheduled_completion_on"] == "2026-12-20"


def test_app_home_shows_what_waits_on_a_verifier_and_an_ao(team: SlackDriver, fake_slack: FakeSlack) -> None:
    slack = team
    slack.raw_command(f"log Missing MFA on admin portal sev:moderate owner:<@{OWNER}|o>", user=OWNER)
    slack.raw_command(f"log Stale accounts sev:low owner:<@{OWNER}|o>", user=OWNER)
    slack.command("plan 2 Disable accounts unused for 90 days", user=OWNER)
    slack.command("submit 1", user=OWNER)

    def home_of(user: str) -> str:
        fake_slack.clear()
        slack.event({"type": "app_home_opened", "user": user, "tab": "home", "channel": "D0HOME"})
        published = wait_for(lambda: fake_slack.calls_to("views.publish"))[0].params
        assert published["user_id"] == user
        return json.dumps(published["view"])

    verifier_home = home_of(VERIFIER)
    assert "Waiting on me (1)" in verifier_home and "POAM-1" in verifier_home and "verify the fix" in verifier_home
    ao_home = home_of(AO)
    assert "Waiting on me (1)" in ao_home and "POAM-2" in ao_home and "approve its remediation plan" in ao_home
    owner_home = home_of(OWNER)
    assert "Waiting on me" not in owner_home and "You own *2* open item(s)" in owner_home


def _review_rows(engine: Engine) -> list[tuple[str, str]]:
    with unit_of_work(engine, read_only=True) as session:
        rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.kind) == "review")
                            .order_by(col(OutboxMessage.id))).all()
        return [(row.recipient, row.status) for row in rows]


def test_a_changes_dms_go_through_the_outbox_and_a_refused_change_queues_none(
    team: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    slack = team
    assert "Logged *POAM-1*" in slack.command("log Weak TLS ciphers sev:low", user=OWNER).text
    assert "You now own" in slack.command("claim 1", user=OWNER).text
    refused = slack.command("submit 1", user=VERIFIER)  # not the owner: nothing changes, nobody is asked
    assert "submitted for verification" not in refused.text
    assert _review_rows(engine) == []

    assert "submitted for verification" in slack.command("submit 1", user=OWNER).text
    wait_for(lambda: _dm_to(fake_slack, VERIFIER) and _dm_to(fake_slack, VERIFIER2))
    wait_for(lambda: _review_rows(engine) == [(VERIFIER, outbox.SENT), (VERIFIER2, outbox.SENT)])
    assert "back to its owner" in slack.command("reject 1 still offers RC4", user=VERIFIER).text
    wait_for(lambda: [m for m in _dm_to(fake_slack, OWNER) if "sent the fix" in m["text"]])
    wait_for(lambda: _review_rows(engine)[-1] == (OWNER, outbox.SENT))
    # Each DM names whose change wrote it: they are told if the dispatcher gives it up.
    with unit_of_work(engine, read_only=True) as session:
        assert session.exec(select(OutboxMessage.requested_by).where(col(OutboxMessage.kind) == "review")
                            .order_by(col(OutboxMessage.id))).all() == [OWNER, OWNER, VERIFIER]

    # Submitted again the same day: asked again (not taken for the first ask).
    # Every post so far is out (logged, claimed, two asks, sent back, the owner's DM),
    # so that the failure below meets the next ask and no late thread post.
    wait_for(lambda: len(fake_slack.calls_to("chat.postMessage")) == 6)
    fake_slack.fail("chat.postMessage", error="user_not_found")  # the first verifier's account is gone
    assert "submitted for verification" in slack.command("submit 1", user=OWNER).text
    told = wait_for(lambda: [r for r in fake_slack.responses
                             if f"couldn't send <@{VERIFIER}> a message about it" in json.dumps(r)])
    assert told[0]["response_type"] == "ephemeral"
    wait_for(lambda: _review_rows(engine)[3:] == [(VERIFIER, outbox.FAILED), (VERIFIER2, outbox.SENT)])
    assert len(_dm_to(fake_slack, VERIFIER2)) == 2


@contextmanager
def _outbox_refusing_rows(engine: Engine) -> Iterator[None]:
    """Every insert into the outbox fails (a trigger), for the duration."""
    if engine.dialect.name == "sqlite":
        create = ["CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'refused'); END"]
        drop = ["DROP TRIGGER refuse_outbox"]
    else:
        create = ["CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
                  "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"]
        drop = ["DROP TRIGGER refuse_outbox ON outbox", "DROP FUNCTION refuse_outbox()"]
    with engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))


def test_a_change_whose_dms_cannot_be_queued_is_not_saved(team: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    """The DMs are written in the change's own transaction: both are saved, or neither."""
    slack = team
    assert "Logged *POAM-1*" in slack.command("log Expired certificate on mail-01 sev:low", user=OWNER).text
    assert "You now own" in slack.command("claim 1", user=OWNER).text
    with _outbox_refusing_rows(engine):
        failed = slack.command("submit 1", user=OWNER)
    assert "Something went wrong on our side" in failed.text
    with unit_of_work(engine, read_only=True) as session:
        assert session.exec(select(ReviewRequest)).all() == []
        assert session.exec(select(Item.status)).all() == ["in_progress"]
    assert "submitted for verification" in slack.command("submit 1", user=OWNER).text  # and it can be done again
    wait_for(lambda: _review_rows(engine) == [(VERIFIER, outbox.SENT), (VERIFIER2, outbox.SENT)])


def test_a_plan_changed_since_the_card_was_shown_is_not_approved_by_its_button(
    team: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The AO read one plan on a card; meanwhile another AO approved it and the
    owner rewrote it (which withdrew the approval): the old button must not
    approve a plan its presser never saw."""
    slack = team
    other_ao = "U000000AO2"
    slack.raw_command(f"role <@{other_ao}|a> +ao", user=ADMIN)
    slack.raw_command(f"log Weak TLS sev:moderate owner:<@{OWNER}|o>", user=OWNER)
    slack.command("plan 1 Disable TLS 1.0 on the load balancer", user=OWNER)
    value = _button(slack.command("show 1", user=AO).json()["blocks"], ActionId.APPROVE_PLAN)["value"]
    assert "You approved the plan of *POAM-1*" in slack.command("approve 1", user=other_ao).text
    fake_slack.clear()
    slack.click(ActionId.APPROVE_PLAN, value, user=AO)  # approved already: says who did
    said = json.dumps(wait_for(lambda: list(fake_slack.responses)))
    assert "The plan of POAM-1 is already approved." in said and f"<@{other_ao}>" in said, said
    slack.command("plan 1 Accept the weak ciphers forever; do nothing", user=OWNER)
    fake_slack.clear()
    slack.click(ActionId.APPROVE_PLAN, value, user=AO)
    said = json.dumps(wait_for(lambda: list(fake_slack.responses)))
    assert "POAM-1 changed since you saw it, so its plan was not approved" in said, said
    with unit_of_work(engine, read_only=True) as session:
        item = session.exec(select(Item)).one()
    assert (item.plan_approved_at, item.plan_approved_by) == (None, None)
    value = _button(slack.command("show 1", user=AO).json()["blocks"], ActionId.APPROVE_PLAN)["value"]
    fake_slack.clear()
    slack.click(ActionId.APPROVE_PLAN, value, user=AO)  # the plan as it is now, seen
    assert "You approved the plan of *POAM-1*" in json.dumps(wait_for(lambda: list(fake_slack.responses)))


def test_a_reject_form_sent_after_someone_verified_says_who(
    team: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    slack = team
    slack.raw_command(f"log Open S3 bucket sev:high owner:<@{OWNER}|o>", user=OWNER)
    slack.command("submit 1", user=OWNER)
    ask = wait_for(lambda: _dm_to(fake_slack, VERIFIER))[0]
    slack.click(ActionId.REJECT_FIX, _button(ask["blocks"], ActionId.REJECT_FIX)["value"], user=VERIFIER)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    other = wait_for(lambda: _dm_to(fake_slack, VERIFIER2))[0]
    slack.click(ActionId.VERIFY, _button(other["blocks"], ActionId.VERIFY)["value"], user=VERIFIER2)
    wait_for(lambda: [r for r in fake_slack.responses if "You verified" in json.dumps(r)])
    answer = slack.submit(form, {BlockId.REASON: {"type": "plain_text_input", "value": "still public"}}, user=VERIFIER)
    shown = json.dumps(answer.json())
    assert answer.json()["response_action"] == "update", shown
    assert "already verified" in shown and f"Decided by <@{VERIFIER2}>" in shown, shown
    with unit_of_work(engine, read_only=True) as session:
        assert session.exec(select(Item)).one().status == "closed"


def test_the_reject_button_refuses_before_its_form_once_the_fix_is_decided_or_to_a_non_verifier(
    team: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The form asked for a reason first and refused only once it was typed:
    the Verify/Reject DM stays in every asked verifier's DMs after one decides."""
    slack = team
    slack.raw_command(f"log Open S3 bucket sev:high owner:<@{OWNER}|o>", user=OWNER)
    slack.command("submit 1", user=OWNER)
    reject = _button(wait_for(lambda: _dm_to(fake_slack, VERIFIER))[0]["blocks"], ActionId.REJECT_FIX)["value"]
    slack.click(ActionId.REJECT_FIX, reject, user=OWNER)
    wait_for(lambda: [r for r in fake_slack.responses if "Only a verifier can verify POAM-1" in json.dumps(r)])
    other = wait_for(lambda: _dm_to(fake_slack, VERIFIER2))[0]
    slack.click(ActionId.VERIFY, _button(other["blocks"], ActionId.VERIFY)["value"], user=VERIFIER2)
    wait_for(lambda: [r for r in fake_slack.responses if "You verified" in json.dumps(r)])
    slack.click(ActionId.REJECT_FIX, reject, user=VERIFIER)
    wait_for(lambda: [r for r in fake_slack.responses if "was already verified" in json.dumps(r)])
    assert not fake_slack.calls_to("views.open")


def test_the_ao_renews_a_risk_acceptance_from_slack_and_the_history_says_so(
    team: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    slack = team
    slack.raw_command(f"log Legacy TLS on the payroll gateway sev:moderate owner:<@{OWNER}|o>", user=OWNER)
    assert "You accepted the risk of *POAM-1* until" in slack.command(
        "accept-risk 1 until:2026-12-31 Compensating WAF rule", user=AO).text
    renewed = slack.command("accept-risk 1 until:2027-03-31 Vendor fix due in Q1", user=AO).text
    assert "You renewed the risk acceptance (until Thu 31 Dec 2026) of *POAM-1* until Wed 31 Mar 2027." in renewed
    history = slack.command("history 1", user=OWNER).text
    assert f"<@{AO}> renewed the risk acceptance" in history and "2027-03-31" in history, history
    (item,) = _export(engine)["items"]
    assert (item["status"], item["risk_accepted_until"]) == ("risk_accepted", "2027-03-31")
    ended = slack.command("accept-risk 1 until:now The gateway is exposed again", user=AO).text
    assert "You ended the risk acceptance of *POAM-1*: it is in progress again, due" in ended, ended
    (item,) = _export(engine)["items"]
    assert (item["status"], item["risk_accepted_until"]) == ("in_progress", None)
    assert "ended the risk acceptance" in slack.command("history 1", user=OWNER).text
