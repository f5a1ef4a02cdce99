"""The audit trail: a clean file verifies; editing or deleting rows by hand (with
sqlite3, as someone with the file would) is detected and the first broken link is
named; unusable files are refused; purge keeps the chain verifiable and never
prints or logs anything of a child."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import lastresort as lr
from lastresort.cli import main
from lastresort.store.audit import GENESIS, hash_hex, link_hash, verify
from lastresort.store.retention import parse_retention
from lastresort.store.schema import SCHEMA_VERSION
from tests.store_kit import START, relay
from tests.test_store_contract import everything

FACTS: dict[str, str | bool] = {"age_band": "12-15", "disclosure": True}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A store file with three encounters: one moved around, one closed, one new."""
    path = tmp_path_factory.mktemp("audit") / "pristine.db"
    clock = lr.VirtualClock(START)
    names = iter(["moved", "closed", "fresh"])
    engine = lr.Engine(
        protocols=[relay()],
        store=lr.SQLiteStore(path),
        clock=clock,
        entry_points=False,
        ids=lambda: next(names),
    )
    moved = engine.open("relay", lr.Actor("counter", "counter-1"), facts=FACTS).id
    engine.fire(moved, "go", lr.Actor("counter", "counter-1"))
    engine.fire(moved, "back", lr.Actor("counter", "counter-1"))
    engine.fire(moved, "go", lr.Actor("counter", "counter-1"))
    closed = engine.open("relay", lr.Actor("counter", "counter-1"), facts=FACTS).id
    engine.fire(closed, "take_over", lr.Actor("expert", "expert-1"))
    engine.fire(closed, "close", lr.Actor("expert", "expert-1"))
    engine.deliver()
    engine.open("relay", lr.Actor("counter", "counter-1"))
    engine.store.close()
    return path, {"moved": moved, "closed": closed}


