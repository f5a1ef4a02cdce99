"""SQLiteStore beyond the shared contract: settings, refusals that change nothing,
failures mid-transaction, busy writers, threads, schema migration, restart and
retention."""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

import lastresort as lr
from lastresort.store import Change
from lastresort.store.audit import verify
from lastresort.store.schema import SCHEMA_VERSION, upgrade
from tests.store_kit import START, Receipts, consistency_problems, relay
from tests.test_store_contract import everything


def engine_on(store: lr.Store, clock: lr.VirtualClock | None = None, **kw: object) -> lr.Engine:
    return lr.Engine(
        protocols=[relay()],
        store=store,
        clock=clock or lr.VirtualClock(START),
        entry_points=False,
        **kw,  # type: ignore[arg-type]
    )


def pragma(path: Path, name: str, store: lr.SQLiteStore) -> object:
    conn = store._db.get()  # the store's own connection: per-connection settings
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


# -- settings and refusals --------------------------------------------------------------


@pytest.mark.parametrize(("sync", "level"), [("FULL", 2), ("normal", 1), ("EXTRA", 3)])
def test_wal_and_the_synchronous_setting(tmp_path: Path, sync: str, level: int) -> None:
    with lr.SQLiteStore(tmp_path / "s.db", synchronous=sync) as store:
        assert pragma(tmp_path, "journal_mode", store) == "wal"
        assert pragma(tmp_path, "synchronous", store) == level
        assert store.synchronous == sync.upper()
        assert store.schema_version == SCHEMA_VERSION


def test_the_default_is_synchronous_full(tmp_path: Path) -> None:
    with lr.SQLiteStore(tmp_path / "s.db") as store:
        assert pragma(tmp_path, "synchronous", store) == 2


