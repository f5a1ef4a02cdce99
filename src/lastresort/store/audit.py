"""The audit trail: hash-chained timelines, a commit ledger, and their verification.

Every stored event row carries ``prev`` (the hash of the previous event of its
encounter, :data:`GENESIS` for the first) and its own ``hash``::

    hash = sha256(prev \\n seq \\n snapshot \\n event_json)

``event_json`` is the event's canonical JSON through the store's converter (sorted keys,
tagged with its class name, without ``seq``, which is hashed on its own).
``snapshot`` is the digest of the encounter snapshot that the event's commit wrote::

    snapshot = sha256(facts_digest \\n canonical JSON of the snapshot without facts)
    facts_digest = sha256(salt + canonical JSON of the facts)

The facts are hashed on their own, with a random per-encounter salt, so that
retention can delete the facts *and* the salt while every hash still verifies (the
digest alone cannot be brute-forced back to a handful of possible facts without
the salt). Every commit also appends a ``ledger`` row chaining the encounter's new
head hash into one chain over the whole file, so that deleting a whole encounter
or the last commit of one is detected too.

What the engine acts on but is not hashed — outbox rows, pending deadlines, the
closing and purge markers, whether the facts are still there — is derived from the
hashed events and checked against them: each such column either is what the
timeline says it must be, or is reported.

:func:`verify` reads a store file (also on read-only media, writing nothing) and
reports every broken link and every disagreement; ``lastresort audit verify DB``
prints it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from attrs import frozen

from ..errors import InvalidArgument, StoreError
from ..events import (
    DeadlineCleared,
    DeadlineMissed,
    DeadlineScheduled,
    EncounterClosed,
    EncounterOpened,
    Event,
    NotificationQueued,
    StepEntered,
)
from ..outbox import ESCALATED
from ..protocol.model import Encounter
from .row_codecs import (
    converter,
    encounter_canonical_json,
    event_canonical_json,
    load_event,
    load_row,
)

__all__ = [
    "GENESIS",
    "AuditProblem",
    "AuditReport",
    "check_anchor",
    "check_refusal_anchor",
    "event_json",
    "facts_digest",
    "hash_bytes",
    "hash_hex",
    "ledger_link",
    "link_hash",
    "snapshot_digest",
    "snapshot_json",
    "verify",
]

#: The ``prev`` of the first event of every encounter and of the first ledger row.
GENESIS = "0" * 64


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def facts_digest(facts_json: str, salt: bytes) -> str:
    """The salted digest of an encounter's facts (their canonical JSON)."""
    return hashlib.sha256(salt + facts_json.encode("utf-8")).hexdigest()


def snapshot_json(encounter: Encounter) -> str:
    """The canonical JSON of an encounter snapshot without its facts."""
    return encounter_canonical_json(encounter)[1]


def snapshot_digest(snapshot: str, facts: str) -> str:
    """The digest binding a snapshot (:func:`snapshot_json`) to its facts digest."""
    return _sha(f"{facts}\n{snapshot}")


def event_json(event: Event) -> str:
    """The canonical JSON of an event as stored and hashed (without ``seq``)."""
    return event_canonical_json(event)


def link_hash(prev: str, seq: int, snapshot: str, event: str) -> str:
    """The hash of event number ``seq`` of an encounter (see the module docstring)."""
    return _sha(f"{prev}\n{seq}\n{snapshot}\n{event}")


def ledger_link(prev: str, encounter_id: str, seq: int, head: str) -> str:
    """The link of a ledger row: the previous link, and an encounter's new head."""
    return _sha(f"{prev}\n{encounter_id}\n{seq}\n{head}")


#: A value SQLite stores.
SQLValue = bytes | str | int | float | None


def hash_bytes(value: SQLValue) -> SQLValue:
    """A hash as stored from schema version 4 on: the 32 bytes of a 64-hex-digit
    text; anything else (already bytes, ``NULL``, not a hash) is kept as it is."""
    if isinstance(value, str) and len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            return value
    return value


