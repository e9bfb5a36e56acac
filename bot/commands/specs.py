"""Every ``/poam`` subcommand, declared once (see ``grammar.py``).

The order here is the order of ``/poam help``.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any

from bot.blockkit.text import mentioned_user
from bot.commands.grammar import Arg, Converter, Option, ParseContext, ReadsMarkup, Rest, Spec, Word
from bot.interchange.exports import ExportFormat
from bot.poam import fields
from bot.poam.actor import Role
from bot.poam.dates import parse_date
from bot.poam.errors import InvalidInput
from bot.poam.fields import Source
from bot.poam.item_lists import Scope
from bot.poam.refs import parse_item_number, parse_milestone_number
from bot.poam.review import Deviation
from bot.poam.severity import Severity
from bot.poam.systems import Impact, fedramp_id
from bot.reminders.subscriptions import WEEKDAYS

# ---------------------------------------------------------------- converters


def item_number(raw: str, context: ParseContext) -> int:
    return parse_item_number(raw, prefix=context.id_prefix)


def milestone_number(raw: str, _: ParseContext) -> int:
    return parse_milestone_number(raw)


#: A Slack user id typed as it is (``U0123ABCD``; an older one may have no
#: digit): a word of that shape (``WORKFLOW``) only lists nobody's items or
#: takes back a role nobody holds, which is all a typed id is taken for.
_TYPED_USER_ID = re.compile(r"^[UW][A-Z0-9]{8,31}$")


class TypedUserId(str):
    """A user id typed as it is, not a mention: Slack vouched for no such person."""

    __slots__ = ()


@ReadsMarkup
def user(raw: str, _: ParseContext) -> str:
    user_id = mentioned_user(raw)
    if user_id is None:
        raise InvalidInput(f"`{raw}` is not a person; mention them with @ so Slack links the name.")
    return user_id


@ReadsMarkup
def user_or_id(raw: str, context: ParseContext) -> str:
    """A mention, or a typed id: for someone Slack no longer offers to
    mention, a person deactivated (``reminders.departures``), whose items are
    listed or whose role is taken back by it (never given: a typo would make
    a role holder of nobody)."""
    return TypedUserId(raw) if _TYPED_USER_ID.match(raw) else user(raw, context)


#: ``ao:none``, ``org:none``, ``fedramp:none`` on ``system set``: the system is left without one.
NONE = "none"


def or_none(convert: Converter) -> Converter:
    """``convert``, or :data:`NONE` for the word none (any case)."""
    return lambda raw, context: NONE if raw.strip().lower() == NONE else convert(raw, context)


def fedramp_package(raw: str, _: ParseContext) -> str:
    """``F1234567890``: a system's FedRAMP package ID."""
    return fedramp_id(raw)


def future_date(raw: str, context: ParseContext) -> Any:
    return parse_date(raw, today=context.today, prefer="future")


#: ``until:now``: the AO's re-review ends a risk acceptance today.
NOW = "now"


def acceptance_end(raw: str, context: ParseContext) -> Any:
    """A date in the future, or ``now``."""
    return NOW if raw.strip().lower() == NOW else future_date(raw, context)


def past_date(raw: str, context: ParseContext) -> Any:
    return parse_date(raw, today=context.today, prefer="past")


def severity(raw: str, _: ParseContext) -> Severity:
    return Severity.parse(raw)


def _listed(raw: str) -> list[str]:
    """A comma-separated list: ``control:AC-2,SI-2``."""
    return [word.strip() for word in raw.split(",") if word.strip()]


def controls(raw: str, _: ParseContext) -> list[str]:
    return fields.controls(_listed(raw))


def assets(raw: str, _: ParseContext) -> list[str]:
    return fields.assets(_listed(raw))


def cves(raw: str, _: ParseContext) -> list[str]:
    return fields.cves(_listed(raw))


def text(raw: str, _: ParseContext) -> str:
    """Free text, as read: the grammar gives it mentions and links as words."""
    return raw


def source(raw: str, _: ParseContext) -> Source:
    return Source.parse(raw)


def impact(raw: str, _: ParseContext) -> Impact:
    return Impact.parse(raw)


def scope(raw: str, _: ParseContext) -> Scope:
    try:
        return Scope(raw.lower())
    except ValueError:
        names = ", ".join(s.value for s in Scope)
        raise InvalidInput(f"`{raw}` is not a list; use one of {names}.") from None


def deviation(raw: str, _: ParseContext) -> Deviation:
    try:
        return Deviation(raw.lower())
    except ValueError:
        raise InvalidInput(
            f"`{raw}` is not a deviation; use fp (false positive), ra (risk adjustment) "
            "or or (operational requirement)."
        ) from None


def verdict(raw: str, _: ParseContext) -> bool:
    """``approve`` → True, ``reject`` → False."""
    word = raw.lower()
    if word not in ("approve", "reject"):
        raise InvalidInput(f"`{raw}` is not a decision; use approve or reject.")
    return word == "approve"


