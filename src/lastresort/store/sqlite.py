"""The embedded default store: one SQLite file, durable, shared by threads and processes.

WAL journal, ``synchronous=FULL`` by default, one ``BEGIN IMMEDIATE`` transaction
per commit holding the event rows, the encounter snapshot, the deadline changes,
the outbox rows and the ledger entry. Sequence numbers and the audit hashes are
assigned inside that transaction, so they are gapless per encounter whatever
process writes. Every thread gets its own connection (and a forked child its own,
never one inherited from its parent).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from attrs import evolve

from ..arguments import (
    MAX_LIMIT,
    check_attempts,
    check_claim,
    check_delivery,
    check_flag,
    check_moment,
    check_optional_text,
    check_text,
)
from ..clock import instant_after
from ..errors import (
    ConcurrentUpdate,
    DeadlineGone,
    InvalidArgument,
    LastResortError,
    StoreError,
    UnknownEncounter,
)
from ..events import Event, NotificationDeadLettered, NotificationDelivered, NotificationQueued
from ..outbox import Notification
from ..protocol.model import Encounter
from .audit import (
    GENESIS,
    event_json,
    facts_digest,
    hash_hex,
    link_hash,
    snapshot_digest,
)
from .base import (
    Change,
    PendingDeadline,
    check_change,
    check_dead_letter,
    numbered,
)
from .connections import Connections
from .queries import check_find, find_query
from .refusals import (
    Refusal,
    check_refusal,
    check_refusals_query,
    load_refusal,
    refusal_json,
    refusal_link,
    refusals_query,
)
from .row_codecs import (
    converter,
    encounter_canonical_json,
    load_encounter,
    load_event,
    load_plain,
    load_row,
)
from .rows import (
    APPEND_LEDGER,
    DEADLINE,
    FACTS,
    GUARD,
    GUARDED,
    HEAD,
    INSERT_EVENT,
    INSERT_SNAPSHOT,
    NOTE,
    NOTE_NAMES,
    PENDING,
    SELECT_SNAPSHOT,
    SEQ,
    SNAPSHOT,
    VERSION,
    ledger_link_bytes,
    note_row,
    row_data,
)
from .schema import SCHEMA_VERSION, micros, schema_version, upgrade

__all__ = ["SQLiteStore"]

T = TypeVar("T")
_SYNC = ("FULL", "NORMAL", "EXTRA")


class SQLiteStore:
    """Encounters, their hash-chained timelines, deadlines and the outbox in one
    SQLite file. Safe from several threads and several processes at once.

    :param path: the database file (created, with its directory's permission, when
        missing).
    :param synchronous: ``"FULL"`` (default: a returned commit survives power
        loss), ``"NORMAL"`` (survives a crash of the process, may lose the last
        commits on power loss; faster) or ``"EXTRA"``.
    :param busy_timeout: seconds to wait for another writer before failing with
        :class:`StoreError`.
    :raises ValueError: for ``:memory:``, an unknown ``synchronous`` or a
        negative timeout.
    :raises StoreError: when the file cannot be opened, is not a lastresort
        store or was written by a newer lastresort.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 10.0,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise InvalidArgument(
                call="SQLiteStore",
                argument="path",
                problem=f"a file path (str or os.PathLike), not {type(path).__name__}",
            )
        if str(path) in {"", ":memory:"} or str(path).startswith("file:"):
            raise ValueError(
                f"SQLiteStore needs a file path, not {str(path)!r}; use MemoryStore in memory"
            )
        sync = synchronous.upper()
        if sync not in _SYNC:
            raise ValueError(
                f"synchronous must be one of {', '.join(_SYNC)}, not {synchronous!r}"
                " (OFF would lose commits that fire returned)"
            )
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must not be negative, got {busy_timeout}")
        self.path = Path(path)
        self.synchronous = sync
        self.busy_timeout = float(busy_timeout)
        self._db = Connections(
            self.path, sync, self.busy_timeout, {"ledger_link": ledger_link_bytes}
        )
        self._seen = threading.local()  # (id, row) of the encounter this thread loaded last
        try:
            conn = self._db.get()
            # refuse another application's file or a newer one before touching it
            if schema_version(conn, str(self.path)) > SCHEMA_VERSION:
                upgrade(conn, name=str(self.path))  # raises, naming both versions
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(problem=f"{self.path}: cannot switch to WAL (journal mode {mode})")
            upgrade(conn, name=str(self.path))
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(
                problem=f"cannot open {self.path} as a lastresort store: {exc}"
            ) from exc
        except LastResortError:
            self.close()
            raise

    # -- encounters ------------------------------------------------------------------

    def load(self, encounter_id: str) -> Encounter:
        check_text("load", "encounter_id", encounter_id)
        rows = self._db.read("load an encounter", SELECT_SNAPSHOT, (encounter_id,))
        if not rows:
            raise UnknownEncounter(encounter_id=encounter_id)
        found = rows[0]
        # this thread's commit of the encounter will likely build on this very row: keep
        # it to prepare the commit before taking the write lock (where it is checked)
        self._seen.row = (encounter_id, found)
        p, v, state, responsible, version, opened, closed, _, channel, facts = found[:10]
        try:
            return load_encounter(
                (encounter_id, p, v, state, responsible, facts, version, opened, closed, channel)
            )
        except (StoreError, ValueError) as exc:
            raise StoreError(
                problem=f"{self.path}: encounter {encounter_id} is unreadable: {exc}"
            ) from exc

    def next_seq(self, encounter_id: str) -> int:
        """The sequence number the encounter's next event will likely get: one past
        the last event of the row this thread loaded last (``0``, leaving the
        numbering to :meth:`commit`, for another encounter). :meth:`commit`
        renumbers events that do not follow on the stored timeline."""
        seen = self._last_seen(encounter_id)
        return 0 if seen is None else int(seen[SEQ]) + 1

    def _last_seen(self, encounter_id: str) -> tuple[Any, ...] | None:
        seen: tuple[str, tuple[Any, ...]] | None = getattr(self._seen, "row", None)
        return seen[1] if seen is not None and seen[0] == encounter_id else None

    def _structure(self, data: dict[str, Any], cls: type[T], where: str) -> T:
        try:
            return load_row(data, cls)
        except StoreError as exc:
            raise StoreError(problem=f"{self.path}: {where} is unreadable: {exc}") from exc

    def commit(self, change: Change) -> list[Event]:
        check_change(change)
        encounter = change.encounter
        eid = encounter.id
        # serialise and hash outside the transaction: the write lock is held only for
        # the statements
        facts, snap = encounter_canonical_json(encounter)
        datas = [event_json(e) for e in change.events]
        closed = encounter.closed_at
        fields = (
            encounter.protocol,
            encounter.protocol_version,
            encounter.state,
            encounter.responsible,
            encounter.version,
            encounter.opened_at.isoformat(),
            None if closed is None else closed.isoformat(),
            None if closed is None else micros(closed),
            encounter.channel,
            facts,
        )
        deadlines = [
            (d.id, eid, d.step, d.event, d.due.isoformat(), micros(d.due)) for d in change.schedule
        ]
        notes = [note_row(n) for n in change.outbox]
        expected = change.expected_version
        seen = None if expected is None else self._last_seen(eid)
        plan = None
        if seen is not None and seen[VERSION] == expected:
            plan = _Plan(change, datas, fields, snap, seen)
        elif expected is None:
            plan = _Plan(change, datas, fields, snap, None)
        # the kept row (facts included) has served: after this commit it is stale, and
        # nothing of an encounter should outlive its use in memory (purges)
        self._seen.row = None
        with self._db.write(f"commit encounter {eid}") as conn:
            if plan is None or not plan.apply(conn, eid):
                found = conn.execute(SELECT_SNAPSHOT, (eid,)).fetchone()
                if expected is None:
                    assert found is not None  # the insert found it
                    raise ConcurrentUpdate(encounter_id=eid, expected=0, actual=found[VERSION])
                if found is None:
                    raise UnknownEncounter(encounter_id=eid)
                if found[VERSION] != expected:
                    raise ConcurrentUpdate(
                        encounter_id=eid, expected=expected, actual=found[VERSION]
                    )
                plan = _Plan(change, datas, fields, snap, found)
                if not plan.apply(conn, eid):  # pragma: no cover - the write lock is held
                    raise StoreError(
                        problem=f"{self.path}: encounter {eid} changed under the write lock"
                    )
            # a step fired by the clock removes its deadline, and only if it is still
            # there: a worker whose claim ran out cannot fire it a second time
            if change.consume is not None and not (
                conn.execute(
                    "DELETE FROM deadlines WHERE id = ? AND encounter_id = ?",
                    (change.consume, eid),
                ).rowcount
            ):
                raise DeadlineGone(
                    encounter_id=eid, deadline_id=change.consume, expected=expected or 0
                )
            conn.executemany(INSERT_EVENT, plan.rows)
            if plan.rows:
                self._append_ledger(conn, eid, plan.seq, plan.head)
            if change.clear:
                conn.executemany("DELETE FROM deadlines WHERE id = ?", [(d,) for d in change.clear])
            if deadlines:
                conn.executemany(
                    "INSERT INTO deadlines (id, encounter_id, step, event, due, due_us)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                    " encounter_id = excluded.encounter_id, step = excluded.step,"
                    " event = excluded.event, due = excluded.due, due_us = excluded.due_us,"
                    " lease_us = NULL",
                    deadlines,
                )
            if notes:
                conn.executemany(
                    "INSERT OR REPLACE INTO outbox VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    notes,
                )
        return plan.committed

    @staticmethod
    def _append_ledger(conn: sqlite3.Connection, eid: str, seq: int, head: str) -> None:
        stored = bytes.fromhex(head)
        conn.execute(APPEND_LEDGER, (eid, seq, stored, eid, seq, stored))

    def timeline(self, encounter_id: str) -> list[Event]:
        check_text("timeline", "encounter_id", encounter_id)
        rows = self._db.read(
            "read a timeline",
            "SELECT seq, data FROM events WHERE encounter_id = ? ORDER BY seq",
            (encounter_id,),
        )
        if not rows:
            self.load(encounter_id)  # raises UnknownEncounter
        out = []
        for seq, data in rows:
            try:
                event = load_event({**json.loads(data), "seq": seq})
            except (StoreError, ValueError) as exc:
                raise StoreError(
                    problem=f"{self.path}: event {seq} of encounter {encounter_id} is"
                    f" unreadable: {exc}"
                ) from exc
            out.append(event)
        return out

    def encounter_ids(self, open_only: bool = False) -> Sequence[str]:
        check_flag("encounter_ids", "open_only", open_only)
        sql = (
            "SELECT id FROM encounters WHERE closed_at IS NULL ORDER BY id"
            if open_only
            else "SELECT id FROM encounters ORDER BY rowid"
        )
        return [r[0] for r in self._db.read("list encounters", sql)]

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
        sql, args = find_query(query, "?")
        return [self._found(row) for row in self._db.read("find encounters", sql, args)]

    def _found(self, row: Sequence[Any]) -> Encounter:
        try:
            return load_encounter(row)
        except (StoreError, ValueError) as exc:
            raise StoreError(
                problem=f"{self.path}: encounter {row[0]} is unreadable: {exc}"
            ) from exc

    # -- deadlines ------------------------------------------------------------------

    def _deadlines(self, rows: list[Any]) -> list[PendingDeadline]:
        out = []
        for row in rows:
            try:
                out.append(load_plain(PendingDeadline, row))
            except StoreError as exc:
                raise StoreError(
                    problem=f"{self.path}: deadline {row[0]} is unreadable: {exc}"
                ) from exc
        return out

    def deadlines(self, encounter_id: str) -> list[PendingDeadline]:
        check_text("deadlines", "encounter_id", encounter_id)
        return self._deadlines(
            self._db.read(
                "read deadlines",
                f"SELECT {DEADLINE} FROM deadlines WHERE encounter_id = ? ORDER BY due_us, id",
                (encounter_id,),
            )
        )

    def claim_deadlines(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[PendingDeadline]:
        check_claim("claim_deadlines", now, lease, limit)
        now_us = micros(now)
        where = "due_us <= ? AND (lease_us IS NULL OR lease_us <= ?)"
        if not self._db.read(
            "find due deadlines", f"SELECT 1 FROM deadlines WHERE {where} LIMIT 1", (now_us, now_us)
        ):
            return []  # nothing due: no write lock taken
        with self._db.write("claim deadlines") as conn:
            rows = conn.execute(
                f"SELECT {DEADLINE} FROM deadlines WHERE {where} ORDER BY due_us, id LIMIT ?",
                (now_us, now_us, -1 if limit is None else limit),
            ).fetchall()
            until = micros(instant_after(now, lease))
            conn.executemany(
                "UPDATE deadlines SET lease_us = ? WHERE id = ?", [(until, r[0]) for r in rows]
            )
        return self._deadlines(rows)

    def next_due(self) -> datetime | None:
        rows = self._db.read(
            "find the next deadline", "SELECT due FROM deadlines ORDER BY due_us, id LIMIT 1"
        )
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def release_deadline(self, deadline_id: str) -> None:
        check_text("release_deadline", "deadline_id", deadline_id)
        with self._db.write(f"release deadline {deadline_id}") as conn:
            conn.execute("DELETE FROM deadlines WHERE id = ?", (deadline_id,))

    # -- outbox ---------------------------------------------------------------------

    def _notes(self, rows: list[Any]) -> list[Notification]:
        return [
            self._structure(row_data(NOTE_NAMES, r), Notification, f"notification {r[0]}")
            for r in rows
        ]

    def claim_outbox(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[Notification]:
        check_claim("claim_outbox", now, lease, limit)
        now_us = micros(now)
        where = f"{PENDING} AND next_attempt_us <= ?"
        if not self._db.read(
            "find due notifications", f"SELECT 1 FROM outbox WHERE {where} LIMIT 1", (now_us,)
        ):
            return []
        with self._db.write("claim notifications") as conn:
            rows = conn.execute(
                f"SELECT {NOTE} FROM outbox WHERE {where} ORDER BY created_us, key LIMIT ?",
                (now_us, -1 if limit is None else min(limit, MAX_LIMIT)),
            ).fetchall()
            until = instant_after(now, lease)
            conn.executemany(
                "UPDATE outbox SET next_attempt_at = ?, next_attempt_us = ? WHERE key = ?",
                [(until.isoformat(), micros(until), r[0]) for r in rows],
            )
        return self._notes(rows)

    def _known_note(self, conn: sqlite3.Connection, key: str) -> tuple[str, bool]:
        """The encounter of notification ``key`` and whether it is still pending."""
        found = conn.execute(
            f"SELECT encounter_id, {PENDING} FROM outbox WHERE key = ?", (key,)
        ).fetchone()
        if found is None:
            raise StoreError(problem=f"no notification with key {key!r} in the outbox")
        return str(found[0]), bool(found[1])

    def _append_events(self, conn: sqlite3.Connection, eid: str, events: Sequence[Event]) -> int:
        """Append ``events`` to the hash chain of ``eid`` (the encounter's version does
        not change); returns the sequence number of the first."""
        seq, prev, snapshot = conn.execute(
            "SELECT seq, head, snapshot FROM encounters WHERE id = ?", (eid,)
        ).fetchone()
        first = seq + 1
        stored = bytes.fromhex(snapshot)
        for event in events:
            seq += 1
            data = event_json(event)
            digest = link_hash(prev, seq, snapshot, data)
            conn.execute(
                INSERT_EVENT,
                (eid, seq, event.kind, data, stored, bytes.fromhex(prev), bytes.fromhex(digest)),
            )
            prev = digest
        conn.execute("UPDATE encounters SET seq = ?, head = ? WHERE id = ?", (seq, prev, eid))
        self._append_ledger(conn, eid, seq, prev)
        return int(first)

    def delivered(
        self, key: str, event: NotificationDelivered, *, contact: str | None = None
    ) -> Event | None:
        check_text("delivered", "key", key)
        check_delivery("delivered", event)
        check_optional_text("delivered", "contact", contact)
        at = converter.unstructure(event.at)
        with self._db.write(f"record delivery of {key}") as conn:
            eid, pending = self._known_note(conn, key)
            if event.encounter_id != eid:
                raise StoreError(
                    problem=f"notification {key!r} belongs to encounter {eid},"
                    f" not {event.encounter_id}; nothing was written"
                )
            if not pending:
                return None  # a late worker: delivered or dead-lettered meanwhile
            seq = self._append_events(conn, eid, [event])
            conn.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = ?, contact = ? WHERE key = ?",
                (at, event.attempts, contact, key),
            )
        return numbered(event, seq)

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
        with self._db.write(f"record failed delivery of {key}") as conn:
            self._known_note(conn, key)
            conn.execute(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ?, next_attempt_us = ?,"
                f" last_error = ?, contact = ? WHERE key = ? AND {PENDING}",
                (
                    attempts,
                    next_attempt_at.isoformat(),
                    micros(next_attempt_at),
                    error,
                    contact,
                    key,
                ),
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
        at = converter.unstructure(event.at)
        rows = [note_row(n) for n in escalations]
        with self._db.write(f"dead-letter {key}") as conn:
            eid, pending = self._known_note(conn, key)
            check_dead_letter(eid, event, escalations, queued)
            if not pending:
                return []
            events: list[Event] = [event, *queued]
            first = self._append_events(conn, eid, events)
            conn.execute(
                "UPDATE outbox SET dead_lettered_at = ?, attempts = ?, contact = ?,"
                " last_error = ? WHERE key = ?",
                (at, event.attempts, contact, event.error_kind, key),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO outbox VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return [numbered(e, first + i) for i, e in enumerate(events)]

    def outbox(self, encounter_id: str | None = None) -> list[Notification]:
        check_optional_text("outbox", "encounter_id", encounter_id)
        if encounter_id is None:
            rows = self._db.read(
                "read the outbox", f"SELECT {NOTE} FROM outbox ORDER BY created_us, key"
            )
        else:
            rows = self._db.read(
                "read the outbox",
                f"SELECT {NOTE} FROM outbox WHERE encounter_id = ? ORDER BY created_us, key",
                (encounter_id,),
            )
        return self._notes(rows)

    # -- retention ------------------------------------------------------------------

    def purge_facts(
        self, closed_before: datetime, *, dry_run: bool = False, now: datetime | None = None
    ) -> int:
        """Remove the facts (and their salt) of encounters closed before
        ``closed_before``; keep their step timeline and a verifiable audit chain.

        Deleted content is overwritten (``secure_delete``) and the WAL is
        checkpointed, so the facts do not linger in free pages or the journal.

        :param dry_run: only count what would be purged.
        :param now: recorded as the purge time (default: the current UTC time).
        :returns: how many encounters were (or would be) purged.
        """
        check_moment("purge_facts", "closed_before", closed_before)
        check_flag("purge_facts", "dry_run", dry_run)
        check_moment("purge_facts", "now", now, optional=True)
        where = "closed_us IS NOT NULL AND closed_us < ? AND purged_at IS NULL"
        limit = micros(closed_before)
        if dry_run:
            return int(
                self._db.read(
                    "count purgeable encounters",
                    f"SELECT COUNT(*) FROM encounters WHERE {where}",
                    (limit,),
                )[0][0]
            )
        stamp = (now or datetime.now(UTC)).isoformat()
        conn = self._db.get()
        try:
            conn.execute("PRAGMA secure_delete = ON")
            with self._db.write("purge facts") as tx:
                count = tx.execute(
                    f"UPDATE encounters SET facts = NULL, facts_salt = NULL, purged_at = ?"
                    f" WHERE {where}",
                    (stamp, limit),
                ).rowcount
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA secure_delete = OFF")
        except sqlite3.Error as exc:
            raise StoreError(problem=f"{self.path}: cannot finish purging facts: {exc}") from exc
        return int(count)

    # -- lifetime -------------------------------------------------------------------

    # -- refusals ----------------------------------------------------------------

    def record_refusal(self, refusal: Refusal) -> Refusal:
        check_refusal("record_refusal", refusal)
        data = refusal_json(refusal)
        at_us = micros(refusal.at)
        with self._db.write("record a refusal") as conn:
            row = conn.execute("SELECT seq, hash FROM refusal_head").fetchone()
            prev = None if row is None else hash_hex(row[1])
            if prev is None:
                raise StoreError(
                    problem=f"{self.path}: the refusal log's head is missing or unreadable"
                    " (changed by hand?); nothing was written"
                )
            seq = int(row[0]) + 1
            digest = bytes.fromhex(refusal_link(prev, seq, data))
            conn.execute(
                "INSERT INTO refusals (seq, at_us, encounter_id, data, prev, hash)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (seq, at_us, refusal.encounter_id, data, bytes.fromhex(prev), digest),
            )
            conn.execute("UPDATE refusal_head SET seq = ?, hash = ?", (seq, digest))
        return evolve(refusal, seq=seq)

    def refusals(
        self,
        *,
        encounter_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[Refusal]:
        check_refusals_query("refusals", encounter_id, since, limit, after_seq)
        sql, args = refusals_query(encounter_id, since, limit, after_seq, "?")
        rows = self._db.read("read the refusal log", sql, args)
        out = []
        for seq, data in rows:
            try:
                out.append(load_refusal(int(seq), data))
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(
                    problem=f"{self.path}: refusal {seq} is unreadable: {type(exc).__name__}"
                ) from exc
        return out

    @property
    def schema_version(self) -> int:
        """The schema version of the file (always :data:`SCHEMA_VERSION` once open)."""
        return int(
            self._db.read("read the schema version", "SELECT MAX(version) FROM schema_version")[0][
                0
            ]
        )

    def close(self) -> None:
        """Close every connection this process opened; the store is unusable after."""
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, synchronous={self.synchronous!r})"


class _Plan:
    """What one commit writes to the encounter and its timeline, computed from the
    stored row it builds on (``None`` for a new encounter): the new row's values, the
    numbered, hashed event rows and the events to return."""

    __slots__ = ("base", "committed", "head", "rows", "seq", "values")

    def __init__(
        self,
        change: Change,
        datas: list[str],
        fields: tuple[Any, ...],
        snap: str,
        base: tuple[Any, ...] | None,
    ) -> None:
        facts = fields[-1]
        if base is None:
            seq, prev, salt = 0, GENESIS, os.urandom(16)
            digest = facts_digest(facts, salt)
        else:
            seq, prev = base[SEQ], base[HEAD]
            if base[FACTS] == facts:
                salt, digest = base[FACTS + 1], base[FACTS + 2]
            else:
                salt = base[FACTS + 1] or os.urandom(16)
                digest = facts_digest(facts, salt)
        snapshot = snapshot_digest(snap, digest)
        stored = bytes.fromhex(snapshot)  # hashes are stored as their bytes (schema 4)
        eid = change.encounter.id
        rows = []
        committed: list[Event] = []
        for event, data in zip(change.events, datas, strict=True):
            seq += 1
            digest_of_event = link_hash(prev, seq, snapshot, data)
            rows.append(
                (
                    eid,
                    seq,
                    event.kind,
                    data,
                    stored,
                    bytes.fromhex(prev),
                    bytes.fromhex(digest_of_event),
                )
            )
            # numbered already when the engine predicted the sequence (next_seq)
            committed.append(event if event.seq == seq else numbered(event, seq))
            prev = digest_of_event
        self.base = base
        self.values = (*fields, salt, digest, snapshot, seq, prev)
        self.rows = rows
        self.committed = committed
        self.seq = seq
        self.head = prev

    def apply(self, conn: sqlite3.Connection, eid: str) -> bool:
        """Write the encounter row, if the stored one is still :attr:`base` (for a new
        encounter: if there is none); ``False`` when it is not (nothing written)."""
        base = self.base
        if base is None:
            return bool(conn.execute(INSERT_SNAPSHOT, (*self.values, eid)).rowcount)
        # only what changed: unchanged indexed columns then cost no index writes. The
        # columns the guard compares are all that change without a new version
        # (deliveries move seq and head, retention clears facts and salt), so a row
        # that passes it holds base in every column left out.
        changed = [
            (column, new)
            for column, old, new in zip(SNAPSHOT, base, self.values, strict=True)
            if old != new
        ]
        if base[FACTS] is None and self.values[FACTS] is not None:
            # facts stored again on a purged row (a commit prepared before the purge):
            # the purge marker goes, so that retention sees them again (and the audit
            # finds no marker beside stored facts)
            changed.append(("purged_at", None))
        cursor = conn.execute(
            "UPDATE encounters SET "
            + ", ".join(f"{column} = ?" for column, _ in changed)
            + f" WHERE {GUARD}",
            (*(new for _, new in changed), eid, *(base[i] for i in GUARDED)),
        )
        return bool(cursor.rowcount)