def hash_hex(value: object) -> str | None:
    """A stored hash as the 64 hex digits it is computed and compared as: from its 32
    bytes (version 4) or its text (versions 1 to 3, read as they are by the audit);
    ``None`` for anything else (a changed row: it then differs from every hash)."""
    if isinstance(value, bytes):
        return value.hex() if len(value) == 32 else None
    if isinstance(value, str):
        return value
    return None


@frozen
class AuditProblem:
    """One broken link: where (encounter and event number, when known) and what."""

    encounter_id: str | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = "file" if self.encounter_id is None else f"encounter {self.encounter_id}"
        if self.seq is not None:
            where += f" seq {self.seq}"
        return f"{where}: {self.message}"


@frozen
class AuditReport:
    """What :func:`verify` found.

    :param encounters: encounters checked.
    :param events: event rows checked.
    :param commits: ledger rows checked.
    :param head: the last ledger row ``(n, link)``: write it down elsewhere and
        pass it as ``anchor`` later to detect the file being cut back.
    :param problems: every problem, the first broken link first.
    :param refusals: refusal log rows checked (0 for a file older than schema version 5).
    :param refusal_head: the last refusal ``(seq, hash)`` (``(0, GENESIS)`` for an empty
        log, ``None`` for a file without one): write it down elsewhere with ``head``
        and pass it as ``refusal_anchor`` later, to detect the log cut back or
        rewritten together with its head.
    """

    encounters: int
    events: int
    commits: int
    head: tuple[int, str] | None
    problems: tuple[AuditProblem, ...]
    refusals: int = 0
    refusal_head: tuple[int, str] | None = None

    @property
    def ok(self) -> bool:
        """Whether every chain verified."""
        return not self.problems

    @property
    def first(self) -> AuditProblem | None:
        """The first broken link (in the order the encounters were opened)."""
        return self.problems[0] if self.problems else None


def _when(text: str | None) -> datetime | None:
    """A stored time, or ``None`` when it is missing or unreadable (then it differs)."""
    if text is None:
        return None
    try:
        value: datetime = converter.structure(text, datetime)
    except ValueError:
        return None
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(micros: object) -> datetime | None:
    """A stored UTC microsecond column as a moment (``None`` when missing or not an
    integer: then it differs from any moment)."""
    if type(micros) is not int:
        return None
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None


_ENC = (
    "id, protocol, protocol_version, state, responsible, version, opened_at, closed_at,"
    " channel, facts, facts_salt, facts_digest, snapshot, seq, head, closed_us, purged_at"
)
_CLOSED_US, _PURGED_AT = 15, 16

#: The terminal states of an outbox row: the event kind that records reaching one, the
#: column that marks it in the row, and a word for it. The column is set exactly when
#: the encounter's timeline holds such an event for the row's key, to that event's
#: time. A new terminal state (a dead letter, say) is one more line here.
#: the longest a claim or a retry can keep a deadline or a notification from every
#: worker: the longest claim lease a store accepts (``arguments.MAX_LEASE``, 366 days),
#: which is also longer than any retry backoff (``Backoff`` caps it)
MAX_HOLD = timedelta(days=366)

_OUTBOX_ENDS: tuple[tuple[str, str, str], ...] = (
    ("NotificationDelivered", "delivered_at", "delivered"),
    ("NotificationDeadLettered", "dead_lettered_at", "dead-lettered"),
)
_NOTE = (
    "key, encounter_id, protocol, event, step, party, created_at, created_us,"
    " next_attempt_at, next_attempt_us"
)
_NOTE_COLUMNS = len(_NOTE.split(","))
#: the columns of an outbox row compared with its NotificationQueued event
_QUEUED = ("protocol", "event", "step", "party", "created_at")


def _escalated(key: str, party: str) -> str:
    """The key an escalation to ``party`` with key ``key`` escalates ("" if none)."""
    suffix = f"{ESCALATED}{party}"
    return key[: -len(suffix)] if key.endswith(suffix) else ""


def check_anchor(anchor: object) -> None:
    """Refuse an ``anchor`` that is not ``None`` or ``(n, link)`` of a whole number and
    a string (every store's verify calls this first).

    :raises InvalidArgument: naming the type given."""
    if anchor is not None and not (
        isinstance(anchor, tuple)
        and len(anchor) == 2
        and type(anchor[0]) is int
        and isinstance(anchor[1], str)
    ):
        raise InvalidArgument(
            call="audit.verify",
            argument="anchor",
            problem=f"None or a pair (n, link) of an int and a str, not {type(anchor).__name__}",
        )


