"""The store contract: what the engine needs from durable state, and nothing more.

Narrow enough for SQLite and PostgreSQL: load, one atomic commit per step (with
optimistic concurrency on the encounter's version), timelines, deadlines and the
outbox, claimed with leases so that two workers never take the same row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import NoReturn, Protocol, TypeVar, runtime_checkable

import attrs
from attrs import field, frozen

from ..arguments import check_limit as _check_limit
from ..errors import InvalidArgument, StoreError
from ..events import Event, NotificationDeadLettered, NotificationDelivered, NotificationQueued
from ..outbox import Notification
from ..protocol.model import Encounter
from .refusals import Refusal

__all__ = [
    "Change",
    "PendingDeadline",
    "Store",
    "check_change",
    "check_dead_letter",
    "check_limit",
    "numbered",
]

E = TypeVar("E", bound=Event)


@frozen(kw_only=True)
class PendingDeadline:
    """A scheduled deadline: if ``encounter_id`` is still in ``step`` at ``due``,
    the clock fires ``event``.

    :param id: stable id (``<encounter>:v<version>:<step>``).
    """

    id: str
    encounter_id: str
    step: str
    event: str
    due: datetime


def _events(items: Iterable[Event]) -> tuple[Event, ...]:
    return tuple(items)


def _deadlines(items: Iterable[PendingDeadline]) -> tuple[PendingDeadline, ...]:
    return tuple(items)


def _ids(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _notes(items: Iterable[Notification]) -> tuple[Notification, ...]:
    return tuple(items)


@frozen(kw_only=True)
class Change:
    """Everything one ``open`` or ``fire`` writes, committed in one transaction.

    :param encounter: the new snapshot.
    :param expected_version: the version the change was computed from; ``None``
        for a new encounter.
    :param events: new events, ``seq`` 0: the store numbers them.
    :param schedule: deadlines to add.
    :param clear: ids of deadlines to remove.
    :param outbox: notifications to queue.
    :param consume: the id of the deadline this change fires (a step taken by the
        clock): the commit removes it and fails with :class:`DeadlineGone`, nothing
        written, when it is no longer pending, so that a worker whose claim ran out
        cannot fire a deadline another worker fired meanwhile. ``None`` for a step
        a person takes.
    """

    encounter: Encounter
    expected_version: int | None
    events: tuple[Event, ...] = field(converter=_events)
    schedule: tuple[PendingDeadline, ...] = field(default=(), converter=_deadlines)
    clear: tuple[str, ...] = field(default=(), converter=_ids)
    outbox: tuple[Notification, ...] = field(default=(), converter=_notes)
    consume: str | None = None


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(a.name for a in attrs.fields(cls))
    return names


def numbered(event: E, seq: int) -> E:
    """``event`` with its sequence number: what ``attrs.evolve(event, seq=seq)``
    gives, without its per-call introspection (events have no converters or
    validators to run). Stores call it for every event they commit."""
    copy = object.__new__(type(event))
    for name in _field_names(type(event)):
        object.__setattr__(copy, name, getattr(event, name))
    object.__setattr__(copy, "seq", seq)
    return copy


class _Owned(Protocol):
    @property
    def encounter_id(self) -> str: ...


def check_change(change: Change) -> None:
    """Refuse a change that does not hold together, before anything is written.

    Every store calls this first, so that all stores refuse the same changes: the
    new snapshot is exactly one version past ``expected_version`` (``1`` for a new
    encounter), every event, deadline and notification belongs to that
    encounter, and every time in it is a timezone-aware datetime.

    :raises InvalidArgument: when ``change`` is not a :class:`Change`.
    :raises StoreError: naming the encounter and what does not fit.
    """
    if not isinstance(change, Change):
        raise InvalidArgument(
            call="commit", argument="change", problem=f"a Change, not {type(change).__name__}"
        )
    encounter = change.encounter
    base = 0 if change.expected_version is None else change.expected_version
    if encounter.version != base + 1:
        raise StoreError(
            problem=f"encounter {encounter.id}: a change from version {base} must carry version"
            f" {base + 1}, not {encounter.version}; nothing was written"
        )
    eid = encounter.id
    # plain loops, and the full test of a time only when the cheap one fails: this
    # runs on every commit of every store
    opened, closed = encounter.opened_at, encounter.closed_at
    if opened.__class__ is not datetime or opened.tzinfo is None:
        _aware(eid, "the encounter's opened_at", opened)
    if closed is not None and (closed.__class__ is not datetime or closed.tzinfo is None):
        _aware(eid, "the encounter's closed_at", closed)
    for event in change.events:
        if event.encounter_id != eid:
            _foreign(eid, "event", change.events, event)
        at = event.at
        if at.__class__ is not datetime or at.tzinfo is None:
            _aware(eid, f"the time of a {type(event).__name__} event", at)
    for deadline in change.schedule:
        if deadline.encounter_id != eid:
            _foreign(eid, "deadline", change.schedule, deadline)
        due = deadline.due
        if due.__class__ is not datetime or due.tzinfo is None:
            _aware(eid, f"the due time of deadline {deadline.id}", due)
    for note in change.outbox:
        if note.encounter_id != eid:
            _foreign(eid, "notification", change.outbox, note)
        created, due, done = note.created_at, note.next_attempt_at, note.delivered_at
        if created.__class__ is not datetime or created.tzinfo is None:
            _aware(eid, f"the creation time of notification {note.key}", created)
        if due.__class__ is not datetime or due.tzinfo is None:
            _aware(eid, f"the next attempt of notification {note.key}", due)
        if done is not None and (done.__class__ is not datetime or done.tzinfo is None):
            _aware(eid, f"the delivery time of notification {note.key}", done)


def _aware(eid: str, what: str, moment: object) -> None:
    # a datetime with a time zone passes (a subclass of datetime too); the cheap test in
    # check_change leaves out a tzinfo whose utcoffset() is None, which no real zone has
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return
    shown = moment.isoformat() if isinstance(moment, datetime) else type(moment).__name__
    raise StoreError(
        problem=f"encounter {eid}: {what} ({shown}) has no time zone; stored times must be"
        " timezone-aware datetimes; nothing was written"
    )


def _foreign(eid: str, what: str, rows: Sequence[_Owned], row: _Owned) -> NoReturn:
    raise StoreError(
        problem=f"encounter {eid}: {what} {next(i for i, r in enumerate(rows) if r is row)}"
        f" of the change belongs to encounter {row.encounter_id}; nothing was written"
    )


def check_limit(limit: int | None) -> None:
    """Refuse a claim ``limit`` that is not ``None`` or a whole number from 0 to
    :data:`lastresort.arguments.MAX_LIMIT`, before anything is claimed (every store
    calls this first, so all refuse alike).

    :raises InvalidArgument: (also a :class:`ValueError`) naming the limit given.
    """
    _check_limit("claim", limit)


def check_dead_letter(
    encounter_id: str,
    event: NotificationDeadLettered,
    escalations: Sequence[Notification],
    queued: Sequence[NotificationQueued],
) -> None:
    """Refuse a dead letter whose parts do not all belong to notification's
    encounter ``encounter_id``, or whose escalations and ``queued`` events do not
    match one to one (every store calls this first).

    :raises StoreError: naming what does not fit; nothing is written."""
    if [n.key for n in escalations] != [e.key for e in queued]:
        raise StoreError(
            problem=f"encounter {encounter_id}: escalations {[n.key for n in escalations]} do not"
            f" match their NotificationQueued events {[e.key for e in queued]};"
            " nothing was written"
        )
    parts: list[_Owned] = [event, *escalations, *queued]
    for part in parts:
        if part.encounter_id != encounter_id:
            raise StoreError(
                problem=f"notification {event.key!r} belongs to encounter {encounter_id},"
                f" not {part.encounter_id}; nothing was written"
            )


@runtime_checkable
class Store(Protocol):
    """Durable state of encounters. Implementations: :class:`MemoryStore`,
    :class:`SQLiteStore`. All methods are safe to call from several threads.

    Every method refuses an argument of the wrong type (an id that is not a string,
    a naive datetime, a lease that is not a positive :class:`~datetime.timedelta`
    of at most 366 days, a limit that is not ``None`` or a count) with
    :class:`~lastresort.InvalidArgument` before anything is read or written, through
    the checks of :mod:`lastresort.arguments`, so that every store refuses alike."""

    def load(self, encounter_id: str) -> Encounter:
        """The stored encounter. :raises UnknownEncounter: when there is none."""
        ...

    def commit(self, change: Change) -> list[Event]:
        """Apply ``change`` atomically and return its events numbered.

        :raises ConcurrentUpdate: when the stored version is not
            ``change.expected_version`` (or the encounter exists already for a
            new one); nothing is written.
        :raises DeadlineGone: (a :class:`ConcurrentUpdate`) when
            ``change.consume`` names a deadline that is not pending, checked
            under the same lock as the version; nothing is written.
        :raises UnknownEncounter: when ``expected_version`` is set and the
            encounter is not stored.
        :raises StoreError: when the change does not hold together
            (:func:`check_change`) or the store fails; nothing is written.
        """
        ...

    def timeline(self, encounter_id: str) -> list[Event]:
        """The encounter's events in order. :raises UnknownEncounter:"""
        ...

    def deadlines(self, encounter_id: str) -> list[PendingDeadline]:
        """The encounter's pending deadlines, earliest first."""
        ...

    def claim_deadlines(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[PendingDeadline]:
        """Pending deadlines due at ``now``, earliest first (by instant), not claimed
        by another worker within its lease; claims them until the instant ``lease``
        after ``now`` (at most ``limit``). A claim only keeps other workers away
        for a while: firing is made exactly-once by :attr:`Change.consume`.

        :raises InvalidArgument: (a :class:`ValueError` too) for a naive ``now``, a
            ``lease`` not in (0, 366 days], a ``limit`` that is not ``None`` or a
            count (:func:`check_limit`); nothing is claimed."""
        ...

    def next_due(self) -> datetime | None:
        """When the earliest pending deadline falls due (``None`` when there is none)."""
        ...

    def release_deadline(self, deadline_id: str) -> None:
        """Remove a deadline that was claimed but could not fire (it will not fire again)."""
        ...

    def claim_outbox(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[Notification]:
        """Pending notifications (neither delivered nor dead-lettered) due at ``now``,
        oldest first; claims them for ``lease`` (at most ``limit``): a claimed one is
        due again at ``now + lease``. The engine claims one at a time.

        :raises InvalidArgument: (a :class:`ValueError` too) as
            :meth:`claim_deadlines`; nothing is claimed."""
        ...

    def delivered(
        self, key: str, event: NotificationDelivered, *, contact: str | None = None
    ) -> Event | None:
        """Mark notification ``key`` delivered and append ``event`` to its timeline
        (numbered; the encounter's version does not change), in one transaction.

        Idempotent: when ``key`` is already delivered or dead-lettered (a late
        worker whose lease ran out), nothing is written and ``None`` is returned.

        :param contact: who it was addressed to (``lastresort_party_directory``),
            kept as the notification's ``contact`` (``None``: nobody known).

        :returns: the numbered event, or ``None`` when nothing was recorded.
        :raises StoreError: when there is no notification ``key`` or ``event``
            belongs to another encounter; nothing is written."""
        ...

    def failed(
        self,
        key: str,
        attempts: int,
        next_attempt_at: datetime,
        error: str,
        *,
        contact: str | None = None,
    ) -> None:
        """Record a failed delivery attempt of notification ``key``: it is due again
        at ``next_attempt_at``. Does nothing when ``key`` is already delivered or
        dead-lettered.

        :param contact: who the attempt was addressed to, kept as the
            notification's ``contact``.

        :raises StoreError: when there is no notification ``key``."""
        ...

    def dead_lettered(
        self,
        key: str,
        event: NotificationDeadLettered,
        escalations: Sequence[Notification] = (),
        queued: Sequence[NotificationQueued] = (),
        *,
        contact: str | None = None,
    ) -> list[Event]:
        """Give up notification ``key``: mark it dead-lettered (it is never claimed
        again), append ``event`` and then ``queued`` to its timeline and queue the
        ``escalations`` (one ``queued`` event each), all in one transaction; the
        encounter's version does not change.

        Idempotent like :meth:`delivered`: when ``key`` is already delivered or
        dead-lettered, nothing is written and ``[]`` is returned.

        :returns: the numbered events.
        :raises StoreError: when there is no notification ``key``, or an event or
            escalation belongs to another encounter; nothing is written."""
        ...

    def outbox(self, encounter_id: str | None = None) -> list[Notification]:
        """Notifications (all, or one encounter's), delivered or not, oldest first."""
        ...

    def encounter_ids(self, open_only: bool = False) -> Sequence[str]:
        """Ids of stored encounters (only those not closed, with ``open_only``)."""
        ...

    def find(
        self,
        *,
        protocol: str | Collection[str] | None = None,
        state: str | Collection[str] | None = None,
        responsible: str | Collection[str] | None = None,
        overdue_at: datetime | None = None,
        overdue: bool = True,
        open_only: bool = True,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Encounter]:
        """A work queue: stored encounters that match every filter given, ordered
        by id, at most ``limit`` (page on with the last id as ``after``). The SQL
        stores answer from indexes (:mod:`lastresort.store.queries`); the memory
        store walks its encounters.

        :param protocol: only encounters of this protocol (or of any of these).
        :param state: only encounters in this step (or any of these).
        :param responsible: only encounters this party (or any of these) is
            responsible for now. An empty collection matches nothing.
        :param overdue_at: with ``overdue`` (default), only encounters with a
            pending deadline due at or before this moment; with ``overdue=False``,
            only those with none.
        :param overdue: see ``overdue_at`` (``False`` needs ``overdue_at``).
        :param open_only: leave out closed encounters (default).
        :param after: only ids after this one (the cursor of the next page).
        :param limit: the page size, at least 1.
        :raises InvalidArgument: for an argument of the wrong type or out of range
            (:func:`~lastresort.store.queries.check_find`); nothing is read.
        :raises StoreError: when a found row is unreadable or the store fails."""
        ...

    def record_refusal(self, refusal: Refusal) -> Refusal:
        """Append ``refusal`` to the refusal log, numbered one past the last (``seq``
        1, 2, 3, ... over the whole store), and return it numbered. The log is
        separate from the encounters: no encounter, timeline, version or event hash
        changes. Append-only: nothing edits or removes a refusal (retention of the
        log is the operator's, see docs/store.md).

        :raises InvalidArgument: when ``refusal`` is not a :class:`Refusal` whose every
            field may be kept (:func:`~lastresort.store.refusals.check_refusal`);
            nothing is written.
        :raises StoreError: when the store fails; nothing is written."""
        ...

    def refusals(
        self,
        *,
        encounter_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[Refusal]:
        """Recorded refusals, oldest first (by ``seq``): only ``encounter_id``'s, only
        those at or after ``since``, only those numbered after ``after_seq``, at most
        ``limit`` (page on with the last ``seq`` as ``after_seq``).

        :raises InvalidArgument: for an argument of the wrong type (``limit`` a whole
            number of at least 1); nothing is read."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...
