"""An in-memory store: the default for tests and simulation. Not durable."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from attrs import evolve

from ..errors import ConcurrentUpdate, UnknownEncounter
from ..events import Event, NotificationDelivered
from ..model import Encounter
from ..outbox import Notification
from .base import Change, PendingDeadline

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps everything in dicts behind one lock; every value stored is frozen."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._encounters: dict[str, Encounter] = {}
        self._events: dict[str, list[Event]] = {}
        self._deadlines: dict[str, PendingDeadline] = {}
        self._deadline_lease: dict[str, datetime] = {}
        self._outbox: dict[str, Notification] = {}
        self._open: set[str] = set()

    def load(self, encounter_id: str) -> Encounter:
        try:
            return self._encounters[encounter_id]
        except KeyError:
            raise UnknownEncounter(encounter_id) from None

    def commit(self, change: Change) -> list[Event]:
        encounter = change.encounter
        eid = encounter.id
        with self._lock:
            current = self._encounters.get(eid)
            if change.expected_version is None:
                if current is not None:
                    raise ConcurrentUpdate(eid, 0, current.version)
            elif current is None:
                raise UnknownEncounter(eid)
            elif current.version != change.expected_version:
                raise ConcurrentUpdate(eid, change.expected_version, current.version)
            timeline = self._events.setdefault(eid, [])
            start = len(timeline)
            numbered = [evolve(e, seq=start + i + 1) for i, e in enumerate(change.events)]
            # nothing above can fail half-way: apply
            timeline.extend(numbered)
            self._encounters[eid] = encounter
            if encounter.closed_at is None:
                self._open.add(eid)
            else:
                self._open.discard(eid)
            for deadline_id in change.clear:
                self._deadlines.pop(deadline_id, None)
                self._deadline_lease.pop(deadline_id, None)
            for deadline in change.schedule:
                self._deadlines[deadline.id] = deadline
            for note in change.outbox:
                self._outbox[note.key] = note
            return numbered

    def timeline(self, encounter_id: str) -> list[Event]:
        with self._lock:
            if encounter_id not in self._encounters:
                raise UnknownEncounter(encounter_id)
            return list(self._events.get(encounter_id, ()))

    def deadlines(self, encounter_id: str) -> list[PendingDeadline]:
        with self._lock:
            found = [d for d in self._deadlines.values() if d.encounter_id == encounter_id]
        return sorted(found, key=lambda d: (d.due, d.id))

    def claim_deadlines(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[PendingDeadline]:
        with self._lock:
            due = sorted(
                (
                    d
                    for d in self._deadlines.values()
                    if d.due <= now and self._deadline_lease.get(d.id, now) <= now
                ),
                key=lambda d: (d.due, d.id),
            )[:limit]
            for deadline in due:
                self._deadline_lease[deadline.id] = now + lease
            return due

    def next_due(self) -> datetime | None:
        with self._lock:
            return min((d.due for d in self._deadlines.values()), default=None)

    def release_deadline(self, deadline_id: str) -> None:
        with self._lock:
            self._deadlines.pop(deadline_id, None)
            self._deadline_lease.pop(deadline_id, None)

    def claim_outbox(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[Notification]:
        with self._lock:
            due = sorted(
                (
                    n
                    for n in self._outbox.values()
                    if n.delivered_at is None and n.next_attempt_at <= now
                ),
                key=lambda n: (n.created_at, n.key),
            )[:limit]
            claimed = [evolve(n, next_attempt_at=now + lease) for n in due]
            for note in claimed:
                self._outbox[note.key] = note
            return due

    def delivered(self, key: str, event: NotificationDelivered) -> Event:
        with self._lock:
            note = self._outbox[key]
            timeline = self._events.setdefault(note.encounter_id, [])
            numbered = evolve(event, seq=len(timeline) + 1)
            timeline.append(numbered)
            self._outbox[key] = evolve(
                note, delivered_at=event.at, attempts=event.attempts, contact=None
            )
            return numbered

    def failed(self, key: str, attempts: int, next_attempt_at: datetime, error: str) -> None:
        with self._lock:
            note = self._outbox[key]
            self._outbox[key] = evolve(
                note, attempts=attempts, next_attempt_at=next_attempt_at, last_error=error
            )

    def outbox(self, encounter_id: str | None = None) -> list[Notification]:
        with self._lock:
            notes = [
                n
                for n in self._outbox.values()
                if encounter_id is None or n.encounter_id == encounter_id
            ]
        return sorted(notes, key=lambda n: (n.created_at, n.key))

    def encounter_ids(self, open_only: bool = False) -> Sequence[str]:
        with self._lock:
            return sorted(self._open) if open_only else list(self._encounters)

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._encounters)} encounters)"