_HASH = re.compile(r"[0-9a-f]{64}")


def check_refusal_anchor(anchor: object) -> None:
    """Refuse a ``refusal_anchor`` that is not ``None`` or ``(seq, hash)`` of a whole
    number >= 0 and 64 lowercase hex digits (what ``refusal_head`` reports).

    :raises InvalidArgument: naming the type given, never the value."""
    if anchor is not None and not (
        isinstance(anchor, tuple)
        and len(anchor) == 2
        and type(anchor[0]) is int
        and anchor[0] >= 0
        and isinstance(anchor[1], str)
        and _HASH.fullmatch(anchor[1])
    ):
        raise InvalidArgument(
            call="audit.verify",
            argument="refusal_anchor",
            problem="None or a pair (seq, hash) of a whole number >= 0 and 64 lowercase hex"
            f" digits, as AuditReport.refusal_head reports it; not this {type(anchor).__name__}",
        )


def verify(
    path: str | os.PathLike[str],
    *,
    anchor: tuple[int, str] | None = None,
    refusal_anchor: tuple[int, str] | None = None,
) -> AuditReport:
    """Check every hash chain of a store file, the ledger, and that every snapshot,
    pending deadline, outbox row, closing and purge marker agrees with its
    timeline. Read-only, in one read transaction (a consistent view while other
    processes write); a file on read-only media is read as immutable and nothing
    is created beside it (see :func:`~lastresort.store.connections.open_readonly`).

    :param anchor: a ledger head ``(n, link)`` recorded earlier; the ledger must
        still hold it.
    :param refusal_anchor: a refusal log head ``(seq, hash)`` recorded earlier
        (:attr:`AuditReport.refusal_head`); the refusal log must still hold it.
    :raises StoreError: when the file is missing, not SQLite, not a lastresort
        store or written by a newer lastresort.
    :raises InvalidArgument: (a :class:`ValueError`) for a ``path`` that is not a
        path, or an ``anchor`` that is not ``None`` or ``(n, link)`` of a whole
        number and a string; nothing is read.
    """
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgument(
            call="audit.verify", argument="path", problem=f"a path, not {type(path).__name__}"
        )
    check_anchor(anchor)
    check_refusal_anchor(refusal_anchor)
    from .connections import open_readonly
    from .schema import SCHEMA_VERSION, schema_version

    file = Path(path)
    conn = open_readonly(file)
    try:
        conn.execute("BEGIN")
        version = schema_version(conn, str(file))
        if version == 0:
            raise StoreError(problem=f"{file}: an empty file, not a lastresort store")
        if version > SCHEMA_VERSION:
            raise StoreError(
                problem=f"{file} has schema version {version}, newer than this lastresort"
                f" understands ({SCHEMA_VERSION})"
            )
        return _Verifier(conn, micros=version >= 2).run(anchor, refusal_anchor)
    except sqlite3.Error as exc:
        raise StoreError(problem=f"{file}: cannot be read: {exc}") from exc
    finally:
        conn.close()


