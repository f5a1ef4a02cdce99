"""Schema version 4 (issue 13): a version 3 file written by lastresort before it is
migrated in one transaction, keeps every event, deadline, notification and the hash
chain (the same ledger head: an anchor taken before still holds), verifies, and keeps
working; a failure half-way leaves the version 3 file as it was.

``tests/fixtures/store-v3.db`` was written by lastresort at schema version 3 (commit
0e3353e) running ``tests/faults/test_audit_tamper.py::_run``: the taskforce protocol,
four encounters, deadlines fired by the clock, deliveries done and two pending, two
encounters closed, one of them purged.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.store import schema
from lastresort.store.audit import verify
from lastresort.store.schema import SCHEMA_VERSION
from tests.conftest import START

FIXTURE = Path(__file__).parent / "fixtures" / "store-v3.db"
TABLES = {
    "encounters": "SELECT * FROM encounters ORDER BY rowid",
    "events": "SELECT * FROM events ORDER BY encounter_id, seq",
    "ledger": "SELECT * FROM ledger ORDER BY n",
    "deadlines": "SELECT * FROM deadlines ORDER BY id",
    "outbox": "SELECT * FROM outbox ORDER BY key",
}
#: the columns that hold a hash, per table (as 64 hex characters up to version 3)
HASHES = {"events": (4, 5, 6), "ledger": (3, 4)}


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(sql).fetchall() for table, sql in TABLES.items()}
    finally:
        conn.close()


def as_bytes(found: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """``found`` (version 3 rows) with every hash as the 32 bytes version 4 stores."""
    out = dict(found)
    for table, columns in HASHES.items():
        out[table] = [
            tuple(bytes.fromhex(v) if i in columns else v for i, v in enumerate(row))
            for row in found[table]
        ]
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def version_of(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def v3(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    assert version_of(path) == 3
    assert not Path(f"{path}-wal").exists()
    return path


def test_the_fixture_is_a_version_3_file_with_text_hashes(v3: Path) -> None:
    found = rows(v3)
    assert all(isinstance(row[6], str) and len(row[6]) == 64 for row in found["events"])
    assert len(found["events"]) > 50
    assert len(found["deadlines"]) == 2
    assert sum(row[13] is None for row in found["outbox"]) == 2  # pending notifications
    assert verify(v3).ok  # read as it is, without migrating


def test_a_version_3_file_is_migrated_and_keeps_every_row_and_its_chain(v3: Path) -> None:
    before = rows(v3)
    report = verify(v3)
    assert report.ok
    assert report.head is not None

    store = lr.SQLiteStore(v3)
    # through 4 and the refusal log (5) to the latest (6: the work-queue index)
    assert store.schema_version == SCHEMA_VERSION == 6
    store.close()

    conn = sqlite3.connect(v3)
    versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    retention = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'encounters_retention'"
    ).fetchone()[0]
    conn.close()
    assert versions == [(1,), (2,), (3,), (4,), (5,), (6,)]
    assert "closed_us IS NOT NULL" in retention  # open encounters are left out
    after = rows(v3)
    assert after == as_bytes(before)  # nothing lost, nothing else changed
    assert all(len(row[6]) == 32 for row in after["events"])
    again = verify(v3, anchor=report.head)  # the chain is the same chain
    assert again.ok, again.problems
    assert (again.head, again.events, again.commits) == (report.head, report.events, report.commits)


def test_a_migrated_file_keeps_working_and_verifying(v3: Path) -> None:
    store = lr.SQLiteStore(v3)
    clock = lr.VirtualClock(START + timedelta(days=2))
    engine = lr.Engine(store=store, clock=clock, entry_points=False)
    pending = {d.id for eid in store.encounter_ids(open_only=True) for d in store.deadlines(eid)}
    assert len(pending) == 2
    fired = [e for e in engine.tick() if e.kind == "DeadlineMissed"]
    assert {e.deadline_id for e in fired} == pending  # type: ignore[attr-defined]
    delivered = engine.deliver()
    assert delivered  # the two pending notifications and what the fired steps queued
    assert all(n.delivered_at is not None or n.dead_lettered_at for n in store.outbox())
    store.close()
    report = verify(v3)
    assert report.ok, report.problems
    assert version_of(v3) == SCHEMA_VERSION


def test_a_failure_half_way_leaves_the_version_3_file_untouched(v3: Path) -> None:
    # the events are rewritten first; the ledger's rewrite then fails
    conn = sqlite3.connect(v3)
    conn.execute(
        "CREATE TRIGGER fail BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    conn.commit()
    conn.close()
    before, content = digest(v3), rows(v3)
    with pytest.raises(lr.StoreError, match="disk full"):
        lr.SQLiteStore(v3)
    assert digest(v3) == before
    assert not Path(f"{v3}-wal").exists() or Path(f"{v3}-wal").stat().st_size == 0
    assert rows(v3) == content
    assert version_of(v3) == 3
    assert verify(v3).ok
    conn = sqlite3.connect(v3)
    conn.execute("DROP TRIGGER fail")
    conn.commit()
    conn.close()
    lr.SQLiteStore(v3).close()  # and once the cause is gone, it migrates
    assert version_of(v3) == SCHEMA_VERSION
    assert rows(v3) == as_bytes(content)
    assert verify(v3).ok


def test_an_interrupt_after_the_last_step_leaves_the_version_3_file_untouched(
    v3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = schema.MIGRATIONS[-1]

    def interrupted(conn: sqlite3.Connection) -> None:
        real(conn)
        raise KeyboardInterrupt  # before the version row is written and committed

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:-1], interrupted))
    before, content = digest(v3), rows(v3)
    with pytest.raises(KeyboardInterrupt):
        lr.SQLiteStore(v3)
    assert digest(v3) == before
    assert rows(v3) == content
    assert version_of(v3) == 3
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:-1], real))
    lr.SQLiteStore(v3).close()
    assert rows(v3) == as_bytes(content)


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("hash", b"\x00" * 31, "does not match its hash"),  # not a hash's length
        ("hash", "not a hash", "does not match its hash"),
        ("prev", 42, "does not link"),  # not even text
        ("snapshot", b"\x01" * 32, "does not match its hash"),
    ],
)
def test_a_stored_hash_that_is_not_its_bytes_is_located(
    v3: Path, column: str, value: object, said: str
) -> None:
    lr.SQLiteStore(v3).close()  # migrated: hashes as bytes
    conn = sqlite3.connect(v3)
    changed = conn.execute(
        f"UPDATE events SET {column} = ? WHERE encounter_id = 'happy' AND seq = 3", (value,)
    ).rowcount
    conn.commit()
    conn.close()
    assert changed == 1
    report = verify(v3)
    assert report.first is not None
    assert (report.first.encounter_id, report.first.seq) == ("happy", 3)
    assert said in report.first.message


def test_an_edited_ledger_link_is_located_on_version_4(v3: Path) -> None:
    lr.SQLiteStore(v3).close()
    conn = sqlite3.connect(v3)
    assert conn.execute("UPDATE ledger SET link = ? WHERE n = 5", (b"\x02" * 32,)).rowcount == 1
    conn.commit()
    conn.close()
    assert [str(p) for p in verify(v3).problems] == ["file: ledger row 5 was changed"]
