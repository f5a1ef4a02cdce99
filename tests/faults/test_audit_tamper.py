"""The audit covers everything that decides what happens next (issue #12, item 5).

A realistic store file (the taskforce protocol, four encounters, deadlines fired by
the clock, deliveries done, two closed, one of them purged) is tampered with by hand,
as someone holding the file would: every outbox row, pending deadline, closing and
purge marker and the facts must agree with what the hash-chained events say they
are, and each disagreement is located (encounter id, what disagrees) without ever
printing a fact. ``audit verify`` also reads a copy on read-only media and writes
nothing there.

Every test runs on a SQLiteStore file and on a PostgresStore schema (the tampering
is the same SQL, run by hand on the server), except the read-only media ones.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

import lastresort as lr
from lastresort.cli import main
from lastresort.store.audit import AuditReport, verify
from lastresort.store.base import Change
from lastresort.store.postgres import verify_postgres
from lastresort.store.schema import micros
from lastresort.testing import pseudonymous
from tests import pg_kit
from tests.conftest import START, TASKFORCE

FACTS: dict[str, str | bool] = {"age_band": "12-15", "disclosure": True, "accompanied": False}
#: no output may hold these (the facts' values and names)
SECRETS = ("12-15", "age_band", "disclosure", "accompanied")
POLICE_KEY = "police:v4:no_expert_available:police"
#: refused attempts the run records
REFUSALS = 4


class PgDb(str):
    """A PostgresStore schema standing where a test takes a store file."""

    @property
    def schema(self) -> str:
        return str(self)


Db = Path | PgDb


def open_store(db: Db) -> lr.SQLiteStore | lr.PostgresStore:
    if isinstance(db, PgDb):
        return lr.PostgresStore(pg_kit.DSN, schema=db.schema)
    return lr.SQLiteStore(db)


def check(db: Db) -> AuditReport:
    """What ``audit verify`` reports on ``db``."""
    if isinstance(db, PgDb):
        return verify_postgres(pg_kit.DSN, schema=db.schema)
    return verify(db)


def command(db: Db) -> list[str]:
    """The ``lastresort audit verify`` arguments for ``db``."""
    if isinstance(db, PgDb):
        return ["audit", "verify", "--dsn", pg_kit.DSN, "--schema", db.schema]
    return ["audit", "verify", str(db)]


def _run(store: lr.SQLiteStore | lr.PostgresStore) -> None:
    clock = lr.VirtualClock(START)
    names = iter(["police", "happy", "waiting", "fresh"])
    engine = lr.Engine(
        protocols=[lr.load_protocol(TASKFORCE)],
        store=store,
        clock=clock,
        entry_points=False,
        ids=lambda: next(names),
    )

    def at(minutes: int) -> None:
        clock.set(START + timedelta(minutes=minutes))

    police = engine.open("taskforce", lr.Actor("counter", "counter-1"), facts=FACTS).id
    at(1)
    happy = engine.open("taskforce", lr.Actor("counter", "counter-1"), facts=FACTS).id
    for event, actor in [
        ("call_expert", "counter"),
        ("expert_takes_over", "expert"),
        ("inform_mayor", "expert"),
    ]:
        engine.fire(happy, event, pseudonymous(actor))
    at(16)
    assert [e.kind for e in engine.tick() if e.kind == "StepEntered"] == ["StepEntered"]
    engine.deliver()
    at(62)
    engine.tick()  # police: expert_overdue -> escalated
    at(108)
    engine.tick()  # police: no_expert_available -> with_police (closed)
    assert engine.get(police).closed_at is not None
    engine.deliver()  # the police are notified
    at(120)
    waiting = engine.open("taskforce", lr.Actor("counter", "counter-1"), facts=FACTS).id
    engine.fire(waiting, "call_expert", lr.Actor("counter", "counter-1"))
    engine.fire(waiting, "expert_takes_over", lr.Actor("expert", "expert-1"))
    at(242)
    fired = {e.encounter_id for e in engine.tick() if e.kind == "DeadlineMissed"}
    assert fired == {happy, waiting}  # mayor_overdue (a self-loop) and mayor_not_informed
    engine.deliver()
    at(250)
    for event, actor in [
        ("mayor_spoke_with_child", "mayor"),
        ("report_made", "expert"),
        ("close", "expert"),
    ]:
        engine.fire(happy, event, pseudonymous(actor))
    at(251)
    engine.open("taskforce", lr.Actor("counter", "counter-1"), facts=FACTS)
    # four refused attempts, in the refusal log (outside every encounter's chain)
    refused: list[tuple[str, str, lr.Actor | str]] = [
        (waiting, "close", lr.Actor("counter", "counter-1")),  # NotPermitted
        (waiting, "expert_takes_over", lr.Actor("expert", "expert-1")),  # TransitionNotAllowed
        (waiting, "close", "expert"),  # ActorRefused: no id
    ]
    for eid, event, actor in refused:
        with pytest.raises((lr.NotPermitted, lr.TransitionNotAllowed, lr.ActorRefused)):
            engine.fire(eid, event, actor)
    with pytest.raises(lr.FactsRefused):
        engine.open("taskforce", lr.Actor("counter", "counter-1"), facts={"age_band": "x"})
    assert len(engine.refusals()) == REFUSALS
    # the police encounter (closed at minute 108) is purged; happy (closed at 250) is not
    assert store.purge_facts(START + timedelta(minutes=200), now=START + timedelta(days=1)) == 1
    store.close()


@pytest.fixture(scope="module")
def sqlite_pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "run.db"
    _run(lr.SQLiteStore(path))
    return path


_TABLES = (
    "schema_version",
    "encounters",
    "events",
    "ledger",
    "ledger_head",
    "deadlines",
    "outbox",
    "refusals",
    "refusal_head",
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pristine(request: pytest.FixtureRequest) -> Iterator[Db]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_pristine")
        return
    schema = PgDb(f"lr_test_{secrets.token_hex(6)}")  # lives for the module
    _run(lr.PostgresStore(pg_kit.DSN, schema=schema))
    try:
        yield schema
    finally:
        pg_kit.drop(schema)


@pytest.fixture
def db(pristine: Db, tmp_path: Path) -> Db:
    if isinstance(pristine, PgDb):
        copy = PgDb(pg_kit.new_schema())  # dropped after the test
        with pg_kit.connect() as conn, conn.transaction():
            conn.execute(f'CREATE SCHEMA "{copy}"')
            for table in _TABLES:
                conn.execute(
                    f'CREATE TABLE "{copy}".{table} (LIKE "{pristine}".{table} INCLUDING ALL)'
                )
                conn.execute(
                    f'INSERT INTO "{copy}".{table} OVERRIDING SYSTEM VALUE'
                    f' SELECT * FROM "{pristine}".{table}'
                )
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{copy}\".encounters', 'rowid'),"
                f' (SELECT MAX(rowid) FROM "{copy}".encounters))'
            )
        return copy
    path = tmp_path / "copy.db"
    shutil.copy(pristine, path)
    return path


def sql(db: Db, statement: str, *args: object) -> int:
    if isinstance(db, PgDb):
        with pg_kit.connect() as conn:
            conn.execute(f'SET search_path TO "{db}"')
            changed: int = conn.execute(
                statement.replace("%", "%%").replace("?", "%s"), args
            ).rowcount
        return changed
    sconn = sqlite3.connect(db)
    try:
        changed = sconn.execute(statement, args).rowcount
        sconn.commit()
    finally:
        sconn.close()
    return changed


def one(db: Db, query: str, *args: object) -> tuple[object, ...]:
    if isinstance(db, PgDb):
        with pg_kit.connect() as conn:
            conn.execute(f'SET search_path TO "{db}"')
            found: tuple[object, ...] = conn.execute(
                query.replace("%", "%%").replace("?", "%s"), args
            ).fetchone()
        return found
    sconn = sqlite3.connect(db)
    try:
        row: tuple[object, ...] = sconn.execute(query, args).fetchone()
    finally:
        sconn.close()
    return row


def located(
    db: Db, capsys: pytest.CaptureFixture[str], encounter: str, *fragments: str
) -> AuditReport:
    """``verify`` and ``audit verify`` both name ``encounter`` with every fragment, the
    command exits 1 without a traceback, and nothing of the facts is said."""
    report = check(db)
    assert not report.ok
    mine = [p.message for p in report.problems if p.encounter_id == encounter]
    for fragment in fragments:
        assert any(fragment in m for m in mine), (fragment, [str(p) for p in report.problems])
    assert main(command(db)) == 1
    out, err = capsys.readouterr()
    assert "BROKEN" in out
    assert f"encounter {encounter}" in out
    assert "Traceback" not in out + err
    for secret in SECRETS:
        assert secret not in out + err + " ".join(str(p) for p in report.problems)
    return report


# -- no false alarms --------------------------------------------------------------------


def test_the_clean_run_verifies_including_after_purge(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert one(db, "SELECT facts, purged_at IS NOT NULL FROM encounters WHERE id = 'police'") == (
        None,
        1,
    )
    assert one(db, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")[0] == 2
    assert one(db, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL")[0] >= 10
    assert one(db, "SELECT COUNT(*) FROM deadlines")[0] == 2
    before = pg_kit.all_rows_of(db) if isinstance(db, PgDb) else b""
    report = check(db)
    assert report.ok, [str(p) for p in report.problems]
    assert report.encounters == 4
    assert main(command(db)) == 0
    assert "OK — 4 encounters" in capsys.readouterr().out
    if isinstance(db, PgDb):  # read in a read-only transaction: nothing written
        assert pg_kit.all_rows_of(db) == before


def test_a_second_purge_still_verifies(db: Db) -> None:
    with open_store(db) as store:
        assert store.purge_facts(START + timedelta(days=1)) == 1  # happy too
    assert one(db, "SELECT COUNT(*) FROM encounters WHERE facts IS NULL")[0] == 2
    report = check(db)
    assert report.ok, [str(p) for p in report.problems]


# -- outbox -----------------------------------------------------------------------------


def test_a_deleted_police_notification_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "DELETE FROM outbox WHERE key = ?", POLICE_KEY) == 1
    located(db, capsys, "police", f"notification {POLICE_KEY}", "no outbox row")


def test_a_deleted_undelivered_notification_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "DELETE FROM outbox WHERE key LIKE 'happy:%:close:mayor_staff'") == 1
    located(db, capsys, "happy", "no outbox row")


def test_an_outbox_row_without_its_event_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(
        db,
        "INSERT INTO outbox SELECT 'waiting:v9:forged:police', encounter_id, protocol, event,"
        " step, party, created_at, created_us, 0, next_attempt_at, next_attempt_us, NULL,"
        " NULL, NULL, NULL FROM outbox WHERE key = ?",
        POLICE_KEY,
    )
    assert sql(db, "UPDATE outbox SET encounter_id = 'waiting' WHERE key LIKE 'waiting:v9:%'")
    located(db, capsys, "waiting", "waiting:v9:forged:police", "no NotificationQueued")


def test_a_redirected_notification_is_located(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert sql(db, "UPDATE outbox SET party = 'mayor_staff' WHERE key = ?", POLICE_KEY) == 1
    located(db, capsys, "police", f"notification {POLICE_KEY}", "party")


def test_a_notification_moved_to_another_step_or_event_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE outbox SET step = 'closed', event = 'close' WHERE key = ?", POLICE_KEY)
    located(db, capsys, "police", "step", "event")


def test_an_undelivered_notification_marked_delivered_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(
        db,
        "UPDATE outbox SET delivered_at = created_at WHERE key LIKE 'happy:%:close:mayor_staff'",
    )
    located(db, capsys, "happy", "delivered", "no NotificationDelivered")


def test_a_delivered_notification_marked_undelivered_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE outbox SET delivered_at = NULL WHERE key = ?", POLICE_KEY) == 1
    located(db, capsys, "police", f"notification {POLICE_KEY}", "not marked delivered")


# -- deadlines --------------------------------------------------------------------------


def test_a_deadline_moved_a_century_on_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    due, due_us = one(db, "SELECT due, due_us FROM deadlines WHERE encounter_id = 'waiting'")
    assert isinstance(due, str)
    assert isinstance(due_us, int)
    later = due.replace(due[:4], str(int(due[:4]) + 100), 1)
    moved = micros(datetime.fromisoformat(later))
    assert sql(
        db, "UPDATE deadlines SET due = ?, due_us = ? WHERE encounter_id = 'waiting'", later, moved
    )
    located(db, capsys, "waiting", "differs from its DeadlineScheduled")


def test_a_deadline_moved_only_in_its_sort_column_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    century = 100 * 365 * 24 * 3600 * 1_000_000
    assert sql(db, "UPDATE deadlines SET due_us = due_us + ? WHERE encounter_id = 'fresh'", century)
    located(db, capsys, "fresh", "due")


def test_a_deadline_retargeted_to_another_event_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE deadlines SET event = 'close' WHERE encounter_id = 'fresh'") == 1
    located(db, capsys, "fresh", "differs from its DeadlineScheduled")


def test_a_deleted_deadline_is_located(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert sql(db, "DELETE FROM deadlines WHERE encounter_id = 'waiting'") == 1
    located(db, capsys, "waiting", "neither pending nor ended")


def test_a_fired_deadline_put_back_is_located(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    # the deadline of 'waiting' that fired (mayor_not_informed) re-inserted as pending
    assert sql(
        db,
        "INSERT INTO deadlines SELECT 'waiting:v3:with_expert', encounter_id, 'with_expert',"
        " 'mayor_not_informed', due, due_us, NULL FROM deadlines WHERE encounter_id = 'waiting'",
    )
    located(db, capsys, "waiting", "deadline waiting:v3:with_expert", "never left it open")


# -- closing and purge markers ----------------------------------------------------------


def test_an_edited_closed_at_is_located(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert sql(db, "UPDATE encounters SET closed_at = NULL, closed_us = NULL WHERE id = 'happy'")
    located(db, capsys, "happy", "closed_at")


def test_an_edited_closed_us_is_located(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    # what retention selects on: moved 30 years back, the facts would be purged early
    assert sql(
        db,
        "UPDATE encounters SET closed_us = closed_us - ? WHERE id = 'happy'",
        30 * 365 * 24 * 3600 * 1_000_000,
    )
    located(db, capsys, "happy", "closed_us")


def test_a_closed_us_on_an_open_encounter_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE encounters SET closed_us = 0 WHERE id = 'waiting'")
    located(db, capsys, "waiting", "closed_us")


def test_an_edited_version_is_located(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert sql(db, "UPDATE encounters SET version = version + 5 WHERE id = 'waiting'")
    located(db, capsys, "waiting", "snapshot was changed")


def test_nulled_facts_of_an_open_encounter_are_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE encounters SET facts = NULL, facts_salt = NULL WHERE id = 'waiting'")
    located(db, capsys, "waiting", "facts", "not purged")


def test_nulled_facts_of_a_closed_unpurged_encounter_are_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE encounters SET facts = NULL WHERE id = 'happy'")
    located(db, capsys, "happy", "facts", "not purged")


def test_a_purge_marker_on_an_open_encounter_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(
        db,
        "UPDATE encounters SET facts = NULL, facts_salt = NULL, purged_at = '2026-03-03T10:00:00"
        "+00:00' WHERE id = 'waiting'",
    )
    located(db, capsys, "waiting", "purged", "open")


def test_a_purge_marker_that_keeps_the_facts_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    # the marker alone takes a closed encounter out of retention: its facts stay forever
    assert sql(
        db, "UPDATE encounters SET purged_at = '2026-03-03T10:00:00+00:00' WHERE id = 'happy'"
    )
    located(db, capsys, "happy", "purged", "facts")


def test_a_removed_purge_marker_is_located(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert sql(db, "UPDATE encounters SET purged_at = NULL WHERE id = 'police'") == 1
    located(db, capsys, "police", "facts", "not purged")


def test_a_purge_cannot_hide_a_changed_facts_digest(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE encounters SET facts_digest = ? WHERE id = 'police'", "0" * 64)
    located(db, capsys, "police", "snapshot was changed")


def test_facts_edited_then_purged_by_hand_are_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    # edit the facts and recompute their digest: the snapshot digest still names the old one
    salt = one(db, "SELECT facts_salt FROM encounters WHERE id = 'happy'")[0]
    assert isinstance(salt, bytes)
    forged = '{"accompanied":true,"age_band":"0-7","disclosure":false}'
    sql(
        db,
        "UPDATE encounters SET facts = ?, facts_digest = ? WHERE id = 'happy'",
        forged,
        lr.store.audit.facts_digest(forged, salt),
    )
    located(db, capsys, "happy", "snapshot was changed")


# -- whole encounters -------------------------------------------------------------------


def test_a_whole_deleted_encounter_is_located_by_the_ledger(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    for table, column in [
        ("events", "encounter_id"),
        ("deadlines", "encounter_id"),
        ("outbox", "encounter_id"),
        ("encounters", "id"),
    ]:
        sql(db, f"DELETE FROM {table} WHERE {column} = 'police'")
    located(db, capsys, "police", "is gone")


# -- read-only media --------------------------------------------------------------------


@pytest.fixture
def readonly(sqlite_pristine: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy in a directory, both chmod read-only, with no -wal or -shm beside it."""
    folder = tmp_path / "media"
    folder.mkdir()
    path = folder / "run.db"
    shutil.copy(sqlite_pristine, path)
    assert sorted(p.name for p in folder.iterdir()) == ["run.db"]
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        yield path
    finally:
        folder.chmod(stat.S_IRWXU)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_verify_reads_a_store_on_read_only_media_and_writes_nothing(
    readonly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = readonly.read_bytes()
    stamp = readonly.stat().st_mtime_ns
    report = verify(readonly)
    assert report.ok, [str(p) for p in report.problems]
    assert report.encounters == 4
    assert main(["audit", "verify", str(readonly)]) == 0
    assert "OK — 4 encounters" in capsys.readouterr().out
    # as root the chmod does not stop writes: that nothing was written is checked here
    assert sorted(p.name for p in readonly.parent.iterdir()) == ["run.db"]
    assert readonly.read_bytes() == before
    assert readonly.stat().st_mtime_ns == stamp


def test_verify_finds_tampering_on_read_only_media(
    sqlite_pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "copy.db"
    shutil.copy(sqlite_pristine, db)
    assert sql(db, "DELETE FROM outbox WHERE key = ?", POLICE_KEY) == 1
    folder = tmp_path / "media"
    folder.mkdir()
    path = folder / "run.db"
    shutil.copy(db, path)
    path.chmod(stat.S_IRUSR)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        located(path, capsys, "police", "no outbox row")
        assert sorted(p.name for p in folder.iterdir()) == ["run.db"]
    finally:
        folder.chmod(stat.S_IRWXU)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_verify_still_sees_commits_of_a_live_writer(tmp_path: Path) -> None:
    """In a writable directory the file is read through the WAL (never as
    immutable), so a commit of an open store is seen."""
    path = tmp_path / "live.db"
    with lr.SQLiteStore(path) as store:
        engine = lr.Engine(store=store, clock=lr.VirtualClock(START), entry_points=False)
        engine.open("taskforce", lr.Actor("counter", "counter-1"), facts=FACTS)
        assert (tmp_path / "live.db-wal").exists()
        assert verify(path).encounters == 1
        engine.open("taskforce", lr.Actor("counter", "counter-1"), facts=FACTS)
        assert verify(path).encounters == 2


# -- histories other helpers' changes produce verify too ---------------------------------


def test_a_deadline_re_armed_under_the_same_id_verifies(db: Db) -> None:
    """A deadline that could not fire and is scheduled again (a new DeadlineScheduled
    after its DeadlineMissed, same id) is pending again: derived in timeline order."""
    with open_store(db) as store:
        encounter = store.load("fresh")
        (deadline,) = store.deadlines("fresh")
        now = deadline.due + timedelta(minutes=1)
        again = attrs.evolve(deadline, due=now + timedelta(minutes=15))
        common = {"encounter_id": "fresh", "at": now, "actor": lr.Actor("clock")}
        ids = {"deadline_id": deadline.id, "step": deadline.step, "event": deadline.event}
        store.commit(
            Change(
                encounter=attrs.evolve(encounter, version=encounter.version + 1),
                expected_version=encounter.version,
                events=[
                    lr.DeadlineMissed(**common, **ids, due=deadline.due),
                    lr.DeadlineScheduled(**common, **ids, due=again.due),
                ],
                clear=[deadline.id],
                schedule=[again],
            )
        )
        assert store.deadlines("fresh") == [again]
    report = check(db)
    assert report.ok, [str(p) for p in report.problems]
    assert sql(db, "UPDATE deadlines SET due = ?, due_us = ?", deadline.due.isoformat(), 0)
    assert not check(db).ok


def test_a_notification_delivered_twice_verifies(db: Db) -> None:
    """Files written before delivered() was idempotent may hold two
    NotificationDelivered for one key: delivered_at is the time of one of them."""
    key = one(db, "SELECT key FROM outbox WHERE key LIKE 'happy:%:close:mayor_staff'")[0]
    assert isinstance(key, str)
    with open_store(db) as store:
        for minute in (300, 301):
            store.delivered(
                key,
                lr.NotificationDelivered(
                    encounter_id="happy",
                    at=START + timedelta(minutes=minute),
                    actor=lr.Actor("outbox"),
                    key=key,
                    party="mayor_staff",
                    receipt="log",
                    attempts=1,
                ),
            )
    report = check(db)
    assert report.ok, [str(p) for p in report.problems]
    assert sql(db, "UPDATE outbox SET delivered_at = ? WHERE key = ?", START.isoformat(), key)
    assert "delivered_at differs" in " ".join(p.message for p in check(db).problems)


def test_facts_stored_again_after_a_purge_lose_the_purge_marker(db: Db) -> None:
    """A commit prepared before a purge stores the facts again: the marker goes, so
    that retention removes them again (a marker beside facts keeps them for ever)."""
    with open_store(db) as mine, open_store(db) as theirs:
        loaded = mine.load("happy")
        assert theirs.purge_facts(START + timedelta(days=1)) == 1
        mine.commit(
            Change(
                encounter=attrs.evolve(loaded, version=loaded.version + 1),
                expected_version=loaded.version,
                events=[
                    lr.StepEntered(
                        encounter_id="happy",
                        at=START + timedelta(days=2),
                        actor=lr.Actor("expert"),
                        event="close",
                        from_step="closed",
                        step="closed",
                        responsible=None,
                    )
                ],
            )
        )
        assert one(
            db, "SELECT facts IS NOT NULL, purged_at FROM encounters WHERE id = 'happy'"
        ) == (
            1,
            None,
        )
        assert check(db).ok
        assert theirs.purge_facts(START + timedelta(days=1)) == 1
    report = check(db)
    assert report.ok, [str(p) for p in report.problems]


# -- leases and retry times: not events, but bounded ----------------------------------

CENTURY_US = 100 * 365 * 24 * 3600 * 1_000_000


def test_a_deadline_hidden_by_a_century_long_lease_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lease pushed a century on keeps every ``tick`` away from the deadline: no
    worker can take a lease longer than 366 days, so the audit names it."""
    assert sql(
        db, "UPDATE deadlines SET lease_us = due_us + ? WHERE encounter_id = 'fresh'", CENTURY_US
    )
    located(db, capsys, "fresh", "claimed for longer than any lease lasts")


def test_an_undelivered_notification_hidden_a_century_on_is_located(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    (key,) = one(db, "SELECT key FROM outbox WHERE delivered_at IS NULL LIMIT 1")
    (eid,) = one(db, "SELECT encounter_id FROM outbox WHERE key = ?", key)
    assert sql(
        db, "UPDATE outbox SET next_attempt_us = next_attempt_us + ? WHERE key = ?", CENTURY_US, key
    )
    located(db, capsys, str(eid), "longer than any lease or retry lasts")


def test_a_lease_a_worker_can_take_is_no_alarm(db: Db) -> None:
    """A claim of the longest lease a store accepts, taken at the latest moment of the
    store, passes: the bound raises no false alarm."""
    assert sql(
        db,
        "UPDATE deadlines SET lease_us = ? WHERE encounter_id = 'fresh'",
        micros(datetime.now(UTC) + timedelta(days=365)),
    )
    assert check(db).ok


# -- the refusal log ----------------------------------------------------------------------


def refusal_broken(db: Db, capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    """``verify`` and ``audit verify`` both report the refusal log broken with every
    fragment, as a problem of the file; nothing of the facts is said."""
    report = check(db)
    assert not report.ok
    found = [p.message for p in report.problems if p.encounter_id is None]
    for fragment in fragments:
        assert any(fragment in m for m in found), (fragment, [str(p) for p in report.problems])
    assert main(command(db)) == 1
    out, err = capsys.readouterr()
    assert "BROKEN" in out
    for fragment in fragments:
        assert fragment in out
    assert "Traceback" not in out + err
    for secret in SECRETS:
        assert secret not in out + err


def test_the_refusal_log_verifies_and_is_counted(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    report = check(db)
    assert report.ok, report.problems
    assert report.refusals == REFUSALS
    assert main(command(db)) == 0
    assert f"commits, {REFUSALS} refusals; every chain verifies" in capsys.readouterr().out


def test_an_edited_refusal_is_reported(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(one(db, "SELECT data FROM refusals WHERE seq = 2")[0])
    assert sql(
        db,
        "UPDATE refusals SET data = ? WHERE seq = 2",
        data.replace("TransitionNotAllowed", "NotPermitted"),
    )
    refusal_broken(db, capsys, "refusal 2 was changed")


def test_a_deleted_refusal_is_reported(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert sql(db, "DELETE FROM refusals WHERE seq = 2") == 1
    refusal_broken(db, capsys, "refusal 2 is missing")


def test_the_last_refusal_deleted_is_reported(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert sql(db, "DELETE FROM refusals WHERE seq = ?", REFUSALS) == 1
    refusal_broken(db, capsys, f"the refusal log ends at refusal {REFUSALS - 1}")


def test_reordered_refusals_are_reported(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    first = one(db, "SELECT data, at_us, encounter_id FROM refusals WHERE seq = 1")
    second = one(db, "SELECT data, at_us, encounter_id FROM refusals WHERE seq = 2")
    sql(db, "UPDATE refusals SET data = ?, at_us = ?, encounter_id = ? WHERE seq = 1", *second)
    sql(db, "UPDATE refusals SET data = ?, at_us = ?, encounter_id = ? WHERE seq = 2", *first)
    refusal_broken(db, capsys, "refusal 1 was changed")


def test_an_inserted_refusal_with_its_hash_recomputed_is_reported(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    # a forger who chains a refusal onto the end, hashes and all, but not the head
    from lastresort.store.audit import hash_hex
    from lastresort.store.refusals import refusal_link

    data, at_us, prev = one(db, "SELECT data, at_us, hash FROM refusals WHERE seq = ?", REFUSALS)
    prev_hex = hash_hex(prev)
    assert prev_hex is not None
    forged = str(data).replace("counter-1", "counter-9")
    digest = refusal_link(prev_hex, REFUSALS + 1, forged)
    as_stored = (lambda h: h) if isinstance(db, PgDb) else bytes.fromhex
    sql(
        db,
        "INSERT INTO refusals (seq, at_us, encounter_id, data, prev, hash)"
        " VALUES (?, ?, NULL, ?, ?, ?)",
        REFUSALS + 1,
        at_us,
        forged,
        as_stored(prev_hex),
        as_stored(digest),
    )
    refusal_broken(db, capsys, f"the refusal log ends at refusal {REFUSALS + 1}")


def test_a_refusal_moved_to_another_encounter_is_reported(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sql(db, "UPDATE refusals SET encounter_id = 'happy' WHERE seq = 1") == 1
    refusal_broken(db, capsys, "refusal 1: its encounter or time column was changed")


def test_refusals_hold_nothing_of_the_child(db: Db) -> None:
    store = open_store(db)
    try:
        text = repr(store.refusals())
    finally:
        store.close()
    for secret in SECRETS:
        assert secret not in text


# -- the refusal log cut back or rewritten, head and all (review) ---------------------------


def check_anchored(db: Db, anchor: tuple[int, str]) -> AuditReport:
    if isinstance(db, PgDb):
        return verify_postgres(pg_kit.DSN, schema=db.schema, refusal_anchor=anchor)
    return verify(db, refusal_anchor=anchor)


def refusal_row(db: Db, seq: int) -> tuple[int, str]:
    from lastresort.store.audit import hash_hex

    found = hash_hex(one(db, "SELECT hash FROM refusals WHERE seq = ?", seq)[0])
    assert found is not None
    return seq, found


def anchor_broken(db: Db, capsys: pytest.CaptureFixture[str], anchor: tuple[int, str]) -> None:
    """Without the anchor the forgery passes (what the head alone cannot show); with it,
    ``verify`` and ``audit verify --refusal-anchor`` report the log broken."""
    assert check(db).ok
    report = check_anchored(db, anchor)
    assert not report.ok
    assert any(
        f"no longer holds refusal anchor {anchor[0]}:{anchor[1]}" in p.message
        for p in report.problems
    ), [str(p) for p in report.problems]
    assert main([*command(db), "--refusal-anchor", f"{anchor[0]}:{anchor[1]}"]) == 1
    out, err = capsys.readouterr()
    assert "BROKEN" in out
    assert "no longer holds refusal anchor" in out
    assert "Traceback" not in out + err


def test_the_refusal_head_is_reported_and_an_anchor_taken_before_holds(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    report = check(db)
    assert report.refusal_head == refusal_row(db, REFUSALS)
    assert main(command(db)) == 0
    n, link = report.refusal_head
    assert f"refusal head {n}:{link}" in capsys.readouterr().out
    for seq in range(1, REFUSALS + 1):  # any earlier head still holds
        assert check_anchored(db, refusal_row(db, seq)).ok
    assert check_anchored(db, (0, lr.store.audit.GENESIS)).ok
    assert main([*command(db), "--refusal-anchor", f"{n}:{link}"]) == 0


def test_the_last_refusal_deleted_with_its_head_moved_back_is_caught_by_the_anchor(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = refusal_row(db, REFUSALS)
    back, back_hash = refusal_row(db, REFUSALS - 1)
    as_stored = (lambda h: h) if isinstance(db, PgDb) else bytes.fromhex
    assert sql(db, "DELETE FROM refusals WHERE seq = ?", REFUSALS) == 1
    assert sql(db, "UPDATE refusal_head SET seq = ?, hash = ?", back, as_stored(back_hash)) == 1
    anchor_broken(db, capsys, anchor)


def test_the_whole_refusal_log_emptied_with_its_head_reset_is_caught_by_the_anchor(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = refusal_row(db, 2)
    genesis = lr.store.audit.GENESIS
    as_stored = (lambda h: h) if isinstance(db, PgDb) else bytes.fromhex
    assert sql(db, "DELETE FROM refusals") == REFUSALS
    assert sql(db, "UPDATE refusal_head SET seq = 0, hash = ?", as_stored(genesis)) == 1
    anchor_broken(db, capsys, anchor)


def test_a_refusal_log_rewritten_and_rechained_is_caught_by_the_anchor(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    from lastresort.store.refusals import refusal_link

    anchor = refusal_row(db, REFUSALS)
    as_stored = (lambda h: h) if isinstance(db, PgDb) else bytes.fromhex
    prev = lr.store.audit.GENESIS
    for seq in range(1, REFUSALS + 1):
        data = str(one(db, "SELECT data FROM refusals WHERE seq = ?", seq)[0])
        data = data.replace("counter-1", "counter-9")  # someone else did it
        digest = refusal_link(prev, seq, data)
        sql(
            db,
            "UPDATE refusals SET data = ?, prev = ?, hash = ? WHERE seq = ?",
            data,
            as_stored(prev),
            as_stored(digest),
            seq,
        )
        prev = digest
    sql(db, "UPDATE refusal_head SET hash = ?", as_stored(prev))
    anchor_broken(db, capsys, anchor)


@pytest.mark.parametrize("anchor", [(1, "x"), ("1", "0" * 64), [1, "0" * 64], (-1, "0" * 64)])
def test_a_refusal_anchor_of_the_wrong_form_is_refused(db: Db, anchor: object) -> None:
    with pytest.raises(lr.InvalidArgument) as caught:
        check_anchored(db, anchor)  # type: ignore[arg-type]
    assert caught.value.argument == "refusal_anchor"


def test_a_refusal_anchor_of_the_wrong_form_on_the_command_line_is_exit_2(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*command(db), "--refusal-anchor", "3:nothex"])
    assert caught.value.code == 2
    assert "--refusal-anchor" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("statement", "fragment"),
    [
        ("UPDATE refusals SET seq = seq + 10 WHERE seq = 2", "refusal 2 is missing"),
        ("UPDATE refusals SET at_us = at_us + 1 WHERE seq = 2", "refusal 2: its encounter or time"),
        ("UPDATE refusals SET encounter_id = NULL WHERE seq = 1", "refusal 1: its encounter"),
        ("UPDATE refusals SET prev = hash WHERE seq = 2", "refusal 2 does not follow"),
        ("UPDATE refusals SET hash = prev WHERE seq = 3", "refusal 3 was changed"),
        ("UPDATE refusals SET data = data || ' ' WHERE seq = 1", "refusal 1 was changed"),
        ("UPDATE refusal_head SET seq = seq + 1", "its head says refusal"),
        ("DELETE FROM refusal_head", "its head says missing"),
    ],
)
def test_every_refusal_column_tampered_alone_is_reported(
    db: Db, capsys: pytest.CaptureFixture[str], statement: str, fragment: str
) -> None:
    assert sql(db, statement) >= 1
    refusal_broken(db, capsys, fragment)
