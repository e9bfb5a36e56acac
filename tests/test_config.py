"""Tests for bot.config: defaults, each variable's forms, .env handling, errors."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, load_settings, require_slack
from bot.poam.deadlines import DOD_CAT, FEDRAMP
from bot.poam.severity import Severity

VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "DATABASE_URL",
    "POAM_ADMINS",
    "POAM_ID_PREFIX",
    "POAM_TIMEZONE",
    "POAM_DEADLINES",
    "PORT",
    "POAM_LOG_LEVEL",
    "POAM_PIN_WORKERS",
)

BOT_TOKEN = "xoxb-1111-2222-s3cr3tB0tT0ken"
APP_TOKEN = "xapp-1-A111-2222-s3cr3tAppT0ken"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in an empty directory with none of our variables set, in any case."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper() in VARIABLES:
            monkeypatch.delenv(name)
    return tmp_path


def config_error(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> ConfigError:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value


def test_defaults() -> None:
    settings = load_settings()
    assert settings.slack_bot_token is None
    assert settings.slack_signing_secret is None
    assert settings.slack_app_token is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url == "sqlite:///poam.db"
    assert settings.poam_admins == frozenset()
    assert settings.poam_id_prefix == "POAM"
    assert settings.poam_timezone == "UTC"
    assert settings.timezone == ZoneInfo("UTC")
    assert settings.poam_deadlines == ""
    assert settings.deadline_policy is FEDRAMP
    assert settings.port == 3000
    assert settings.poam_log_level == "INFO"
    assert settings.poam_pin_workers is False


def test_env_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    (isolated / ".env").write_text(
        f"SLACK_BOT_TOKEN={BOT_TOKEN}\nPORT=8080\nPOAM_ID_PREFIX=sec\nSOMETHING_ELSE=1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PORT", "9090")
    settings = load_settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == BOT_TOKEN
    assert settings.poam_id_prefix == "SEC"
    assert settings.port == 9090


def test_env_file_argument(isolated: Path) -> None:
    (isolated / ".env").write_text("PORT=1111\n", encoding="utf-8")
    other = isolated / "other.env"
    other.write_text("PORT=2222\n", encoding="utf-8")
    assert load_settings(str(other)).port == 2222
    assert load_settings(None).port == 3000


def test_names_are_case_insensitive_and_unknown_names_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("poam_id_prefix", "Vuln")
    monkeypatch.setenv("POAM_NOT_A_SETTING", "whatever")
    assert load_settings().poam_id_prefix == "VULN"


def test_empty_value_means_default(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    (isolated / ".env").write_text("SLACK_BOT_TOKEN=\nDATABASE_URL=\n", encoding="utf-8")
    monkeypatch.setenv("PORT", "")
    settings = load_settings()
    assert settings.slack_bot_token is None
    assert settings.database_url == "sqlite:///poam.db"
    assert settings.port == 3000


def test_slack_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    settings = load_settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_signing_secret is not None
    assert settings.slack_app_token is not None
    assert settings.slack_bot_token.get_secret_value() == BOT_TOKEN
    assert settings.slack_signing_secret.get_secret_value() == SIGNING_SECRET
    assert settings.slack_app_token.get_secret_value() == APP_TOKEN
    assert BOT_TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SLACK_BOT_TOKEN", "xoxp-1111-s3cr3tUserT0ken", "xoxb-"),
        ("SLACK_BOT_TOKEN", "xoxb-1111 s3cr3tT0ken", "xoxb-"),
        ("SLACK_APP_TOKEN", "xoxb-1111-s3cr3tT0ken", "xapp-"),
        ("SLACK_SIGNING_SECRET", "s3cr3t with spaces", "signing secret"),
    ],
)
def test_bad_secret_is_named_but_not_echoed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    error = config_error(monkeypatch, name, value)
    text = str(error)
    assert text.startswith(f"{name}: ")
    assert expected in text
    assert "s3cr3t" not in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://slack.com/api/", "https://slack.com/api/"),
        ("https://slack-gov.com/api", "https://slack-gov.com/api/"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/"),
    ],
)
def test_slack_api_url(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("SLACK_API_URL", value)
    assert load_settings().slack_api_url == expected


@pytest.mark.parametrize("value", ["ftp://slack.com/api/", "slack.com/api", "https://"])
def test_bad_slack_api_url(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    error = config_error(monkeypatch, "SLACK_API_URL", value)
    assert str(error).startswith("SLACK_API_URL: ")
    assert "http" in error.problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sqlite:///poam.db", "sqlite:///poam.db"),
        ("sqlite:////var/lib/poam/poam.db", "sqlite:////var/lib/poam/poam.db"),
        ("sqlite+pysqlite:///:memory:", "sqlite+pysqlite:///:memory:"),
        ("postgresql://poam@db.internal/poam", "postgresql+psycopg://poam@db.internal/poam"),
        ("postgres://poam:pw@db:5433/poam", "postgresql+psycopg://poam:pw@db:5433/poam"),
        (
            "postgresql+psycopg://u:p%40ss@h/d?sslmode=require",
            "postgresql+psycopg://u:p%40ss@h/d?sslmode=require",
        ),
    ],
)
def test_database_url(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("DATABASE_URL", value)
    assert load_settings().database_url == expected


def test_database_url_error_text(monkeypatch: pytest.MonkeyPatch) -> None:
    error = config_error(monkeypatch, "DATABASE_URL", "nonsense")
    assert str(error) == (
        'DATABASE_URL: "nonsense" is not a database URL; '
        "use sqlite:///path.db or postgresql://user@host/db"
    )


@pytest.mark.parametrize(
    "value",
    [
        "mysql://root:hunter2@db/poam",
        "postgresql+asyncpg://poam:hunter2@db/poam",
        "postgresql+psycopg2://poam:hunter2@db/poam",
        "sqlite+aiosqlite:///poam.db",
        "user:hunter2@db/poam",
    ],
)
def test_bad_database_url(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    error = config_error(monkeypatch, "DATABASE_URL", value)
    text = str(error)
    assert text.startswith("DATABASE_URL: ")
    assert "postgresql://" in text
    assert "hunter2" not in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("U012AB3CD", {"U012AB3CD"}),
        ("U012AB3CD,W0ABCDEF1", {"U012AB3CD", "W0ABCDEF1"}),
        (" U012AB3CD ,  W0ABCDEF1 U0ZZ ", {"U012AB3CD", "W0ABCDEF1", "U0ZZ"}),
        ('["U012AB3CD"]', None),
        (" , ", set()),
    ],
)
def test_admins(monkeypatch: pytest.MonkeyPatch, value: str, expected: set[str] | None) -> None:
    monkeypatch.setenv("POAM_ADMINS", value)
    if expected is None:  # JSON is not decoded: the brackets make a bad id
        with pytest.raises(ConfigError, match="POAM_ADMINS"):
            load_settings()
    else:
        admins = load_settings().poam_admins
        assert isinstance(admins, frozenset)
        assert admins == expected


@pytest.mark.parametrize("bad", ["u012ab3cd", "C012AB3CD", "U", "@alice", "U012-AB"])
def test_bad_admin_is_named(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    error = config_error(monkeypatch, "POAM_ADMINS", f"U012AB3CD,{bad}")
    assert str(error).startswith("POAM_ADMINS: ")
    assert f'"{bad}"' in str(error)


def test_first_bad_admin_in_written_order_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    error = config_error(monkeypatch, "POAM_ADMINS", "U012AB3CD zed abc")
    assert '"zed"' in str(error)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("POAM", "POAM"), ("sec", "SEC"), ("a", "A"), ("Vuln2024", "VULN2024"), ("A" * 16, "A" * 16)],
)
def test_id_prefix(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("POAM_ID_PREFIX", value)
    assert load_settings().poam_id_prefix == expected


@pytest.mark.parametrize("value", ["1POAM", "PO-AM", "A" * 17, "PO AM", "É"])
def test_bad_id_prefix(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    error = config_error(monkeypatch, "POAM_ID_PREFIX", value)
    assert str(error).startswith("POAM_ID_PREFIX: ")


def test_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POAM_TIMEZONE", "America/New_York")
    settings = load_settings()
    assert settings.poam_timezone == "America/New_York"
    assert settings.timezone == ZoneInfo("America/New_York")


@pytest.mark.parametrize("value", ["Mars/Olympus_Mons", "EST5EDT/../../etc", "+02:00"])
def test_bad_timezone(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    error = config_error(monkeypatch, "POAM_TIMEZONE", value)
    assert str(error).startswith("POAM_TIMEZONE: ")
    assert "IANA" in str(error)


def test_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POAM_DEADLINES", "dod-cat")
    assert load_settings().deadline_policy is DOD_CAT
    monkeypatch.setenv("POAM_DEADLINES", "critical=15, high=20")
    policy = load_settings().deadline_policy
    assert policy.days_for(Severity.CRITICAL) == 15
    assert policy.days_for(Severity.HIGH) == 20
    assert policy.days_for(Severity.LOW) == FEDRAMP.days_for(Severity.LOW)


def test_bad_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    error = config_error(monkeypatch, "POAM_DEADLINES", "high=abc")
    assert str(error).startswith("POAM_DEADLINES: ")
    assert "\n" not in str(error)


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("8080", 8080), ("65535", 65535)])
def test_port(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv("PORT", value)
    assert load_settings().port == expected


@pytest.mark.parametrize("value", ["0", "65536", "-1", "http", "80.5"])
def test_bad_port(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    error = config_error(monkeypatch, "PORT", value)
    assert str(error).startswith("PORT: ")
    assert "\n" not in str(error)
    assert "pydantic" not in str(error)


@pytest.mark.parametrize(("value", "expected"), [("DEBUG", "DEBUG"), ("warning", "WARNING")])
def test_log_level(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("POAM_LOG_LEVEL", value)
    assert load_settings().poam_log_level == expected


def test_bad_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    error = config_error(monkeypatch, "POAM_LOG_LEVEL", "verbose")
    assert str(error).startswith("POAM_LOG_LEVEL: ")
    assert "INFO" in str(error)


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("0", False), ("off", False), ("true", True), ("1", True)])
def test_pin_workers(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("POAM_PIN_WORKERS", value)
    assert load_settings().poam_pin_workers is expected


def test_bad_pin_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    error = config_error(monkeypatch, "POAM_PIN_WORKERS", "sometimes")
    assert str(error).startswith("POAM_PIN_WORKERS: ")


def test_error_text_is_one_line_without_pydantic_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("DATABASE_URL", "mysql://db/poam")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value)
    assert len(text.splitlines()) == 1
    assert "validation error" not in text
    assert "errors.pydantic.dev" not in text
    assert caught.value.variable in {"PORT", "DATABASE_URL"}
    assert caught.value.__cause__ is None


def test_require_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the Socket Mode token set: the bot token is reported first.
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    with pytest.raises(ConfigError, match=r"^SLACK_BOT_TOKEN: not set"):
        require_slack(load_settings())
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    with pytest.raises(ConfigError, match=r"^SLACK_SIGNING_SECRET: not set"):
        require_slack(load_settings())
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    require_slack(load_settings())
