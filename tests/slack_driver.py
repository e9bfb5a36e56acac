"""Sends requests to the bot the way Slack does: form-encoded or JSON bodies,
signed with the signing secret (``v0=HMAC-SHA256("v0:{ts}:{body}")``)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"


@dataclass
class Answer:
    status: int
    body: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def text(self) -> str:
        """All the text of the answer (blocks included), for assertions."""
        if not self.body:
            return ""
        try:
            return json.dumps(self.json())
        except json.JSONDecodeError:
            return self.body


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackDriver:
    def __init__(self, events_url: str, *, team_id: str, response_url: str) -> None:
        self.events_url = events_url
        self.team_id = team_id
        self.response_url = response_url
        self._triggers = itertools.count(1)
        #: The trigger id of the last payload built (each is new, as Slack's are).
        self.last_trigger_id = ""
        #: The id Slack gave each view submitted (by the view object, kept
        #: alive here): one per opened form, the same when it is submitted again.
        self._view_ids: dict[int, tuple[dict[str, Any], str]] = {}

    def _trigger(self) -> str:
        self.last_trigger_id = f"{next(self._triggers)}.{self.team_id}.trigger"
        return self.last_trigger_id

    def post(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Answer:
        timestamp = int(time.time()) if timestamp is None else timestamp
        request = urllib.request.Request(
            self.events_url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": signature or sign(body, timestamp),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode())

    # ------------------------------------------------------------ payloads

    def command_body(self, text: str, *, user: str, channel: str = "C0CHANNEL1") -> str:
        return urlencode(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "team_domain": "test",
                "channel_id": channel,
                "channel_name": "security",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/poam",
                "text": text,
                "api_app_id": "A0APP",
                "response_url": self.response_url,
                "trigger_id": self._trigger(),
            }
        )

    def command(self, text: str, *, user: str, channel: str = "C0CHANNEL1") -> Answer:
        """``/poam <text>`` as typed by ``user`` (Slack escapes &, < and > itself)."""
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return self.post(self.command_body(escaped, user=user, channel=channel))

    def raw_command(self, text: str, *, user: str, channel: str = "C0CHANNEL1") -> Answer:
        """``text`` sent exactly as given (for mentions, which Slack sends as ``<@U…|name>``)."""
        return self.post(self.command_body(text, user=user, channel=channel))

    def interactive(self, payload: dict[str, Any]) -> Answer:
        return self.post(urlencode({"payload": json.dumps(payload)}))

    def click(self, action_id: str, value: str, **where: Any) -> Answer:
        """A click on a button of ours; ``where`` as :meth:`click_body` takes it."""
        return self.post(self.click_body(action_id, value, **where))

    def click_body(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str = "C0CHANNEL1",
        view: dict[str, Any] | None = None,
        team_id: str | None = None,
    ) -> str:
        """The form-encoded body of a click on a button of ours (``block_actions``)."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": team_id or self.team_id, "domain": "test"},
            "user": {"id": user, "team_id": team_id or self.team_id},
            "api_app_id": "A0APP",
            "trigger_id": self._trigger(),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": "1"}],
        }
        if view is None:
            payload["container"] = {"type": "message", "is_ephemeral": True, "channel_id": channel}
            payload["channel"] = {"id": channel}
            payload["response_url"] = self.response_url
        else:
            payload["container"] = {"type": "view", "view_id": "V1"}
            payload["view"] = view
        return urlencode({"payload": json.dumps(payload)})

    def _view_id(self, view: dict[str, Any]) -> str:
        """The view's own id, or the one Slack gave this opened form (``V1``, ``V2``…)."""
        if view.get("id"):
            return str(view["id"])
        kept = self._view_ids.setdefault(id(view), (view, f"V{len(self._view_ids) + 1}"))
        return kept[1]

    def submit(self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str) -> Answer:
        """Submit a view our code built, with ``values`` as ``{block_id: element_state}``."""
        return self.post(self.submit_body(view, values, user=user))

    def submit_body(self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str) -> str:
        """The form-encoded body of :meth:`submit`."""
        state = {"values": {block: {"value": element} for block, element in values.items()}}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "test"},
            "user": {"id": user, "team_id": self.team_id},
            "api_app_id": "A0APP",
            "trigger_id": self._trigger(),
            "view": {**view, "id": self._view_id(view), "state": state, "team_id": self.team_id},
        }
        return urlencode({"payload": json.dumps(payload)})

    def shortcut(self, *, user: str, message: dict[str, Any], channel: str = "C0CHANNEL1") -> Answer:
        return self.interactive(
            {
                "type": "message_action",
                "callback_id": "poam.log.from_message",
                "team": {"id": self.team_id, "domain": "test"},
                "user": {"id": user, "team_id": self.team_id},
                "channel": {"id": channel, "name": "security"},
                "message": message,
                "message_ts": message.get("ts"),
                "trigger_id": self._trigger(),
                "response_url": self.response_url,
            }
        )

    def event(self, event: dict[str, Any], *, event_time: int | None = None) -> Answer:
        """An Events API callback; ``event_time`` (Unix seconds) defaults to now."""
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "api_app_id": "A0APP",
                "type": "event_callback",
                "event_id": f"Ev{time.time_ns()}",
                "event_time": int(time.time()) if event_time is None else event_time,
                "event": event,
            }
        )
        return self.post(body, content_type="application/json")
