"""Socket Mode: the same app answers a slash command that arrives over a WebSocket.

A local WebSocket server plays Slack's Socket Mode endpoint (the fake Web API's
``apps.connections.open`` hands out its address), as slack-bolt's own tests do.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from sqlalchemy import Engine
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from bot.app import build_app
from bot.config import Settings
from bot.poam.actor import Actor
from bot.poam.clock import FixedClock
from bot.poam.item_lists import list_items
from bot.store.engine import unit_of_work
from tests.fake_slack import FakeSlack

ALICE = "U00000ALICE"


@pytest.fixture
def socket_server(fake_slack: FakeSlack) -> Iterator[tuple[queue.Queue[dict[str, object]], queue.Queue[str]]]:
    """Sends each queued envelope to the connected client; collects what it sends back."""
    outgoing: queue.Queue[dict[str, object]] = queue.Queue()
    incoming: queue.Queue[str] = queue.Queue()

    def handler(connection: ServerConnection) -> None:
        connection.send(json.dumps({"type": "hello", "num_connections": 1}))
        while True:
            try:
                envelope = outgoing.get(timeout=0.1)
                connection.send(json.dumps(envelope))
            except queue.Empty:
                pass
            try:
                incoming.put(str(connection.recv(timeout=0.1)))
            except TimeoutError:
                continue
            except ConnectionClosed:
                return

    with serve(handler, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        fake_slack.socket_url = f"ws://127.0.0.1:{port}/link"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield outgoing, incoming
        server.shutdown()


def test_slash_command_over_socket_mode(
    settings: Settings, engine: Engine, clock: FixedClock, fake_slack: FakeSlack,
    socket_server: tuple[queue.Queue[dict[str, object]], queue.Queue[str]],
) -> None:
    outgoing, incoming = socket_server
    app = build_app(settings, engine=engine, clock=clock)
    handler = SocketModeHandler(app, "xapp-1-test", web_client=WebClient(base_url=fake_slack.base_url))
    handler.connect()
    try:
        outgoing.put(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "team_id": fake_slack.team_id,
                    "channel_id": "C0CHANNEL1",
                    "user_id": ALICE,
                    "command": "/poam",
                    "text": "log Socket mode finding sev:low",
                    "response_url": fake_slack.response_url(),
                    "trigger_id": "1.2.3",
                },
            }
        )
        ack = None
        while ack is None:
            message = json.loads(incoming.get(timeout=10))
            if message.get("envelope_id") == "env-1":
                ack = message
        assert "Logged *POAM-1*" in json.dumps(ack["payload"])
    finally:
        handler.close()
    assert fake_slack.calls_to("apps.connections.open")
    with unit_of_work(engine) as session:
        actor = Actor(team_id=fake_slack.team_id, user_id=ALICE, roles=frozenset(), tz=ZoneInfo("UTC"), clock=clock)
        page = list_items(session, actor)
    assert [item.title for item in page.items] == ["Socket mode finding"]