@pytest.mark.parametrize(
    ("path", "kw", "message"),
    [
        (":memory:", {}, "needs a file path"),
        ("s.db", {"synchronous": "OFF"}, "synchronous must be one of FULL, NORMAL, EXTRA"),
        ("s.db", {"busy_timeout": -1}, "busy_timeout must not be negative"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_created(
    tmp_path: Path, path: str, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lr.SQLiteStore(path if path == ":memory:" else tmp_path / path, **kw)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_database_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just some notes\n" * 200)
    before = path.read_bytes()
    with pytest.raises(lr.StoreError, match=r"cannot open .*notes.db") as caught:
        lr.SQLiteStore(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == before


def test_another_applications_database_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(lr.StoreError, match=r"not a lastresort store.*\(invoices\)"):
        lr.SQLiteStore(path)
    assert path.read_bytes() == before


def test_a_file_from_a_newer_lastresort_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    lr.SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(lr.StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        lr.SQLiteStore(path)
    assert path.read_bytes() == before


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = lr.SQLiteStore(tmp_path / "c.db")
    store.close()
    with pytest.raises(lr.StoreError, match="is closed"):
        store.load("x")


# -- failures change nothing --------------------------------------------------------


def test_a_failure_inside_the_transaction_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    store = lr.SQLiteStore(path)
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}).id
    conn = sqlite3.connect(path)
    conn.execute(  # the outbox rows are written last: everything before must roll back
        "CREATE TRIGGER fail BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    conn.commit()
    before = everything(store)
    with pytest.raises(
        lr.StoreError, match=r"commit encounter .*disk full.*nothing was written"
    ) as e:
        engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    assert isinstance(e.value.__cause__, sqlite3.IntegrityError)
    assert everything(store) == before
    assert verify(path).ok
    conn.execute("DROP TRIGGER fail")
    conn.commit()
    conn.close()
    assert engine.fire(eid, "go", lr.Actor("counter", "counter-1"))[0].seq == 3
    assert verify(path).ok


def test_a_busy_database_fails_after_the_timeout_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    store = lr.SQLiteStore(path, busy_timeout=0.05)
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    before = everything(store)  # readers are not blocked (WAL)
    with pytest.raises(lr.StoreError, match="locked") as caught:
        engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert everything(store) == before
    assert engine.fire(eid, "go", lr.Actor("counter", "counter-1"))[0].seq == 3


# -- threads ------------------------------------------------------------------------


def test_eight_threads_on_one_store_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    store = lr.SQLiteStore(tmp_path / "t.db", synchronous="NORMAL")
    engine = engine_on(store)
    ids = [engine.open("relay", lr.Actor("counter", "counter-1")).id for _ in range(20)]
    returned: list[lr.Event] = []
    successes: Counter[str] = Counter()
    losers: list[lr.ConcurrentUpdate] = []
    lock = threading.Lock()
    gate = threading.Barrier(8)

    def work(seed: int) -> None:
        gate.wait()
        for i in range(60):
            eid = ids[(seed * 7 + i) % len(ids)] if i % 2 else ids[i % 3]
            current = engine.get(eid)
            event = "go" if current.state == "desk" else "back"
            try:
                got = engine.fire(
                    eid, event, lr.Actor("counter", "counter-1"), expected_version=current.version
                )
            except lr.ConcurrentUpdate as exc:
                with lock:
                    losers.append(exc)
                continue
            with lock:
                returned.extend(got)
                successes[eid] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(successes.values()) + len(losers) == 8 * 60
    keys = [(e.encounter_id, e.seq) for e in returned]
    assert len(keys) == len(set(keys))
    for eid in ids:
        timeline = engine.timeline(eid)
        assert sum(isinstance(e, lr.StepEntered) for e in timeline) == successes[eid]
        assert engine.get(eid).version == 1 + successes[eid]
        mine = {(e.encounter_id, e.seq): e for e in returned if e.encounter_id == eid}
        assert {
            (e.encounter_id, e.seq): e for e in timeline if e.seq in {s for _, s in mine}
        } == mine
    assert losers, "eight threads on three hot encounters never collided"
    assert all(exc.expected < exc.actual for exc in losers)
    assert consistency_problems(store) == []
    assert verify(tmp_path / "t.db").ok


# -- commits prepared outside the write lock ----------------------------------------------
# A commit is hashed and serialised before BEGIN IMMEDIATE, from the row the thread
# loaded; the write then applies only if the stored row is still that row. These
# change the row between the load and the commit from another store on the file (as
# another process would) and check the outcome is what a commit computed inside the
# transaction gives.


def _step(loaded: lr.Encounter, state: str) -> Change:
    """The change ``engine.fire`` would commit after loading ``loaded``, numbered
    from the store's prediction."""
    return Change(
        encounter=attrs.evolve(loaded, state=state, version=loaded.version + 1),
        expected_version=loaded.version,
        events=[
            lr.StepEntered(
                encounter_id=loaded.id,
                seq=0,
                at=START,
                actor=lr.Actor("counter"),
                event="go",
                from_step=loaded.state,
                step=state,
                responsible=loaded.responsible,
            )
        ],
    )


def test_the_next_sequence_number_is_predicted_from_the_row_loaded_last(tmp_path: Path) -> None:
    store = lr.SQLiteStore(tmp_path / "seq.db")
    engine = engine_on(store)
    a = engine.open("relay", lr.Actor("counter", "counter-1")).id
    b = engine.open("relay", lr.Actor("counter", "counter-1")).id
    engine.fire(a, "go", lr.Actor("counter", "counter-1"))
    store.load(a)
    assert store.next_seq(a) == len(store.timeline(a)) + 1
    assert store.next_seq(b) == 0  # not the row loaded last: left to commit
    seen: list[int] = []
    other = threading.Thread(target=lambda: seen.append(store.next_seq(a)))
    other.start()
    other.join()
    assert seen == [0]  # what one thread loaded is not another's


def test_a_commit_prepared_from_a_row_another_process_changed_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stale.db"
    mine, theirs = lr.SQLiteStore(path), lr.SQLiteStore(path)
    eid = engine_on(mine).open("relay", lr.Actor("counter", "counter-1")).id
    loaded = mine.load(eid)
    engine_on(theirs).fire(
        eid, "go", lr.Actor("counter", "counter-1")
    )  # version 2, written elsewhere
    before = everything(theirs)
    with pytest.raises(lr.ConcurrentUpdate) as refused:
        mine.commit(_step(loaded, "room"))
    assert (refused.value.expected, refused.value.actual) == (1, 2)
    assert everything(theirs) == before
    assert verify(path).ok


def test_a_delivery_between_load_and_commit_is_followed_on(tmp_path: Path) -> None:
    path = tmp_path / "delivery.db"
    clock = lr.VirtualClock(START)
    mine, theirs = lr.SQLiteStore(path), lr.SQLiteStore(path)
    engine = engine_on(mine, clock)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    engine.fire(eid, "go", lr.Actor("counter", "counter-1"))  # queues a notification for the expert
    loaded = mine.load(eid)
    predicted = mine.next_seq(eid)
    delivered = engine_on(theirs, clock, plugins=[Receipts()]).deliver()
    assert [e.seq for e in delivered] == [predicted]  # the timeline moved on, same version
    committed = mine.commit(_step(loaded, "desk"))
    assert [e.seq for e in committed] == [predicted + 1]
    timeline = mine.timeline(eid)
    assert timeline[-1] == committed[0]
    assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
    assert mine.load(eid).version == loaded.version + 1
    assert verify(path).ok


def test_a_purge_between_load_and_commit_is_seen_by_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "purged.db"
    clock = lr.VirtualClock(START)
    mine, theirs = lr.SQLiteStore(path), lr.SQLiteStore(path)
    engine = engine_on(mine, clock)
    eid = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}).id
    engine.fire(eid, "take_over", lr.Actor("expert", "expert-1"))
    engine.fire(eid, "close", lr.Actor("expert", "expert-1"))
    loaded = mine.load(eid)
    assert theirs.purge_facts(clock.now() + timedelta(days=1)) == 1
    mine.commit(_step(loaded, "closed"))  # the store itself does not refuse it
    # the facts the change carries are stored again under a new salt, as a commit
    # prepared inside the transaction would
    assert mine.load(eid).facts == {"age_band": "8-11"}
    assert verify(path).ok


# -- schema migration ------------------------------------------------------------------

#: the columns version 1 had; version 2 added the *_us columns
V1_COLUMNS = {
    "encounters": "id, protocol, protocol_version, state, responsible, version, opened_at,"
    " closed_at, channel, facts, facts_salt, facts_digest, purged_at, snapshot, seq, head",
    "events": "encounter_id, seq, kind, data, snapshot, prev, hash",
    "ledger": "n, encounter_id, seq, hash, link",
    "deadlines": "id, encounter_id, step, event, due",
    "outbox": "key, encounter_id, protocol, event, step, party, created_at, attempts,"
    " next_attempt_at, contact, last_error, delivered_at",
}


def test_a_version_1_file_is_migrated_and_keeps_working(tmp_path: Path) -> None:
    clock = lr.VirtualClock(START)
    current = lr.SQLiteStore(tmp_path / "current.db")
    engine = engine_on(current, clock)
    a = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "0-7"}).id
    b = engine.open("relay", lr.Actor("counter", "counter-1")).id
    engine.fire(a, "go", lr.Actor("counter", "counter-1"))
    engine.fire(b, "take_over", lr.Actor("expert", "expert-1"))
    engine.fire(b, "close", lr.Actor("expert", "expert-1"))
    expected = everything(current)
    current.close()

    # write the same data in the version 1 layout, as an older lastresort did
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    assert upgrade(conn, target=1) == 0
    conn.execute("ATTACH DATABASE ? AS cur", (str(tmp_path / "current.db"),))
    for table, columns in V1_COLUMNS.items():
        conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM cur.{table}")
    conn.execute("DETACH DATABASE cur")
    conn.close()
    assert verify(old).ok  # verify reads version 1 files as they are

    migrated = lr.SQLiteStore(old)
    assert migrated.schema_version == SCHEMA_VERSION
    assert everything(migrated) == expected
    versions = sqlite3.connect(old).execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    engine = engine_on(migrated, clock)
    clock.advance(timedelta(minutes=25))
    fired = engine.tick()  # the room deadline of a: found through the new due_us column
    assert [e.kind for e in fired][:2] == ["DeadlineMissed", "StepEntered"]
    assert engine.get(a).state == "desk"
    assert consistency_problems(migrated) == []
    assert verify(old).ok


def test_opening_twice_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    lr.SQLiteStore(path).close()
    lr.SQLiteStore(path).close()
    rows = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


# -- restart ------------------------------------------------------------------------


def test_a_new_engine_on_the_same_file_resumes_everything(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    clock = lr.VirtualClock(START)
    first = engine_on(lr.SQLiteStore(path), clock)
    waiting = first.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "12-15"}).id
    first.fire(
        waiting, "go", lr.Actor("counter", "counter-1")
    )  # room: deadline in 20 minutes; expert to be notified
    calm = first.open("relay", lr.Actor("counter", "counter-1")).id  # desk: deadline in 30 minutes
    first.store.close()  # the process goes down; nothing was delivered

    clock.advance(timedelta(minutes=25))  # the room deadline fell due while down
    receipts = Receipts()
    second = engine_on(lr.SQLiteStore(path), clock, plugins=[receipts])
    assert sorted(second.store.encounter_ids(open_only=True)) == sorted([waiting, calm])
    assert second.get(waiting).state == "room"
    assert second.get(waiting).facts == {"age_band": "12-15"}
    fired = second.tick()
    assert [(e.encounter_id, e.kind) for e in fired][:2] == [
        (waiting, "DeadlineMissed"),
        (waiting, "StepEntered"),
    ]
    assert second.tick() == []  # exactly once
    assert second.get(waiting).state == "desk"
    assert second.get(calm).state == "desk"  # its deadline is not due yet
    delivered = second.deliver()
    assert [e.key for e in delivered if isinstance(e, lr.NotificationDelivered)]  # type: ignore[attr-defined]
    assert receipts.calls >= 1
    assert consistency_problems(second.store) == []
    second.store.close()
    assert verify(path).ok


