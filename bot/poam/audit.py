"""The audit trail: append-only and hash-chained per workspace.

Each event's hash covers its own content and the previous event's hash, and
the workspace row keeps the latest hash and sequence number. Editing an event
breaks its hash; deleting one leaves a gap in the sequence (or, for the last
one, a head that no longer matches). :func:`verify_chain` finds the first
such break.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from typing import Any, NoReturn

from sqlalchemy import bindparam, func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.poam.actor import Actor, RolesOnUse
from bot.poam.errors import UNREADABLE, AuditTrailOutOfStep, InvalidInput, PermissionDenied, UnreadableEvent
from bot.store import counters
from bot.store.models import AUDIT_SEQ_UNIQUE, AuditEvent, Item, Workspace, table_of

log = logging.getLogger(__name__)

_VERIFY_BATCH = 1000
_INSERT_BATCH = 1000

_EVENTS = table_of(AuditEvent)
#: What ``_chained_rows`` fills in: every column but the id.
_EVENT_COLUMNS = tuple(name for name in _EVENTS.c.keys() if name != "id")
#: One event and the chain's new head in one statement, built once: PostgreSQL
#: runs an INSERT inside a WITH, a round trip less for every audited change
#: (nearly all write one event). SQLite cannot; there a round trip costs little.
_APPEND_ONE_POSTGRESQL = counters.SET_AUDIT_HEAD.add_cte(
    insert(_EVENTS)  # bound as event_<column>: a column's own name is SQLAlchemy's in an UPDATE
    .values({name: bindparam(f"event_{name}", type_=_EVENTS.c[name].type) for name in _EVENT_COLUMNS})
    .cte("new_event")
)


def _json_safe(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details as they will read back from the JSON column (dates as ISO text)."""
    def default(value: Any) -> str:
        if isinstance(value, date | datetime):
            return value.isoformat()
        raise TypeError(f"cannot record {type(value).__name__} in an audit event")

    return json.loads(json.dumps(dict(details), default=default))  # type: ignore[no-any-return]


def event_hash(
    *,
    prev_hash: str,
    team_id: str,
    seq: int,
    item_id: int | None,
    actor_id: str,
    action: str,
    at: datetime,
    details: Mapping[str, Any],
) -> str:
    """SHA-256 over the event's content (:func:`_content`) in a canonical JSON
    form: keys sorted, no spaces, UTF-8."""
    return _hashed(_content(prev_hash=prev_hash, team_id=team_id, seq=seq, item_id=item_id, actor_id=actor_id,
                            action=action, at=at, details=details))


