"""/poam import's check step over signed HTTP: it writes nothing and says what the import then does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import Engine

from bot.commands.ids import BlockId
from bot.poam.clock import FixedClock
from bot.store.models import AuditEvent
from tests.db import snapshot, statements
from tests.e2e.conftest import ADMIN, wait_for
from tests.fake_slack import FakeSlack
from tests.slack_driver import SlackDriver

NESSUS = (Path(__file__).resolve().parent.parent / "samples" / "weekly.nessus").read_bytes()



def _check(slack: SlackDriver, fake_slack: FakeSlack) -> dict[str, Any]:
    """Open the form, upload the Nessus sample; the form after the check."""
    fake_slack.clear()
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    url = fake_slack.host_file("weekly.nessus", NESSUS)
    upload = {"type": "file_input", "files": [{"id": "F1", "name": "weekly.nessus", "url_private_download": url}]}
    slack.submit(form, {BlockId.FILE: upload}, user=ADMIN)
    return wait_for(lambda: fake_slack.calls_to("views.update"))[0].view


def _confirm(slack: SlackDriver, fake_slack: FakeSlack, checked: dict[str, Any]) -> str:
    fake_slack.clear()
    slack.submit(checked, {}, user=ADMIN)
    result = json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)
    found = re.search(r"Imported \*weekly.nessus\*: ([^.]*)\.", result)
    assert found, result
    return found.group(1)


def test_a_check_of_a_rescan_writes_nothing_and_matches_the_import(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine, clock: FixedClock
) -> None:
    assert _confirm(slack, fake_slack, _check(slack, fake_slack)) == "5 new, 0 updated, 0 unchanged, 3 skipped"
    clock.advance(days=7)
    before = snapshot(engine)
    with statements(engine) as seen:
        checked = _check(slack, fake_slack)
    writes = [statement for statement, _ in seen if statement.split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert (snapshot(engine), writes) == (before, [])  # not even written and rolled back
    said = re.search(r"would bring: ([^.]*)\.", json.dumps(checked))
    assert said and said.group(1) == "0 new, 0 updated, 5 unchanged, 3 skipped"  # the same file: nothing new
    assert _confirm(slack, fake_slack, checked) == said.group(1)


def _direct_message(fake_slack: FakeSlack) -> str:
    """The one direct message to the admin, as text and blocks."""
    sent = wait_for(lambda: [call for call in fake_slack.calls_to("chat.postMessage") if call.params["channel"] == ADMIN])
    assert len(sent) == 1, sent
    return json.dumps(sent[0].params)


def test_a_check_the_form_cannot_show_comes_by_direct_message(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The form would stay on "Checking the file…" (closed, or Slack failing)."""
    fake_slack.fail("views.update", error="not_found")
    _check(slack, fake_slack)
    said = _direct_message(fake_slack)
    assert "*weekly.nessus* would bring: 5 new, 0 updated, 0 unchanged, 3 skipped." in said
    assert "nothing was imported" in said and "Nothing is imported until you press Import" not in said
    assert snapshot(engine)["items"] == []


def test_an_import_the_form_cannot_show_comes_by_direct_message(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The import is made; its outcome must reach the admin some way."""
    checked = _check(slack, fake_slack)
    fake_slack.clear()
    fake_slack.fail("views.update", error="internal_error")
    slack.submit(checked, {}, user=ADMIN)
    said = _direct_message(fake_slack)
    assert "Imported *weekly.nessus*: 5 new, 0 updated, 0 unchanged, 3 skipped." in said and "New: " in said
    assert "nothing was imported" not in said


def test_a_file_whose_name_the_form_cannot_keep_is_refused_on_the_form(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """The form keeps the file's name and address for its confirmation, in at
    most 2,000 characters; a long non-ASCII name took twice that (escaped in
    JSON, and again in the address): the form stayed on "Checking the file…"."""
    name = "脆弱性スキャン結果" * 15 + ".nessus"
    fake_slack.clear()
    slack.command("import", user=ADMIN)
    form = wait_for(lambda: fake_slack.calls_to("views.open"))[0].view
    url = fake_slack.host_file(quote(name), NESSUS)
    upload = {"type": "file_input", "files": [{"id": "F1", "name": name, "url_private_download": url}]}
    answer = slack.submit(form, {BlockId.FILE: upload}, user=ADMIN).json()
    assert answer == {"response_action": "errors", "errors": {
        BlockId.FILE: "file: has too long a name to keep on the form; rename it shorter and upload it again"}}, answer
    assert fake_slack.downloads == [] and snapshot(engine)["items"] == []


def test_import_pressed_again_imports_nothing_more_and_says_so(
    slack: SlackDriver, fake_slack: FakeSlack, engine: Engine
) -> None:
    """Pressed again (Slack said it could not connect while the first press
    was importing), the file was imported again: nothing new, but a second
    import in the trail, and a form saying "0 new" over what was imported."""
    checked = _check(slack, fake_slack)
    assert _confirm(slack, fake_slack, checked) == "5 new, 0 updated, 0 unchanged, 3 skipped"
    fake_slack.clear()
    slack.submit(checked, {}, user=ADMIN)  # the same form
    again = json.dumps(wait_for(lambda: fake_slack.calls_to("views.update"))[0].view)
    assert "This form was saved already, so nothing was imported again." in again, again
    assert fake_slack.downloads == []  # refused before the file is fetched again
    with engine.connect() as connection:
        imports = connection.execute(sa.select(sa.func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.action == "import.completed")).scalar_one()
    assert imports == 1
