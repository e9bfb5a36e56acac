from __future__ import annotations

from datetime import date

import pytest

from bot.poam.deadlines import (
    DOD_CAT,
    FEDRAMP,
    MAX_DAYS,
    DaysBySeverity,
    DeadlinePolicy,
    parse_policy,
)
from bot.poam.errors import InvalidInput
from bot.poam.severity import Severity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("critical", Severity.CRITICAL),
        ("HIGH", Severity.HIGH),
        ("  Moderate ", Severity.MODERATE),
        ("medium", Severity.MODERATE),
        ("Medium", Severity.MODERATE),
        ("low", Severity.LOW),
    ],
)
def test_severity_parse(text: str, expected: Severity) -> None:
    assert Severity.parse(text) is expected


@pytest.mark.parametrize("text", ["extreme", "hi", "mod", "high!", "cat i", "3"])
def test_severity_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        Severity.parse(text)
    assert error.value.message == (
        f"`{text}` is not a severity; use critical, high, moderate (or medium) or low."
    )


def test_severity_parse_empty() -> None:
    with pytest.raises(InvalidInput, match=r"^A severity is required; use critical, high"):
        Severity.parse("  ")


def test_severity_rank_orders_most_severe_first() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3]
    shuffled = [Severity.LOW, Severity.CRITICAL, Severity.MODERATE, Severity.HIGH]
    assert sorted(shuffled, key=lambda s: s.rank) == [
        Severity.CRITICAL,
        Severity.HIGH,
        Severity.MODERATE,
        Severity.LOW,
    ]


def test_severity_is_a_string() -> None:
    assert Severity.HIGH == "high"
    assert f"{Severity.MODERATE}" == "moderate"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (FEDRAMP, {"critical": 30, "high": 30, "moderate": 90, "low": 180}),
        (DOD_CAT, {"critical": 30, "high": 30, "moderate": 180, "low": 365}),
    ],
)
def test_presets(policy: DeadlinePolicy, expected: dict[str, int]) -> None:
    assert {s.value: policy.days_for(s) for s in Severity} == expected


def test_due_date_counts_from_detection() -> None:
    detected = date(2026, 1, 31)
    assert FEDRAMP.due_date(severity=Severity.CRITICAL, detected_on=detected) == date(2026, 3, 2)
    assert FEDRAMP.due_date(severity=Severity.MODERATE, detected_on=detected) == date(2026, 5, 1)
    assert FEDRAMP.due_date(severity=Severity.LOW, detected_on=detected) == date(2026, 7, 30)
    assert DOD_CAT.due_date(severity=Severity.LOW, detected_on=detected) == date(2027, 1, 31)
    # Leap year: 2028-02-29 exists.
    assert DOD_CAT.due_date(severity=Severity.HIGH, detected_on=date(2028, 2, 1)) == date(
        2028, 3, 2
    )


def test_days_by_severity_requires_every_severity() -> None:
    with pytest.raises(ValueError, match="no days for low"):
        DaysBySeverity("x", {Severity.CRITICAL: 1, Severity.HIGH: 1, Severity.MODERATE: 1})


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "30", MAX_DAYS + 1])
def test_days_by_severity_requires_positive_ints(bad: object) -> None:
    days = {Severity.CRITICAL: 1, Severity.HIGH: 1, Severity.MODERATE: 1, Severity.LOW: bad}
    with pytest.raises(ValueError, match="days for low must be a whole number"):
        DaysBySeverity("x", days)  # type: ignore[arg-type]


def test_days_by_severity_rejects_unknown_keys() -> None:
    days = {s: 1 for s in Severity} | {"extreme": 1}
    with pytest.raises(ValueError, match="unknown severities"):
        DaysBySeverity("x", days)  # type: ignore[arg-type]


def test_days_by_severity_keeps_its_own_frozen_copy() -> None:
    days = {Severity.CRITICAL: 1, Severity.HIGH: 2, Severity.MODERATE: 3, Severity.LOW: 4}
    policy = DaysBySeverity("x", days)
    days[Severity.LOW] = 99
    assert policy.days_for(Severity.LOW) == 4
    with pytest.raises(TypeError):
        policy.days[Severity.LOW] = 5  # type: ignore[index]
    assert hash(policy) == hash(DaysBySeverity("x", dict(policy.days)))


@pytest.mark.parametrize("text", [None, "", "   "])
def test_parse_policy_defaults_to_fedramp(text: str | None) -> None:
    assert parse_policy(text) is FEDRAMP


@pytest.mark.parametrize(
    ("text", "expected"), [("fedramp", FEDRAMP), ("FedRAMP", FEDRAMP), (" dod-cat ", DOD_CAT)]
)
def test_parse_policy_presets(text: str, expected: DeadlinePolicy) -> None:
    assert parse_policy(text) is expected


def test_parse_policy_overrides_fedramp() -> None:
    policy = parse_policy("critical=15, high = 20")
    assert policy.name == "custom"
    assert {s: policy.days_for(s) for s in Severity} == {
        Severity.CRITICAL: 15,
        Severity.HIGH: 20,
        Severity.MODERATE: 90,
        Severity.LOW: 180,
    }
    assert policy.due_date(severity=Severity.CRITICAL, detected_on=date(2026, 1, 1)) == date(
        2026, 1, 16
    )


def test_parse_policy_accepts_severity_synonyms() -> None:
    policy = parse_policy("MEDIUM=60,Low=120")
    assert policy.days_for(Severity.MODERATE) == 60
    assert policy.days_for(Severity.LOW) == 120
    assert policy.days_for(Severity.HIGH) == 30


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("high=abc", '"high=abc": days must be a whole number of days greater than 0'),
        ("high=0", '"high=0": days must be a whole number of days greater than 0'),
        ("high=-3", '"high=-3": days must be a whole number of days greater than 0'),
        ("high=2.5", '"high=2.5": days must be a whole number of days greater than 0'),
        ("high=", '"high=": days must be a whole number of days greater than 0'),
        ("high=99999", f'"high=99999": days must be at most {MAX_DAYS}'),
        (
            "high",
            '"high": expected a preset (fedramp, dod-cat) '
            "or severity=days entries such as critical=15,high=30",
        ),
        (
            "extreme=5",
            '"extreme=5": unknown severity; use critical, high, moderate (or medium) or low',
        ),
        ("=5", '"=5": unknown severity; use critical, high, moderate (or medium) or low'),
        ("high=1,high=2", '"high=2": high is given more than once'),
        ("moderate=5, medium=6", '"medium=6": moderate is given more than once'),
        ("critical=15,", '"critical=15,": an entry between commas is empty'),
    ],
)
def test_parse_policy_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_policy(text)
    assert str(error.value) == message