class _Verifier:
    def __init__(self, conn: sqlite3.Connection, *, micros: bool) -> None:
        """:param micros: whether the file has the UTC microsecond columns (``*_us``,
        schema version 2): a version 1 file is read as it is, without them."""
        self.conn = conn
        self.micros = micros
        self.problems: dict[str | None, list[AuditProblem]] = {}
        #: the latest moment any event of the store records
        self.latest: datetime | None = None
        #: the columns the file's outbox has (a file not yet migrated lacks later ones)
        self.outbox_columns: set[str] = set()

    def add(self, eid: str | None, seq: int | None, message: str) -> None:
        self.problems.setdefault(eid, []).append(AuditProblem(eid, seq, message))

    def _columns(self, names: str) -> str:
        """``names`` to select, with ``NULL`` for the ``*_us`` columns of a version 1 file."""
        if self.micros:
            return names
        return re.sub(r"\b\w+_us\b", "NULL", names)

    def _moved(self, micros: object, moment: datetime | None) -> bool:
        """Whether a ``*_us`` column is not the instant ``moment`` (never in a version 1
        file, which has none)."""
        return self.micros and _instant(micros) != moment

    def run(
        self, anchor: tuple[int, str] | None, refusal_anchor: tuple[int, str] | None = None
    ) -> AuditReport:
        conn = self.conn
        rows = conn.execute(
            f"SELECT {self._columns(_ENC)} FROM encounters ORDER BY rowid"
        ).fetchall()
        encounters = {r[0]: r for r in rows}
        pending: dict[str, list[tuple[Any, ...]]] = {}
        deadlines = self._columns("id, encounter_id, step, event, due, due_us")
        for row in conn.execute(f"SELECT {deadlines} FROM deadlines"):
            pending.setdefault(row[1], []).append(row)
        notes: dict[str, list[tuple[Any, ...]]] = {}
        # a file not yet migrated lacks the columns of later outbox states (NULL there)
        present = self.outbox_columns = {
            row[1] for row in conn.execute("PRAGMA table_info(outbox)")
        }
        ends = "".join(
            f", {column}" if column in present else ", NULL" for _, column, _ in _OUTBOX_ENDS
        )
        for row in conn.execute(f"SELECT {self._columns(_NOTE)}{ends} FROM outbox"):
            notes.setdefault(row[1], []).append(row)
        events = 0
        seen: set[str] = set()
        for eid, group in self._events_by_encounter():
            seen.add(eid)
            events += len(group)
            if eid not in encounters:
                self.add(eid, None, f"{len(group)} event(s) of an encounter row that is gone")
                continue
            self._encounter(encounters[eid], group, pending.pop(eid, []), notes.pop(eid, []))
        for eid, row in encounters.items():
            if eid not in seen:
                self._encounter(row, [], pending.pop(eid, []), notes.pop(eid, []))
        for eid in pending:
            if eid not in encounters:
                self.add(eid, None, "pending deadlines of an encounter row that is gone")
        for eid in notes:
            if eid not in encounters:
                self.add(eid, None, "notifications of an encounter row that is gone")
        self._leases()
        refusals, refusal_head = self._refusals(refusal_anchor)
        commits, head = self._ledger(encounters, anchor)
        order = {eid: i for i, eid in enumerate(encounters)}
        ranked = sorted(
            self.problems.items(),
            key=lambda item: (
                item[0] is None,
                order.get(item[0], len(order)) if item[0] is not None else 0,
                item[0] or "",
            ),
        )
        found = tuple(p for _, group in ranked for p in group)
        return AuditReport(len(encounters), events, commits, head, found, refusals, refusal_head)

    def _events_by_encounter(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        current: str | None = None
        group: list[tuple[Any, ...]] = []
        for row in self.conn.execute(
            "SELECT encounter_id, seq, kind, data, snapshot, prev, hash FROM events"
            " ORDER BY encounter_id, seq"
        ):
            if row[0] != current:
                if current is not None:
                    yield current, group
                current, group = row[0], []
            group.append(row[1:])
        if current is not None:
            yield current, group

    def _encounter(
        self,
        enc: tuple[Any, ...],
        group: list[tuple[Any, ...]],
        pending: list[tuple[Any, ...]],
        notes: list[tuple[Any, ...]],
    ) -> None:
        eid = enc[0]
        prev, expected, last_snapshot = GENESIS, 1, None
        timeline: list[Event] = []
        for seq, kind, data, stored_snapshot, stored_prev, stored_hash in group:
            # bytes from schema version 4 on, hex text before; None: not a hash at all
            snapshot = hash_hex(stored_snapshot)
            prev_col, hash_col = hash_hex(stored_prev), hash_hex(stored_hash)
            if seq != expected:
                self.add(eid, expected, f"event {expected} is missing (deleted?)")
                return
            if prev_col != prev:
                self.add(eid, seq, f"does not link to event {seq - 1} (a row was changed)")
                return
            if snapshot is None or link_hash(prev, seq, snapshot, data) != hash_col:
                self.add(eid, seq, "its content does not match its hash (the row was changed)")
                return
            try:
                event = load_event({**json.loads(data), "seq": seq})
            except (StoreError, ValueError) as exc:
                self.add(eid, seq, f"unreadable event: {exc}")
                return
            if event_json(event) != data or event.kind != kind or event.encounter_id != eid:
                self.add(eid, seq, "the stored event is not what was hashed (the row was changed)")
                return
            timeline.append(event)
            assert hash_col is not None  # it equals a computed hash
            prev, expected, last_snapshot = hash_col, expected + 1, snapshot
        last = expected - 1
        if enc[13] != last:
            self.add(
                eid,
                last + 1 if enc[13] > last else enc[13],
                f"the encounter says its timeline ends at event {enc[13]}, but it ends at"
                f" {last} (events deleted?)",
            )
            return
        if enc[14] != prev:
            self.add(eid, last, "the encounter's head hash is not its last event's hash")
            return
        self._snapshot(enc, last, last_snapshot)
        closed = self._agrees(enc, timeline)
        self._retention(enc, closed)
        if timeline:
            moment = max(e.at for e in timeline)
            if self.latest is None or moment > self.latest:
                self.latest = moment
        self._deadlines(eid, timeline, pending)
        self._outbox(eid, timeline, notes)

    def _snapshot(self, enc: tuple[Any, ...], last: int, last_snapshot: str | None) -> None:
        eid = enc[0]
        facts_text, salt, digest, stored = enc[9], enc[10], enc[11], enc[12]
        if facts_text is not None and (salt is None or facts_digest(facts_text, salt) != digest):
            self.add(eid, None, "its facts do not match their digest (the facts were changed)")
        names = [n.strip() for n in _ENC.split(",")][:9]
        data = dict(zip(names, enc[:9], strict=True))
        data["facts"] = {}
        try:
            encounter = load_row(data, Encounter)
        except StoreError as exc:
            self.add(eid, None, f"unreadable encounter row: {exc}")
            return
        if snapshot_digest(snapshot_json(encounter), digest) != stored:
            self.add(eid, last or None, "the encounter snapshot was changed after its last commit")
        elif last_snapshot is not None and last_snapshot != stored:
            self.add(eid, last, "the encounter snapshot is not the one its last commit wrote")

    def _agrees(self, enc: tuple[Any, ...], timeline: list[Event]) -> EncounterClosed | None:
        """Check the encounter row against its timeline; its EncounterClosed, if any."""
        eid = enc[0]
        if not timeline:
            return None
        opened = timeline[0]
        if not isinstance(opened, EncounterOpened):
            self.add(eid, 1, f"the timeline starts with {opened.kind}, not EncounterOpened")
            return None
        step, responsible, step_seq = opened.step, opened.responsible, 1
        closed: EncounterClosed | None = None
        for event in timeline:
            if isinstance(event, StepEntered):
                step, responsible, step_seq = event.step, event.responsible, event.seq
            elif isinstance(event, EncounterClosed):
                closed = event
        closed_at = None if closed is None else closed.at
        if (enc[1], enc[2], enc[8]) != (opened.protocol, opened.protocol_version, opened.channel):
            self.add(eid, 1, "protocol, version or channel differ from its EncounterOpened")
        if _when(enc[6]) != opened.at:
            self.add(eid, 1, "opened_at differs from its EncounterOpened")
        if enc[3] != step or enc[4] != responsible:
            self.add(
                eid,
                step_seq,
                f"the encounter is in step {enc[3]!r} (responsible {enc[4]!r}) but its"
                f" timeline entered {step!r} (responsible {responsible!r}) last",
            )
        closed_seq = None if closed is None else closed.seq
        if _when(enc[7]) != closed_at:
            self.add(eid, closed_seq, "closed_at does not match its EncounterClosed event")
        if (enc[_CLOSED_US] is not None or closed_at is not None) and self._moved(
            enc[_CLOSED_US], closed_at
        ):
            what = "is set, but its timeline never closed it" if closed is None else "differs"
            self.add(
                eid,
                closed_seq,
                f"closed_us (the closing time retention selects on) {what}: it does not match"
                " its EncounterClosed event",
            )
        return closed

    def _retention(self, enc: tuple[Any, ...], closed: EncounterClosed | None) -> None:
        """Facts are gone only after a purge, and a purge only follows the close.

        The purge marker (``purged_at``) is what retention skips, and the facts are
        what a fire decides on: neither is hashed (retention must be able to delete
        the facts), so they must agree with each other and with the timeline. The
        facts digest is kept by a purge and bound into the snapshot digest, so a
        purge cannot hide an earlier edit of the facts.
        """
        eid, facts, purged_at = enc[0], enc[9], enc[_PURGED_AT]
        if purged_at is not None:
            if _when(purged_at) is None:
                self.add(eid, None, "its purge time (purged_at) is unreadable")
            if closed is None:
                self.add(
                    eid,
                    None,
                    "it is marked purged (purged_at) but its timeline never closed it: an open"
                    " encounter is never purged",
                )
            if facts is not None:
                self.add(
                    eid,
                    None,
                    "it is marked purged (purged_at) but its facts are still stored: retention"
                    " would never remove them",
                )
        elif facts is None:
            self.add(eid, None, "its facts are gone (NULL) but it was not purged (no purged_at)")

    def _leases(self) -> None:
        """No claim can hide a deadline or a notification for longer than a lease can
        last. A deadline's lease and an undelivered notification's next attempt are
        not events, but every worker takes them at its clock's now plus at most
        :data:`MAX_HOLD` (the longest claim lease or retry a store or engine accepts);
        so one further than that past both this moment and the latest event of the
        store was moved by hand (it would keep ``tick``/``deliver`` away)."""
        if not self.micros:
            return
        now = datetime.now(UTC)
        reference = now if self.latest is None or self.latest < now else self.latest
        limit = _instant_us(reference + MAX_HOLD)
        for did, eid in self.conn.execute(
            "SELECT id, encounter_id FROM deadlines WHERE lease_us > ?", (limit,)
        ):
            self.add(
                eid,
                None,
                f"deadline {did} is claimed for longer than any lease lasts (moved?): no"
                " worker would fire it",
            )
        pending = " AND ".join(
            f"{column} IS NULL" for _, column, _ in _OUTBOX_ENDS if column in self.outbox_columns
        )
        for key, eid in self.conn.execute(
            f"SELECT key, encounter_id FROM outbox WHERE {pending} AND next_attempt_us > ?",
            (limit,),
        ):
            self.add(
                eid,
                None,
                f"notification {key} waits for its next attempt longer than any lease or"
                " retry lasts (moved?): no worker would deliver it",
            )

    def _deadlines(self, eid: str, timeline: list[Event], pending: list[tuple[Any, ...]]) -> None:
        # in timeline order: a deadline scheduled again after it ended (re-armed) is open
        open_ones: dict[str, tuple[int, tuple[str, str, datetime | None]]] = {}
        for event in timeline:
            if isinstance(event, DeadlineScheduled):
                key = (event.step, event.event, event.due)
                open_ones[event.deadline_id] = (event.seq, key)
            elif isinstance(event, DeadlineCleared | DeadlineMissed):
                open_ones.pop(event.deadline_id, None)
        for did, _, step, event_name, due, due_us in pending:
            if self._moved(due_us, _when(due)):
                self.add(
                    eid,
                    None,
                    f"deadline {did}: due_us (when it fires) differs from its due time",
                )
            if did not in open_ones:
                self.add(
                    eid, None, f"deadline {did} is pending but its timeline never left it open"
                )
            elif open_ones.pop(did)[1] != (step, event_name, _when(due)):
                self.add(eid, None, f"deadline {did} differs from its DeadlineScheduled event")
        for did, (seq, _) in open_ones.items():
            self.add(eid, seq, f"deadline {did} was scheduled but is neither pending nor ended")

    def _outbox(self, eid: str, timeline: list[Event], notes: list[tuple[Any, ...]]) -> None:
        """Every NotificationQueued has its outbox row, in the step it was queued in;
        no row is without one; a row is in a terminal state (delivered...) exactly
        when the timeline records that it reached it."""
        rows = {row[0]: row for row in notes}
        step, protocol = "", ""
        queued: dict[str, tuple[NotificationQueued, str]] = {}
        reached: dict[tuple[str, str], list[Event]] = {}
        kinds = {kind for kind, _, _ in _OUTBOX_ENDS}
        for event in timeline:
            if isinstance(event, EncounterOpened):
                step, protocol = event.step, event.protocol
            elif isinstance(event, StepEntered):
                step = event.step
            elif isinstance(event, NotificationQueued):
                # an escalation of a dead letter is about the step of the notification
                # it escalates, queued whatever step the encounter is in by then
                original = queued.get(_escalated(event.key, event.party), (None, step))[1]
                queued[event.key] = (event, original)
            elif event.kind in kinds:
                key = str(getattr(event, "key", ""))
                reached.setdefault((event.kind, key), []).append(event)
                if key not in queued:
                    self.add(eid, event.seq, f"{event.kind} of notification {key}, never queued")
        for key, (event, at_step) in queued.items():
            row = rows.pop(key, None)
            if row is None:
                self.add(
                    eid,
                    event.seq,
                    f"notification {key} was queued (NotificationQueued) but has no outbox row"
                    " (deleted?)",
                )
                continue
            expected = (protocol, event.event, at_step, event.party, event.at)
            found = (*row[2:6], _when(row[6]))
            differ = [n for n, a, b in zip(_QUEUED, expected, found, strict=True) if a != b]
            if self._moved(row[7], _when(row[6])):
                differ.append("created_us")
            if differ:
                self.add(
                    eid,
                    event.seq,
                    f"notification {key}: its outbox row differs from its NotificationQueued"
                    f" event in {', '.join(differ)}",
                )
            if self._moved(row[9], _when(row[8])):
                self.add(eid, None, f"notification {key}: next_attempt_us differs from its time")
            for i, (kind, column, word) in enumerate(_OUTBOX_ENDS):
                marked, events = row[_NOTE_COLUMNS + i], reached.get((kind, key), [])
                if marked is None and events:
                    self.add(
                        eid,
                        events[0].seq,
                        f"notification {key} was {word} ({kind}) but its outbox row is not"
                        f" marked {word} ({column} is empty)",
                    )
                elif marked is not None and not events:
                    self.add(
                        eid,
                        event.seq,
                        f"notification {key} is marked {word} ({column}) but its timeline"
                        f" has no {kind} for it",
                    )
                elif marked is not None and _when(marked) not in {e.at for e in events}:
                    self.add(
                        eid, events[0].seq, f"notification {key}: {column} differs from {kind}"
                    )
        for key in rows:
            self.add(
                eid,
                None,
                f"outbox row {key} has no NotificationQueued in the encounter's timeline"
                " (added or moved by hand?)",
            )

    def _refusals(self, anchor: tuple[int, str] | None) -> tuple[int, tuple[int, str] | None]:
        """Check the refusal log's chain (schema version 5 on; an older file has none):
        numbers 1, 2, 3, ... without a gap, every ``prev`` the hash before it, every
        ``hash`` its row's link, the query columns what the hashed data says, and the
        head the last row; and an ``anchor`` taken before is still in the log (a log cut
        back or rewritten with its head passes every other check). Problems are the
        file's (no encounter owns the log). Returns the rows checked and the head."""
        from .refusals import load_refusal, refusal_link

        if not {row[1] for row in self.conn.execute("PRAGMA table_info(refusals)")}:
            if anchor is not None:
                self.add(None, None, "the file has no refusal log to hold the refusal anchor")
            return 0, None
        prev, expected, count, broken = GENESIS, 1, 0, False
        # the anchor (0, GENESIS) is the empty log's head: every log holds it
        anchored = anchor is None or anchor == (0, GENESIS)
        for seq, at_us, eid, data, stored_prev, stored_hash in self.conn.execute(
            "SELECT seq, at_us, encounter_id, data, prev, hash FROM refusals ORDER BY seq"
        ):
            count += 1
            digest = hash_hex(stored_hash)
            if anchor is not None and seq == anchor[0]:
                anchored = digest == anchor[1]
            if broken:
                continue
            if seq != expected:
                self.add(None, None, f"refusal {expected} is missing (deleted?)")
                broken = True
            elif hash_hex(stored_prev) != prev:
                self.add(None, None, f"refusal {seq} does not follow refusal {seq - 1}")
                broken = True
            elif refusal_link(prev, seq, data) != digest:
                self.add(None, None, f"refusal {seq} was changed (its hash does not match)")
                broken = True
            else:
                try:
                    refusal = load_refusal(seq, data)
                except (ValueError, KeyError, TypeError):
                    self.add(None, None, f"refusal {seq} is unreadable")
                else:
                    if refusal.encounter_id != eid or _instant(at_us) != refusal.at:
                        self.add(
                            None,
                            None,
                            f"refusal {seq}: its encounter or time column was changed"
                            " (not what its hashed record says)",
                        )
            prev, expected = digest or "", expected + 1
        head = self.conn.execute("SELECT seq, hash FROM refusal_head").fetchall()
        head_hash = hash_hex(head[0][1]) if head else None
        found = None if head_hash is None else (int(head[0][0]), head_hash)
        if not broken and found != (expected - 1, prev):
            shown = "missing" if found is None else f"refusal {found[0]}"
            self.add(
                None,
                None,
                f"the refusal log ends at refusal {expected - 1}, its head says {shown}"
                " (the last refusals deleted, or the head changed?)",
            )
        if not anchored:
            assert anchor is not None
            self.add(
                None,
                None,
                f"the refusal log no longer holds refusal anchor {anchor[0]}:{anchor[1]}"
                " (refusals deleted or rewritten, with the head, since it was taken?)",
            )
        return count, found

    def _ledger(
        self, encounters: Mapping[str, tuple[Any, ...]], anchor: tuple[int, str] | None
    ) -> tuple[int, tuple[int, str] | None]:
        link, expected, head = GENESIS, 1, None
        last_seq: dict[str, int] = {}
        broken = False
        anchored = anchor is None
        rows = self.conn.execute(
            "SELECT l.n, l.encounter_id, l.seq, l.hash, l.link, e.hash FROM ledger AS l"
            " LEFT JOIN events AS e ON e.encounter_id = l.encounter_id AND e.seq = l.seq"
            " ORDER BY l.n"
        )
        count = 0
        for n, eid, seq, stored_digest, stored_link, stored_event_hash in rows:
            # bytes from schema version 4 on, hex text before; "": not a hash at all
            digest, link_col = hash_hex(stored_digest) or "", hash_hex(stored_link) or ""
            event_hash = hash_hex(stored_event_hash)
            count += 1
            if anchor is not None and n == anchor[0]:
                anchored = link_col == anchor[1]
            if broken:
                continue
            if n != expected:
                self.add(None, None, f"ledger row {expected} is missing (deleted?)")
                broken = True
            elif ledger_link(link, eid, seq, digest) != link_col:
                self.add(None, None, f"ledger row {n} was changed")
                broken = True
            elif event_hash != digest:
                gone = "is gone" if stored_event_hash is None else "was changed"
                self.add(eid, seq, f"event {seq}, committed as ledger row {n}, {gone}")
            elif seq <= last_seq.get(eid, 0):
                self.add(eid, seq, f"ledger row {n} goes back in the encounter's timeline")
            last_seq[eid] = max(seq, last_seq.get(eid, 0))
            link, expected, head = link_col, n + 1, (n, link_col)
        if not anchored:
            assert anchor is not None
            self.add(None, None, f"the ledger no longer holds anchor {anchor[0]}:{anchor[1]}")
        if not broken:
            for eid, enc in encounters.items():
                if enc[13] and last_seq.get(eid) != enc[13]:
                    self.add(
                        eid,
                        enc[13],
                        f"the ledger's last commit of this encounter is event"
                        f" {last_seq.get(eid, 0)}, not {enc[13]}",
                    )
        return count, head


def _instant_us(moment: datetime) -> int:
    """``moment`` as whole microseconds since 1970 UTC (the ``*_us`` columns)."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
