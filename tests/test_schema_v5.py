"""Schema version 5 (SQLite) and 2 (PostgreSQL): the refusal log, added by a migration
that changes nothing that was there.

The version 4 state is the committed version 3 fixture (``tests/fixtures/store-v3.db``,
see tests/test_schema_v4.py) brought to version 4 by the migrations of that version
only; the PostgreSQL version 1 state is a schema made by the first migration alone.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from lastresort.store.postgres import PG_SCHEMA_VERSION, pg_schema_version, pg_upgrade
from lastresort.store.schema import SCHEMA_VERSION, upgrade
from tests import pg_kit
from tests.store_kit import START
from tests.test_schema_v4 import FIXTURE, TABLES, version_of

CLERK = lr.Actor("counter", "clerk-07")


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(sql).fetchall() for table, sql in TABLES.items()}
    finally:
        conn.close()


@pytest.fixture
def v4(tmp_path: Path) -> Path:
    path = tmp_path / "v4.db"
    shutil.copy(FIXTURE, path)
    conn = sqlite3.connect(path, isolation_level=None)
    assert upgrade(conn, target=4) == 3
    conn.close()
    assert version_of(path) == 4
    return path


def test_a_version_4_file_gets_the_refusal_log_and_keeps_everything(v4: Path) -> None:
    before, report = rows(v4), verify(v4)
    assert report.ok, report.problems
    assert report.refusals == 0  # a version 4 file has no log: read as it is
    store = lr.SQLiteStore(v4)
    # through 5 (the refusal log) to the latest (6 adds the work-queue index)
    assert store.schema_version == SCHEMA_VERSION >= 5
    assert store.refusals() == []
    store.close()
    assert rows(v4) == before
    after = verify(v4, anchor=report.head)  # the same ledger, the same chains
    assert after.ok, after.problems
    assert (after.head, after.events, after.commits) == (report.head, report.events, report.commits)
    conn = sqlite3.connect(v4)
    assert conn.execute("SELECT seq, hash FROM refusal_head").fetchall() == [(0, bytes(32))]
    conn.close()


def test_a_migrated_file_records_refusals_and_verifies_them(v4: Path) -> None:
    store = lr.SQLiteStore(v4)
    engine = lr.Engine(store=store, clock=lr.VirtualClock(START), entry_points=False)
    eid = next(iter(store.encounter_ids(open_only=True)))
    version = engine.get(eid).version
    with pytest.raises(lr.ActorRefused):
        engine.fire(eid, "close", "expert")
    assert engine.get(eid).version == version
    store.close()
    report = verify(v4)
    assert report.ok, report.problems
    assert report.refusals == 1


def test_a_failure_half_way_leaves_the_version_4_file_untouched(v4: Path) -> None:
    conn = sqlite3.connect(v4)
    conn.execute("CREATE TABLE refusal_head (x)")  # the migration's CREATE then fails
    conn.commit()
    conn.close()
    before = rows(v4)
    with pytest.raises(lr.StoreError, match="refusal_head"):
        lr.SQLiteStore(v4)
    assert version_of(v4) == 4
    assert rows(v4) == before


def test_a_postgres_version_1_schema_is_migrated_to_2_keeping_its_data() -> None:
    store = pg_kit.make_store()
    engine = lr.Engine(store=store, clock=lr.VirtualClock(START), entry_points=False)
    eid = engine.open("taskforce", CLERK, facts={"age_band": "8-11"}).id
    engine.fire(eid, "call_expert", CLERK)
    schema = str(store.schema)
    store.close()
    # back to what version 1 was: no refusal log, no row for version 2
    with pg_kit.connect() as conn, conn.transaction():
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("DROP TABLE refusals")
        conn.execute("DROP TABLE refusal_head")
        conn.execute("DROP INDEX encounters_queue")  # and what came after version 2
        conn.execute("DELETE FROM schema_version WHERE version >= 2")
        assert pg_schema_version(conn) == 1
    report = lr.store.postgres.verify_postgres(pg_kit.DSN, schema=schema)
    assert report.ok, report.problems
    assert report.refusals == 0
    again = lr.PostgresStore(pg_kit.DSN, schema=schema)
    assert again.schema_version == PG_SCHEMA_VERSION >= 2
    engine = lr.Engine(store=again, clock=lr.VirtualClock(START), entry_points=False)
    assert [e.kind for e in engine.timeline(eid)][-1] == "NotificationQueued"
    with pytest.raises(lr.NotPermitted):
        engine.fire(eid, "expert_takes_over", CLERK)
    assert len(engine.refusals()) == 1
    again.close()
    after = lr.store.postgres.verify_postgres(pg_kit.DSN, schema=schema, anchor=report.head)
    assert after.ok, after.problems
    assert (after.refusals, after.head) == (1, report.head)
    with pg_kit.connect() as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        assert pg_upgrade(conn) == PG_SCHEMA_VERSION  # nothing left to do
