"""/poam export and /poam import over signed HTTP against the fake Slack."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from http.client import HTTPMessage
from pathlib import Path

import openpyxl
from sqlalchemy import Engine
from sqlmodel import select

from bot.commands.context import HEAVY_WORK_AT_ONCE
from bot.commands.ids import BlockId
from bot.commands.interchange_handlers import SlackRedirects
from bot.store.engine import unit_of_work
from bot.store.models import Item
from tests.e2e.conftest import ADMIN, wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver, sign

ALICE = "U00000ALICE"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"



def test_export_xlsx_uploads_one_file_to_the_requesters_dm(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    slack.command("log Weak ciphers on the VPN sev:high", user=ALICE)
    answer = slack.command("export xlsx", user=ALICE)
    assert "Your XLSX export of the Default system is on its way to your DM." in answer.text  # one system's
    complete = wait_for(lambda: fake_slack.calls_to("files.completeUploadExternal"))
    assert len(complete) == 1
    assert complete[0].params["channel_id"] == "D00000ALICE"  # the DM conversations.open gave
    assert fake_slack.calls_to("conversations.open")[0].params["users"] == ALICE
    (data,) = fake_slack.uploads.values()
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book["Open POA&M Items"]["C8"].value == "Weak ciphers on the VPN"


def test_exports_take_turns_so_few_files_sit_in_memory_at_once(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    """More exports asked for at once than may run: the first ones wait out a
    rate limit (Retry-After 3 s) while holding their turn, and the last does
    not start until one of them is through; in the end every file arrives."""
    slack.command("log Weak ciphers on the VPN sev:high", user=ALICE)
    asked = HEAVY_WORK_AT_ONCE + 1
    fake_slack.fail("conversations.open", times=HEAVY_WORK_AT_ONCE, status=429, retry_after=3)
    for _ in range(asked):
        assert "on its way to your DM" in slack.command("export csv", user=ALICE).text
    wait_for(lambda: len(fake_slack.calls_to("conversations.open")) >= HEAVY_WORK_AT_ONCE)
    time.sleep(0.5)  # well before the first Retry-After is over
    assert len(fake_slack.calls_to("conversations.open")) == HEAVY_WORK_AT_ONCE
    wait_for(lambda: len(fake_slack.calls_to("files.completeUploadExternal")) == asked, timeout=20)


def test_export_with_a_bad_format_is_refused(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    answer = slack.command("export pdf", user=ALICE)
    assert "`pdf` is not an export format" in answer.text
    assert not fake_slack.calls_to("files.getUploadURLExternal")


def test_export_of_a_system_that_does_not_exist_is_refused_at_once(
    slack: SlackDriver, fake_slack: FakeSlack
) -> None:
    """Refused only in a later message, after "on its way", naming the workspace's id."""
    answer = slack.command("export csv system:Nope", user=ALICE)
    assert "There is no system called `Nope`; `/poam systems` lists them." in answer.text
    assert "on its way" not in answer.text and "T0" not in answer.text
    time.sleep(0.3)
    assert not fake_slack.calls_to("conversations.open")


def test_import_is_for_admins_only(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    answer = slack.command("import", user=ALICE)
    assert "Only a POA&amp;M admin can import findings." in answer.text
    assert not fake_slack.calls_to("views.open")


def test_admin_imports_a_scan_after_checking_it(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    assert slack.command("import", user=ADMIN).status == 200
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    url = fake_slack.host_file("weekly.nessus", (SAMPLES / "weekly.nessus").read_bytes())
    upload = {"type": "file_input", "files": [{"id": "F1", "name": "weekly.nessus", "url_private_download": url}]}
    checked = slack.submit(form, {BlockId.FILE: upload}, user=ADMIN)
    assert checked.json()["response_action"] == "update"
    summary = wait_for(lambda: fake_slack.calls_to("views.update"))[0].view
    assert "would bring: 5 new, 0 updated, 0 unchanged, 3 skipped" in json.dumps(summary)
    with unit_of_work(engine) as session:
        assert session.exec(select(Item)).all() == []  # a check imports nothing
    fake_slack.clear()
    done = slack.submit(summary, {}, user=ADMIN)
    assert done.json()["response_action"] == "update"
    result = wait_for(lambda: fake_slack.calls_to("views.update"))[0].view
    assert "Imported *weekly.nessus*: 5 new" in json.dumps(result)
    with unit_of_work(engine) as session:
        assert len(session.exec(select(Item)).all()) == 5


def test_a_copy_of_a_confirmed_import_is_refused_before_it_downloads_the_file(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """A captured Import click sent again within Slack's five minutes: refused
    (its signature was recorded) before it fetches and parses the file again."""
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    url = fake_slack.host_file("weekly.nessus", (SAMPLES / "weekly.nessus").read_bytes())
    upload = {"type": "file_input", "files": [{"id": "F1", "name": "weekly.nessus", "url_private_download": url}]}
    slack.submit(form, {BlockId.FILE: upload}, user=ADMIN)
    summary = wait_for(lambda: fake_slack.calls_to("views.update"))[0].view
    now = int(time.time())
    confirm = slack.submit_body(summary, {}, user=ADMIN)
    fake_slack.clear()
    assert slack.post(confirm, timestamp=now, signature=sign(confirm, now)).status == 200
    assert "Imported *weekly.nessus*: 5 new" in json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)
    assert fake_slack.downloads == ["weekly.nessus"]
    assert slack.post(confirm, timestamp=now, signature=sign(confirm, now)).status == 200
    again = json.dumps(wait_for(lambda: fake_slack.calls_to("views.update")[1:])[0].view)
    assert "already handled, so nothing was changed" in again
    assert fake_slack.downloads == ["weekly.nessus"]  # not fetched again
    with unit_of_work(engine) as session:
        assert len(session.exec(select(Item)).all()) == 5


def test_a_broken_file_imports_nothing_and_says_where(slack: SlackDriver, fake_slack: FakeSlack, engine: Engine) -> None:
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    url = fake_slack.host_file("broken.sarif", b'{"version": "2.1.0", "runs": [{"tool": {}}]}')
    slack.submit(form, {BlockId.FILE: {"type": "file_input", "files": [{"id": "F2", "name": "broken.sarif",
                                                                         "url_private_download": url}]}}, user=ADMIN)
    result = json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)
    assert "cannot be imported" in result and "runs[0]" in result
    with unit_of_work(engine) as session:
        assert session.exec(select(Item)).all() == []


def test_a_file_not_from_slack_is_never_fetched_with_the_token(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    evil = {"type": "file_input", "files": [{"id": "F3", "name": "x.csv", "url_private_download": "http://127.0.0.2:9/steal"}]}
    slack.submit(form, {BlockId.FILE: evil}, user=ADMIN)
    result = json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)
    assert "does not come from Slack" in result


def _checked_upload(slack: SlackDriver, fake_slack: FakeSlack, url: str) -> str:
    """The import form after checking the Nessus sample uploaded at ``url``."""
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    upload = {"type": "file_input", "files": [{"id": "F1", "name": "weekly.nessus", "url_private_download": url}]}
    slack.submit(form, {BlockId.FILE: upload}, user=ADMIN)
    return json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)


