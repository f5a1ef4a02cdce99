"""The shared store: encounters on a PostgreSQL server, for several workers on several hosts.

The same contract as :class:`~lastresort.store.sqlite.SQLiteStore` (the same
contract suite runs on both), the same hash-chained events and commit ledger
(computed by :mod:`lastresort.audit`, the one hashing code), the same columns:
times as ISO 8601 text beside UTC microsecond ``*_us`` columns for ordering.

How it keeps the contract under concurrency, at ``READ COMMITTED``:

- a commit locks the encounter row (``SELECT ... FOR UPDATE``) and checks its
  version there (optimistic concurrency: :class:`ConcurrentUpdate`), removes the
  deadline it consumes (:class:`DeadlineGone` when another worker fired it), and
  appends to the global ledger under the lock of its one ``ledger_head`` row, taken
  last, so that locks are always taken in the order encounter, deadlines/outbox,
  ledger and two transactions never wait on each other in a cycle;
- claims take due rows with ``FOR UPDATE SKIP LOCKED`` and set their lease in the
  same statement, so two workers never claim the same row at once and a claiming
  worker never waits for another;
- every database error (a lock not granted within ``lock_timeout``, a
  serialization failure, a deadlock, a lost connection) rolls the transaction back
  and is raised as :class:`StoreError` naming what could not be done; a broken
  connection is dropped and the next call opens a new one.

Every thread has its own connection; a forked child opens its own and never
touches (nor closes) its parent's.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.parse
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

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
from ..errors import (
    ConcurrentUpdate,
    DeadlineGone,
    InvalidArgument,
    StoreError,
    UnknownEncounter,
)
from ..events import Event, NotificationDeadLettered, NotificationDelivered, NotificationQueued
from ..outbox import Notification
from ..protocol.model import Encounter
from .audit import (
    GENESIS,
    AuditReport,
    event_json,
    facts_digest,
    hash_hex,
    ledger_link,
    link_hash,
    snapshot_digest,
)
from .base import Change, PendingDeadline, check_change, check_dead_letter, numbered
from .queries import QUEUE_INDEX, check_find, find_query
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

if TYPE_CHECKING:  # psycopg is an optional dependency: imported when a store is made
    import psycopg

__all__ = [
    "PG_MIGRATIONS",
    "PG_SCHEMA_VERSION",
    "PostgresStore",
    "pg_connect",
    "pg_schema_version",
    "pg_upgrade",
    "verify_postgres",
]

_INSTALL = "pip install 'lastresort[postgres]'"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_SYNC = ("on", "remote_apply", "remote_write", "local", "off")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            problem=f"PostgresStore needs psycopg 3, which is not installed: {_INSTALL}"
        ) from exc
    return psycopg


#: where a connection string keeps its password: the userinfo of a URI
#: (``postgresql://user:PASSWORD@host``) or the ``password`` keyword (quoted or not)
_DSN_PASSWORDS = (
    re.compile(r"^[a-z]+://[^:@/?#]*:([^@/?#]*)@"),
    re.compile(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'?|\S+)"),
)
MALFORMED_DSN = "the connection string is malformed (not shown: it may hold a password)"


def _without_password(text: str, dsn: str) -> str:
    """``text`` with the DSN and every form of its password replaced by ``***``."""
    secrets = {dsn}
    for pattern in _DSN_PASSWORDS:
        for found in pattern.finditer(dsn):
            raw = found.group(1)
            secrets |= {raw, raw.strip("'"), urllib.parse.unquote(raw)}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def pg_connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """``psycopg.connect(dsn, **kwargs)`` whose errors never show the DSN's password:
    libpq quotes the offending token of a connection string it cannot parse (a bad
    percent escape in the password) or the whole URI (an unterminated IPv6 host), so a
    parse error (``ProgrammingError``) says only that the DSN is malformed, and any
    other error has the DSN and its password replaced by ``***``. The error raised
    carries no link to the original one.

    :raises psycopg.Error: of the original error's class."""
    pg = _psycopg()
    failure: Exception | None = None
    try:
        conn: psycopg.Connection[Any] = pg.connect(dsn, **kwargs)
    except pg.ProgrammingError:
        failure = pg.ProgrammingError(MALFORMED_DSN)
    except pg.Error as exc:
        text = str(exc).strip() or type(exc).__name__
        try:
            failure = type(exc)(_without_password(text, dsn))
        except Exception:  # noqa: BLE001 - a class that will not take a message
            failure = pg.OperationalError(_without_password(text, dsn))
    else:
        return conn
    raise failure  # outside the except clause: no __context__ holding the password


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


# -- schema ----------------------------------------------------------------------------

