"""How values map to rows of the SQLite store: column lists, statements, and the
converter's data for each row (all (de)serialisation goes through ``convert``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..outbox import Notification
from .audit import GENESIS, hash_hex, ledger_link
from .schema import micros

DEADLINE = "id, encounter_id, step, event, due"
#: the stored snapshot's columns, in the order commit reads and writes them
SNAPSHOT = (
    "protocol",
    "protocol_version",
    "state",
    "responsible",
    "version",
    "opened_at",
    "closed_at",
    "closed_us",
    "channel",
    "facts",
    "facts_salt",
    "facts_digest",
    "snapshot",
    "seq",
    "head",
)
INSERT_EVENT = (
    "INSERT INTO events (encounter_id, seq, kind, data, snapshot, prev, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: one statement: the next ledger row, linked to the last one by ``ledger_link``
APPEND_LEDGER = (
    "INSERT INTO ledger (n, encounter_id, seq, hash, link)"
    " SELECT COALESCE(MAX(n), 0) + 1, ?, ?, ?, ledger_link(COALESCE("
    f"(SELECT link FROM ledger ORDER BY n DESC LIMIT 1), '{GENESIS}'), ?, ?, ?) FROM ledger"
)


def ledger_link_bytes(prev: object, encounter_id: str, seq: int, head: object) -> bytes:
    """The SQL function ``ledger_link`` of the store: :func:`~lastresort.audit.ledger_link`
    of the previous link and an encounter's new head (stored as bytes, or the text
    :data:`~lastresort.audit.GENESIS`), as the 32 bytes stored (schema version 4)."""
    return bytes.fromhex(ledger_link(hash_hex(prev) or "", encounter_id, seq, hash_hex(head) or ""))


VERSION, FACTS, SEQ, HEAD = (SNAPSHOT.index(c) for c in ("version", "facts", "seq", "head"))
SELECT_SNAPSHOT = f"SELECT {', '.join(SNAPSHOT)} FROM encounters WHERE id = ?"
#: a new encounter's row; writes nothing when the id is taken
INSERT_SNAPSHOT = (
    f"INSERT INTO encounters ({', '.join(SNAPSHOT)}, id)"
    f" VALUES ({', '.join('?' * (len(SNAPSHOT) + 1))}) ON CONFLICT (id) DO NOTHING"
)
#: the snapshot columns that change without a new version (deliveries append events;
#: retention clears the facts and their salt), compared with ``IS`` as they may be NULL
GUARDED = tuple(
    SNAPSHOT.index(c) for c in ("version", "facts", "facts_salt", "facts_digest", "seq", "head")
)
#: an update of the encounter row that applies only if it still holds what was read
GUARD = "id = ? AND " + " AND ".join(f"{SNAPSHOT[i]} IS ?" for i in GUARDED)
NOTE = (
    "key, encounter_id, protocol, event, step, party, created_at, attempts,"
    " next_attempt_at, contact, last_error, delivered_at, dead_lettered_at"
)
#: a notification that still waits for delivery
PENDING = "delivered_at IS NULL AND dead_lettered_at IS NULL"


def _names(columns: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in columns.split(","))


NOTE_NAMES = _names(NOTE)


def row_data(names: tuple[str, ...], values: Sequence[Any]) -> dict[str, Any]:
    """A row as data for the converter, keyed by the value's field names."""
    return dict(zip(names, values, strict=True))


def note_row(note: Notification) -> tuple[Any, ...]:
    """The outbox row of ``note``, in the table's column order: what the converter
    writes for each field (times as ISO 8601 text), with the microsecond columns."""
    delivered, dead = note.delivered_at, note.dead_lettered_at
    return (
        note.key,
        note.encounter_id,
        note.protocol,
        note.event,
        note.step,
        note.party,
        note.created_at.isoformat(),
        micros(note.created_at),
        note.attempts,
        note.next_attempt_at.isoformat(),
        micros(note.next_attempt_at),
        note.contact,
        note.last_error,
        None if delivered is None else delivered.isoformat(),
        None if dead is None else dead.isoformat(),
    )
