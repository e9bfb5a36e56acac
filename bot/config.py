"""Configuration from the environment and a ``.env`` file.

Every setting is an environment variable; its attribute on :class:`Settings`
is the variable's name in lower case (``DATABASE_URL`` -> ``database_url``).
Names are case-insensitive, the environment wins over ``.env``, unknown
variables are ignored and an empty value counts as unset (so a blank line in
a ``.env`` template falls back to the default).

A bad value stops start-up through :func:`load_settings` with a
:class:`ConfigError` whose text is one line naming the variable. Slack
credentials stay optional here so that admin commands (``migrate``,
``export`` …) run without them; :func:`require_slack` checks them before the
bot talks to Slack.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.gunicorn_conf import MAX_WORKERS
from bot.poam.actor import Rules
from bot.poam.deadlines import DeadlinePolicy, parse_policy

_DATABASE_HINT = "use sqlite:///path.db or postgresql://user@host/db"
_USER_ID = re.compile(r"[UW][A-Z0-9]+")
_ID_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}")


class ConfigError(Exception):
    """A missing or malformed setting; ``str()`` is one line naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        # Collapse line breaks defensively: start-up prints this as one line.
        problem = " ".join(problem.split())
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def _show(value: str) -> str:
    """Quote a (non-secret) value for an error message, escaping line breaks."""
    return json.dumps(value, ensure_ascii=False)


def _check_token(token: SecretStr | None, prefix: str, kind: str) -> SecretStr | None:
    """Check a Slack token's prefix without ever echoing the token."""
    if token is None:
        return None
    value = token.get_secret_value()
    if not value.startswith(prefix) or any(c.isspace() for c in value):
        raise ValueError(f"must be the {kind}, which starts with {prefix} and has no spaces")
    return token


class Settings(BaseSettings):
    """All settings of the bot; see the module docstring for naming rules."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///poam.db"
    poam_admins: Annotated[frozenset[str], NoDecode] = frozenset()
    poam_id_prefix: str = "POAM"
    poam_timezone: str = "UTC"
    poam_deadlines: str = ""
    poam_csp_name: str = Field(default="", max_length=200)
    port: int = Field(default=3000, ge=1, le=65535)
    poam_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    poam_pin_workers: bool = False
    #: gunicorn's worker processes (its own name for it); gunicorn reads it
    #: when imported, with a traceback for a value that is not a number (the
    #: Procfile's gunicorn checks the bounds: ``bot.gunicorn_conf.on_starting``).
    web_concurrency: int = Field(default=1, ge=1, le=MAX_WORKERS)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, token: SecretStr | None) -> SecretStr | None:
        return _check_token(token, "xoxb-", "bot token")

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, token: SecretStr | None) -> SecretStr | None:
        return _check_token(token, "xapp-", "app-level token")

    @field_validator("slack_signing_secret")
    @classmethod
    def _signing_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is None:
            return None
        value = secret.get_secret_value()
        if not value or any(c.isspace() for c in value):
            raise ValueError("must be the app's signing secret, non-empty and without spaces")
        return secret

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{_show(url)} is not an http(s) URL; use e.g. https://slack.com/api/"
            )
        # slack_sdk joins method names onto the base URL, so it must end with "/".
        return url if url.endswith("/") else url + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, raw: str) -> str:
        try:
            url = make_url(raw)
        except ArgumentError:
            # An unparsable value may still hold a password; echo it only without "@".
            shown = _show(raw) if "@" not in raw else "the value"
            raise ValueError(f"{shown} is not a database URL; {_DATABASE_HINT}") from None
        backend, _, driver = url.drivername.partition("+")
        if backend == "sqlite" and driver in ("", "pysqlite"):
            return raw
        if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
            # "postgres://" (Heroku style) is not a SQLAlchemy name; pin psycopg 3.
            return url.set(drivername="postgresql+psycopg").render_as_string(
                hide_password=False
            )
        raise ValueError(
            f"{url.drivername}:// is not supported (only SQLite and PostgreSQL with psycopg 3); "
            f"{_DATABASE_HINT}"
        )

    @field_validator("poam_admins", mode="before")
    @classmethod
    def _admins(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        ids = [user_id for user_id in re.split(r"[\s,]+", value) if user_id]
        for user_id in ids:
            if not _USER_ID.fullmatch(user_id):
                raise ValueError(
                    f"{_show(user_id)} is not a Slack user id (like U012AB3CD); "
                    "separate ids with commas or spaces"
                )
        return frozenset(ids)

    @field_validator("poam_id_prefix")
    @classmethod
    def _id_prefix(cls, prefix: str) -> str:
        if not _ID_PREFIX.fullmatch(prefix):
            raise ValueError(
                f"{_show(prefix)} must be 1 to 16 letters or digits, starting with a letter"
            )
        return prefix.upper()

    @field_validator("poam_timezone")
    @classmethod
    def _timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{_show(name)} is not an IANA time zone; use e.g. UTC or Europe/Paris"
            ) from None
        return name

    @field_validator("poam_deadlines")
    @classmethod
    def _deadlines(cls, text: str) -> str:
        parse_policy(text)  # its ValueError names what is wrong
        return text

    @field_validator("poam_log_level", mode="before")
    @classmethod
    def _log_level(cls, level: object) -> object:
        return level.upper() if isinstance(level, str) else level

    @property
    def timezone(self) -> ZoneInfo:
        """The workspace's default time zone (``POAM_TIMEZONE``)."""
        return ZoneInfo(self.poam_timezone)

    @property
    def deadline_policy(self) -> DeadlinePolicy:
        """The remediation deadline policy parsed from ``POAM_DEADLINES``."""
        return parse_policy(self.poam_deadlines)

    @property
    def rules(self) -> Rules:
        """The conventions every domain operation follows (id prefix, deadlines, the exports' time zone)."""
        return Rules(id_prefix=self.poam_id_prefix, deadlines=self.deadline_policy, timezone=self.timezone)


def load_settings(env_file: str | None = ".env") -> Settings:
    """Read the settings; ``env_file=None`` reads the environment only.

    Raises ConfigError for the first bad variable. The message is our
    validator's text (which echoes only non-secret values) or pydantic's
    one-line summary (which never holds the input), so secrets stay out of logs.
    """
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except UnicodeDecodeError:
        raise ConfigError(str(env_file), "is not UTF-8 text; save it as UTF-8") from None
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        variable = str(error["loc"][0]).upper() if error["loc"] else "configuration"
        if error["type"] == "value_error":
            problem = str(error["ctx"]["error"])
        else:
            problem = error["msg"][:1].lower() + error["msg"][1:]
        raise ConfigError(variable, problem) from None


def require_slack(settings: Settings) -> None:
    """Fail with ConfigError unless the credentials every Slack mode needs are set.

    ``SLACK_APP_TOKEN`` is not required: without it the bot serves HTTP.
    """
    if settings.slack_bot_token is None:
        raise ConfigError(
            "SLACK_BOT_TOKEN",
            "not set; copy the Bot User OAuth Token (xoxb-…) from the app's page",
        )
    if settings.slack_signing_secret is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET",
            "not set; copy the Signing Secret from the app's Basic Information page",
        )


def configure_logging(settings: Settings) -> None:
    """Log at ``POAM_LOG_LEVEL`` to stderr (``poam-bot``, and each worker of a
    gunicorn the Procfile starts, where nothing else would: it logged nothing
    of the bot's but warnings, without their level or logger)."""
    logging.basicConfig(level=settings.poam_log_level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(settings.poam_log_level)
    if settings.poam_log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