def vendor_event(raw: str, _: ParseContext) -> str:
    """``checkin`` (a check-in with the vendor today) or ``shipped`` (the vendor's fix is out)."""
    word = raw.lower()
    if word not in ("checkin", "shipped"):
        raise InvalidInput(
            f"`{raw}` is not understood here; add `checkin` to record a vendor check-in, "
            "or `shipped` when the vendor's fix is out."
        )
    return word


def on_off(raw: str, _: ParseContext) -> bool:
    word = raw.lower()
    if word not in ("on", "off"):
        raise InvalidInput(f"`{raw}` is not on or off.")
    return word == "on"


def clock_time(raw: str, _: ParseContext) -> time:
    """``09:00``, ``8:30`` → a time of day."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", raw.strip())
    if not match:
        raise InvalidInput(f"`{raw}` is not a time of day; write it like 08:30.")
    return time(int(match.group(1)), int(match.group(2)))


def snooze_length(raw: str, _: ParseContext) -> int:
    """``1d``, ``3d``, ``1w`` → days."""
    lengths = {"1d": 1, "3d": 3, "1w": 7}
    if raw.lower() not in lengths:
        raise InvalidInput(f"`{raw}` is not a snooze length; use 1d, 3d or 1w.")
    return lengths[raw.lower()]


def weekly(raw: str, _: ParseContext) -> bool:
    word = raw.lower()
    if word not in ("weekly", "off"):
        raise InvalidInput(f"`{raw}` is not understood; use weekly or off.")
    return word == "weekly"


def weekday(raw: str, _: ParseContext) -> int:
    word = raw.lower()
    for index, name in enumerate(WEEKDAYS):
        if name.startswith(word) and len(word) >= 3:
            return index
    raise InvalidInput(f"`{raw}` is not a weekday; use monday … sunday.")


def export_format(raw: str, _: ParseContext) -> ExportFormat:
    try:
        return ExportFormat(raw.lower())
    except ValueError:
        names = "|".join(f.value for f in ExportFormat)
        raise InvalidInput(f"`{raw}` is not an export format; use {names}.") from None


def role_change(raw: str, _: ParseContext) -> tuple[bool, Role]:
    """``+verifier`` → (True, VERIFIER); ``-ao`` → (False, AO)."""
    sign, name = raw[:1], raw[1:].lower()
    if sign in "+-" and sign and name in {r.value for r in Role}:
        return sign == "+", Role(name)
    raise InvalidInput(f"`{raw}` is not a role change; use +verifier, -verifier, +ao, -ao, +admin or -admin.")


# ---------------------------------------------------------------- the subcommands

ITEM = Arg("item", item_number, "id")
MILESTONE_MISSING = "Which milestone? Add its number: M1, M2…"
SEVERITY = Option("sev", severity, "critical|high|moderate|low", aliases=("severity",))
SYSTEM = Option("system", text, "name")
IMPACT = Option("impact", impact, "low|moderate|high")

SPECS: tuple[Spec, ...] = (
    Spec("help", "Show this help, or one subcommand's.", "anyone", (Rest("topic", "subcommand", required=False),)),
    Spec(
        "log",
        "Log a finding (with no words: open the form).",
        "anyone",
        (Rest("title", "title", required=False),),
        (
            SEVERITY,
            Option("control", controls, "AC-2,SI-2", aliases=("controls",)),
            Option("source", source, "scan|assessment|pentest|audit|conmon|self"),
            Option("asset", assets, "web-01,db-02", aliases=("assets",)),
            Option("cve", cves, "CVE-…", aliases=("cves",)),
            Option("detected", past_date, "date", spaced=True),
            Option("due", future_date, "date", spaced=True),
            Option("owner", user, "@user"),
            Option("desc", text, '"…"', aliases=("description",)),
            SYSTEM,
        ),
    ),
    Spec(
        "list",
        "List items, overdue first.",
        "anyone",
        (Arg("scope", scope, "mine|open|overdue|unclaimed|review|closed|all", required=False),),
        (SEVERITY, Option("control", text, "AC-2"), Option("owner", user_or_id, "@user"), SYSTEM),
    ),
    Spec("show", "Show an item with its milestones and what you can do.", "anyone", (ITEM,)),
    Spec("claim", "Become the owner of an unowned item.", "anyone", (ITEM,)),
    Spec("release", "Give an item up.", "owner, admin", (ITEM,)),
    Spec("assign", "Set an item's owner.", "admin", (ITEM, Arg("user", user, "@user"))),
    Spec(
        "plan",
        "Set the remediation plan (and resources required).",
        "owner",
        (ITEM, Rest("plan", "plan")),
        (Option("resources", text, '"…"'),),
    ),
    Spec(
        "milestone",
        "Add a milestone.",
        "owner",
        (ITEM, Word("add"), Rest("text", "milestone")),
        (Option("due", future_date, "date", required=True, spaced=True),),
    ),
    Spec(
        "milestone",
        "Complete a milestone.",
        "owner",
        (ITEM, Word("done"), Arg("milestone", milestone_number, "M", missing=MILESTONE_MISSING)),
        (Option("note", text, '"…"'),),
    ),
    Spec(
        "milestone",
        "Move a milestone to a new date; the original date is kept.",
        "owner",
        (ITEM, Word("move"), Arg("milestone", milestone_number, "M", missing=MILESTONE_MISSING)),
        (Option("due", future_date, "date", required=True, spaced=True), Option("reason", text, '"…"', required=True)),
    ),
    Spec(
        "submit",
        "The fix is done: ask a verifier to check it.",
        "owner",
        (ITEM,),
        (Option("evidence", text, '"…"'),),
    ),
    Spec("verify", "Confirm the fix works: the item closes.", "verifier (not the owner or a remediator)",
         (ITEM, Rest("note", "note", required=False))),
    Spec("reject", "Send the fix back to the owner.", "verifier (not the owner or a remediator)",
         (ITEM, Rest("reason", "reason"))),
    Spec("approve", "Agree with the item's remediation plan.", "authorizing official", (ITEM,)),
    Spec(
        "deviate",
        "Ask the AO for a false positive, a risk adjustment or an operational requirement.",
        "owner",
        (ITEM, Arg("deviation", deviation, "fp|ra|or"), Rest("rationale", "rationale")),
        (SEVERITY, Option("until", future_date, "date", spaced=True)),
    ),
    Spec(
        "extend",
        "Ask the AO for a later completion date.",
        "owner",
        (ITEM,),
        (Option("due", future_date, "date", required=True, spaced=True), Option("reason", text, '"…"', required=True)),
    ),
    Spec(
        "decide",
        "Decide the item's pending request.",
        "authorizing official",
        (ITEM, Arg("approve", verdict, "approve|reject"), Rest("reason", "reason", required=False)),
    ),
    Spec(
        "accept-risk",
        "Accept the residual risk until a date; on an accepted item, the re-review: renew the acceptance to a "
        "new date, or end it with `until:now` (the item is back at work).",
        "authorizing official",
        (ITEM, Rest("rationale", "rationale")),
        (Option("until", acceptance_end, "date|now", required=True, spaced=True),),
    ),
    Spec(
        "vendor",
        "Mark the fix as waiting on a vendor, record a vendor check-in, or that the vendor's fix shipped "
        "(the clock restarts today: the later due date goes to the authorizing official as an extension).",
        "owner",
        (ITEM, Arg("event", vendor_event, "checkin|shipped", required=False)),
        (Option("product", text, '"…"'),),
    ),
    Spec("withdraw", "Take back the item's pending deviation or extension request.", "owner", (ITEM,)),
    Spec("history", "An item's audit trail.", "anyone", (ITEM,)),
    Spec(
        "remind",
        "Your morning DM: when (your time zone) and whether.",
        "anyone",
        (Arg("switch", on_off, "on|off", required=False),),
        (Option("at", clock_time, "09:00"),),
    ),
    Spec("snooze", "No reminders about an item for a while.", "owner", (ITEM, Arg("days", snooze_length, "1d|3d|1w"))),
    Spec("digest", "Preview this channel's weekly digest.", "anyone"),
    Spec(
        "subscribe",
        "This channel gets (or stops) the weekly digest.",
        "admin",
        (Arg("weekly", weekly, "weekly|off", required=False),),
        (Option("day", weekday, "monday"), Option("at", clock_time, "09:00")),
    ),
    Spec(
        "export",
        "The POA&M as a file in your DM.",
        "anyone",
        (Arg("format", export_format, "csv|xlsx|oscal|json"),),
        (SYSTEM,),
    ),
    Spec("import", "Import scanner results or a FedRAMP workbook (opens a form).", "admin"),
    Spec("systems", "List the information systems.", "anyone"),
    Spec(
        "system",
        "Add an information system.",
        "admin",
        (Word("add"), Rest("name", "name")),
        (
            IMPACT,
            Option("org", or_none(text), '"…"', aliases=("organization",)),
            Option("ao", user, "@user"),
            Option("fedramp", fedramp_package, "F1234567890"),
        ),
    ),
    Spec(
        "system",
        "Change a system's impact level, organization, authorizing official or FedRAMP package ID.",
        "admin",
        (Word("set"), Rest("name", "name")),
        (
            IMPACT,
            Option("org", or_none(text), '"…"|none', aliases=("organization",)),
            Option("ao", ReadsMarkup(or_none(user)), "@user|none"),
            Option("fedramp", or_none(fedramp_package), "F1234567890|none"),
        ),
    ),
    Spec("roles", "List who has which role.", "anyone"),
    Spec(
        "role",
        "Give or take a role.",
        "admin",
        (Arg("user", user_or_id, "@user"), Arg("change", role_change, "+verifier|-verifier|+ao|-ao|+admin|-admin")),
    ),
)