#: Version 1: what the first PostgresStore ships. The same tables and columns as
#: SQLite schema version 3 (so that one verifier reads both), plus ``encounters.rowid``
#: (insertion order, which SQLite has built in), ``ledger_head`` (the one row every
#: ledger append locks), ids compared bytewise (``COLLATE "C"``, as SQLite does).
_V1 = (
    """CREATE TABLE encounters (
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        id TEXT COLLATE "C" PRIMARY KEY,
        protocol TEXT NOT NULL,
        protocol_version TEXT NOT NULL,
        state TEXT NOT NULL,
        responsible TEXT,
        version INTEGER NOT NULL,
        opened_at TEXT NOT NULL,
        closed_at TEXT,
        closed_us BIGINT,
        channel TEXT NOT NULL,
        facts TEXT,
        facts_salt BYTEA,
        facts_digest TEXT NOT NULL,
        purged_at TEXT,
        snapshot TEXT NOT NULL,
        seq INTEGER NOT NULL,
        head TEXT NOT NULL
    )""",
    "CREATE INDEX encounters_open ON encounters (id) WHERE closed_at IS NULL",
    "CREATE INDEX encounters_retention ON encounters (closed_us) WHERE purged_at IS NULL",
    """CREATE TABLE events (
        encounter_id TEXT COLLATE "C" NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (encounter_id, seq)
    )""",
    """CREATE TABLE ledger (
        n BIGINT PRIMARY KEY,
        encounter_id TEXT COLLATE "C" NOT NULL,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        link TEXT NOT NULL
    )""",
    """CREATE TABLE ledger_head (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        n BIGINT NOT NULL,
        link TEXT NOT NULL
    )""",
    f"INSERT INTO ledger_head (n, link) VALUES (0, '{GENESIS}')",
    """CREATE TABLE deadlines (
        id TEXT COLLATE "C" PRIMARY KEY,
        encounter_id TEXT COLLATE "C" NOT NULL,
        step TEXT NOT NULL,
        event TEXT NOT NULL,
        due TEXT NOT NULL,
        due_us BIGINT NOT NULL,
        lease_us BIGINT
    )""",
    "CREATE INDEX deadlines_encounter ON deadlines (encounter_id)",
    "CREATE INDEX deadlines_due ON deadlines (due_us, id)",
    """CREATE TABLE outbox (
        key TEXT COLLATE "C" PRIMARY KEY,
        encounter_id TEXT COLLATE "C" NOT NULL,
        protocol TEXT NOT NULL,
        event TEXT NOT NULL,
        step TEXT NOT NULL,
        party TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_us BIGINT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at TEXT NOT NULL,
        next_attempt_us BIGINT NOT NULL,
        contact TEXT,
        last_error TEXT,
        delivered_at TEXT,
        dead_lettered_at TEXT
    )""",
    "CREATE INDEX outbox_encounter ON outbox (encounter_id)",
    "CREATE INDEX outbox_due ON outbox (next_attempt_us)"
    " WHERE delivered_at IS NULL AND dead_lettered_at IS NULL",
)

#: Version 2: the refusal log (refused attempts, numbered over the whole schema and
#: hash-chained, see :mod:`lastresort.store.refusals`) and its one-row head, as SQLite
#: schema version 5 (hashes as hex text, like the other hashes of this schema).
_V2 = (
    """CREATE TABLE refusals (
        seq BIGINT PRIMARY KEY,
        at_us BIGINT NOT NULL,
        encounter_id TEXT COLLATE "C",
        data TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    "CREATE INDEX refusals_encounter ON refusals (encounter_id, seq)"
    " WHERE encounter_id IS NOT NULL",
    """CREATE TABLE refusal_head (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
    )""",
    f"INSERT INTO refusal_head (seq, hash) VALUES (0, '{GENESIS}')",
)

#: Version 3: the work-queue index (open encounters by responsible party, in id
#: order, for :meth:`PostgresStore.find`), as SQLite schema version 6.
_V3 = (QUEUE_INDEX,)

#: Migration ``i`` brings a database schema from version ``i`` to ``i + 1``: a tuple of
#: statements run in one transaction with the ``schema_version`` row.
PG_MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
#: The PostgreSQL schema version this lastresort writes.
PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
#: an arbitrary constant: with the schema's name, the advisory lock two processes
#: migrating the same schema at once share (other schemas, other locks: a store in one
#: schema never waits for, or times out on, a migration of another)
_MIGRATION_LOCK = 0x6C72_6D69


def pg_schema_version(conn: psycopg.Connection[Any], name: str = "database") -> int:
    """The schema version in the connection's current schema (``0`` when empty).

    :raises StoreError: when the schema holds tables but no ``schema_version``."""
    tables = {
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    if "schema_version" not in tables:
        if tables:
            raise StoreError(
                problem=f"{name} is not a lastresort store: it has tables"
                f" ({', '.join(sorted(tables))}) but no schema_version table"
            )
        return 0
    found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(found[0] or 0) if found else 0


def lock_migrations(conn: psycopg.Connection[Any]) -> None:
    """Take, until the end of the current transaction, the lock that migrations of the
    connection's current schema share (waiting up to the connection's lock_timeout)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (_MIGRATION_LOCK,))


