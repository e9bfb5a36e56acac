"""What a Slack listener works with: the app's services and one request's context."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.blockkit.blocks import Block
from bot.commands.turns import ListenerTurns
from bot.commands.users import SlackUser, UserDirectory
from bot.config import Settings
from bot.poam.actor import Actor, check_team_id, check_user_id
from bot.poam.clock import Clock
from bot.poam.errors import PoamError
from bot.poam.roles import load_actor
from bot.poam.systems import ensure_workspace
from bot.reminders.people import recorded_zone, remember_person
from bot.slack_http import SlackConnections
from bot.store.engine import unit_of_work
from bot.store.models import OutboxMessage, Workspace
from bot.store.replays import record_handled

log = logging.getLogger(__name__)

#: How long a Slack request waits for another SQLite writer before giving up
#: (cleanly, with nothing changed): Slack wants an answer within 3 seconds.
REQUEST_MAX_WAIT = 2.0
#: A command or form answered later than this after it arrived (its wait for a
#: turn included) is answered by its response URL or a DM, not by the ack:
#: Slack drops an ack after 3 seconds, and the request took some getting here.
ANSWER_WITHIN = 2.5
#: Requests whose own work runs at once per process (``turns``): parsing, the
#: database (at most 2 s waiting for a writer), building the answer, one quick
#: Slack call for a new user or a message link; the Slack calls after it go to
#: ``AFTER_ACK_THREADS`` and forms to ``FORM_THREADS``. Bolt's default pool
#: has 5 threads; with SQLite every query lets another thread take the GIL,
#: and fewer at once gave lower p99s and more throughput at one worker in
#: bench/load.py (README "Performance"); one would leave a request that waits
#: on the database nothing to overlap with.
LISTENERS_AT_ONCE = 2
#: Threads for the work after the ack (Slack calls with retries: replies,
#: channel posts, DMs), apart from the listeners' turns so that it never
#: holds up an ack.
AFTER_ACK_THREADS = 8
#: Threads that open views (forms, a reply in a modal; ``views.open`` or
#: ``views.push``, one quick try): a trigger id expires 3 seconds after the
#: request, too soon to wait behind the after-ack work, and a listener's turn
#: is not for waiting on Slack.
FORM_THREADS = 4
#: Exports and file checks or imports running at once per process, on threads
#: of their own: each holds a whole file in memory until Slack has it, so the
#: others wait their turn in a queue (not on the after-ack threads).
HEAVY_WORK_AT_ONCE = 2


def _after_ack_pool() -> Executor:
    return ThreadPoolExecutor(max_workers=AFTER_ACK_THREADS, thread_name_prefix="poam-after-ack")


def listener_turns() -> ListenerTurns:
    """The turns an app's listeners take (``LISTENERS_AT_ONCE`` at a time)."""
    return ListenerTurns(LISTENERS_AT_ONCE)


def _forms_pool() -> Executor:
    return ThreadPoolExecutor(max_workers=FORM_THREADS, thread_name_prefix="poam-forms")


def _heavy_work_pool() -> Executor:
    return ThreadPoolExecutor(max_workers=HEAVY_WORK_AT_ONCE, thread_name_prefix="poam-heavy")


@dataclass(frozen=True)
class Services:
    """Built once per app by ``build_app``; no globals."""

    engine: Engine
    settings: Settings
    clock: Clock
    users: UserDirectory
    turns: ListenerTurns = field(default_factory=listener_turns)
    after_ack: Executor = field(default_factory=_after_ack_pool)
    forms: Executor = field(default_factory=_forms_pool)
    heavy_work: Executor = field(default_factory=_heavy_work_pool)
    #: Connections to Slack kept open between calls (``bot.slack_http``).
    slack_connections: SlackConnections = field(default_factory=SlackConnections)
    #: The workspaces this process has seen made (``SlackRequest._make_workspace``).
    workspaces_made: set[str] = field(default_factory=set)

    def answered_late(self) -> bool:
        """Whether the request running here is past the time its ack can answer
        it in (:data:`ANSWER_WITHIN`): then it acks with nothing and answers
        after (``followup.answer_after``)."""
        return self.turns.since_arrival() > ANSWER_WITHIN


@dataclass(frozen=True)
class DirectMessage:
    """A DM that comes with a change (a verifier asked to verify, an owner told
    a decision), queued in its transaction (``direct_messages.queue``)."""

    user_id: str
    text: str
    blocks: list[Block]


#: Slow work to do after the ack (an export, a file check); returns a problem to
#: tell the user, or None.
Later = Callable[["SlackRequest"], str | None]


