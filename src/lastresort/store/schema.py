"""The SQLite schema of :class:`~lastresort.store.sqlite.SQLiteStore` and its
forward migrations.

A file records every migration applied in ``schema_version``; opening a file runs
the missing ones, in order, in one ``BEGIN IMMEDIATE`` transaction (so two
processes opening an old file at once migrate it once). A file written by a newer
lastresort is refused rather than guessed at. Migrations never drop information.

Version 1: encounters, the hash-chained events, the commit ledger, deadlines and
the outbox, with times as ISO 8601 text.
Version 2: adds UTC microsecond columns beside the times that are compared or
ordered (``closed_us``, ``due_us``, ``lease_us``, ``created_us``,
``next_attempt_us``), because ISO text with different UTC offsets does not sort
by instant; backfills them and indexes what falls due. Deadlines and the outbox
become ``WITHOUT ROWID`` tables keyed by their id (one b-tree less to write per
commit).
Version 3: adds ``outbox.dead_lettered_at`` (``NULL`` for every existing row: none
was dead-lettered before) for notifications given up after ``max_attempts``; the
index of what falls due leaves them out.
Version 4: the hashes of the audit trail that are written on every commit
(``events.snapshot``, ``events.prev``, ``events.hash``, ``ledger.hash``,
``ledger.link``) are stored as their 32 raw bytes instead of 64 hex characters (a
third less per event row, the largest table); their values, and what is hashed,
do not change (:func:`~lastresort.audit.hash_bytes`,
:func:`~lastresort.audit.hash_hex`). The retention index keeps only closed, unpurged
encounters (open ones were in it with an empty closing
time: one index write less per open and a smaller file).
Version 5: the refusal log (``refusals``: refused attempts, numbered over the whole
file and hash-chained, see :mod:`lastresort.store.refusals`) and its head
(``refusal_head``: the last number and hash, so that removing the last refusal is
detected). Nothing existing changes; the log starts empty.
Version 6: the work-queue index ``encounters_queue`` (open encounters by responsible
party, in id order: :data:`~lastresort.store.queries.QUEUE_INDEX`) for
:meth:`~lastresort.store.sqlite.SQLiteStore.find`. No row changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..errors import StoreError
from .audit import hash_bytes
from .queries import QUEUE_INDEX

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "micros", "schema_version", "upgrade"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """``moment`` as whole microseconds since 1970-01-01 UTC (for ordering in SQL).

    :raises StoreError: for a naive datetime (stored times carry their offset).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise StoreError(
            problem=f"time {moment.isoformat()} has no time zone; stored times must be aware"
        )
    return (moment - _EPOCH) // _MICRO


def _v1(conn: sqlite3.Connection) -> None:
    for statement in (
        """CREATE TABLE encounters (
            id TEXT PRIMARY KEY,
            protocol TEXT NOT NULL,
            protocol_version TEXT NOT NULL,
            state TEXT NOT NULL,
            responsible TEXT,
            version INTEGER NOT NULL,
            opened_at TEXT NOT NULL,
            closed_at TEXT,
            channel TEXT NOT NULL,
            facts TEXT,
            facts_salt BLOB,
            facts_digest TEXT NOT NULL,
            purged_at TEXT,
            snapshot TEXT NOT NULL,
            seq INTEGER NOT NULL,
            head TEXT NOT NULL
        )""",
        # appended in commit order (rowid), found by (encounter_id, seq): a commit then
        # writes the last page of the table and one small index page, not a split
        """CREATE TABLE events (
            encounter_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL,
            UNIQUE (encounter_id, seq)
        )""",
        """CREATE TABLE ledger (
            n INTEGER PRIMARY KEY,
            encounter_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            link TEXT NOT NULL
        )""",
        """CREATE TABLE deadlines (
            id TEXT PRIMARY KEY,
            encounter_id TEXT NOT NULL,
            step TEXT NOT NULL,
            event TEXT NOT NULL,
            due TEXT NOT NULL,
            lease_until TEXT
        )""",
        "CREATE INDEX deadlines_encounter ON deadlines (encounter_id)",
        """CREATE TABLE outbox (
            key TEXT PRIMARY KEY,
            encounter_id TEXT NOT NULL,
            protocol TEXT NOT NULL,
            event TEXT NOT NULL,
            step TEXT NOT NULL,
            party TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at TEXT NOT NULL,
            contact TEXT,
            last_error TEXT,
            delivered_at TEXT
        )""",
        "CREATE INDEX outbox_encounter ON outbox (encounter_id)",
    ):
        conn.execute(statement)


def _us_or_none(text: str | None) -> int | None:
    return None if text is None else micros(datetime.fromisoformat(text))


