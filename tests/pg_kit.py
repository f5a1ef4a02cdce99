"""The PostgreSQL server the tests run against: a fresh schema per store, dropped
after each test, so that parallel runs never collide.

The server is ``LASTRESORT_TEST_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``,
trust auth). When it cannot be reached the tests FAIL, naming the DSN and how to
start one: the PostgreSQL store is never left untested silently.

Importable as ``tests.pg_kit`` from tests and by path from child scripts.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import lastresort as lr
import lastresort.store.audit

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DSN = os.environ.get("LASTRESORT_TEST_DSN", DEFAULT_DSN)
#: schemas made by this process and not yet dropped
CREATED: list[str] = []
_REACHED: list[str] = []

HOW_TO_START = (
    "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
    " (or install PostgreSQL with trust auth for 127.0.0.1 and `createdb -U postgres test`),"
    " or point LASTRESORT_TEST_DSN at another server"
)


class ServerMissing(Exception):
    """The test server cannot be reached."""


def connect(dsn: str = DSN) -> Any:
    """An autocommit psycopg connection to the test server.

    :raises ServerMissing: naming the DSN and how to start a server."""
    import psycopg

    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ServerMissing(
            f"the PostgreSQL store tests need a server at {dsn}, which cannot be reached"
            f" ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc}): {HOW_TO_START}"
        ) from exc


def new_schema() -> str:
    """A fresh schema name, remembered to be dropped (:func:`drop_created`)."""
    name = f"lr_test_{secrets.token_hex(6)}"
    CREATED.append(name)
    return name


def make_store(schema: str | None = None, **kw: Any) -> lr.PostgresStore:
    """A PostgresStore in a fresh schema (or ``schema``, shared by several processes)."""
    if not _REACHED:
        connect().close()  # fail with the clear message first
        _REACHED.append(DSN)
    kw.setdefault("synchronous_commit", "off")  # as the SQLite tests use NORMAL
    return lr.PostgresStore(DSN, schema=schema or new_schema(), **kw)


def drop(schema: str) -> None:
    with connect() as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def drop_created() -> None:
    """Drop every schema this process made."""
    _REUSED.clear()
    while CREATED:
        drop(CREATED.pop())


_TABLES = ("events", "ledger", "deadlines", "outbox", "encounters", "refusals")


def emptied(store: lr.PostgresStore) -> lr.PostgresStore:
    """``store`` with every row deleted and its ledger started again: a fresh store
    without the cost of a new schema (for tests that make hundreds)."""
    with connect() as conn, conn.transaction():
        conn.execute(f'SET search_path TO "{store.schema}"')
        for table in _TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE ledger_head SET n = 0, link = %s", (lr.store.audit.GENESIS,))
        conn.execute("UPDATE refusal_head SET seq = 0, hash = %s", (lr.store.audit.GENESIS,))
    return store


_REUSED: list[str] = []


def reused_store(**kw: Any) -> lr.PostgresStore:
    """A new PostgresStore on the test's one reused schema, emptied first (whoever used
    it before must be done with it). Dropped with the test's schemas."""
    if _REUSED and _REUSED[0] in CREATED:
        store = make_store(_REUSED[0], **kw)
        return emptied(store)
    store = make_store(**kw)
    _REUSED[:] = [str(store.schema)]
    return store


def all_rows(store: lr.PostgresStore) -> bytes:
    """Every row of every table of the store's schema, as text."""
    return all_rows_of(str(store.schema))


def all_rows_of(schema: str) -> bytes:
    """Every row of every table of ``schema``, as text, in a stable order."""
    with connect() as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        ]
        return b"".join(
            str(row).encode()
            for t in sorted(tables)
            for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1")
        )
