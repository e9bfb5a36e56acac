"""Typed domain errors.

Every refusal the domain makes is one of these, carrying a message written for
the person who asked. The Slack surface and the CLI show ``str(error)`` as is,
so messages must be complete sentences and must never contain a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class PoamError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PoamError):
    """The request was malformed: a bad date, severity, id or missing text.

    ``field`` names the operation's argument at fault (``"due_on"``) when one
    is, so a form can show the message beside that field.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidCombination(InvalidInput):
    """Arguments that do not go together (``sev:`` on a false positive), or
    one left out that another needs: the request's shape is wrong, whatever
    its values. A slash command answers it with its usage, as a malformed
    command (COMMANDS.md)."""


@contextmanager
def about(field: str) -> Iterator[None]:
    """Tag any :class:`InvalidInput` raised inside with ``field`` (if untagged)."""
    try:
        yield
    except InvalidInput as error:
        if error.field is None:
            error.field = field
        raise


class NotFound(PoamError):
    """The item, milestone or system does not exist in this workspace."""


class PermissionDenied(PoamError):
    """The acting user may not do this; the message names the rule."""


class InvalidState(PoamError):
    """The item's lifecycle state does not allow this action now."""


class AlreadyClaimed(PoamError):
    """Someone else won the race for an item (or owned it already)."""

    def __init__(self, message: str, *, owner_id: str | None) -> None:
        super().__init__(message)
        self.owner_id = owner_id


class AlreadyDecided(PoamError):
    """Someone else decided first (a second Verify, a stale Approve button)."""

    def __init__(self, message: str, *, decided_by: str | None) -> None:
        super().__init__(message)
        self.decided_by = decided_by


class AuditTrailOutOfStep(PoamError):
    """An audited change found its workspace's chain already holding the
    sequence number it reserved: the recorded head is behind the events (a
    database restored or copied inconsistently, or events added behind the
    application's back). Nothing is recorded until someone has looked.
    Unlike the other refusals it comes after the operation's writes: the
    transaction is rolled back before it is raised, so that nothing of the
    change can commit without its event."""


class UnreadableEvent(PoamError):
    """An audit event whose stored columns are not what the bot writes (a
    timestamp or details edited by hand: SQLite keeps any text in any column)."""

    def __init__(self, team_id: str, seq: int) -> None:
        super().__init__(f"workspace {team_id}: audit event #{seq} {UNREADABLE}")
        self.team_id, self.seq = team_id, seq


UNREADABLE = "cannot be read (a timestamp or details edited outside the bot)"
