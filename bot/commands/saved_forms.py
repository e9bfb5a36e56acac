"""A form saved once: Submit (or Import) pressed again, after Slack said it
could not connect while the first press was still being saved, is a new
request with a new signature, of the same view; it must change nothing
(``store.replays.record_form_saved``)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.commands.context import SlackRequest
from bot.poam.errors import PoamError
from bot.store.replays import form_saved, record_form_saved

#: The length of a view id kept.
_VIEW_ID = 60


class SavedBefore(PoamError):
    """The form was saved by an earlier submission."""

    def __init__(self, what: str) -> None:
        super().__init__(f"This form was saved already, so nothing was {what} again.")


def save_once(session: Session, request: SlackRequest, view_id: Any, *, what: str) -> None:
    """Refuse the form ``view_id`` when it was saved before, in the saving
    transaction: a refused save records nothing, so a form corrected after
    errors saves."""
    if isinstance(view_id, str) and view_id and not record_form_saved(
        session, team_id=request.team_id, view_id=view_id[:_VIEW_ID], now=request.services.clock.now()
    ):
        raise SavedBefore(what)


def refuse_if_saved(session: Session, request: SlackRequest, view_id: Any, *, what: str) -> None:
    """:func:`save_once`'s refusal, read only: before slow work (an import's
    download) that the saving transaction would refuse after it."""
    if isinstance(view_id, str) and view_id and form_saved(session, team_id=request.team_id,
                                                           view_id=view_id[:_VIEW_ID]):
        raise SavedBefore(what)
