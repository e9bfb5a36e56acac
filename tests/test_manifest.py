"""``manifest.yml`` declares what the code uses, and no more."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.commands.ids import CallbackId
from bot.commands.slash import COMMAND
from bot.commands.specs import SPECS

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())

#: The bot scope each Web API method the code calls needs (None: no scope needed).
#: A method missing here fails the test, so a new call cannot slip in unreviewed.
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "users_info": "users:read",
    "views_open": None,
    "views_push": None,
    "views_publish": None,
    "views_update": None,
    "files_upload_v2": "files:write",
    "conversations_open": "im:write",
}
#: Scopes the code needs without a Web API method call: downloading an uploaded
#: file's url_private_download with the bot token (``/poam import``).
OTHER_SCOPES = {"files:read"}
EVENT_SCOPES = {"app_home_opened": None, "user_change": "users:read"}


def _sources() -> str:
    return "\n".join(path.read_text() for path in (ROOT / "bot").rglob("*.py"))


def test_every_web_api_method_used_is_known_and_its_scope_declared() -> None:
    used = set(re.findall(r"\.(chat_\w+|users_\w+|views_\w+|conversations_\w+|files_\w+|reactions_\w+)\(", _sources()))
    assert used, "the scan found no Web API calls"
    unknown = used - METHOD_SCOPES.keys()
    assert not unknown, f"add these methods and their scopes to METHOD_SCOPES: {unknown}"
    events = set(re.findall(r'@app\.event\("(\w+)"\)', _sources()))
    needed = {METHOD_SCOPES[m] for m in used} | {EVENT_SCOPES[e] for e in events}
    needed.discard(None)
    needed.add("commands")  # the slash command and the shortcut
    needed |= OTHER_SCOPES
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_events_the_code_listens_to_are_subscribed() -> None:
    events = set(re.findall(r'@app\.event\("(\w+)"\)', _sources()))
    assert events == set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])


def test_the_slash_command_carries_every_subcommand_and_escapes() -> None:
    (command,) = MANIFEST["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["should_escape"] is True
    assert command["url"].endswith("/slack/events")
    # Every subcommand is reached through /poam; its usage is generated from the same specs.
    assert {spec.name for spec in SPECS} >= {"log", "list", "show", "claim", "release", "assign", "plan",
                                             "milestone", "history", "roles", "role", "systems", "system", "help"}


def test_the_message_shortcut_and_app_home_are_declared() -> None:
    (shortcut,) = MANIFEST["features"]["shortcuts"]
    assert shortcut["type"] == "message"
    assert shortcut["callback_id"] == CallbackId.LOG_FROM_MESSAGE
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