def test_a_file_slack_redirects_within_slack_is_fetched(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    """Enterprise Grid answers a file's URL with a redirect to another of
    Slack's hosts: every import failed with "could not download it"."""
    there = fake_slack.host_file("weekly.nessus", (SAMPLES / "weekly.nessus").read_bytes())
    result = _checked_upload(slack, fake_slack, fake_slack.redirect_file("moved.nessus", there))
    assert "would bring: 5 new, 0 updated, 0 unchanged, 3 skipped" in result, result
    assert fake_slack.downloads == ["weekly.nessus"]


def test_a_redirect_out_of_slack_is_not_followed(slack: SlackDriver, fake_slack: FakeSlack) -> None:
    """Followed, it would carry the bot token to the host it names."""
    there = fake_slack.host_file("weekly.nessus", (SAMPLES / "weekly.nessus").read_bytes())
    elsewhere = there.replace("127.0.0.1", "localhost")  # the same server, but not the Slack host the bot knows
    result = _checked_upload(slack, fake_slack, fake_slack.redirect_file("moved.nessus", elsewhere))
    assert "I could not download it from Slack." in result, result
    assert fake_slack.downloads == []


def test_an_import_confirmed_from_a_form_out_of_date_says_so_on_the_form(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The checked form has no input block: an error keyed to one showed
    only Slack's "trouble connecting"."""
    there = fake_slack.host_file("weekly.nessus", (SAMPLES / "weekly.nessus").read_bytes())
    _checked_upload(slack, fake_slack, there)
    checked = fake_slack.calls_to("views.update")[0].view
    answer = slack.submit({**checked, "private_metadata": '{"name": 1}'}, {}, user=ADMIN).json()
    assert answer["response_action"] == "update", answer
    assert "out of date" in json.dumps(answer["view"])
    with unit_of_work(engine) as session:
        assert session.exec(select(Item)).all() == []


def test_slacks_cdn_is_followed_without_the_token() -> None:
    redirects = SlackRedirects(api_url="https://slack.com/api/")
    asked = urllib.request.Request("https://files.slack.com/files-pri/T1-F1/x.csv",
                                   headers={"Authorization": "Bearer xoxb-secret"})

    def followed(to: str) -> urllib.request.Request | None:
        return redirects.redirect_request(asked, io.BytesIO(), 302, "Found", HTTPMessage(), to)

    within = followed("https://files-origin.slack.com/files-pri/T1-F1/x.csv")
    assert within is not None and within.get_header("Authorization") == "Bearer xoxb-secret"
    cdn = followed("https://a.slack-edge.com/signed/x.csv?s=1")
    assert cdn is not None and not cdn.has_header("Authorization")
    assert followed("https://attacker.example/x.csv") is None
    assert followed("http://a.slack-edge.com/x.csv") is None  # not over https


def test_an_import_form_submitted_by_someone_not_an_admin_fetches_nothing(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The admin check came after the download: the file was fetched with the
    bot token and its parse errors quoted it back to whoever submitted the
    form (an admin whose rights were taken back while it was open)."""
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    url = fake_slack.host_file("secret.csv", b"TOP SECRET,password=hunter2\n")
    upload = {"type": "file_input", "files": [{"id": "F1", "name": "secret.csv", "url_private_download": url}]}
    slack.submit(form, {BlockId.FILE: upload}, user=ALICE)
    shown = json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)
    assert "cannot be imported: Only a POA&amp;M admin can import findings." in shown, shown
    assert "hunter2" not in shown and fake_slack.downloads == []
