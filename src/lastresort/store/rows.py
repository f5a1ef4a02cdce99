"""How values map to rows of the SQLite store: column lists, statements, and the
converter's data for each row (all (de)serialisation goes through ``convert``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ..audit import GENESIS
from ..convert import converter, dump_row
from ..outbox import Notification
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
    " next_attempt_at, contact, last_error, delivered_at"
)


def _defaults(cls: type) -> dict[str, Any]:
    """The unstructured defaults of ``cls``'s fields (the converter omits them)."""
    out: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.default is not attrs.NOTHING and not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            out[field.name] = converter.unstructure(field.default)
    return out


NOTE_DEFAULTS = _defaults(Notification)


def _names(columns: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in columns.split(","))


NOTE_NAMES = _names(NOTE)


def row_data(names: tuple[str, ...], values: Sequence[Any]) -> dict[str, Any]:
    """A row as data for the converter, keyed by the value's field names."""
    return dict(zip(names, values, strict=True))


def note_row(note: Notification) -> tuple[Any, ...]:
    """The outbox row of ``note``, in the table's column order."""
    d = {**NOTE_DEFAULTS, **dump_row(note)}
    return (
        d["key"],
        d["encounter_id"],
        d["protocol"],
        d["event"],
        d["step"],
        d["party"],
        d["created_at"],
        micros(note.created_at),
        d["attempts"],
        d["next_attempt_at"],
        micros(note.next_attempt_at),
        d["contact"],
        d["last_error"],
        d["delivered_at"],
    )