def test_a_deadline_claimed_by_a_process_that_died_fires_once_after_its_lease(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lease.db"
    clock = lr.VirtualClock(START)
    engine = engine_on(lr.SQLiteStore(path), clock)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    clock.advance(timedelta(minutes=31))
    dying = lr.SQLiteStore(path)
    assert len(dying.claim_deadlines(clock.now(), timedelta(minutes=1))) == 1
    dying.close()  # it claimed the deadline, then died before firing it
    assert engine.tick() == []  # still leased
    later = clock.now() + timedelta(minutes=1)
    assert [e.kind for e in engine.tick(later)][:2] == ["DeadlineMissed", "StepEntered"]
    assert engine.tick(later) == []
    assert engine.get(eid).state == "room"


# -- retention ----------------------------------------------------------------------


def test_purge_removes_facts_of_closed_encounters_and_keeps_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "purge.db"
    clock = lr.VirtualClock(START)
    store = lr.SQLiteStore(path)
    engine = engine_on(store, clock)
    done = engine.open(
        "relay", lr.Actor("counter", "counter-1"), facts={"age_band": "12-15", "disclosure": True}
    ).id
    engine.fire(done, "take_over", lr.Actor("expert", "expert-1"))
    engine.fire(done, "close", lr.Actor("expert", "expert-1"))
    running = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "16-17"}).id
    timeline = engine.timeline(done)
    cutoff = START + timedelta(days=1)
    before = everything(store)

    assert store.purge_facts(START, dry_run=False) == 0  # closed at START, not before it
    assert store.purge_facts(cutoff, dry_run=True) == 1
    assert everything(store) == before
    assert store.purge_facts(cutoff) == 1
    assert engine.get(done).facts == {}
    assert engine.get(running).facts == {"age_band": "16-17"}  # still open: kept
    assert engine.timeline(done) == timeline
    assert store.purge_facts(cutoff) == 0
    store.close()
    assert verify(path).ok
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("purge"))
    assert b'"12-15"' not in stored  # overwritten, not just unlinked
    assert b'"16-17"' in stored


