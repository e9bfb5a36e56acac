"""The one error handler: every failure becomes a private message, never a traceback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from bot.blockkit.text import escape
from bot.commands.context import Reply
from bot.commands.grammar import UsageError
from bot.commands.views import cards
from bot.poam.errors import AlreadyClaimed, AlreadyDecided, PoamError
from bot.store.engine import is_busy

log = logging.getLogger(__name__)
BUSY = (
    "Too many changes at once: I could not get my turn to save yours within a couple of seconds, "
    "so nothing was changed. Please try again."
)


def answer(work: Callable[[], Reply]) -> Reply:
    """Run a handler; turn domain refusals and unexpected failures into replies.

    Domain errors carry a message meant for the user (which may quote what they
    typed, so it is escaped like any user text). Anything else is a bug or
    an outage: it is logged with its traceback under a short reference the
    user can quote, and the transaction it interrupted has been rolled back.
    """
    try:
        return work()
    except UsageError as error:
        return Reply(text=escape(error.message), blocks=cards.usage_error(error.message, error.usage))
    except AlreadyClaimed as error:
        return Reply(text=escape(error.message), blocks=cards.refusal(error.message, owner_id=error.owner_id))
    except AlreadyDecided as error:
        return Reply(text=escape(error.message), blocks=cards.refusal(error.message, decided_by=error.decided_by))
    except PoamError as error:
        return Reply(text=escape(error.message), blocks=cards.refusal(error.message))
    except Exception as error:
        if is_busy(error):
            log.warning("request gave up waiting for another writer: %s", error)
            return Reply(text=BUSY, blocks=cards.refusal(BUSY))
        reference = uuid.uuid4().hex[:8]
        log.exception("request failed (ref %s)", reference)
        message = (
            f"Something went wrong on our side (ref {reference}). "
            "Check with `/poam show` whether your change was saved before trying again."
        )
        return Reply(text=message, blocks=cards.refusal(message))


def unexpected(error: Exception, doing: str) -> str:
    """Log a failure after the ack with a reference; the line to tell the user."""
    reference = uuid.uuid4().hex[:8]
    log.error("%s failed (ref %s)", doing, reference, exc_info=error)
    return f"Something went wrong while {doing} (ref {reference})."
