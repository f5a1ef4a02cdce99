"""An in-memory store: the default for tests and simulation. Not durable.

Indexed so that the engine scales to very many open encounters: deadlines and
notifications are kept per encounter, and what falls due is found through heaps
(stale heap entries are skipped lazily and compacted now and then), so that no
call walks every stored row.

The heaps are brought up to date in small batches: a commit appends the ids of new
deadlines and notifications to a list, and the commit that makes the list
:data:`_INDEX_BATCH` long pushes them (those still pending) onto the heap. So the
calls that need the order by time (:meth:`~MemoryStore.claim_deadlines`,
:meth:`~MemoryStore.next_due`, :meth:`~MemoryStore.claim_outbox`) push at most a
batch first, however many encounters were opened since the last tick: the cost of
indexing is paid by the commits, a batch at a time, never by one call under the
lock (it was O(new deadlines): 2 s for the first tick after a million opens). A
deadline cleared before its batch is pushed never reaches the heap, and a ``fire``
pays neither the timestamp nor the heap push itself (about 2 µs of a fire).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from attrs import evolve

from ..arguments import (
    check_attempts,
    check_claim,
    check_delivery,
    check_flag,
    check_moment,
    check_optional_text,
    check_text,
)
from ..clock import instant_after
from ..errors import ConcurrentUpdate, DeadlineGone, StoreError, UnknownEncounter
from ..events import Event, NotificationDeadLettered, NotificationDelivered, NotificationQueued
from ..outbox import Notification
from ..protocol.model import Encounter
from .base import (
    Change,
    PendingDeadline,
    check_change,
    check_dead_letter,
    numbered,
)
from .queries import check_find
from .refusals import Refusal, check_refusal, check_refusals_query

__all__ = ["MemoryStore"]

#: Rebuild a heap when it holds this many times more entries than live rows.
_COMPACT_FACTOR = 3
_COMPACT_MIN = 1024
#: Push new deadlines (notifications) onto their heap once this many wait: the most a
#: claim or next_due has to push first, whatever happened since the last one.
_INDEX_BATCH = 256

_DueEntry = tuple[float, str, datetime]


class MemoryStore:
    """Keeps everything in dicts behind one lock; every value stored is frozen."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._encounters: dict[str, Encounter] = {}
        self._events: dict[str, list[Event]] = {}
        self._deadlines: dict[str, PendingDeadline] = {}
        # an encounter's pending deadlines, in the order scheduled: a tuple, as an
        # encounter has one at a time (a dict per encounter would cost ~180 B more)
        self._deadlines_of: dict[str, tuple[PendingDeadline, ...]] = {}
        self._deadline_lease: dict[str, datetime] = {}
        # heaps keyed by POSIX timestamps: comparing floats is much cheaper than
        # comparing timezone-aware datetimes (each asks its tzinfo for an offset)
        # (due as a POSIX timestamp, deadline id, the deadline's due object); an entry is
        # live while the stored deadline of that id still has that very due object, so
        # telling stale entries apart needs no timestamp; may hold stale entries
        self._due: list[_DueEntry] = []
        self._due_new: list[str] = []  # ids scheduled since _due was brought up to date
        self._outbox: dict[str, Notification] = {}
        self._outbox_of: dict[str, tuple[str, ...]] = {}  # keys per encounter, in order
        self._pending: list[tuple[float, str]] = []  # (next_attempt_at, key) of undelivered
        self._pending_new: list[str] = []  # keys put since _pending was brought up to date
        # (created_at, key, next_attempt_at) of notifications found due, oldest first: a
        # claim takes from here, so that claiming one at a time costs O(log n), not a
        # sort of everything due; an entry is live while the note still has that
        # next_attempt_at (else it was claimed or failed since, and is back in _pending)
        self._ready: list[tuple[float, str, float]] = []
        self._refusals: list[Refusal] = []  # the refusal log, append-only, numbered 1, 2, ...

    # -- encounters -----------------------------------------------------------------

    def load(self, encounter_id: str) -> Encounter:
        try:
            return self._encounters[encounter_id]
        except (KeyError, TypeError):  # checked only here: load is on every fire's path
            check_text("load", "encounter_id", encounter_id)
            raise UnknownEncounter(encounter_id=encounter_id) from None

    def commit(self, change: Change) -> list[Event]:
        check_change(change)
        encounter = change.encounter
        eid = encounter.id
        with self._lock:
            current = self._encounters.get(eid)
            if change.expected_version is None:
                if current is not None:
                    raise ConcurrentUpdate(encounter_id=eid, expected=0, actual=current.version)
            elif current is None:
                raise UnknownEncounter(encounter_id=eid)
            elif current.version != change.expected_version:
                raise ConcurrentUpdate(
                    encounter_id=eid, expected=change.expected_version, actual=current.version
                )
            consume = change.consume
            if consume is not None:
                claimed = self._deadlines.get(consume)
                if claimed is None or claimed.encounter_id != eid:
                    raise DeadlineGone(
                        encounter_id=eid, deadline_id=consume, expected=change.expected_version or 0
                    )
            timeline = self._events.get(eid)
            if timeline is None:
                timeline = self._events[eid] = []
            events = list(change.events)
            seq = len(timeline)
            for event in events:
                seq += 1
                if event.seq != seq:  # not numbered as predicted: number them all here
                    start = len(timeline)
                    events = [numbered(e, start + i) for i, e in enumerate(events, start=1)]
                    break
            # nothing below can fail half-way: apply
            timeline.extend(events)
            self._encounters[eid] = encounter
            if consume is not None:
                self._drop_deadline(consume)
            for deadline_id in change.clear:
                self._drop_deadline(deadline_id)
            for deadline in change.schedule:
                self._add_deadline(deadline)
            for note in change.outbox:
                self._put_note(note)
            return events

    def next_seq(self, encounter_id: str) -> int:
        """The sequence number the encounter's next event will get (a prediction:
        :meth:`commit` renumbers events that do not follow on)."""
        return len(self._events.get(encounter_id, ())) + 1

    def timeline(self, encounter_id: str) -> list[Event]:
        check_text("timeline", "encounter_id", encounter_id)
        with self._lock:
            if encounter_id not in self._encounters:
                raise UnknownEncounter(encounter_id=encounter_id)
            return list(self._events.get(encounter_id, ()))

    def encounter_ids(self, open_only: bool = False) -> Sequence[str]:
        check_flag("encounter_ids", "open_only", open_only)
        with self._lock:
            if open_only:  # not indexed: a set of open ids would cost ~100 B per encounter
                return sorted(k for k, e in self._encounters.items() if e.closed_at is None)
            return list(self._encounters)

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
        query = check_find(
            "find",
            protocol=protocol,
            state=state,
            responsible=responsible,
            overdue_at=overdue_at,
            overdue=overdue,
            open_only=open_only,
            after=after,
            limit=limit,
        )
        if query.empty:
            return []
        with self._lock:
            # a walk of every encounter (O(n log limit)): the memory store is for tests
            # and simulation; the SQL stores answer from indexes
            found = (
                e
                for e in self._encounters.values()
                if query.matches(e, self._deadlines_of.get(e.id, ()))
            )
            return heapq.nsmallest(query.limit, found, key=lambda e: e.id)

    # -- deadlines ------------------------------------------------------------------

    def _add_deadline(self, deadline: PendingDeadline) -> None:
        did = deadline.id
        old = self._deadlines.get(did)
        if old is not None:
            self._drop_deadline(did)
        self._deadlines[did] = deadline
        eid = deadline.encounter_id
        of = self._deadlines_of.get(eid)
        self._deadlines_of[eid] = (deadline,) if of is None else (*of, deadline)
        if self._deadline_lease:
            self._deadline_lease.pop(did, None)  # a newly scheduled deadline is unclaimed
        if old is None or old.due is not deadline.due:  # else its heap entry still holds
            new = self._due_new
            new.append(did)  # pushed onto the heap by _index_due
            if len(new) >= _INDEX_BATCH:
                self._index_due()  # a batch at a time: no claim ever pushes more

    def _drop_deadline(self, deadline_id: str) -> None:
        deadline = self._deadlines.pop(deadline_id, None)
        if self._deadline_lease:
            self._deadline_lease.pop(deadline_id, None)
        if deadline is not None:
            eid = deadline.encounter_id
            of = self._deadlines_of.get(eid, ())
            if len(of) == 1 and of[0].id == deadline_id:  # the usual case: its only one
                del self._deadlines_of[eid]
                return
            rest = tuple(d for d in of if d.id != deadline_id)
            if rest:
                self._deadlines_of[eid] = rest
            else:
                self._deadlines_of.pop(eid, None)

    def _live(self, entry: _DueEntry) -> PendingDeadline | None:
        deadline = self._deadlines.get(entry[1])
        return deadline if deadline is not None and deadline.due is entry[2] else None

    def _index_due(self) -> None:
        """Push the deadlines scheduled since the last call onto the heap."""
        if self._due_new:
            deadlines, heap = self._deadlines, self._due
            for did in dict.fromkeys(self._due_new):  # once per id: the current due
                deadline = deadlines.get(did)
                if deadline is not None:  # else cleared meanwhile: it never needs the heap
                    due = deadline.due
                    heapq.heappush(heap, (due.timestamp(), did, due))
            self._due_new = []
            if len(heap) > _COMPACT_MIN and len(heap) > _COMPACT_FACTOR * len(deadlines):
                self._compact_due()

    def _compact_due(self) -> None:
        self._due = [(d.due.timestamp(), d.id, d.due) for d in self._deadlines.values()]
        heapq.heapify(self._due)

    def deadlines(self, encounter_id: str) -> list[PendingDeadline]:
        # under the lock: commit stores the snapshot before it changes the deadlines, so
        # a reader that saw the new snapshot must wait for its deadlines too
        check_text("deadlines", "encounter_id", encounter_id)
        with self._lock:
            found = self._deadlines_of.get(encounter_id, ())
        if len(found) < 2:
            return list(found)
        return sorted(found, key=lambda d: (d.due, d.id))

    def claim_deadlines(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[PendingDeadline]:
        check_claim("claim_deadlines", now, lease, limit)
        with self._lock:
            self._index_due()
            claimed: list[PendingDeadline] = []
            kept: list[_DueEntry] = []  # claimed or leased: pending until cleared or released
            seen: set[str] = set()
            heap = self._due
            at = now.timestamp()
            leases = self._deadline_lease
            while heap and heap[0][0] <= at and (limit is None or len(claimed) < limit):
                entry = heapq.heappop(heap)
                deadline = self._live(entry)
                if deadline is None or deadline.id in seen:
                    continue  # cleared, released or rescheduled since it was pushed
                seen.add(deadline.id)
                kept.append(entry)
                until = leases.get(deadline.id)
                if until is not None and until > now:
                    continue
                leases[deadline.id] = instant_after(now, lease)
                claimed.append(deadline)
            for entry in kept:
                heapq.heappush(heap, entry)
            return claimed

    def next_due(self) -> datetime | None:
        with self._lock:
            self._index_due()
            heap = self._due
            while heap and self._live(heap[0]) is None:
                heapq.heappop(heap)
            return self._deadlines[heap[0][1]].due if heap else None

    def release_deadline(self, deadline_id: str) -> None:
        check_text("release_deadline", "deadline_id", deadline_id)
        with self._lock:
            self._drop_deadline(deadline_id)

    # -- outbox ---------------------------------------------------------------------

    def _put_note(self, note: Notification) -> None:
        key = note.key
        outbox = self._outbox
        old = outbox.get(key)
        eid = note.encounter_id
        if old is None:
            of = self._outbox_of.get(eid)
            self._outbox_of[eid] = (key,) if of is None else (*of, key)
        elif old.encounter_id != eid:
            moved = self._outbox_of[old.encounter_id]
            self._outbox_of[old.encounter_id] = tuple(k for k in moved if k != key)
            self._outbox_of[eid] = (*self._outbox_of.get(eid, ()), key)
        outbox[key] = note
        if note.delivered_at is None and note.dead_lettered_at is None:  # note.pending
            new = self._pending_new
            new.append(key)  # pushed onto the heap by _index_pending
            if len(new) >= _INDEX_BATCH:
                self._index_pending()  # a batch at a time: no claim ever pushes more

    def _index_pending(self) -> None:
        """Push the notifications put since the last call onto the heap."""
        if not self._pending_new:
            return
        outbox, heap = self._outbox, self._pending
        for key in dict.fromkeys(self._pending_new):  # once per key: its current attempt
            note = outbox.get(key)
            if note is not None and note.pending:
                heapq.heappush(heap, (note.next_attempt_at.timestamp(), key))
        self._pending_new = []
        if len(heap) > _COMPACT_MIN and len(heap) > _COMPACT_FACTOR * len(outbox):
            self._pending = [
                (n.next_attempt_at.timestamp(), n.key) for n in outbox.values() if n.pending
            ]
            heapq.heapify(self._pending)
            self._ready = []  # every pending notification is back in _pending

    def _note(self, key: str) -> Notification:
        try:
            return self._outbox[key]
        except KeyError:
            raise StoreError(problem=f"no notification with key {key!r} in the outbox") from None

    def claim_outbox(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[Notification]:
        check_claim("claim_outbox", now, lease, limit)
        with self._lock:
            self._index_pending()
            outbox, heap, ready = self._outbox, self._pending, self._ready
            at = now.timestamp()
            while heap and heap[0][0] <= at:  # what fell due since: into the ready heap
                due_at, key = heapq.heappop(heap)
                note = outbox.get(key)
                if note is not None and note.pending and note.next_attempt_at.timestamp() == due_at:
                    heapq.heappush(ready, (note.created_at.timestamp(), key, due_at))
            taken: list[Notification] = []
            keys: set[str] = set()
            later: list[tuple[float, str, float]] = []  # due, but not at this (earlier) now
            while ready and (limit is None or len(taken) < limit):
                entry = heapq.heappop(ready)
                note = outbox.get(entry[1])
                if (
                    note is None
                    or not note.pending
                    or note.next_attempt_at.timestamp() != entry[2]
                    or entry[1] in keys
                ):
                    continue  # settled, claimed or failed since it was found due
                if entry[2] > at:
                    later.append(entry)
                    continue
                taken.append(note)
                keys.add(entry[1])
            for entry in later:
                heapq.heappush(ready, entry)
            for note in taken:
                self._put_note(evolve(note, next_attempt_at=instant_after(now, lease)))
            return taken

    def delivered(
        self, key: str, event: NotificationDelivered, *, contact: str | None = None
    ) -> Event | None:
        check_text("delivered", "key", key)
        check_delivery("delivered", event)
        check_optional_text("delivered", "contact", contact)
        with self._lock:
            note = self._note(key)
            if event.encounter_id != note.encounter_id:
                raise StoreError(
                    problem=f"notification {key!r} belongs to encounter {note.encounter_id},"
                    f" not {event.encounter_id}; nothing was written"
                )
            if not note.pending:
                return None  # a late worker: delivered or dead-lettered meanwhile
            [delivery] = self._append(note.encounter_id, [event])
            self._outbox[key] = evolve(
                note, delivered_at=event.at, attempts=event.attempts, contact=contact
            )
            return delivery

    def _append(self, encounter_id: str, events: Sequence[Event]) -> list[Event]:
        timeline = self._events.setdefault(encounter_id, [])
        start = len(timeline)
        numbered_events = [numbered(e, start + i) for i, e in enumerate(events, start=1)]
        timeline.extend(numbered_events)
        return numbered_events

    def failed(
        self,
        key: str,
        attempts: int,
        next_attempt_at: datetime,
        error: str,
        *,
        contact: str | None = None,
    ) -> None:
        check_text("failed", "key", key)
        check_attempts("failed", attempts)
        check_moment("failed", "next_attempt_at", next_attempt_at)
        check_text("failed", "error", error)
        check_optional_text("failed", "contact", contact)
        with self._lock:
            note = self._note(key)
            if not note.pending:
                return  # a late worker: delivered or dead-lettered meanwhile
            self._put_note(
                evolve(
                    note,
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    last_error=error,
                    contact=contact,
                )
            )

    def dead_lettered(
        self,
        key: str,
        event: NotificationDeadLettered,
        escalations: Sequence[Notification] = (),
        queued: Sequence[NotificationQueued] = (),
        *,
        contact: str | None = None,
    ) -> list[Event]:
        check_text("dead_lettered", "key", key)
        check_delivery("dead_lettered", event, NotificationDeadLettered)
        check_optional_text("dead_lettered", "contact", contact)
        with self._lock:
            note = self._note(key)
            check_dead_letter(note.encounter_id, event, escalations, queued)
            if not note.pending:
                return []
            committed = self._append(note.encounter_id, [event, *queued])
            self._outbox[key] = evolve(
                note,
                dead_lettered_at=event.at,
                attempts=event.attempts,
                contact=contact,
                last_error=event.error_kind,
            )
            for escalation in escalations:
                self._put_note(escalation)
            return committed

    def outbox(self, encounter_id: str | None = None) -> list[Notification]:
        check_optional_text("outbox", "encounter_id", encounter_id)
        with self._lock:
            if encounter_id is None:
                notes = list(self._outbox.values())
            else:
                notes = [self._outbox[k] for k in self._outbox_of.get(encounter_id, ())]
        return sorted(notes, key=lambda n: (n.created_at, n.key))

    # -- refusals -------------------------------------------------------------------

    def record_refusal(self, refusal: Refusal) -> Refusal:
        check_refusal("record_refusal", refusal)
        with self._lock:
            numbered_refusal = evolve(refusal, seq=len(self._refusals) + 1)
            self._refusals.append(numbered_refusal)
            return numbered_refusal

    def refusals(
        self,
        *,
        encounter_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[Refusal]:
        check_refusals_query("refusals", encounter_id, since, limit, after_seq)
        with self._lock:
            log = self._refusals[after_seq or 0 :]
        out: list[Refusal] = []
        for refusal in log:
            if len(out) >= limit:
                break
            if encounter_id is not None and refusal.encounter_id != encounter_id:
                continue
            if since is not None and refusal.at < since:
                continue
            out.append(refusal)
        return out

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._encounters)} encounters)"