def pg_upgrade(
    conn: psycopg.Connection[Any],
    target: int = PG_SCHEMA_VERSION,
    name: str = "database",
    migrations: Sequence[Sequence[str]] = PG_MIGRATIONS,
) -> int:
    """Bring the current schema of ``conn`` (in autocommit mode) to version
    ``target``: every missing migration in one transaction, under an advisory lock
    so that two processes opening an old schema at once migrate it once.

    :param migrations: the migrations to apply (a test passes a fabricated history).
    :returns: the version before.
    :raises StoreError: when the schema is newer than ``migrations`` know, or is not
        a lastresort store; nothing is changed."""
    if not 0 <= target <= len(migrations):
        raise ValueError(f"no schema version {target}; this lastresort knows 1..{len(migrations)}")
    with conn.transaction():
        lock_migrations(conn)
        before = pg_schema_version(conn, name)
        if before > len(migrations):
            raise StoreError(
                problem=f"{name} has schema version {before}, newer than this lastresort"
                f" understands ({len(migrations)}); upgrade lastresort to open it"
            )
        if before == 0 and target > 0:
            conn.execute(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                " applied_at TEXT NOT NULL)"
            )
        for version in range(before + 1, target + 1):
            for statement in migrations[version - 1]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                (version, datetime.now(UTC).isoformat()),
            )
    return before


# -- connections -----------------------------------------------------------------------


class _Held:
    """A thread's connection: closed when the thread ends (its locals go), never in a
    forked child (closing would end the parent's session on the shared socket)."""

    def __init__(self, conn: psycopg.Connection[Any], pid: int) -> None:
        self.conn = conn
        self.pid = pid

    def __del__(self) -> None:
        if self.pid == os.getpid():
            with suppress(Exception):
                self.conn.close()


