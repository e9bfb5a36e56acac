"""The ``/poam`` grammar: ``/poam <subcommand> [words…] [key:value …]``.

Each subcommand is declared once as a :class:`Spec`; the same declaration
parses the text and writes the usage line, so help can never drift from what
is accepted. Adding a subcommand is adding one Spec (``bot/commands/specs.py``)
and one handler.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.blockkit.text import plain_text, unescape
from bot.poam.errors import InvalidInput

#: Quotes Slack clients may send for a typed ``"`` (macOS and iOS "smart quotes").
_QUOTES = {'"': '"', "“": "”", "„": "“", "”": "”"}
_OPTION = re.compile(r"^([A-Za-z][A-Za-z_-]*):(.*)$", re.DOTALL)
MAX_COMMAND_TEXT = 12_000



@dataclass(frozen=True)
class ParseContext:
    """What converters need to read a value: the user's today and the id prefix."""

    today: date
    id_prefix: str


Converter = Callable[[str, ParseContext], Any]


@dataclass(frozen=True)
class ReadsMarkup:
    """A converter given its word with Slack's markup kept (``<@U123|jane>``):
    it needs a mention's user id. Every other one gets the word as read."""

    convert: Converter

    def __call__(self, raw: str, context: ParseContext) -> Any:
        return self.convert(raw, context)


class UsageError(InvalidInput):
    """A malformed command; the reply shows what was wrong and the usage."""

    def __init__(self, problem: str, *, usage: Sequence[str]) -> None:
        super().__init__(problem)
        self.usage = list(usage)


@dataclass(frozen=True)
class Token:
    """One word of the command as Slack sent it (escaped, mentions and links as
    markup); ``key`` is set when it was ``key:value``."""

    sent: str
    key: str | None = None

    @property
    def text(self) -> str:
        """The word as a reader sees it (``@jane``, not ``<@U123|jane>``): what we store."""
        return plain_text(self.sent)

    @property
    def markup(self) -> str:
        """The word unescaped, its markup kept: for converters that read a mention's user id."""
        return unescape(self.sent)


def tokenize(text: str) -> list[Token]:
    """Split on whitespace, honouring double quotes (straight or curly).

    ``reason:"vendor patch slipped"`` is one option token; a quoted phrase is
    one word. A token is an option only when it starts ``word:`` outside
    quotes; links arrive wrapped in ``<…>`` and so are never options.
    """
    if len(text) > MAX_COMMAND_TEXT:
        raise InvalidInput(f"That command is {len(text):,} characters long; the limit is {MAX_COMMAND_TEXT:,}.")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        word, key, quoted = [], None, False
        while i < n and not text[i].isspace():
            char = text[i]
            if char in _QUOTES:
                closing = _QUOTES[char]
                end = _find_closing(text, i + 1, closing)
                if end < 0:
                    raise InvalidInput("A quote is not closed; put a \" at the end of the quoted text.")
                word.append(text[i + 1 : end])
                quoted = True
                i = end + 1
                continue
            if char == ":" and key is None and not quoted:
                match = _OPTION.match("".join(word) + ":")
                if match:
                    key, word = match.group(1).lower(), []
                    i += 1
                    continue
            word.append(char)
            i += 1
        tokens.append(Token("".join(word), key=key))
    return tokens


def _find_closing(text: str, start: int, closing: str) -> int:
    candidates = [text.find(q, start) for q in {closing, '"', "”"}]
    found = [c for c in candidates if c >= 0]
    return min(found) if found else -1


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Word:
    """A literal word that must appear at this place (``add`` in ``milestone 3 add``)."""

    word: str


@dataclass(frozen=True)
class Arg:
    """A positional word converted to a value (an item id, a milestone, a user)."""

    name: str
    convert: Converter
    hint: str
    required: bool = True
    #: What the refusal says when it is missing (else from the hint: "The id is missing.").
    missing: str | None = None

    @property
    def missing_text(self) -> str:
        if self.missing:
            return self.missing
        if "|" in self.hint:
            return "Add one of: " + ", ".join(f"`{word}`" for word in self.hint.split("|")) + "."
        return f"The {self.hint} is missing."


