"""The Slack surface: ``/poam``, buttons, forms, the App Home and the message shortcut."""

from __future__ import annotations

from slack_bolt import App

from bot.commands import actions, home, slash, submissions, user_events
from bot.commands.context import Services


def register(app: App, services: Services) -> None:
    """Attach every listener to ``app``; the order does not matter."""
    slash.register(app, services)
    actions.register(app, services)
    submissions.register(app, services)
    home.register(app, services)
    user_events.register(app, services)
