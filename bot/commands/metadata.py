"""Typed data carried in button values and modal ``private_metadata``.

Slack hands these strings back on a click or a submission. They are JSON of a
small dataclass; anything that fails to parse is refused as a stale or forged
payload. They never carry the workspace: that always comes from Slack's signed
request body, so a crafted value cannot reach another workspace's items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, TypeVar

from bot.poam.errors import InvalidInput
from bot.poam.item_lists import Direction, Position, Scope

MAX_VALUE = 2000  # Slack's limit for a button value
T = TypeVar("T")


# One encoder for every dump: ``json.dumps`` with separators builds a new one per
# call, which showed in the profile of a list (one dump per item's button).
_ENCODER = json.JSONEncoder(separators=(",", ":"))


#: Each payload type's fields, with whether each may be left out (it defaults to None).
_NAMES: dict[type, tuple[tuple[str, bool], ...]] = {}


def dump(data: Any) -> str:
    """``data`` as compact JSON, without the fields that are None by default:
    a process of the version before, running beside this one while it
    deploys, refuses keys it does not know (``version`` of an ItemRef)."""
    names = _NAMES.get(type(data)) or _NAMES.setdefault(
        type(data), tuple((f.name, f.default is None) for f in fields(data))
    )
    # Every field is a plain value, so a shallow dict will do (asdict deep-copies).
    text = _ENCODER.encode({
        name: value for name, optional in names if (value := getattr(data, name)) is not None or not optional
    })
    if len(text) > MAX_VALUE:
        raise ValueError(f"{type(data).__name__} metadata is {len(text)} characters; Slack allows {MAX_VALUE}")
    return text


def load(cls: type[T], text: str | None) -> T:
    """Parse ``text`` into ``cls``; :class:`InvalidInput` when it does not fit."""
    try:
        raw = json.loads(text or "")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if not isinstance(raw, dict) or not set(raw) <= names:
            raise ValueError("unexpected shape")
        value = cls(**raw)
        value.check()  # type: ignore[attr-defined]
        return value
    except (ValueError, TypeError, RecursionError):  # RecursionError: JSON nested a thousand deep
        raise stale() from None


def stale() -> InvalidInput:
    """The refusal for a payload that does not fit: stale, or crafted."""
    return InvalidInput("That button or form is out of date; run the command again.")


#: The largest number a payload may carry: the database's integers are 32-bit.
MAX_NUMBER = 2**31 - 1


def _check_from_home(value: Any) -> None:
    if value is not None and value is not True:
        raise ValueError("bad origin")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_NUMBER


@dataclass(frozen=True)
class ItemRef:
    """A button about one item (and, for milestone buttons, one milestone);
    ``version``: the item's as the card showed it, for a button that approves
    what the card showed (the plan)."""

    number: int
    milestone: int | None = None
    version: int | None = None
    #: A form's: opened from the App Home (a card it opened), published again once saved.
    from_home: bool | None = None

    def check(self) -> None:
        if not _positive_int(self.number) or not (self.milestone is None or _positive_int(self.milestone)):
            raise ValueError("bad item reference")
        _check_from_home(self.from_home)
        if self.version is not None and not (_positive_int(self.version) or self.version == 0):
            raise ValueError("bad item version")


@dataclass(frozen=True)
class ListPage:
    """The next or previous page of a ``/poam list``: the page read on from an
    item's place in the list, ``after`` (Next) or ``before`` (Previous) it,
    each ``[band, "YYYY-MM-DD", number]`` (:class:`Position`); ``offset``: how
    many items come before the page, as shown; ``day``: the day the list is
    ordered on, the first page's ("YYYY-MM-DD", ``list_items``'s ``ordered_on``)."""

    scope: str
    offset: int
    sev: str | None = None
    control: str | None = None
    owner: str | None = None
    system: str | None = None
    after: list[Any] | None = None
    before: list[Any] | None = None
    day: str | None = None

    def check(self) -> None:
        if not isinstance(self.offset, int) or isinstance(self.offset, bool) or self.offset < 0:
            raise ValueError("bad offset")
        if self.scope not in {scope.value for scope in Scope}:
            raise ValueError("bad scope")
        for value in (self.scope, self.sev, self.control, self.owner, self.system):
            if value is not None and (not isinstance(value, str) or len(value) > 100):
                raise ValueError("bad filter")
        if self.after is not None and self.before is not None:
            raise ValueError("a page starts after an item or before one, not both")
        self.ordered_on()  # a bad day: ValueError
        start = self.start()  # a bad position: ValueError
        if self.offset and start is None:  # a button of the version that paged by offset
            raise ValueError("a page past the first starts at an item")

    def start(self) -> tuple[Direction, Position] | None:
        """Where the page starts, if not at the list's beginning."""
        if self.after is not None:
            return Direction.AFTER, _position(self.after)
        if self.before is not None:
            return Direction.BEFORE, _position(self.before)
        return None

    def ordered_on(self) -> date | None:
        """The day the list is ordered on; None for a first page (today)."""
        if self.day is None:
            return None
        if not isinstance(self.day, str) or len(self.day) != 10:
            raise ValueError("bad list day")
        return date.fromisoformat(self.day)

    @staticmethod
    def place(position: Position) -> list[Any]:
        """``position`` as a button carries it."""
        return [position.band, position.due_on.isoformat(), position.number]


def _position(value: Any) -> Position:
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is int and value[0] in (0, 1)
            and isinstance(value[1], str) and len(value[1]) == 10 and _positive_int(value[2])):
        raise ValueError("bad list position")
    return Position(value[0], date.fromisoformat(value[1]), value[2])


@dataclass(frozen=True)
class LogOrigin:
    """Where a *Log a finding* form was opened: the channel, and for a shortcut
    the message and its link (asked of Slack when the form opens, so saving
    the form makes no Slack call before its answer)."""

    channel_id: str | None = None
    message_ts: str | None = None
    permalink: str | None = None
    #: Opened from the App Home, which the saved finding then shows at once.
    from_home: bool | None = None

    def check(self) -> None:
        _check_from_home(self.from_home)
        for value in (self.channel_id, self.message_ts):
            if value is not None and (not isinstance(value, str) or len(value) > 40):
                raise ValueError("bad origin")
        if self.permalink is not None and (
            not isinstance(self.permalink, str) or len(self.permalink) > 500 or not self.permalink.startswith("https://")
        ):
            raise ValueError("bad message link")


@dataclass(frozen=True)
class RequestRef:
    """A Verify / Reject / Approve button: the item and the very request it decides,
    so a press after someone else decided is told so instead of deciding a newer one."""

    number: int
    request: int
    #: A form's: opened from the App Home (a card it opened), published again once saved.
    from_home: bool | None = None

    def check(self) -> None:
        if not _positive_int(self.number) or not _positive_int(self.request):
            raise ValueError("bad request reference")
        _check_from_home(self.from_home)


@dataclass(frozen=True)
class UploadedFile:
    """A file given to the import form, kept between its check and its confirmation."""

    name: str
    url: str

    def check(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.url, str) or len(self.name) > 255 or len(self.url) > 1500:
            raise ValueError("bad file")
