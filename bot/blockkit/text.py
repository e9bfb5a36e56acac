"""Text between Slack and us.

Inbound: with ``should_escape`` on, Slack sends ``&``, ``<`` and ``>`` that a
user typed as ``&amp;``, ``&lt;`` and ``&gt;``, and mentions as
``<@U123|jane>``. We store what the user meant (plain text) and escape again on
the way out, so stored text never carries markup and outgoing text can never
ping ``@channel`` or forge a link.
"""

from __future__ import annotations

import re

MAX_SECTION_TEXT = 3000

_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,31})(?:\|[^>]*)?>$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")


def escape(text: str) -> str:
    """User text made safe for mrkdwn and plain_text fields."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack's escaped input back to what the user typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_MARKUP = re.compile(r"<([^<>]*)>")
_SPECIAL = {"channel": "@channel", "here": "@here", "everyone": "@everyone"}


def plain_text(message: str) -> str:
    """A Slack message's text as a reader sees it, for text we store: mentions,
    channels and links as words (``@jane``, ``#security``, ``label (url)``),
    ``<!channel>`` as ``@channel``, dates as their fallback; then unescaped.
    Stored as markup, a mention would show raw in cards and exports."""
    def word(match: re.Match[str]) -> str:
        inner, _, label = match.group(1).partition("|")
        if inner[:2] in ("@U", "@W"):
            return f"@{label or inner[1:]}"
        if inner.startswith("#"):
            return f"#{label or inner[1:]}"
        if inner.startswith("!"):
            return label or _SPECIAL.get(inner[1:], inner[1:])
        if label and inner.startswith("mailto:"):
            return label
        return f"{label} ({inner})" if label and label != inner else inner

    return unescape(_MARKUP.sub(word, message))


def mention(user_id: str) -> str:
    """A mention, built only from a user id (never from user text); the bot's own
    actors in the audit trail (``cli``, ``system``) are shown as plain words."""
    if not _USER_ID.match(user_id):
        return f"_{escape(user_id)}_"
    return f"<@{user_id}>"


def mentioned_user(token: str) -> str | None:
    """The user id of a ``<@U123|name>`` token, else None."""
    match = _MENTION.match(token)
    return match.group(1) if match else None


def clip(text: str, limit: int = MAX_SECTION_TEXT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (Block Kit limits)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_markup(text: str, limit: int = MAX_SECTION_TEXT) -> str:
    """:func:`clip` for text already escaped or marked up: the cut never falls
    inside an entity (``&amp;``) or a token (``<@U123>``, ``<!date^…>``), which
    Slack would show raw. In such text every ``&`` and ``<`` opens one."""
    if len(text) <= limit:
        return text
    kept = text[: max(limit - 1, 0)]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = kept.rfind(opener)
        if start != -1 and closer not in kept[start:]:
            kept = kept[:start]
    return kept + "…"