class _Connections:
    """One connection per thread (and per process: a forked child never uses, nor
    closes, a connection it inherited), autocommit, with the store's search_path
    and lock_timeout."""

    def __init__(
        self, dsn: str, schema: str | None, lock_timeout: float, synchronous: str, name: str
    ) -> None:
        self.synchronous = synchronous
        self.dsn = dsn
        self.schema = schema
        self.lock_timeout = lock_timeout
        self.name = name
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._inherited: list[_Held] = []
        self._closed = False

    def get(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StoreError(problem=f"{self.name} is closed")
        pid = os.getpid()
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and held.pid == pid and not held.conn.closed:
            return held.conn
        if held is not None and held.pid != pid:
            self._inherited.append(held)  # a parent's: never used, never closed here
        conn = pg_connect(self.dsn, autocommit=True)
        if self.schema is not None:
            conn.execute(f'SET search_path TO "{self.schema}"')
        # 0 would mean "wait for ever" to PostgreSQL: the shortest wait there is instead
        conn.execute(f"SET lock_timeout = {max(1, int(self.lock_timeout * 1000))}")
        conn.execute(f"SET synchronous_commit = {self.synchronous}")
        held = self._local.held = _Held(conn, pid)
        with self._lock:
            self._open.add(held)
        return conn

    def _fail(self, conn: psycopg.Connection[Any] | None, what: str, exc: Exception) -> StoreError:
        """``exc`` as a StoreError; a broken connection is dropped (the next call opens
        a new one)."""
        if conn is not None and (conn.broken or conn.closed):
            self._local.held = None
            with suppress(Exception):
                conn.close()
        kind = type(exc).__name__
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
        return StoreError(problem=f"{self.name}: cannot {what}: {kind}: {text}")

    @contextmanager
    def write(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """One transaction: committed whole or rolled back whole (a database error
        becomes a :class:`StoreError` naming ``what``, nothing written)."""
        pg = _psycopg()
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self.get()
            with conn.transaction():
                yield conn
        except pg.Error as exc:
            raise self._fail(conn, f"{what} (nothing was written)", exc) from exc

    def read(self, what: str, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        pg = _psycopg()
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self.get()
            return conn.execute(sql, args).fetchall()
        except pg.Error as exc:
            raise self._fail(conn, what, exc) from exc

    def run(self, what: str, sql: str) -> None:
        """One statement outside any transaction (``VACUUM``)."""
        pg = _psycopg()
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = self.get()
            conn.execute(sql)
        except pg.Error as exc:
            raise self._fail(conn, what, exc) from exc

    def close(self) -> None:
        self._closed = True
        pid = os.getpid()
        with self._lock:
            mine = [h.conn for h in self._open if h.pid == pid]
            self._open = weakref.WeakSet()
        for conn in mine:
            with suppress(Exception):
                conn.close()


# -- the store -------------------------------------------------------------------------

_SNAPSHOT = (
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
_VERSION, _FACTS, _SEQ, _HEAD = (_SNAPSHOT.index(c) for c in ("version", "facts", "seq", "head"))
_SELECT = f"SELECT {', '.join(_SNAPSHOT)} FROM encounters WHERE id = %s"
_INSERT = (
    f"INSERT INTO encounters ({', '.join(_SNAPSHOT)}, id)"
    f" VALUES ({', '.join(['%s'] * (len(_SNAPSHOT) + 1))}) ON CONFLICT (id) DO NOTHING"
)
_UPDATE = (
    "UPDATE encounters SET "
    + ", ".join(f"{c} = %s" for c in _SNAPSHOT)
    + ", purged_at = CASE WHEN %s::text IS NULL THEN purged_at END WHERE id = %s"
)
_INSERT_EVENT = (
    "INSERT INTO events (encounter_id, seq, kind, data, snapshot, prev, hash)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_DEADLINE = "id, encounter_id, step, event, due"
_NOTE = (
    "key, encounter_id, protocol, event, step, party, created_at, attempts,"
    " next_attempt_at, contact, last_error, delivered_at, dead_lettered_at"
)
_NOTE_NAMES = tuple(n.strip() for n in _NOTE.split(","))
_NOTE_COLUMNS = (
    "key, encounter_id, protocol, event, step, party, created_at, created_us, attempts,"
    " next_attempt_at, next_attempt_us, contact, last_error, delivered_at, dead_lettered_at"
)
_UPSERT_NOTE = (
    f"INSERT INTO outbox ({_NOTE_COLUMNS}) VALUES ({', '.join(['%s'] * 15)})"
    " ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _NOTE_COLUMNS.split(",")[1:])
)
_PENDING = "delivered_at IS NULL AND dead_lettered_at IS NULL"


def _note_row(note: Notification) -> tuple[Any, ...]:
    delivered, dead = note.delivered_at, note.dead_lettered_at
    return (
        note.key,
        note.encounter_id,
        note.protocol,
        note.event,
        note.step,
        note.party,
        note.created_at.isoformat(),
        _us(note.created_at),
        note.attempts,
        note.next_attempt_at.isoformat(),
        _us(note.next_attempt_at),
        note.contact,
        note.last_error,
        None if delivered is None else delivered.isoformat(),
        None if dead is None else dead.isoformat(),
    )


class PostgresStore:
    """Encounters, their hash-chained timelines, deadlines and the outbox in one
    PostgreSQL schema. Safe from several threads, processes and hosts at once.

    :param dsn: a libpq connection string or URI (``postgresql://host/db``).
    :param schema: the schema to keep the tables in (created when missing;
        default: the connection's ``search_path``, normally ``public``). A plain
        lowercase SQL name.
    :param lock_timeout: seconds to wait for a row lock another transaction holds
        before failing with :class:`StoreError` (nothing written).
    :param synchronous_commit: the server's ``synchronous_commit`` for the store's
        transactions: ``"on"`` (default: a returned commit survives a crash of the
        server and the host), ``"remote_apply"``/``"remote_write"`` (also waits for a
        synchronous standby), ``"local"``, or ``"off"`` (survives a crash of the
        application, may lose the last commits if the server crashes; faster: what
        SQLite's ``synchronous="NORMAL"`` is to its file).
    :raises InvalidArgument: for a ``dsn`` that is not a string, a ``schema`` that is
        not a plain name, a negative ``lock_timeout``.
    :raises StoreError: when psycopg is not installed, the server cannot be reached,
        or the schema is not a lastresort store or was written by a newer lastresort.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        lock_timeout: float = 10.0,
        synchronous_commit: str = "on",
    ) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise InvalidArgument(
                call="PostgresStore",
                argument="dsn",
                problem=f"a PostgreSQL connection string, not {type(dsn).__name__}"
                + (" ''" if isinstance(dsn, str) else ""),
            )
        if schema is not None and (not isinstance(schema, str) or not _SCHEMA_NAME.match(schema)):
            raise InvalidArgument(
                call="PostgresStore",
                argument="schema",
                problem="a plain lowercase SQL name (letters, digits, _; at most 63)",
            )
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, int | float)
            or not 0 <= lock_timeout < 86400
        ):
            raise InvalidArgument(
                call="PostgresStore",
                argument="lock_timeout",
                problem="a number of seconds from 0 to a day",
            )
        if synchronous_commit not in _SYNC:
            raise InvalidArgument(
                call="PostgresStore",
                argument="synchronous_commit",
                problem=f"one of {', '.join(_SYNC)}",
            )
        self.dsn = dsn
        self.schema = schema
        self.lock_timeout = float(lock_timeout)
        self.synchronous_commit = synchronous_commit
        pg = _psycopg()
        self._db = _Connections(dsn, schema, self.lock_timeout, synchronous_commit, repr(self))
        where = f"PostgreSQL schema {schema or '(search_path)'}"
        try:
            conn = self._db.get() if schema is None else self._create_schema(pg)
            where = self._where()
            pg_upgrade(conn, name=where)
        except pg.Error as exc:
            self.close()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                problem=f"cannot open {where} as a lastresort store: {type(exc).__name__}: {first}"
            ) from exc
        except BaseException:
            self.close()
            raise

    def _create_schema(self, pg: Any) -> psycopg.Connection[Any]:
        conn = self._db.get()
        with suppress(pg.errors.UniqueViolation, pg.errors.DuplicateSchema):
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        return conn

    def _where(self) -> str:
        """The server, database and schema, without any password of the DSN."""
        conn = self._db.get()
        info = conn.info
        schema = self.schema or "search_path"
        return f"PostgreSQL {info.host}:{info.port}/{info.dbname} schema {schema}"

    # -- encounters ------------------------------------------------------------------

    def load(self, encounter_id: str) -> Encounter:
        check_text("load", "encounter_id", encounter_id)
        rows = self._db.read("load an encounter", _SELECT, (encounter_id,))
        if not rows:
            raise UnknownEncounter(encounter_id=encounter_id)
        p, v, state, responsible, version, opened, closed, _, channel, facts = rows[0][:10]
        try:
            return load_encounter(
                (encounter_id, p, v, state, responsible, facts, version, opened, closed, channel)
            )
        except (StoreError, ValueError) as exc:
            raise StoreError(problem=f"encounter {encounter_id} is unreadable: {exc}") from exc

    def commit(self, change: Change) -> list[Event]:
        check_change(change)
        encounter = change.encounter
        eid = encounter.id
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
            None if closed is None else _us(closed),
            encounter.channel,
            facts,
        )
        deadlines = [
            (d.id, eid, d.step, d.event, d.due.isoformat(), _us(d.due)) for d in change.schedule
        ]
        notes = [_note_row(n) for n in change.outbox]
        expected = change.expected_version
        with self._db.write(f"commit encounter {eid}") as conn:
            if expected is None:
                plan = _Plan(change, datas, fields, snap, None)
                if not conn.execute(_INSERT, (*plan.values, eid)).rowcount:
                    found = conn.execute("SELECT version FROM encounters WHERE id = %s", (eid,))
                    row = found.fetchone()
                    raise ConcurrentUpdate(
                        encounter_id=eid, expected=0, actual=int(row[0]) if row else 0
                    )
            else:
                base = conn.execute(_SELECT + " FOR UPDATE", (eid,)).fetchone()
                if base is None:
                    raise UnknownEncounter(encounter_id=eid)
                if base[_VERSION] != expected:
                    raise ConcurrentUpdate(
                        encounter_id=eid, expected=expected, actual=int(base[_VERSION])
                    )
                plan = _Plan(change, datas, fields, snap, tuple(base))
                conn.execute(_UPDATE, (*plan.values, facts, eid))
            # a step fired by the clock removes its deadline, and only if it is still
            # there: a worker whose claim ran out cannot fire it a second time
            if change.consume is not None and not (
                conn.execute(
                    "DELETE FROM deadlines WHERE id = %s AND encounter_id = %s",
                    (change.consume, eid),
                ).rowcount
            ):
                raise DeadlineGone(
                    encounter_id=eid, deadline_id=change.consume, expected=expected or 0
                )
            cur = conn.cursor()
            if plan.rows:
                cur.executemany(_INSERT_EVENT, plan.rows)
            if change.clear:
                conn.execute("DELETE FROM deadlines WHERE id = ANY(%s)", (list(change.clear),))
            if deadlines:
                cur.executemany(
                    "INSERT INTO deadlines (id, encounter_id, step, event, due, due_us)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                    " encounter_id = excluded.encounter_id, step = excluded.step,"
                    " event = excluded.event, due = excluded.due, due_us = excluded.due_us,"
                    " lease_us = NULL",
                    deadlines,
                )
            if notes:
                cur.executemany(_UPSERT_NOTE, notes)
            if plan.rows:
                self._append_ledger(conn, eid, plan.seq, plan.head)
        return plan.committed

    @staticmethod
    def _append_ledger(conn: psycopg.Connection[Any], eid: str, seq: int, head: str) -> None:
        """The next ledger row, linked to the last: under the lock of ``ledger_head``,
        taken last in every transaction (it serialises the ledger appends only)."""
        row = conn.execute("SELECT n, link FROM ledger_head FOR UPDATE").fetchone()
        assert row is not None  # created with the schema
        n, link = int(row[0]) + 1, ledger_link(row[1], eid, seq, head)
        conn.execute(  # one round trip for both
            "WITH moved AS (UPDATE ledger_head SET n = %s, link = %s)"
            " INSERT INTO ledger (n, encounter_id, seq, hash, link) VALUES (%s, %s, %s, %s, %s)",
            (n, link, n, eid, seq, head, link),
        )

    def timeline(self, encounter_id: str) -> list[Event]:
        check_text("timeline", "encounter_id", encounter_id)
        rows = self._db.read(
            "read a timeline",
            "SELECT seq, data FROM events WHERE encounter_id = %s ORDER BY seq",
            (encounter_id,),
        )
        if not rows:
            self.load(encounter_id)  # raises UnknownEncounter
        out = []
        for seq, data in rows:
            try:
                out.append(load_event({**_json(data), "seq": seq}))
            except (StoreError, ValueError) as exc:
                raise StoreError(
                    problem=f"event {seq} of encounter {encounter_id} is unreadable: {exc}"
                ) from exc
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
        sql, args = find_query(query, "%s")
        out = []
        for row in self._db.read("find encounters", sql, args):
            try:
                out.append(load_encounter(tuple(row)))
            except (StoreError, ValueError) as exc:
                raise StoreError(problem=f"encounter {row[0]} is unreadable: {exc}") from exc
        return out

    # -- deadlines ------------------------------------------------------------------

    @staticmethod
    def _deadlines(rows: list[Any]) -> list[PendingDeadline]:
        out = []
        for row in rows:
            try:
                out.append(load_plain(PendingDeadline, tuple(row)))
            except StoreError as exc:
                raise StoreError(problem=f"deadline {row[0]} is unreadable: {exc}") from exc
        return out

    def deadlines(self, encounter_id: str) -> list[PendingDeadline]:
        check_text("deadlines", "encounter_id", encounter_id)
        return self._deadlines(
            self._db.read(
                "read deadlines",
                f"SELECT {_DEADLINE} FROM deadlines WHERE encounter_id = %s ORDER BY due_us, id",
                (encounter_id,),
            )
        )

    def claim_deadlines(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[PendingDeadline]:
        check_claim("claim_deadlines", now, lease, limit)
        now_us = _us(now)
        until = _us(instant_after(now, lease))
        with self._db.write("claim deadlines") as conn:
            rows = conn.execute(
                "WITH due AS (SELECT id FROM deadlines WHERE due_us <= %s"
                " AND (lease_us IS NULL OR lease_us <= %s) ORDER BY due_us, id LIMIT %s"
                " FOR UPDATE SKIP LOCKED)"
                " UPDATE deadlines AS d SET lease_us = %s FROM due WHERE d.id = due.id"
                " RETURNING d.id, d.encounter_id, d.step, d.event, d.due, d.due_us",
                (now_us, now_us, limit, until),
            ).fetchall()
        rows.sort(key=lambda r: (r[5], r[0]))
        return self._deadlines([r[:5] for r in rows])

    def next_due(self) -> datetime | None:
        rows = self._db.read(
            "find the next deadline", "SELECT due FROM deadlines ORDER BY due_us, id LIMIT 1"
        )
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def release_deadline(self, deadline_id: str) -> None:
        check_text("release_deadline", "deadline_id", deadline_id)
        with self._db.write(f"release deadline {deadline_id}") as conn:
            conn.execute("DELETE FROM deadlines WHERE id = %s", (deadline_id,))

    # -- outbox ---------------------------------------------------------------------

    @staticmethod
    def _notes(rows: list[Any]) -> list[Notification]:
        out = []
        for r in rows:
            try:
                out.append(load_row(dict(zip(_NOTE_NAMES, r, strict=True)), Notification))
            except StoreError as exc:
                raise StoreError(problem=f"notification {r[0]} is unreadable: {exc}") from exc
        return out

    def claim_outbox(
        self, now: datetime, lease: timedelta, limit: int | None = None
    ) -> list[Notification]:
        check_claim("claim_outbox", now, lease, limit)
        now_us = _us(now)
        until = instant_after(now, lease)
        with self._db.write("claim notifications") as conn:
            rows = conn.execute(
                f"WITH due AS (SELECT key, next_attempt_at AS was FROM outbox WHERE {_PENDING}"
                " AND next_attempt_us <= %s ORDER BY created_us, key LIMIT %s"
                " FOR UPDATE SKIP LOCKED)"
                " UPDATE outbox AS o SET next_attempt_at = %s, next_attempt_us = %s"
                " FROM due WHERE o.key = due.key RETURNING "
                + ", ".join("due.was" if n == "next_attempt_at" else f"o.{n}" for n in _NOTE_NAMES)
                + ", o.created_us",
                (now_us, limit, until.isoformat(), _us(until)),
            ).fetchall()
        rows.sort(key=lambda r: (r[-1], r[0]))
        return self._notes([r[:-1] for r in rows])

    @staticmethod
    def _known_note(conn: psycopg.Connection[Any], key: str) -> tuple[str, bool]:
        """Lock notification ``key`` (after its encounter: the order every
        transaction takes its locks in); its encounter and whether it is pending."""
        found = conn.execute("SELECT encounter_id FROM outbox WHERE key = %s", (key,)).fetchone()
        if found is None:
            raise StoreError(problem=f"no notification with key {key!r} in the outbox")
        conn.execute("SELECT 1 FROM encounters WHERE id = %s FOR UPDATE", (found[0],))
        row = conn.execute(
            f"SELECT encounter_id, {_PENDING} FROM outbox WHERE key = %s FOR UPDATE", (key,)
        ).fetchone()
        assert row is not None  # rows of the outbox are never deleted
        return str(row[0]), bool(row[1])

    def _append_events(
        self, conn: psycopg.Connection[Any], eid: str, events: Sequence[Event]
    ) -> int:
        """Append ``events`` to the hash chain of ``eid`` (its row locked already; the
        version does not change); the sequence number of the first."""
        row = conn.execute(
            "SELECT seq, head, snapshot FROM encounters WHERE id = %s", (eid,)
        ).fetchone()
        assert row is not None  # an outbox row's encounter is never deleted
        seq, prev, snapshot = int(row[0]), str(row[1]), str(row[2])
        first = seq + 1
        rows = []
        for event in events:
            seq += 1
            data = event_json(event)
            digest = link_hash(prev, seq, snapshot, data)
            rows.append((eid, seq, event.kind, data, snapshot, prev, digest))
            prev = digest
        conn.cursor().executemany(_INSERT_EVENT, rows)
        conn.execute("UPDATE encounters SET seq = %s, head = %s WHERE id = %s", (seq, prev, eid))
        self._append_ledger(conn, eid, seq, prev)
        return first

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
            conn.execute(
                "UPDATE outbox SET delivered_at = %s, attempts = %s, contact = %s WHERE key = %s",
                (at, event.attempts, contact, key),
            )
            seq = self._append_events(conn, eid, [event])
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
            found = conn.execute(
                "UPDATE outbox SET attempts = %s, next_attempt_at = %s, next_attempt_us = %s,"
                f" last_error = %s, contact = %s WHERE key = %s AND {_PENDING}",
                (attempts, next_attempt_at.isoformat(), _us(next_attempt_at), error, contact, key),
            )
            if (
                not found.rowcount
                and not conn.execute("SELECT 1 FROM outbox WHERE key = %s", (key,)).fetchone()
            ):
                raise StoreError(problem=f"no notification with key {key!r} in the outbox")

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
        rows = [_note_row(n) for n in escalations]
        with self._db.write(f"dead-letter {key}") as conn:
            eid, pending = self._known_note(conn, key)
            check_dead_letter(eid, event, escalations, queued)
            if not pending:
                return []
            events: list[Event] = [event, *queued]
            conn.execute(
                "UPDATE outbox SET dead_lettered_at = %s, attempts = %s, contact = %s,"
                " last_error = %s WHERE key = %s",
                (at, event.attempts, contact, event.error_kind, key),
            )
            if rows:
                conn.cursor().executemany(_UPSERT_NOTE, rows)
            first = self._append_events(conn, eid, events)
        return [numbered(e, first + i) for i, e in enumerate(events)]

    def outbox(self, encounter_id: str | None = None) -> list[Notification]:
        check_optional_text("outbox", "encounter_id", encounter_id)
        if encounter_id is None:
            rows = self._db.read(
                "read the outbox", f"SELECT {_NOTE} FROM outbox ORDER BY created_us, key"
            )
        else:
            rows = self._db.read(
                "read the outbox",
                f"SELECT {_NOTE} FROM outbox WHERE encounter_id = %s ORDER BY created_us, key",
                (encounter_id,),
            )
        return self._notes(rows)

    # -- retention ------------------------------------------------------------------

    def purge_facts(
        self, closed_before: datetime, *, dry_run: bool = False, now: datetime | None = None
    ) -> int:
        """Remove the facts (and their salt) of encounters closed before
        ``closed_before``; keep their step timeline and a verifiable audit chain.

        The old row versions are then vacuumed away from the table (``VACUUM``), but
        PostgreSQL keeps them in its write-ahead log and in backups until those are
        recycled: see docs/store.md, "Operating PostgreSQL".

        :returns: how many encounters were (or would be) purged."""
        check_moment("purge_facts", "closed_before", closed_before)
        check_flag("purge_facts", "dry_run", dry_run)
        check_moment("purge_facts", "now", now, optional=True)
        where = "closed_us IS NOT NULL AND closed_us < %s AND purged_at IS NULL"
        limit = _us(closed_before)
        if dry_run:
            return int(
                self._db.read(
                    "count purgeable encounters",
                    f"SELECT COUNT(*) FROM encounters WHERE {where}",
                    (limit,),
                )[0][0]
            )
        stamp = (now or datetime.now(UTC)).isoformat()
        with self._db.write("purge facts") as conn:
            count = conn.execute(
                "UPDATE encounters SET facts = NULL, facts_salt = NULL, purged_at = %s"
                f" WHERE {where}",
                (stamp, limit),
            ).rowcount
        if count:
            self._db.run("vacuum the purged rows", "VACUUM encounters")
        return int(count)

    # -- lifetime -------------------------------------------------------------------

    # -- refusals ----------------------------------------------------------------

    def record_refusal(self, refusal: Refusal) -> Refusal:
        check_refusal("record_refusal", refusal)
        data = refusal_json(refusal)
        at_us = _us(refusal.at)
        with self._db.write("record a refusal") as conn:
            # the head row is locked: refusals are numbered and chained one at a time
            row = conn.execute("SELECT seq, hash FROM refusal_head FOR UPDATE").fetchone()
            prev = None if row is None else hash_hex(row[1])
            if row is None or prev is None:
                raise StoreError(
                    problem=f"{self._where()}: the refusal log's head is missing or unreadable"
                    " (changed by hand?); nothing was written"
                )
            seq = int(row[0]) + 1
            digest = refusal_link(prev, seq, data)
            conn.execute(
                "WITH moved AS (UPDATE refusal_head SET seq = %s, hash = %s)"
                " INSERT INTO refusals (seq, at_us, encounter_id, data, prev, hash)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (seq, digest, seq, at_us, refusal.encounter_id, data, prev, digest),
            )
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
        sql, args = refusals_query(encounter_id, since, limit, after_seq, "%s")
        rows = self._db.read("read the refusal log", sql, args)
        out = []
        for seq, data in rows:
            try:
                out.append(load_refusal(int(seq), data))
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreError(
                    problem=f"{self._where()}: refusal {seq} is unreadable: {type(exc).__name__}"
                ) from exc
        return out

    @property
    def schema_version(self) -> int:
        """The schema version of the store (always :data:`PG_SCHEMA_VERSION` once open)."""
        return int(
            self._db.read("read the schema version", "SELECT MAX(version) FROM schema_version")[0][
                0
            ]
        )

    def verify(
        self,
        *,
        anchor: tuple[int, str] | None = None,
        refusal_anchor: tuple[int, str] | None = None,
    ) -> AuditReport:
        """:func:`verify_postgres` on this store's schema."""
        return verify_postgres(
            self.dsn, schema=self.schema, anchor=anchor, refusal_anchor=refusal_anchor
        )

    def close(self) -> None:
        """Close every connection this process opened; the store is unusable after."""
        self._db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        schema = "" if self.schema is None else f", schema={self.schema!r}"
        return f"PostgresStore(<dsn>{schema})"


def _json(text: str) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(text)
    return value


class _Plan:
    """What one commit writes to the encounter row and its timeline, computed from the
    locked row it builds on (``None`` for a new encounter)."""

    __slots__ = ("committed", "head", "rows", "seq", "values")

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
            seq, prev = int(base[_SEQ]), str(base[_HEAD])
            if base[_FACTS] == facts:
                salt, digest = bytes(base[_FACTS + 1]), str(base[_FACTS + 2])
            else:
                salt = bytes(base[_FACTS + 1]) if base[_FACTS + 1] else os.urandom(16)
                digest = facts_digest(facts, salt)
        snapshot = snapshot_digest(snap, digest)
        eid = change.encounter.id
        rows = []
        committed: list[Event] = []
        for event, data in zip(change.events, datas, strict=True):
            seq += 1
            digest_of_event = link_hash(prev, seq, snapshot, data)
            rows.append((eid, seq, event.kind, data, snapshot, prev, digest_of_event))
            committed.append(event if event.seq == seq else numbered(event, seq))
            prev = digest_of_event
        self.values = (*fields, salt, digest, snapshot, seq, prev)
        self.rows = rows
        self.committed = committed
        self.seq = seq
        self.head = prev


# -- the audit -------------------------------------------------------------------------


class _AuditConnection:
    """What :class:`lastresort.audit._Verifier` asks of a connection (``execute``
    with ``?`` parameters, ``PRAGMA table_info``), answered by PostgreSQL: the one
    verifier reads both stores."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        pragma = re.fullmatch(r"PRAGMA table_info\((\w+)\)", sql.strip())
        if pragma:
            return self.conn.execute(
                "SELECT ordinal_position, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s",
                (pragma.group(1),),
            )
        return self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), args)


def verify_postgres(
    dsn: str,
    *,
    schema: str | None = None,
    anchor: tuple[int, str] | None = None,
    refusal_anchor: tuple[int, str] | None = None,
) -> AuditReport:
    """:func:`lastresort.audit.verify` for a PostgreSQL store: every hash chain, the
    ledger, and every row derived from the events, in one ``REPEATABLE READ READ
    ONLY`` transaction (a consistent view while workers write; nothing written).

    :raises InvalidArgument: for a ``dsn`` or ``schema`` of the wrong form, or a bad
        ``anchor``; nothing is read.
    :raises StoreError: when the server cannot be reached, or the schema is empty, not
        a lastresort store or newer than this lastresort."""
    from .audit import _Verifier, check_anchor, check_refusal_anchor

    if not isinstance(dsn, str) or not dsn.strip():
        raise InvalidArgument(
            call="audit.verify", argument="dsn", problem="a PostgreSQL connection string"
        )
    if schema is not None and (not isinstance(schema, str) or not _SCHEMA_NAME.match(schema)):
        raise InvalidArgument(
            call="audit.verify", argument="schema", problem="a plain lowercase SQL name"
        )
    check_anchor(anchor)
    check_refusal_anchor(refusal_anchor)
    pg = _psycopg()
    where = f"PostgreSQL schema {schema or '(search_path)'}"
    try:
        conn = pg_connect(dsn, autocommit=True)
    except pg.Error as exc:
        raise StoreError(problem=f"cannot connect to PostgreSQL: {exc}".strip()) from exc
    try:
        info = conn.info
        where = f"PostgreSQL {info.host}:{info.port}/{info.dbname} schema {schema or 'search_path'}"
        if schema is not None:
            conn.execute(f'SET search_path TO "{schema}"')
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            version = pg_schema_version(conn, where)
            if version == 0:
                raise StoreError(problem=f"{where}: empty, not a lastresort store")
            if version > PG_SCHEMA_VERSION:
                raise StoreError(
                    problem=f"{where} has schema version {version}, newer than this lastresort"
                    f" understands ({PG_SCHEMA_VERSION})"
                )
            return _Verifier(_AuditConnection(conn), micros=True).run(anchor, refusal_anchor)  # type: ignore[arg-type]
    except pg.Error as exc:
        raise StoreError(problem=f"{where}: cannot be read: {exc}".strip()) from exc
    finally:
        conn.close()