@dataclass
class Reply:
    """What a handler answers: a private message, and what to do after the ack."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    #: The change's post in the item's thread (``thread_posts``), written to the
    #: outbox in its transaction, sent right after the ack.
    thread_post: OutboxMessage | None = None
    modal: dict[str, Any] | None = None
    #: Outbox rows of DMs the change wrote, sent right after the ack.
    queued_messages: tuple[int, ...] = ()
    later: list[Later] = field(default_factory=list)


@dataclass
class SlackRequest:
    """One person's request: who, where, and a way to open a transaction as them."""

    services: Services
    client: WebClient
    team_id: str
    user_id: str
    channel_id: str | None = None
    trigger_id: str | None = None
    in_modal: bool = False
    #: Its ``X-Slack-Signature`` (None in Socket Mode): its change records it,
    #: so that the same request sent again changes nothing (``bot.store.replays``).
    signature: str | None = None
    _user: SlackUser | None = None
    _tz: ZoneInfo | None = None
    _recorded: bool = False

    def __post_init__(self) -> None:
        check_team_id(self.team_id)
        check_user_id(self.user_id)

    @property
    def slack_user(self) -> SlackUser:
        """Fetched from Slack (or the cache) once, outside any database transaction."""
        if self._user is None:
            self._user = self.services.users.get(self.client, team_id=self.team_id, user_id=self.user_id)
        return self._user

    @property
    def tz(self) -> ZoneInfo:
        """The user's time zone, for their "today" when a command is read and
        for the actor alike: Slack's, or when Slack did not answer, the one it
        gave last time (over the workspace's default)."""
        if self._tz is None:
            slack_user = self.slack_user
            self._tz = slack_user.tz
            if slack_user.unanswered:
                with unit_of_work(self.services.engine, read_only=True, max_wait=REQUEST_MAX_WAIT) as session:
                    self._tz = recorded_zone(session, team_id=self.team_id, user_id=self.user_id) or slack_user.tz
        return self._tz

    @contextmanager
    def transaction(self, *, read_only: bool = False, snapshot: bool = False) -> Iterator[tuple[Session, Actor]]:
        """A unit of work and the acting user; committed when the block ends
        (``read_only``, ``snapshot``: as :func:`unit_of_work`'s).

        The first one that writes records the request's signature, and
        refuses a request recorded before (:class:`RequestReplayed`). When it
        fails (refused, busy), the record goes with its rollback, and is made
        again on its own just after the ack (:meth:`_record_failed`), so that
        a copy of a refused request, sent after that, does not succeed once
        things have changed. (A copy sent in the moment before it, or after
        the process died in that moment, is not refused.)"""
        slack_user = self.slack_user
        if read_only:
            self._make_workspace(slack_user)
        records = not read_only and self.signature is not None and not self._recorded
        try:
            with self._unit_of_work(slack_user, read_only=read_only, snapshot=snapshot, records=records) as (
                session, actor,
            ):
                yield session, actor
        except RequestReplayed:
            raise
        except Exception:
            if records:
                self._recorded = True  # by the job below; the request's later transactions must not wait for it
                self.services.after_ack.submit(self._record_failed)
            raise
        if records:
            self._recorded = True  # committed: the request's later transactions are its own, not replays

    def _make_workspace(self, slack_user: SlackUser) -> None:
        """On SQLite, make the workspace on its first use in a write of its own
        (once a process): made in the read-only unit (``ensure_workspace``),
        the read became a write, which SQLite refuses at once, without waiting
        its turn, once another request wrote since the read began: a new
        workspace's first reads, several at once, were "Too many changes"."""
        services = self.services
        if self.team_id in services.workspaces_made or services.engine.dialect.name != "sqlite":
            return
        with unit_of_work(services.engine, read_only=True, max_wait=REQUEST_MAX_WAIT) as session:
            made = session.get(Workspace, self.team_id) is not None
        if not made:
            with self._unit_of_work(slack_user, read_only=False, snapshot=False, records=False) as (session, actor):
                ensure_workspace(session, actor)
        services.workspaces_made.add(self.team_id)

    def refuse_a_copy(self) -> None:
        """Record the request's signature now, in a transaction of its own
        (:class:`RequestReplayed` when it was recorded before), ahead of slow
        work a copy must not get to do: an import's download and parse."""
        if self.signature is None or self._recorded:
            return
        with self.transaction():
            pass

    def _record_failed(self) -> None:
        """Record the signature of a request whose change failed (after the
        ack, so that a busy database does not hold up the answer; waiting no
        longer than a request would, so that it holds no after-ack thread long)."""
        try:
            with unit_of_work(self.services.engine, max_wait=REQUEST_MAX_WAIT) as session:
                record_handled(session, team_id=self.team_id, signature=self.signature, now=self.services.clock.now())  # type: ignore[arg-type]
        except SQLAlchemyError as error:  # its copies could then still be tried; nothing else is at stake
            log.warning("could not record the failed request of %s: %s", self.user_id, error)
        except Exception:  # in a pool's future nobody reads: logged here, with its traceback
            log.exception("recording the failed request of %s failed", self.user_id)

    @contextmanager
    def _unit_of_work(
        self, slack_user: SlackUser, *, read_only: bool, snapshot: bool, records: bool
    ) -> Iterator[tuple[Session, Actor]]:
        tz = self.tz  # before the unit of work: when Slack did not answer, it reads the database itself
        with unit_of_work(self.services.engine, read_only=read_only, snapshot=snapshot,
                          max_wait=REQUEST_MAX_WAIT) as session:
            actor = load_actor(
                session,
                team_id=self.team_id,
                user_id=self.user_id,
                tz=tz,
                clock=self.services.clock,
                rules=self.services.settings.rules,
                configured_admins=self.services.settings.poam_admins,
                workspace_admin=slack_user.workspace_admin,
            )
            if records and not record_handled(
                session, team_id=self.team_id, signature=self.signature, now=self.services.clock.now()  # type: ignore[arg-type]
            ):
                raise RequestReplayed("This exact request was sent before and already handled, so nothing was changed.")
            yield session, actor
            if slack_user.fresh and not read_only:  # after the change: a workspace's first one creates it
                remember_person(session, team_id=self.team_id, user_id=self.user_id, tz=slack_user.tz,
                                name=slack_user.name, seen_at=slack_user.seen_at, clock=self.services.clock,
                                slack_admin=slack_user.workspace_admin)


class RequestReplayed(PoamError):
    """A signed request that was handled before, sent again."""


def signature_of(request: BoltRequest) -> str | None:
    """A request's ``X-Slack-Signature`` header; None in Socket Mode (no HTTP)."""
    values = request.headers.get("x-slack-signature") or []
    return values[0] if values else None