@dataclass(frozen=True)
class Rest:
    """The remaining free words, joined: a title, a plan, a reason."""

    name: str
    hint: str
    required: bool = True


@dataclass(frozen=True)
class Option:
    """A ``key:value`` option; ``aliases`` are other keys for it (``severity`` for ``sev``)."""

    key: str
    convert: Converter
    hint: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    #: Its value may be words apart, unquoted (a date: ``due:Dec 31``): the
    #: next words join it where it alone does not convert and together they do.
    spaced: bool = False


Part = Word | Arg | Rest


@dataclass(frozen=True)
class Spec:
    """One subcommand (or one verb of it, like ``milestone add``)."""

    name: str
    summary: str
    who: str
    parts: tuple[Part, ...] = ()
    options: tuple[Option, ...] = ()

    @property
    def key(self) -> str:
        """The handler's key: the name and its literal words (``milestone add``)."""
        return " ".join([self.name] + [p.word for p in self.parts if isinstance(p, Word)])

    @property
    def usage(self) -> str:
        words = [f"/poam {self.name}"]
        for part in self.parts:
            if isinstance(part, Word):
                words.append(part.word)
            else:
                words.append(f"<{part.hint}>" if part.required else f"[{part.hint}]")
        for option in self.options:
            text = f"{option.key}:{option.hint}"
            words.append(text if option.required else f"[{text}]")
        return " ".join(words)

    def option_for(self, key: str) -> Option | None:
        for option in self.options:
            if key == option.key or key in option.aliases:
                return option
        return None


@dataclass(frozen=True)
class Parsed:
    """A command that parsed: its spec and its converted values by name."""

    spec: Spec
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values.get(name)


def _matches(spec: Spec, words: list[Token]) -> bool:
    """Whether ``words`` have the spec's literal words at their places."""
    position = 0
    for part in spec.parts:
        if isinstance(part, Rest):
            return True
        if isinstance(part, Word):
            if position >= len(words) or words[position].text.lower() != part.word:
                return False
        position += 1
    return True


def parse(text: str, specs: Sequence[Spec], context: ParseContext) -> Parsed:
    """Parse the text after ``/poam`` against the declared subcommands."""
    try:
        tokens = tokenize(text)
    except UsageError:
        raise
    except InvalidInput as error:
        first = text.split(maxsplit=1)[0].lower() if text.strip() else ""
        usages = [spec.usage for spec in specs if spec.name == first] or ["/poam help"]
        raise UsageError(error.message, usage=usages) from None
    if not tokens:
        tokens = [Token("help")]
    head, rest = tokens[0], tokens[1:]
    if head.key is not None:
        raise UsageError("Start with a subcommand, like `/poam list`.", usage=["/poam help"])
    name = head.text.lower()
    candidates = [spec for spec in specs if spec.name == name]
    if not candidates:
        raise UsageError(f"`{head.text}` is not a /poam subcommand.", usage=["/poam help"])
    rest = _spaced_values_joined(rest, candidates, context)
    words = [token for token in rest if token.key is None]
    options = [token for token in rest if token.key is not None]
    usages = [spec.usage for spec in candidates]
    for spec in candidates:
        if _matches(spec, words):
            return _bind(spec, words, options, context, usages=[spec.usage])
    verbs = sorted({p.word for s in candidates for p in s.parts if isinstance(p, Word)})
    misplaced = _misplaced_verb(candidates, words)
    if misplaced is not None:
        raise UsageError(f"`{misplaced}` is out of place: write it where the usage below shows.", usage=usages)
    raise UsageError(f"`/poam {name}` needs one of: {', '.join(verbs)}.", usage=usages)