@pytest.fixture
def db(pristine: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copy(pristine[0], copy)
    return copy


def tamper(path: Path, sql: str, *args: object) -> int:
    conn = sqlite3.connect(path)
    changed = conn.execute(sql, args).rowcount
    conn.commit()
    conn.close()
    return changed


def seq_of(path: Path, eid: str, kind: str, step: str | None = None) -> int:
    rows = sqlite3.connect(path).execute(
        "SELECT seq, data FROM events WHERE encounter_id = ? AND kind = ? ORDER BY seq",
        (eid, kind),
    )
    return next(seq for seq, data in rows if step is None or f'"step":"{step}"' in data)


def test_a_clean_file_verifies(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = verify(db)
    assert report.ok
    assert (report.encounters, report.events) == (3, 24)
    assert report.commits == 10
    assert report.head is not None
    assert main(["audit", "verify", str(db)]) == 0
    out = capsys.readouterr().out
    assert "OK — 3 encounters, 24 events, 10 commits; every chain verifies" in out
    assert f"ledger head {report.head[0]}:{report.head[1]}" in out


def test_a_changed_step_is_named(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = seq_of(db, "moved", "StepEntered", "desk")
    assert tamper(
        db,
        'UPDATE events SET data = replace(data, \'"step":"desk"\', \'"step":"with_expert"\')'
        " WHERE encounter_id = 'moved' AND seq = ?",
        seq,
    )
    report = verify(db)
    assert report.first is not None
    assert (report.first.encounter_id, report.first.seq) == ("moved", seq)
    assert "does not match its hash" in report.first.message
    assert main(["audit", "verify", str(db)]) == 1
    out = capsys.readouterr().out
    assert f"first broken link: encounter moved seq {seq}:" in out


def test_a_deleted_event_is_named(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = seq_of(db, "closed", "StepEntered")
    assert tamper(db, "DELETE FROM events WHERE encounter_id = 'closed' AND seq = ?", seq)
    report = verify(db)
    assert report.first == lr.store.audit.AuditProblem(
        "closed", seq, f"event {seq} is missing (deleted?)"
    )
    assert main(["audit", "verify", str(db)]) == 1
    assert f"encounter closed seq {seq}: event {seq} is missing" in capsys.readouterr().out


def test_a_deleted_last_event_is_detected(db: Path) -> None:
    last = sqlite3.connect(db).execute("SELECT seq FROM encounters WHERE id = 'moved'").fetchone()
    assert tamper(db, "DELETE FROM events WHERE encounter_id = 'moved' AND seq = ?", last[0])
    report = verify(db)
    assert report.first is not None
    assert (report.first.encounter_id, report.first.seq) == ("moved", last[0])


def test_a_changed_snapshot_that_no_longer_matches_its_timeline(db: Path) -> None:
    assert tamper(db, "UPDATE encounters SET state = 'with_expert' WHERE id = 'moved'")
    report = verify(db)
    assert not report.ok
    assert {p.encounter_id for p in report.problems} == {"moved"}
    messages = " | ".join(p.message for p in report.problems)
    assert "snapshot was changed" in messages
    assert "timeline entered 'room'" in messages


def test_changed_facts_are_detected(db: Path) -> None:
    assert tamper(db, "UPDATE encounters SET facts = '{\"age_band\":\"0-7\"}' WHERE id = 'closed'")
    report = verify(db)
    assert [(p.encounter_id, p.message) for p in report.problems] == [
        ("closed", "its facts do not match their digest (the facts were changed)")
    ]


def test_an_edit_with_its_own_hash_recomputed_breaks_the_next_link(db: Path) -> None:
    conn = sqlite3.connect(db)
    seq, snapshot, prev, data = conn.execute(
        "SELECT seq, snapshot, prev, data FROM events WHERE encounter_id = 'moved' AND seq = 3"
    ).fetchone()
    forged = data.replace('"role":"counter"}', '"role":"expert"}')
    assert forged != data
    # hashes are stored as their 32 bytes (schema version 4): the forger writes them so
    forged_hash = link_hash(hash_hex(prev) or "", seq, hash_hex(snapshot) or "", forged)
    conn.execute(
        "UPDATE events SET data = ?, hash = ? WHERE encounter_id = 'moved' AND seq = 3",
        (forged, bytes.fromhex(forged_hash)),
    )
    conn.commit()
    conn.close()
    report = verify(db)
    assert report.first is not None
    assert (report.first.encounter_id, report.first.seq) == ("moved", 4)
    assert "does not link to event 3" in report.first.message


def test_a_whole_deleted_encounter_is_detected_by_the_ledger(db: Path) -> None:
    for table, column in [
        ("events", "encounter_id"),
        ("deadlines", "encounter_id"),
        ("outbox", "encounter_id"),
        ("encounters", "id"),
    ]:
        tamper(db, f"DELETE FROM {table} WHERE {column} = 'closed'")
    report = verify(db)
    assert not report.ok
    assert report.first is not None
    assert report.first.encounter_id == "closed"
    assert "is gone" in report.first.message


def test_a_deleted_pending_deadline_is_detected(db: Path) -> None:
    assert tamper(db, "DELETE FROM deadlines WHERE encounter_id = 'fresh'") == 1
    report = verify(db)
    assert [(p.encounter_id, p.seq) for p in report.problems] == [("fresh", 2)]
    assert "neither pending nor ended" in report.problems[0].message


def test_a_deleted_ledger_row_is_detected(db: Path) -> None:
    assert tamper(db, "DELETE FROM ledger WHERE n = 4") == 1
    report = verify(db)
    assert [str(p) for p in report.problems] == ["file: ledger row 4 is missing (deleted?)"]


def test_an_anchor_detects_a_file_cut_back_to_an_earlier_copy(
    pristine: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = tmp_path / "earlier.db"
    shutil.copy(pristine[0], earlier)
    later = tmp_path / "later.db"
    shutil.copy(pristine[0], later)
    with lr.SQLiteStore(later) as store:
        engine = lr.Engine(protocols=[relay()], store=store, clock=lr.VirtualClock(START))
        engine.fire("fresh", "go", lr.Actor("counter", "counter-1"))
    head = verify(later).head
    assert head is not None
    anchor = f"{head[0]}:{head[1]}"
    assert main(["audit", "verify", str(later), "--anchor", anchor]) == 0
    shutil.copy(earlier, later)  # someone puts back an older copy of the file
    assert verify(later).ok  # consistent in itself ...
    assert main(["audit", "verify", str(later), "--anchor", anchor]) == 1  # ... but cut back
    assert f"the ledger no longer holds anchor {anchor}" in capsys.readouterr().out


def test_a_malformed_anchor_is_a_usage_error(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["audit", "verify", str(db), "--anchor", "12:xyz"])
    assert caught.value.code == 2
    assert "invalid anchor '12:xyz'" in capsys.readouterr().err


# -- unusable files -----------------------------------------------------------------


def _not_sqlite(path: Path) -> None:
    path.write_text("name,bsn\n")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    lr.SQLiteStore(path).close()
    tamper(path, "INSERT INTO schema_version VALUES (?, 'later')", SCHEMA_VERSION + 1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "no such file"),
        (_not_sqlite, "not a readable SQLite database"),
        (_empty, "an empty file, not a lastresort store"),
        (_foreign, "not a lastresort store"),
        (_newer, "newer than this lastresort"),
    ],
)
@pytest.mark.parametrize("command", ["verify", "purge"])
def test_unusable_files_exit_2_and_stay_unchanged(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None] | None,
    message: str,
    command: str,
) -> None:
    path = tmp_path / "x.db"
    if make is not None:
        make(path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    argv = (
        ["audit", "verify", str(path)]
        if command == "verify"
        else ["purge", str(path), "--older-than", "20y"]
    )
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # a reader of a WAL file may leave SQLite's (empty) companions; the file is untouched
    assert after.pop("x.db-wal", b"") == b""
    after.pop("x.db-shm", None)
    assert after == before


# -- retention ----------------------------------------------------------------------


def test_purge_from_the_command_line(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = lr.SQLiteStore(db)
    before = everything(store)
    as_of = (START + timedelta(days=365 * 20 + 10)).isoformat()
    assert main(["purge", str(db), "--older-than", "20y", "--as-of", as_of, "--dry-run"]) == 0
    assert "would purge the facts of 1 encounter closed before 2026-03-07T10:00:00+01:00" in (
        capsys.readouterr().out
    )
    assert everything(store) == before
    assert main(["purge", str(db), "--older-than", "20y", "--as-of", as_of]) == 0
    out = capsys.readouterr().out
    assert "purged the facts of 1 encounter" in out
    assert "audit chains remain" in out
    assert store.load("closed").facts == {}
    assert store.load("moved").facts == FACTS  # still open
    assert store.timeline("closed") == before["timelines"][1]
    assert main(["audit", "verify", str(db)]) == 0
    assert main(["purge", str(db), "--older-than", "20y", "--as-of", as_of]) == 0
    assert "purged the facts of 0 encounters" in capsys.readouterr().out
    store.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--older-than", "6mo"], "invalid retention '6mo'"),
        (["--older-than", "0y"], "years must be between 1 and 200"),
        (["--older-than", "soon"], "invalid retention 'soon'"),
        (["--older-than", "20y", "--as-of", "2046-03-02T10:00"], "--as-of: "),
        (["--older-than", "20y", "--as-of", "next year"], "--as-of: "),
    ],
)
def test_bad_purge_input_changes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = db.read_bytes()
    assert main(["purge", str(db), *argv]) == 2
    assert message in capsys.readouterr().err
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("text", "now", "cutoff"),
    [
        ("20y", datetime(2046, 3, 2, 10, 0), datetime(2026, 3, 2, 10, 0)),
        ("P20Y", datetime(2046, 3, 2, 10, 0), datetime(2026, 3, 2, 10, 0)),
        ("1y", datetime(2028, 2, 29, 12, 0), datetime(2027, 2, 28, 12, 0)),
        ("90d", datetime(2026, 4, 1, 0, 0), datetime(2026, 1, 1, 0, 0)),
        ("2w", datetime(2026, 3, 15, 0, 0), datetime(2026, 3, 1, 0, 0)),
    ],
)
def test_retention_periods(text: str, now: datetime, cutoff: datetime) -> None:
    assert parse_retention(text).cutoff(now) == cutoff


def test_nothing_of_a_child_is_logged_or_printed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "private.db"
    clock = lr.VirtualClock(START)
    engine = lr.Engine(protocols=[relay()], store=lr.SQLiteStore(path), clock=clock)
    eid = engine.open("relay", lr.Actor("counter", "counter-1"), facts=FACTS).id
    engine.fire(
        eid, "go", lr.Actor("counter", "counter-1")
    )  # notifies the expert: delivered (and logged) below
    engine.fire(eid, "take_over", lr.Actor("expert", "expert-1"))
    engine.fire(eid, "close", lr.Actor("expert", "expert-1"))
    assert [e.kind for e in engine.deliver()] == ["NotificationDelivered"]
    with pytest.raises(lr.TransitionNotAllowed):
        engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    engine.store.close()
    assert main(["audit", "verify", str(path)]) == 0
    as_of = (START + timedelta(days=1)).isoformat()
    assert main(["purge", str(path), "--older-than", "1h", "--as-of", as_of]) == 0
    printed = capsys.readouterr()
    everything_said = caplog.text + printed.out + printed.err
    assert caplog.records  # the engine did log (steps at DEBUG, the delivery)
    for secret in ("age_band", "12-15", "disclosure"):
        assert secret not in everything_said


def test_verify_checks_every_link_from_genesis(db: Path) -> None:
    first = sqlite3.connect(db).execute(
        "SELECT prev FROM events WHERE encounter_id = 'moved' AND seq = 1"
    )
    stored = first.fetchone()[0]
    assert stored == bytes(32)  # stored as its 32 bytes (schema version 4)
    assert hash_hex(stored) == GENESIS
