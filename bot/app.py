"""Wiring: the Bolt app with its listeners, a Web API client and the services.

Nothing here runs at import time; ``build_app`` is called by ``poam-bot
serve``, by ``bot.web`` as a gunicorn worker starts, and by the tests.
"""

from __future__ import annotations

import logging
from http.client import HTTPException
from typing import Any

from slack_bolt import App
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
from sqlalchemy import Engine

from bot import commands, slack_http
from bot.commands.context import Services, listener_turns
from bot.commands.turns import ListenerTurns
from bot.commands.users import UserDirectory
from bot.config import Settings, require_slack
from bot.poam.clock import Clock, SystemClock
from bot.rate_limits import ShortRateLimitRetryHandler
from bot.slack_http import TOKEN_REFUSALS, PooledWebClient, SlackConnections
from bot.stall_watch import StallWatch
from bot.store.engine import make_engine
from bot.tls import tls_for

log = logging.getLogger(__name__)
WEB_API_TIMEOUT_SECONDS = 10


class _OurClientsToken(logging.Filter):
    """Drops Bolt's "As you gave `client` as well, `token` will be unused":
    Bolt reads ``SLACK_BOT_TOKEN`` itself and warns whenever it is set and a
    client is given, and ours is made from that same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_OUR_CLIENTS_TOKEN = _OurClientsToken()


def web_client(settings: Settings, *, connections: SlackConnections | None = None) -> WebClient:
    """A Web API client for ``SLACK_API_URL`` that retries 429s (after a short
    Retry-After: ``bot.rate_limits``), 5xx answers and dropped connections a
    couple of times, on the process's one
    TLS context (``bot.tls``), over ``connections`` kept open (``bot.slack_http``;
    its own when none are given)."""
    assert settings.slack_bot_token is not None
    return PooledWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=WEB_API_TIMEOUT_SECONDS,
        ssl=tls_for(settings.slack_api_url),
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            ShortRateLimitRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
        connections=connections or SlackConnections(),
    )


class TokenRefused(Exception):
    """Slack refuses the bot token: nothing the bot does can work."""


def check_token(settings: Settings) -> None:
    """Ask Slack (``auth.test``, with the bot's retries) whether the bot token
    works, before a server starts: :class:`TokenRefused` when Slack refuses
    it; a Slack that fails to answer is logged and let be (the server starts;
    ``bot.web.from_settings``). On connections of its own, closed after: a kept one
    would be shared with the processes forked after."""
    connections = SlackConnections()
    try:
        web_client(settings, connections=connections).auth_test()
    except SlackApiError as error:
        code = error.response.get("error")
        if code in TOKEN_REFUSALS:
            raise TokenRefused(f"Slack refuses the bot token (SLACK_BOT_TOKEN): {code}") from None
        log.warning("could not check the bot token with Slack (%s); starting anyway", code)
    except (SlackClientError, OSError, HTTPException) as error:
        log.warning("could not reach Slack to check the bot token (%s); starting anyway", error)
    finally:
        connections.close()


def build_app(
    settings: Settings,
    client: WebClient | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    turns: ListenerTurns | None = None,
    verify_token: bool = True,
) -> App:
    """The Bolt app. ``verify_token``: constructing it calls ``auth.test`` once
    (Bolt checks the token and learns the bot's ids; any failure raises);
    False, Bolt asks at the first request from Slack (its
    ``SingleTeamAuthorization``): for an HTTP worker built while Slack fails
    to answer (``bot.web.from_settings``). ``turns``: its listeners' turns,
    given when the caller watches them too (:func:`build_watched_app`)."""
    require_slack(settings)
    assert settings.slack_signing_secret is not None
    clock = clock or SystemClock()
    services = Services(
        engine=engine or make_engine(settings.database_url),
        settings=settings,
        clock=clock,
        users=UserDirectory(default_tz=settings.timezone, clock=clock),
        turns=listener_turns() if turns is None else turns,
    )
    logging.getLogger("slack_bolt.App").addFilter(_OUR_CLIENTS_TOKEN)  # added once, however many apps
    app = App(
        name="poam-bot",
        client=client or web_client(settings, connections=services.slack_connections),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        listener_executor=services.turns.executor,
        token_verification_enabled=verify_token,
    )
    slack_http.register(app, services.slack_connections)
    commands.register(app, services)

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error, exc_info=error)

    return app


def build_watched_app(
    settings: Settings, *, engine: Engine | None = None, verify_token: bool = True
) -> tuple[App, ListenerTurns]:
    """The app as a server runs it, and its listeners' turns (for a health
    check), with a stall watch on them (``bot.stall_watch``), started once the
    app is built (a failed build may be tried again). ``verify_token``: as
    :func:`build_app`'s."""
    turns = listener_turns()
    app = build_app(settings, engine=engine, turns=turns, verify_token=verify_token)
    StallWatch(turns).start()
    return app, turns