def _misplaced_verb(candidates: Sequence[Spec], words: list[Token]) -> str | None:
    """A verb typed a word before or after its place (``milestone add 3``,
    ``milestone 3 M1 done``); not one further on, in free text."""
    for spec in candidates:
        for place, part in enumerate(spec.parts):
            if isinstance(part, Word):
                for near in (place - 1, place + 1):
                    if 0 <= near < len(words) and words[near].text.lower() == part.word:
                        return words[near].text
    return None


#: The most words a spaced value joins (``due:December 31, 2026``).
_MOST_JOINED = 3


def _spaced_values_joined(tokens: list[Token], candidates: Sequence[Spec], context: ParseContext) -> list[Token]:
    """``due:Dec 31`` read as ``due:"Dec 31"``: a spaced option's value that
    does not convert alone takes as many of the next plain words (up to
    :data:`_MOST_JOINED` in all) as convert with it; otherwise nothing moves,
    and binding refuses the value alone."""
    spaced = {key: option for spec in candidates for option in spec.options if option.spaced
              for key in (option.key, *option.aliases)}
    joined: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        option = spaced.get(token.key or "")
        if option is None or _converts(option, token, context):
            joined.append(token)
            continue
        following: list[Token] = []
        for word in tokens[index : index + _MOST_JOINED - 1]:
            if word.key is not None:
                break
            following.append(word)
        taken = next((count for count in range(len(following), 0, -1)
                      if _converts(option, _joined([token, *following[:count]]), context)), 0)
        joined.append(_joined([token, *following[:taken]]))
        index += taken
    return joined


def _joined(tokens: Sequence[Token]) -> Token:
    """The words as one, with the first one's key: a spaced value, or free text
    (whose link may have a label of several words)."""
    return Token(" ".join(token.sent for token in tokens), key=tokens[0].key if tokens else None)


def _converts(option: Option, token: Token, context: ParseContext) -> bool:
    try:
        _convert(option.convert, token, context)
    except InvalidInput:
        return False
    return True


def _convert(converter: Converter, token: Token, context: ParseContext) -> Any:
    """The token's value: converted as read, or with its markup for a :class:`ReadsMarkup`."""
    return converter(token.markup if isinstance(converter, ReadsMarkup) else token.text, context)


def _bind(
    spec: Spec, words: list[Token], options: list[Token], context: ParseContext, *, usages: list[str]
) -> Parsed:
    values: dict[str, Any] = {}

    def convert(converter: Converter, token: Token) -> Any:
        try:
            return _convert(converter, token, context)
        except UsageError:
            raise
        except InvalidInput as error:
            raise UsageError(error.message, usage=usages) from None

    position = 0
    for part in spec.parts:
        if isinstance(part, Word):
            position += 1
        elif isinstance(part, Arg):
            if position < len(words):
                values[part.name] = convert(part.convert, words[position])
                position += 1
            elif part.required:
                raise UsageError(part.missing_text, usage=usages)
        else:
            free = _joined(words[position:]).text.strip()
            position = len(words)
            if free:
                values[part.name] = free
            elif part.required:
                raise UsageError(f"The {part.hint} is missing.", usage=usages)
    if position < len(words):
        extra = " ".join(token.text for token in words[position:])
        raise UsageError(f"I don't know what to do with `{extra}`.", usage=usages)
    for token in options:
        option = spec.option_for(token.key or "")
        if option is None:
            known = ", ".join(f"{o.key}:" for o in spec.options) or "none"
            raise UsageError(f"`{token.key}:` is not an option of /poam {spec.name} (options: {known}).", usage=usages)
        if option.key in values:
            raise UsageError(f"`{option.key}:` is given twice.", usage=usages)
        if not token.text.strip():
            raise UsageError(f"`{option.key}:` needs a value.", usage=usages)
        values[option.key] = convert(option.convert, token)
    for option in spec.options:
        if option.required and option.key not in values:
            raise UsageError(f"`{option.key}:` is required.", usage=usages)
    return Parsed(spec=spec, values=values)
