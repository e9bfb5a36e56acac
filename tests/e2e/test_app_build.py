"""Building the Bolt app as a server does: what it logs."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine

from bot.app import build_app
from bot.config import Settings


def test_building_the_app_with_the_token_in_the_environment_warns_of_nothing(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt reads SLACK_BOT_TOKEN itself and warned that it "will be unused"
    beside our client (made from that same token) at every start."""
    assert settings.slack_bot_token is not None
    monkeypatch.setenv("SLACK_BOT_TOKEN", settings.slack_bot_token.get_secret_value())
    with caplog.at_level(logging.WARNING):
        build_app(settings, engine=engine)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
