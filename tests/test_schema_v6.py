"""Schema version 6 (SQLite) and 3 (PostgreSQL): the work-queue index
``encounters_queue``, added by a migration that changes no row.

The version 5 state is the committed version 3 fixture (``tests/fixtures/store-v3.db``,
see tests/test_schema_v4.py) brought to version 5 by the migrations up to that
version only; the PostgreSQL version 2 state is a schema made by the first two
migrations (the index dropped and its version row removed).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from lastresort.store.postgres import PG_SCHEMA_VERSION, pg_schema_version
from lastresort.store.schema import SCHEMA_VERSION, upgrade
from tests import pg_kit
from tests.store_kit import START
from tests.test_schema_v4 import FIXTURE, version_of
from tests.test_schema_v5 import rows

CLERK = lr.Actor("counter", "clerk-07")


def indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


@pytest.fixture
def v5(tmp_path: Path) -> Path:
    path = tmp_path / "v5.db"
    shutil.copy(FIXTURE, path)
    conn = sqlite3.connect(path, isolation_level=None)
    assert upgrade(conn, target=5) == 3
    conn.close()
    assert version_of(path) == 5
    assert "encounters_queue" not in indexes(path)
    return path


def test_a_version_5_file_gets_the_index_and_keeps_every_row(v5: Path) -> None:
    before, report = rows(v5), verify(v5)
    assert report.ok, report.problems
    store = lr.SQLiteStore(v5)
    assert store.schema_version == SCHEMA_VERSION == 6
    open_ids = sorted(store.encounter_ids(open_only=True))
    assert open_ids  # the fixture has open encounters to find
    assert [e.id for e in store.find(limit=100)] == open_ids
    for party in {store.load(i).responsible for i in open_ids} - {None}:
        assert party is not None
        found = [e.id for e in store.find(responsible=party)]
        assert found == [i for i in open_ids if store.load(i).responsible == party]
    store.close()
    assert rows(v5) == before
    assert "encounters_queue" in indexes(v5)
    after = verify(v5, anchor=report.head)  # the same ledger, the same chains
    assert after.ok, after.problems
    assert (after.head, after.events, after.commits) == (report.head, report.events, report.commits)


def test_a_migrated_file_keeps_working_and_its_queue_follows(v5: Path) -> None:
    store = lr.SQLiteStore(v5)
    engine = lr.Engine(store=store, clock=lr.VirtualClock(START), entry_points=False)
    eid = engine.open("taskforce", CLERK, facts={"age_band": "8-11"}).id
    assert eid in [e.id for e in store.find(responsible="counter", limit=100)]
    engine.fire(eid, "call_expert", CLERK)
    moved = engine.get(eid)
    assert [e.id for e in store.find(state=moved.state, limit=100) if e.id == eid] == [eid]
    store.close()
    assert verify(v5).ok


def test_a_failure_half_way_leaves_the_version_5_file_untouched(v5: Path) -> None:
    conn = sqlite3.connect(v5)
    conn.execute("CREATE INDEX encounters_queue ON encounters (state)")  # the CREATE then fails
    conn.commit()
    conn.close()
    before = rows(v5)
    with pytest.raises(lr.StoreError, match="encounters_queue"):
        lr.SQLiteStore(v5)
    assert version_of(v5) == 5
    assert rows(v5) == before


def test_a_postgres_version_2_schema_is_migrated_to_3_keeping_its_data() -> None:
    store = pg_kit.make_store()
    engine = lr.Engine(store=store, clock=lr.VirtualClock(START), entry_points=False)
    eid = engine.open("taskforce", CLERK, facts={"age_band": "8-11"}).id
    engine.fire(eid, "call_expert", CLERK)
    schema = str(store.schema)
    timeline = engine.timeline(eid)
    store.close()
    with pg_kit.connect() as conn, conn.transaction():
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("DROP INDEX encounters_queue")
        conn.execute("DELETE FROM schema_version WHERE version = 3")
        assert pg_schema_version(conn) == 2
    report = lr.store.postgres.verify_postgres(pg_kit.DSN, schema=schema)
    assert report.ok, report.problems
    again = lr.PostgresStore(pg_kit.DSN, schema=schema)
    assert again.schema_version == PG_SCHEMA_VERSION == 3
    engine = lr.Engine(store=again, clock=lr.VirtualClock(START), entry_points=False)
    assert engine.timeline(eid) == timeline
    moved = engine.get(eid)
    assert [e.id for e in again.find(responsible=moved.responsible)] == [eid]
    again.close()
    after = lr.store.postgres.verify_postgres(pg_kit.DSN, schema=schema, anchor=report.head)
    assert after.ok, after.problems
    with pg_kit.connect() as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
            ).fetchall()
        }
    assert "encounters_queue" in names