# -- the docs -----------------------------------------------------------------------


def test_the_store_docs_run_and_print_what_they_say(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "store.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/store.md has no python block followed by what it prints"
    for code, printed in blocks:
        exec(compile(code, "docs/store.md", "exec"), {"__name__": "docs"})
        assert capsys.readouterr().out == printed


def test_a_missing_directory_is_a_store_error_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(lr.StoreError, match="cannot open") as caught:
        lr.SQLiteStore(tmp_path / "no" / "such" / "dir" / "x.db")
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_threads_that_end_leave_no_open_connections(tmp_path: Path) -> None:
    store = lr.SQLiteStore(tmp_path / "fd.db")
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id

    def churn() -> int:  # a thread pool that renews its threads
        threads = [threading.Thread(target=engine.get, args=(eid,)) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(list(Path("/proc/self/fd").iterdir()))

    gc.disable()  # closed when the thread ends, not whenever the collector runs
    try:
        first = churn()  # SQLite may keep a few closed files open for reuse
        rounds = [churn() for _ in range(5)]
    finally:
        gc.enable()
    # a connection left open per thread keeps at least 10 files a round open, 50 over the
    # five rounds; other parts of the test process may open a file or two meanwhile
    assert rounds[-1] - first < 20, rounds
    assert engine.get(eid).state == "desk"
    store.close()


def test_the_row_kept_to_prepare_a_commit_is_dropped_by_the_commit(tmp_path: Path) -> None:
    # load() keeps the row it read (facts included) so that the commit can be prepared
    # before the write lock; after the commit it is stale and must not linger in memory
    store = lr.SQLiteStore(tmp_path / "kept.db")
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}).id
    store.load(eid)
    assert getattr(store._seen, "row", None) is not None
    engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    assert getattr(store._seen, "row", None) is None
    store.close()
