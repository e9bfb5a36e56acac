"""A form saved once: Submit (or Import) pressed again, after Slack said it
could not connect while the first press was still being saved, is a new
request with a new signature, of the same view; it must change nothing
(``store.replays.record_form_saved``)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.commands.context import SlackRequest
from bot.poam.errors import PoamError
from bot.store.replays import record_form_saved


class SavedBefore(PoamError):
    """The form was saved by an earlier submission."""


def save_once(session: Session, request: SlackRequest, view_id: Any, *, what: str) -> None:
    """Refuse the form ``view_id`` when it was saved before, in the saving
    transaction: a refused save records nothing, so a form corrected after
    errors saves."""
    if isinstance(view_id, str) and view_id and not record_form_saved(
        session, team_id=request.team_id, view_id=view_id[:60], now=request.services.clock.now()
    ):
        raise SavedBefore(f"This form was saved already, so nothing was {what} again.")
