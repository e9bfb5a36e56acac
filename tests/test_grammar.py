"""The /poam grammar: tokens, options, quotes, usage generated from the specs."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.grammar import ParseContext, Token, UsageError, parse, tokenize
from bot.commands.specs import SPECS
from bot.poam.actor import Role
from bot.poam.errors import InvalidInput
from bot.poam.item_lists import Scope
from bot.poam.severity import Severity

CONTEXT = ParseContext(today=date(2026, 11, 20), id_prefix="POAM")


def run(text: str):  # type: ignore[no-untyped-def]
    return parse(text, SPECS, CONTEXT)


def test_tokens_split_words_options_and_quotes() -> None:
    assert tokenize('log "two words" sev:high reason:"a b" at:09:00') == [
        Token("log"), Token("two words"), Token("high", "sev"), Token("a b", "reason"), Token("09:00", "at"),
    ]


def test_curly_quotes_from_phones_work_like_straight_ones() -> None:
    assert tokenize("reason:“vendor patch slipped”") == [Token("vendor patch slipped", "reason")]


def test_slack_escaping_is_undone_and_links_are_not_options() -> None:
    tokens = tokenize("a &lt;b&gt; &amp;lt; <https://x.test|x>")
    assert tokens == [Token("a"), Token("&lt;b&gt;"), Token("&amp;lt;"), Token("<https://x.test|x>")]
    assert [token.text for token in tokens] == ["a", "<b>", "&lt;", "x (https://x.test)"]


def test_free_text_stores_slack_markup_as_read_and_mentions_still_name_people() -> None:
    """Slack sends mentions, channels and links as markup (``should_escape``):
    stored so, a title showed ``&lt;#C0123|general&gt;``. Free text and text
    options hold what a reader sees; a person option still gets the user id."""
    markup = "<#C0123|general> <@U0000CAROL|carol> <@U0000DAVE> <!here> <https://ex.com|a link> a &lt;b&gt;"
    read = "#general @carol @U0000DAVE @here a link (https://ex.com) a <b>"
    parsed = run(f'log {markup} desc:"see <https://ex.com|a link> &amp; <#C0123|general>" owner:<@U0BOB1|bob>')
    assert (parsed["title"], parsed["desc"], parsed["owner"]) == (read, "see a link (https://ex.com) & #general", "U0BOB1")
    for text, name in [(f"plan 3 {markup}", "plan"), (f"milestone 3 add {markup} due:+1d", "text"),
                       (f'plan 3 x resources:"{markup}"', "resources"), (f"system add {markup}", "name")]:
        assert run(text)[name] == read, text
    assert run("system set Payroll ao:<@U0BOB1|bob>")["ao"] == "U0BOB1"
    assert run("list owner:<@U0BOB1|bob>")["owner"] == "U0BOB1"


def test_log_with_every_option() -> None:
    parsed = run(
        'log TLS 1.0 on the LB sev:medium control:AC-2,si-2 source:scan asset:web-01,db-02 '
        'cve:CVE-2024-3094 detected:2026-11-02 due:+10d owner:<@U123ABC|jane> desc:"long text" system:Payroll'
    )
    assert parsed.spec.key == "log"
    assert parsed.values == {
        "title": "TLS 1.0 on the LB",
        "sev": Severity.MODERATE,
        "control": ["AC-2", "SI-2"],  # the values the domain stores
        "source": "scan",
        "asset": ["web-01", "db-02"],
        "cve": ["CVE-2024-3094"],
        "detected": date(2026, 11, 2),
        "due": date(2026, 11, 30),
        "owner": "U123ABC",
        "desc": "long text",
        "system": "Payroll",
    }


def test_options_can_come_anywhere_and_aliases_work() -> None:
    parsed = run("log severity:low A title in two parts")
    assert parsed["title"] == "A title in two parts" and parsed["sev"] is Severity.LOW


@pytest.mark.parametrize(
    ("text", "key", "values"),
    [
        ("milestone POAM-3 add Patch it due:friday", "milestone add", {"item": 3, "text": "Patch it", "due": date(2026, 11, 27)}),
        ("milestone 3 done m2", "milestone done", {"item": 3, "milestone": 2}),
        ('milestone 3 move 2 due:"Dec 31" reason:"slip"', "milestone move",
         {"item": 3, "milestone": 2, "due": date(2026, 12, 31), "reason": "slip"}),
        ("list overdue sev:high", "list", {"scope": Scope.OVERDUE, "sev": Severity.HIGH}),
        ("role <@U0BOB1|bob> -ao", "role", {"user": "U0BOB1", "change": (False, Role.AO)}),
        ("system add Payroll HR impact:high", "system add", {"name": "Payroll HR", "impact": "high"}),
        ("", "help", {}),
        ("HELP Milestone", "help", {"topic": "Milestone"}),
    ],
)
def test_subcommands_parse_to_typed_values(text: str, key: str, values: dict[str, object]) -> None:
    parsed = run(text)
    assert parsed.spec.key == key
    assert parsed.values == values


@pytest.mark.parametrize(
    ("text", "problem", "usage"),
    [
        ("frob", "`frob` is not a /poam subcommand.", "/poam help"),
        ("claim", "The id is missing.", "/poam claim <id>"),
        ("claim 3 4", "I don't know what to do with `4`.", "/poam claim <id>"),
        ("show 3 colour:red", "`colour:` is not an option of /poam show", "/poam show <id>"),
        ("milestone 3 add Patch", "`due:` is required.", "/poam milestone <id> add <milestone> due:date"),
        ("milestone 3 frob", "`/poam milestone` needs one of: add, done, move.", "/poam milestone <id> done <M>"),
        ("log x sev:extreme", "`extreme` is not a severity", "/poam log [title]"),
        ("log x due:someday", "`someday` is not a date", "/poam log [title]"),
        ("log x sev:high sev:low", "`sev:` is given twice.", "/poam log [title]"),
        ("log x due:", "`due:` needs a value.", "/poam log [title]"),
        ("assign 3 jane", "`jane` is not a person", "/poam assign <id> <@user>"),
        ("claim POAM-x", "`POAM-x` is not an item id", "/poam claim <id>"),
        ("milestone add 3 Patch due:+3d", "`add` is out of place", "/poam milestone <id> add"),
        ("milestone 3 M1 done", "`done` is out of place", "/poam milestone <id> done"),
        ("milestone 3 adds Patch then done", "`/poam milestone` needs one of: add, done, move.",
         "/poam milestone <id> add"),  # a verb in free text is no verb out of place
        ("milestone 3 done", "Which milestone? Add its number: M1, M2…", "/poam milestone <id> done <M>"),
        ("export", "Add one of: `csv`, `xlsx`, `oscal`, `json`.", "/poam export <csv|xlsx|oscal|json>"),
        ("deviate 3", "Add one of: `fp`, `ra`, `or`.", "/poam deviate <id> <fp|ra|or>"),
        ("log x due:Dec 32", "`Dec` is not a date", "/poam log [title]"),  # joined only where it then is one
    ],
)
def test_malformed_commands_say_what_is_wrong_and_show_usage(text: str, problem: str, usage: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(text)
    assert problem in caught.value.message
    assert any(line.startswith(usage) for line in caught.value.usage), caught.value.usage


@pytest.mark.parametrize(("text", "title", "due"), [
    ("log Patch it due:Dec 31 sev:low", "Patch it", date(2026, 12, 31)),
    ("log Patch it due:31 Dec 2027", "Patch it", date(2027, 12, 31)),
    ("log Patch it due:December 31, 2026 on 5 hosts", "Patch it on 5 hosts", date(2026, 12, 31)),
    ("log Patch it due:Dec 31 2026 5 hosts", "Patch it 5 hosts", date(2026, 12, 31)),  # three words at most
    ("log Patch it due:friday 13 hosts", "Patch it 13 hosts", date(2026, 11, 27)),  # a date alone takes nothing
    ('log Patch it due:"Dec 31"', "Patch it", date(2026, 12, 31)),
])
def test_a_date_with_spaces_needs_no_quotes(text: str, title: str, due: date) -> None:
    """The help and the refusal list ``Dec 31`` as a date: typed as shown,
    ``due:Dec 31`` was refused ("`Dec` is not a date")."""
    parsed = run(text)
    assert (parsed["title"], parsed["due"]) == (title, due)


def test_a_spaced_date_stops_at_the_next_option() -> None:
    with pytest.raises(UsageError, match="`Dec` is not a date"):
        run('milestone 3 move M1 due:Dec reason:"31 days late"')


def test_an_unclosed_quote_is_refused() -> None:
    with pytest.raises(InvalidInput, match="quote is not closed"):
        run('plan 3 "never closed')


def test_usage_lines_are_generated_from_the_specs() -> None:
    usages = {spec.usage for spec in SPECS}
    assert "/poam milestone <id> move <M> due:date reason:\"…\"" in usages
    assert "/poam claim <id>" in usages
    assert all(usage.startswith("/poam ") for usage in usages)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        run(text)
    except InvalidInput:
        pass