def _content(
    *, prev_hash: str, team_id: str, seq: int, item_id: int | None, actor_id: str, action: str, at: datetime,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """What an event's hash covers, by the names the hash and the exported trail give them."""
    return {"prev": prev_hash, "team": team_id, "seq": seq, "item": item_id, "actor": actor_id, "action": action,
            "at": at.isoformat(), "details": details}


def _content_of(event: AuditEvent) -> dict[str, Any]:
    return _content(prev_hash=event.prev_hash, team_id=event.team_id, seq=event.seq, item_id=event.item_id,
                    actor_id=event.actor_id, action=event.action, at=event.at, details=event.details)


def _hashed(content: Mapping[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def hash_of(event: AuditEvent) -> str:
    """The hash ``event`` should carry, from its own fields."""
    return _hashed(_content_of(event))


def record(
    session: Session,
    actor: Actor,
    *,
    action: str,
    item_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one event to the actor's workspace chain (in the caller's transaction)."""
    record_many(session, actor, [(action, item_id, details or {})])


def record_many(
    session: Session, actor: Actor, entries: Sequence[tuple[str, int | None, Mapping[str, Any]]]
) -> None:
    """Append several events (action, item id, details) in order, reserving their
    sequence numbers in one statement and inserting them in batches (bulk imports
    write thousands: no ORM objects, and never all their rows at once)."""
    # The operation's own pending changes go first, as when events were ORM
    # objects: a Core INSERT does not autoflush, and a broken constraint should
    # still fail inside the operation rather than at commit.
    session.flush()
    first, head = counters.next_audit_slot(session, team_id=actor.team_id, count=len(entries))
    _check_roles_still_held(session, actor)
    rows = _chained_rows(actor, entries, first_seq=first, prev_hash=head)
    try:
        if len(entries) == 1 and session.get_bind().dialect.name == "postgresql":
            row = next(rows)
            params = {f"event_{name}": value for name, value in row.items()}
            session.execute(_APPEND_ONE_POSTGRESQL, {**params, "workspace": actor.team_id, "new_head": row["hash"]})
            return
        while batch := list(islice(rows, _INSERT_BATCH)):
            session.exec(insert(_EVENTS), params=batch)
            head = batch[-1]["hash"]
    except IntegrityError as error:
        if not _sequence_taken(error):
            raise
        # The operation's own writes are in this transaction: it must not
        # commit, even under a caller that catches refusals and goes on.
        session.rollback()
        log.error("workspace %s: audit events #%s-#%s collide with events past the recorded head: change refused (%s)",
                  actor.team_id, first, first + len(entries) - 1, error.orig)
        raise AuditTrailOutOfStep(OUT_OF_STEP) from error
    counters.set_audit_head(session, team_id=actor.team_id, head=head)


def _check_roles_still_held(session: Session, actor: Actor) -> None:
    """Refuse a change made on roles taken away meanwhile. On PostgreSQL a role
    check reads the grants as committed then: a verifier whose role an admin
    revoked after that check verified all the same, recorded after the
    revocation; two admins revoking each other both succeeded. The change now
    holds the workspace row (its audit slot), as a role change does until it
    commits, so the grants read again are current. (SQLite's writers run one
    at a time: nothing can change between.)"""
    roles = actor.roles
    if (isinstance(roles, RolesOnUse) and session.get_bind().dialect.name == "postgresql"
            and roles.lost_since_relied_on()):
        refuse_changed_meanwhile(session)


def refuse_changed_meanwhile(session: Session) -> NoReturn:
    """Refuse a change whose actor lost, while it ran, what let them make it
    (a role, being a system's named AO): rolled back here, as for a trail out
    of step, so that nothing of it commits, even under a caller that catches
    refusals and goes on."""
    session.rollback()
    raise PermissionDenied(ROLES_CHANGED)


def _sequence_taken(error: IntegrityError) -> bool:
    """The chain's one-number-per-event constraint refused the insert (as
    PostgreSQL names it, or as SQLite describes it)."""
    constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    return constraint == AUDIT_SEQ_UNIQUE or "audit_events.team_id, audit_events.seq" in str(error.orig)


def _chained_rows(
    actor: Actor, entries: Iterable[tuple[str, int | None, Mapping[str, Any]]], *, first_seq: int, prev_hash: str
) -> Iterator[dict[str, Any]]:
    """The events as ``audit_events`` rows, each one's hash covering the one before."""
    for seq, (action, item_id, details) in enumerate(entries, start=first_seq):
        at, safe = actor.now(), _json_safe(details)
        digest = event_hash(prev_hash=prev_hash, team_id=actor.team_id, seq=seq, item_id=item_id,
                            actor_id=actor.user_id, action=action, at=at, details=safe)
        yield {"team_id": actor.team_id, "seq": seq, "item_id": item_id, "actor_id": actor.user_id,
               "action": action, "at": at, "details": safe, "prev_hash": prev_hash, "hash": digest}
        prev_hash = digest


#: How a break at the chain's newest end reads (``verify_chain``, ``head_breaks``).
ADDED_AFTERWARDS = "is not in the recorded chain (added afterwards)"
BEFORE_THE_START = "is not in the recorded chain (numbered before its first event)"
NEWEST_DELETED = "is missing (the newest events were deleted)"
HEAD_REPLACED = "was replaced (it does not match the recorded head)"
#: An anchor's event no longer as recorded outside the database (a rewrite with hashes recomputed).
NOT_AS_ANCHORED = "is not the event recorded outside the database (rewritten, its hashes recomputed)"
#: The shortest hash prefix an anchor may give: 64 bits, past any forging.
ANCHOR_PREFIX = 16
#: What a change answers that relied on a role taken away meanwhile (:func:`refuse_changed_meanwhile`).
ROLES_CHANGED = "Your roles changed while this was being done, so nothing was changed; run it again."
#: What a change refused by AuditTrailOutOfStep answers.
OUT_OF_STEP = (
    "Nothing was changed: this workspace's audit trail already holds events past the one it records as its "
    "newest (the database was restored or copied inconsistently, or edited). An administrator should run "
    "`poam-bot audit verify` before any more changes are made."
)


@dataclass(frozen=True)
class ChainBreak:
    team_id: str
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"workspace {self.team_id}: audit event #{self.seq} {self.reason}"


@dataclass(frozen=True)
class Anchor:
    """A workspace's audit head as recorded outside its database (a digest
    posted in Slack, a verify's output kept elsewhere): event ``seq`` and
    the start of its ``hash``. The chain's head lives in the database it
    guards, so whoever can write there can rewrite events, recompute every
    hash after them and move the head, and the chain still verifies; it
    cannot also change what was recorded elsewhere."""

    team_id: str
    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``T0123ABCD:1234:9f86d081884c7d65`` (a hash of 16 hex digits or more)."""
        team_id, _, rest = text.strip().partition(":")
        seq_text, _, hash_text = rest.partition(":")
        hash_text = hash_text.lower()
        if (not team_id or not (seq_text.isascii() and seq_text.isdigit()) or int(seq_text) < 1
                or len(hash_text) < ANCHOR_PREFIX
                or len(hash_text) > 64 or any(c not in "0123456789abcdef" for c in hash_text)):
            raise InvalidInput(f"`{text[:80]}` is not an audit anchor; write it TEAM:SEQ:HASH "
                               f"(the hash's first {ANCHOR_PREFIX} hex digits or more), as a digest shows it.")
        return cls(team_id, int(seq_text), hash_text)

    def __str__(self) -> str:
        return f"{self.team_id}:{self.seq}:{self.hash}"


@dataclass(frozen=True)
class ChainReport:
    team_id: str
    events: int
    broken: ChainBreak | None
    #: The newest event's number and hash (the chain's head), when the chain is intact.
    head: Anchor | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _events(session: Session, team_id: str, *, item_id: int | None = None) -> Iterator[AuditEvent]:
    """The workspace's events (or one item's) in sequence order, fetched in
    batches: every one, those numbered before the chain's start too (written
    by hand: ``verify_chain`` reports them, as the history shows them)."""
    last_seq: int | None = None
    mine = [AuditEvent.team_id == team_id] + ([AuditEvent.item_id == item_id] if item_id is not None else [])
    while True:
        after = [AuditEvent.seq > last_seq] if last_seq is not None else []
        try:
            batch = session.exec(
                select(AuditEvent).where(*mine, *after).order_by(col(AuditEvent.seq)).limit(_VERIFY_BATCH)
            ).all()
        except (ValueError, TypeError):  # a column edited by hand (SQLite keeps anything): read them alone up to it
            yield from _up_to_unreadable(session, team_id, [*mine, *after])
            return  # not reached: it raises at the event that cannot be read
        if not batch:
            return
        yield from batch
        last_seq = batch[-1].seq
        for event in batch:  # keep memory flat on long chains, leave the caller's objects alone
            session.expunge(event)


def _up_to_unreadable(session: Session, team_id: str, where: list[Any]) -> Iterator[AuditEvent]:
    """A batch of events that failed to load, read one at a time: those before
    the one that cannot be read, then :class:`UnreadableEvent`."""
    seqs = session.exec(select(AuditEvent.seq).where(*where).order_by(col(AuditEvent.seq)).limit(_VERIFY_BATCH)).all()
    for seq in seqs:
        try:
            event = session.exec(select(AuditEvent).where(*where, AuditEvent.seq == seq)).one()
        except (ValueError, TypeError):  # JSONDecodeError too
            raise UnreadableEvent(team_id, seq) from None
        yield event
        session.expunge(event)
    raise AssertionError("a batch of events failed to load, and none of them alone")


def trail(session: Session, *, team_id: str, item_id: int | None = None) -> Iterator[dict[str, Any]]:
    """The workspace's audit events (or one item's) in order, for an assessor:
    each the content its hash covers (``prev``, ``team``, ``seq``, ``item``,
    ``actor``, ``action``, ``at``, ``details``), its ``hash``, and the item's
    ``item_number``. The SHA-256 of that content as canonical JSON (keys
    sorted, no spaces, UTF-8) is ``hash``, and each ``prev`` the ``hash``
    before it: the whole trail can be checked without this code."""
    numbers = dict(session.exec(
        select(Item.id, Item.number).where(Item.team_id == team_id, *([Item.id == item_id] if item_id else []))
    ).all())
    for event in _events(session, team_id, item_id=item_id):
        yield _content_of(event) | {"hash": event.hash, "item_number": numbers.get(event.item_id)}


def verify_chain(session: Session, *, team_id: str, anchors: Sequence[Anchor] = ()) -> ChainReport:
    """Walk the workspace's chain and report the first break, if any: also an
    event not as ``anchors`` (this workspace's) recorded it, or missing."""
    workspace = session.get(Workspace, team_id)
    if workspace is None:
        return ChainReport(team_id, 0, None)
    head_seq, head_hash = workspace.audit_seq, workspace.audit_head
    anchored: dict[int, list[str]] = {}
    for anchor in anchors:
        if anchor.team_id == team_id:
            anchored.setdefault(anchor.seq, []).append(anchor.hash)
    expected_seq, prev_hash, count = 1, "", 0
    # The number each item's making recorded, and the event that recorded it.
    made: dict[int, tuple[object, int]] = {}
    try:
        for event in _events(session, team_id):
            count += 1
            broken = _break_at(event, anchored=anchored, head_seq=head_seq, expected_seq=expected_seq,
                               prev_hash=prev_hash)
            if broken is not None:
                return ChainReport(team_id, count, broken)
            expected_seq, prev_hash = event.seq + 1, event.hash
            if event.action in _MAKINGS and event.item_id is not None:
                made[event.item_id] = (event.details.get("number"), event.seq)
    except UnreadableEvent as unreadable:
        return ChainReport(team_id, count + 1, ChainBreak(team_id, unreadable.seq, UNREADABLE))
    if head_seq != expected_seq - 1:
        return ChainReport(
            team_id, count, ChainBreak(team_id, expected_seq, NEWEST_DELETED)
        )
    if head_hash != prev_hash:
        return ChainReport(
            team_id, count, ChainBreak(team_id, head_seq, HEAD_REPLACED)
        )
    if anchored and max(anchored) > head_seq:  # recorded outside, gone since (the head moved back over it)
        return ChainReport(team_id, count, ChainBreak(team_id, head_seq + 1, NEWEST_DELETED))
    renumbered = _renumbered(session, team_id, made)
    if renumbered is not None:
        return ChainReport(team_id, count, renumbered)
    return ChainReport(team_id, count, None, Anchor(team_id, head_seq, head_hash) if head_seq else None)


#: The events that make an item, each recording its number.
_MAKINGS = frozenset({"item.logged", "item.imported"})


def _renumbered(session: Session, team_id: str, made: Mapping[int, tuple[object, int]]) -> ChainBreak | None:
    """An item whose number is not the one its making recorded: the chain
    binds events to items by id, and the items' numbers, which everyone goes
    by (``POAM-2``), could be swapped behind it, each trail then read as another's."""
    items = session.exec(select(Item.id, Item.number).where(Item.team_id == team_id).order_by(col(Item.id)))
    for item_id, number in items:
        recorded, seq = made.get(item_id or 0, (number, 0))
        if recorded != number:
            return ChainBreak(team_id, seq, f"made item number {recorded}, which is numbered {number} now "
                                            "(renumbered outside the bot)")
    return None


def _break_at(
    event: AuditEvent, *, anchored: Mapping[int, list[str]], head_seq: int, expected_seq: int, prev_hash: str
) -> ChainBreak | None:
    """How ``event`` breaks the chain, walked this far, if it does."""
    team_id = event.team_id
    if not all(event.hash.startswith(kept) for kept in anchored.get(event.seq, ())):
        return ChainBreak(team_id, event.seq, NOT_AS_ANCHORED)
    if event.seq < 1:
        return ChainBreak(team_id, event.seq, BEFORE_THE_START)
    if event.seq > head_seq:
        return ChainBreak(team_id, event.seq, ADDED_AFTERWARDS)
    if event.seq != expected_seq:
        return ChainBreak(team_id, expected_seq, "is missing (deleted)")
    if event.prev_hash != prev_hash:
        return ChainBreak(team_id, event.seq, "does not follow the event before it")
    if hash_of(event) != event.hash:
        return ChainBreak(team_id, event.seq, f"({event.action}) was altered")
    return None


def head_break(session: Session, *, team_id: str) -> ChainBreak | None:
    """Whether the recorded head names the newest event, in two or three
    indexed reads (at start-up; ``verify_chain`` walks the whole chain): the
    break a full walk would report at the chain's newest end, if any."""
    workspace = session.get(Workspace, team_id)
    if workspace is None:
        return None
    newest = session.exec(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.team_id == team_id)
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).first()
    newest_seq, newest_hash = newest or (0, "")
    if newest_seq > workspace.audit_seq:  # the first of them, as a full walk finds it
        first_past = session.exec(
            select(func.min(AuditEvent.seq)).where(AuditEvent.team_id == team_id, AuditEvent.seq > workspace.audit_seq)
        ).one()
        return ChainBreak(team_id, first_past, ADDED_AFTERWARDS)
    if newest_seq < workspace.audit_seq:
        return ChainBreak(team_id, newest_seq + 1, NEWEST_DELETED)
    if newest_hash != workspace.audit_head:
        return ChainBreak(team_id, newest_seq, HEAD_REPLACED)
    return None


def head_breaks(session: Session) -> list[ChainBreak]:
    """``head_break`` of every workspace that has one."""
    return [broken for team_id in _team_ids(session) if (broken := head_break(session, team_id=team_id)) is not None]


def verify_all(session: Session, *, anchors: Sequence[Anchor] = ()) -> list[ChainReport]:
    """One report per workspace in the database."""
    return [verify_chain(session, team_id=team_id, anchors=anchors) for team_id in _team_ids(session)]


def _team_ids(session: Session) -> Sequence[str]:
    return session.exec(select(Workspace.team_id).order_by(col(Workspace.team_id))).all()