def _v2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE encounters ADD COLUMN closed_us INTEGER")
    conn.executemany(
        "UPDATE encounters SET closed_us = ? WHERE id = ?",
        [
            (_us_or_none(closed), eid)
            for eid, closed in conn.execute(
                "SELECT id, closed_at FROM encounters WHERE closed_at IS NOT NULL"
            )
        ],
    )
    conn.execute(
        "CREATE INDEX encounters_open ON encounters (id) WHERE closed_at IS NULL",
    )
    conn.execute(
        "CREATE INDEX encounters_retention ON encounters (closed_us) WHERE purged_at IS NULL"
    )
    # deadlines and outbox are rebuilt (the SQLite way to change columns)
    conn.execute(
        """CREATE TABLE deadlines_v2 (
            id TEXT PRIMARY KEY,
            encounter_id TEXT NOT NULL,
            step TEXT NOT NULL,
            event TEXT NOT NULL,
            due TEXT NOT NULL,
            due_us INTEGER NOT NULL,
            lease_us INTEGER
        ) WITHOUT ROWID"""
    )
    conn.executemany(
        "INSERT INTO deadlines_v2 VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (did, eid, step, event, due, micros(datetime.fromisoformat(due)), _us_or_none(lease))
            for did, eid, step, event, due, lease in conn.execute(
                "SELECT id, encounter_id, step, event, due, lease_until FROM deadlines"
            )
        ],
    )
    conn.execute("DROP TABLE deadlines")
    conn.execute("ALTER TABLE deadlines_v2 RENAME TO deadlines")
    conn.execute("CREATE INDEX deadlines_encounter ON deadlines (encounter_id)")
    conn.execute("CREATE INDEX deadlines_due ON deadlines (due_us, id)")
    conn.execute(
        """CREATE TABLE outbox_v2 (
            key TEXT PRIMARY KEY,
            encounter_id TEXT NOT NULL,
            protocol TEXT NOT NULL,
            event TEXT NOT NULL,
            step TEXT NOT NULL,
            party TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at TEXT NOT NULL,
            next_attempt_us INTEGER NOT NULL,
            contact TEXT,
            last_error TEXT,
            delivered_at TEXT
        ) WITHOUT ROWID"""
    )
    rows = conn.execute(
        "SELECT key, encounter_id, protocol, event, step, party, created_at, attempts,"
        " next_attempt_at, contact, last_error, delivered_at FROM outbox ORDER BY rowid"
    ).fetchall()
    conn.executemany(
        "INSERT INTO outbox_v2 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                *r[:7],
                micros(datetime.fromisoformat(r[6])),
                r[7],
                r[8],
                micros(datetime.fromisoformat(r[8])),
                *r[9:],
            )
            for r in rows
        ],
    )
    conn.execute("DROP TABLE outbox")
    conn.execute("ALTER TABLE outbox_v2 RENAME TO outbox")
    conn.execute("CREATE INDEX outbox_encounter ON outbox (encounter_id)")
    conn.execute(
        "CREATE INDEX outbox_due ON outbox (next_attempt_us) WHERE delivered_at IS NULL",
    )


def _v3(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE outbox ADD COLUMN dead_lettered_at TEXT")
    conn.execute("DROP INDEX outbox_due")
    conn.execute(
        "CREATE INDEX outbox_due ON outbox (next_attempt_us)"
        " WHERE delivered_at IS NULL AND dead_lettered_at IS NULL",
    )


def _v4(conn: sqlite3.Connection) -> None:
    # the rows are rewritten in place (the columns keep their declared type: SQLite
    # stores a BLOB as it is in any column); a value that is not 64 hex digits is
    # kept, so that the audit still reports an edited row as edited
    conn.create_function("lastresort_hash_bytes", 1, hash_bytes, deterministic=True)
    conn.execute(
        "UPDATE events SET snapshot = lastresort_hash_bytes(snapshot),"
        " prev = lastresort_hash_bytes(prev), hash = lastresort_hash_bytes(hash)"
    )
    conn.execute(
        "UPDATE ledger SET hash = lastresort_hash_bytes(hash), link = lastresort_hash_bytes(link)"
    )
    conn.execute("DROP INDEX encounters_retention")
    conn.execute(
        "CREATE INDEX encounters_retention ON encounters (closed_us)"
        " WHERE purged_at IS NULL AND closed_us IS NOT NULL"
    )


#: The statements of version 5 (the refusal log), shown in docs/store.md.
V5_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE refusals (
        seq INTEGER PRIMARY KEY,
        at_us INTEGER NOT NULL,
        encounter_id TEXT,
        data TEXT NOT NULL,
        prev BLOB NOT NULL,
        hash BLOB NOT NULL
    )""",
    "CREATE INDEX refusals_encounter ON refusals (encounter_id, seq)"
    " WHERE encounter_id IS NOT NULL",
    """CREATE TABLE refusal_head (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL
    )""",
    "INSERT INTO refusal_head (one, seq, hash) VALUES (1, 0, zeroblob(32))",
)


def _v5(conn: sqlite3.Connection) -> None:
    for statement in V5_STATEMENTS:
        conn.execute(statement)


def _v6(conn: sqlite3.Connection) -> None:
    conn.execute(QUEUE_INDEX)


#: Migration ``i`` brings a file from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5, _v6)
#: The schema version this lastresort writes.
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection, name: str = "database") -> int:
    """The schema version of the file behind ``conn`` (``0`` for an empty file).

    :raises StoreError: when the file holds tables but is not a lastresort store.
    :raises sqlite3.DatabaseError: when the file is not an SQLite database.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise StoreError(
                problem=f"{name} is not a lastresort store: it has tables"
                f" ({', '.join(sorted(tables))}) but no schema_version table"
            )
        return 0
    found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    return int(found or 0)


def upgrade(conn: sqlite3.Connection, target: int = SCHEMA_VERSION, name: str = "database") -> int:
    """Bring the file behind ``conn`` (in autocommit mode) to version ``target``,
    all missing migrations in one transaction.

    :returns: the version the file had before.
    :raises StoreError: when the file is newer than this lastresort, or is not a
        lastresort store; nothing is changed.
    """
    if not 0 <= target <= SCHEMA_VERSION:
        raise ValueError(f"no schema version {target}; this lastresort knows 1..{SCHEMA_VERSION}")
    before = schema_version(conn, name)
    if before == target:
        return before
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = schema_version(conn, name)  # another process may have migrated meanwhile
        if before > SCHEMA_VERSION:
            raise StoreError(
                problem=f"{name} has schema version {before}, newer than this lastresort"
                f" understands ({SCHEMA_VERSION}); upgrade lastresort to open it"
            )
        if before == 0:
            conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
        for version in range(before + 1, target + 1):
            MIGRATIONS[version - 1](conn)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, datetime.now(UTC).isoformat()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before
