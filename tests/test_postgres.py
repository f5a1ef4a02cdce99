"""PostgresStore beyond the shared contract suite: import without psycopg, the
server-missing failure, schema migrations, transient errors (a held row lock, a
killed connection) that change nothing, the audit and its tampering in SQL, and four
worker processes on shared encounters, also killed with SIGKILL at random points."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.cli import main as cli
from lastresort.store.audit import _Verifier
from lastresort.store.postgres import (
    PG_MIGRATIONS,
    PG_SCHEMA_VERSION,
    _AuditConnection,
    lock_migrations,
    pg_schema_version,
    pg_upgrade,
)
from tests import pg_kit
from tests.store_kit import START, Receipts, consistency_problems, relay

WORKER = Path(__file__).with_name("pg_worker.py")


def engine_on(store: lr.Store, clock: lr.VirtualClock | None = None) -> lr.Engine:
    return lr.Engine(
        protocols=[relay()],
        plugins=[Receipts()],
        store=store,
        clock=clock or lr.VirtualClock(START),
        entry_points=False,
    )


def snapshot(store: lr.Store) -> Any:
    return [
        (store.load(e), store.timeline(e), store.deadlines(e), store.outbox(e))
        for e in store.encounter_ids()
    ]


# -- without psycopg, without a server -------------------------------------------------


def test_lastresort_imports_without_psycopg_and_the_store_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import lastresort as lr\n"
        "assert lr.PostgresStore.__name__ == 'PostgresStore'\n"
        "try:\n"
        "    lr.PostgresStore('postgresql://nowhere/db')\n"
        "except lr.StoreError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "psycopg" in done.stdout
    assert "lastresort[postgres]" in done.stdout


def test_a_missing_server_fails_the_tests_naming_the_dsn_and_how_to_start_one() -> None:
    dsn = "postgresql://postgres@127.0.0.1:1/test"
    with pytest.raises(pg_kit.ServerMissing) as caught:
        pg_kit.connect(dsn)
    assert dsn in str(caught.value)
    assert "LASTRESORT_TEST_DSN" in str(caught.value)
    assert "start" in str(caught.value)


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    with pytest.raises(lr.StoreError) as caught:
        lr.PostgresStore("postgresql://someone:s3cret@127.0.0.1:1/test", schema="lr_x")
    assert "s3cret" not in str(caught.value)
    assert "cannot open PostgreSQL schema lr_x" in str(caught.value)
    assert "Connection refused" in str(caught.value)


def test_a_lock_timeout_of_zero_fails_at_once_instead_of_waiting_for_ever() -> None:
    store = pg_kit.make_store(lock_timeout=0)
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    with pg_kit.connect() as other, other.transaction():
        other.execute(f'SET search_path TO "{store.schema}"')
        other.execute("SELECT 1 FROM encounters WHERE id = %s FOR UPDATE", (eid,))
        with pytest.raises(lr.StoreError, match="LockNotAvailable"):
            engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    store.close()


@pytest.mark.parametrize(
    ("kw", "argument"),
    [
        ({"dsn": 5}, "dsn"),
        ({"dsn": ""}, "dsn"),
        ({"schema": "Robert'); DROP"}, "schema"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"synchronous_commit": "maybe"}, "synchronous_commit"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(kw: dict[str, Any], argument: str) -> None:
    args = {"dsn": pg_kit.DSN, **kw}
    with pytest.raises(lr.InvalidArgument) as caught:
        lr.PostgresStore(**args)
    assert caught.value.argument == argument


# -- schema versions -------------------------------------------------------------------


def test_an_empty_schema_is_migrated_once_even_by_four_openers_at_once() -> None:
    schema = pg_kit.new_schema()
    stores: list[lr.PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(pg_kit.make_store(schema))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(stores) == 4
    with pg_kit.connect() as conn:
        rows = conn.execute(
            f'SELECT version FROM "{schema}".schema_version ORDER BY version'
        ).fetchall()
    # every migration once (schema version 3 added the work-queue index)
    assert rows == [(v,) for v in range(1, PG_SCHEMA_VERSION + 1)] == [(1,), (2,), (3,)]
    for store in stores:
        assert store.schema_version == PG_SCHEMA_VERSION
        store.close()


#: a fabricated next version: what a further migration will look like
_NEXT = ("ALTER TABLE outbox ADD COLUMN channel_hint TEXT",)


def test_a_store_migrates_from_the_previous_version_keeping_its_data() -> None:
    store = pg_kit.make_store()
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}).id
    engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    before = snapshot(store)
    conn = store._db.get()
    later = PG_SCHEMA_VERSION + 1
    assert pg_upgrade(conn, migrations=(*PG_MIGRATIONS, _NEXT), target=later) == PG_SCHEMA_VERSION
    assert pg_schema_version(conn) == later
    assert snapshot(store) == before
    store.close()
    # a schema newer than this lastresort is refused, and left as it is
    with pytest.raises(lr.StoreError, match="newer than this lastresort"):
        lr.PostgresStore(pg_kit.DSN, schema=store.schema)
    with pg_kit.connect() as check:
        check.execute(f'SET search_path TO "{store.schema}"')
        assert pg_schema_version(check) == later


def test_a_schema_of_another_application_is_refused_and_left_alone() -> None:
    schema = pg_kit.new_schema()
    with pg_kit.connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".customers (id int)')
    with pytest.raises(lr.StoreError, match="not a lastresort store"):
        pg_kit.make_store(schema)
    with pg_kit.connect() as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
    assert tables == [("customers",)]


# -- transient errors change nothing ---------------------------------------------------


def test_a_row_lock_held_past_lock_timeout_is_a_store_error_and_changes_nothing() -> None:
    store = pg_kit.make_store(lock_timeout=0.2)
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    before = snapshot(store)
    with pg_kit.connect() as other, other.transaction():
        other.execute(f'SET search_path TO "{store.schema}"')
        other.execute("SELECT 1 FROM encounters WHERE id = %s FOR UPDATE", (eid,))
        with pytest.raises(lr.StoreError, match="LockNotAvailable"):
            engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
        # a claim never waits for a lock: it skips rows another transaction holds
        due = START + timedelta(minutes=31)
        assert [d.encounter_id for d in store.claim_deadlines(due, timedelta(seconds=1))] == [eid]
    assert snapshot(store) == before
    engine.fire(eid, "go", lr.Actor("counter", "counter-1"))  # the lock is gone: it works
    assert store.load(eid).state == "room"
    assert store.verify().ok
    store.close()


def test_a_killed_connection_is_a_store_error_changes_nothing_and_is_replaced() -> None:
    store = pg_kit.make_store()
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    before = snapshot(store)
    pid = store._db.get().info.backend_pid
    with pg_kit.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.1)
    with pytest.raises(lr.StoreError):
        engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    assert snapshot(store) == before  # a new connection reads it
    assert store._db.get().info.backend_pid != pid
    engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    assert store.load(eid).state == "room"
    assert store.verify().ok
    store.close()


def test_a_deadlock_between_two_transactions_is_a_store_error_and_changes_nothing() -> None:
    store = pg_kit.make_store()
    engine = engine_on(store)
    a, b = (
        engine.open("relay", lr.Actor("counter", "counter-1")).id,
        engine.open("relay", lr.Actor("counter", "counter-1")).id,
    )
    before = snapshot(store)
    with pg_kit.connect() as other:
        other.execute(f'SET search_path TO "{store.schema}"')
        with other.transaction():
            other.execute("SELECT 1 FROM encounters WHERE id = %s FOR UPDATE", (b,))
            conn = store._db.get()
            failed: list[BaseException] = []

            def first() -> None:
                try:
                    with store._db.write("lock a then b") as mine:
                        mine.execute("SELECT 1 FROM encounters WHERE id = %s FOR UPDATE", (a,))
                        mine.execute("SELECT 1 FROM encounters WHERE id = %s FOR UPDATE", (b,))
                except lr.StoreError as exc:
                    failed.append(exc)

            worker = threading.Thread(target=first)
            worker.start()
            time.sleep(0.3)
            try:  # closes the cycle: one of the two is chosen as the deadlock victim
                other.execute("SELECT 1 FROM encounters WHERE id = %s FOR UPDATE", (a,))
            except Exception as exc:  # noqa: BLE001 - the other side may be the victim
                failed.append(exc)
            worker.join(30)
    del conn
    assert any("eadlock" in str(e) or "DeadlockDetected" in str(e) for e in failed), failed
    assert snapshot(store) == before
    store.close()


class _FailingAt:
    """The store's connection, raising ``error`` at the statement that contains
    ``where`` (after every earlier statement of the transaction ran)."""

    def __init__(self, conn: Any, where: str, error: Exception) -> None:
        self.conn, self.where, self.error = conn, where, error

    def execute(self, sql: str, args: Any = ()) -> Any:
        if self.where in sql:
            raise self.error
        return self.conn.execute(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.mark.parametrize(
    "error",
    ["SerializationFailure", "DeadlockDetected", "OperationalError"],
)
@pytest.mark.parametrize("where", ["UPDATE ledger_head", "DELETE FROM deadlines WHERE id ="])
def test_a_transient_error_at_the_end_of_a_commit_is_a_store_error_and_writes_nothing(
    error: str, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    store = pg_kit.make_store()
    clock = lr.VirtualClock(START)
    engine = engine_on(store, clock)
    eid = engine.open("relay", lr.Actor("counter", "counter-1")).id
    clock.advance(timedelta(minutes=31))  # the desk deadline is due: tick consumes it
    before = snapshot(store)
    real = store._db.get()
    failing = _FailingAt(real, where, getattr(psycopg.errors, error, psycopg.OperationalError)())
    monkeypatch.setattr(store._db, "get", lambda: failing)
    fired = engine.tick()  # a store error while firing: the deadline stays pending
    assert not any(isinstance(e, lr.DeadlineMissed) for e in fired)
    with pytest.raises(lr.StoreError, match=error):
        engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    monkeypatch.undo()
    assert snapshot(store) == before
    assert store.verify().ok
    clock.advance(timedelta(minutes=2))  # past the claim's lease
    assert [e.kind for e in engine.tick() if isinstance(e, lr.DeadlineMissed)] == ["DeadlineMissed"]
    assert store.verify().ok
    store.close()


# -- the audit, and tampering in SQL ---------------------------------------------------


def _run(store: lr.PostgresStore) -> tuple[lr.Engine, str]:
    clock = lr.VirtualClock(START)
    engine = engine_on(store, clock)
    eid = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}).id
    engine.fire(eid, "go", lr.Actor("counter", "counter-1"))
    clock.advance(timedelta(minutes=25))
    engine.tick()
    engine.deliver()
    return engine, eid


TAMPERING = {
    "an event's data": "UPDATE events SET data = replace(data, 'counter', 'expert') WHERE seq = 2",
    "a deleted event": "DELETE FROM events WHERE seq = (SELECT MAX(seq) FROM events)",
    "the police notification deleted": "DELETE FROM outbox",
    "a deadline moved a century": "UPDATE deadlines SET due_us = due_us + 3155760000000000",
    "the closing marker": "UPDATE encounters SET closed_at = opened_at, closed_us = 0",
    "the facts nulled": "UPDATE encounters SET facts = NULL",
    "the state edited": "UPDATE encounters SET state = 'with_expert'",
    "a ledger row": "UPDATE ledger SET link = repeat('0', 64) WHERE n = 1",
    "a lease a century": "UPDATE deadlines SET lease_us = 9000000000000000",
    "a deleted ledger row": "DELETE FROM ledger WHERE n = 2",
}


def test_an_anchor_detects_a_store_cut_back_to_an_earlier_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = pg_kit.make_store()
    engine, eid = _run(store)
    head = store.verify().head
    assert head is not None
    engine.fire(
        eid, "go" if engine.get(eid).state == "desk" else "back", lr.Actor("counter", "counter-1")
    )  # later
    args = ["audit", "verify", "--dsn", pg_kit.DSN, "--schema", str(store.schema)]
    anchor = f"{head[0]}:{head[1]}"
    assert cli([*args, "--anchor", anchor]) == 0
    capsys.readouterr()
    # a restore to an earlier point, forged consistently: the whole store rebuilt with
    # other content from the anchor's row on
    conn = store._db.get()
    with conn.transaction():
        conn.execute("UPDATE ledger SET link = repeat('a', 64) WHERE n = %s", (head[0],))
    assert cli([*args, "--anchor", anchor]) == 1
    assert f"no longer holds anchor {head[0]}" in capsys.readouterr().out
    store.close()


def test_audit_verify_on_a_dsn_passes_and_names_every_tampering(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = pg_kit.make_store()
    _run(store)
    args = ["audit", "verify", "--dsn", pg_kit.DSN, "--schema", str(store.schema)]
    assert cli(args) == 0
    assert "OK" in capsys.readouterr().out
    conn = store._db.get()
    for what, sql in TAMPERING.items():
        with conn.transaction():
            conn.execute("SAVEPOINT before")
            conn.execute(sql)
            # the verifier of verify_postgres, inside the tampering transaction
            report = _Verifier(_AuditConnection(conn), micros=True).run(None)  # type: ignore[arg-type]
            assert not report.ok, what
            conn.execute("ROLLBACK TO SAVEPOINT before")
    assert store.verify().ok  # every tampering rolled back
    with conn.transaction():
        conn.execute(TAMPERING["the police notification deleted"])
    assert cli(args) == 1
    assert "BROKEN" in capsys.readouterr().out
    assert cli(["audit", "verify", "--dsn", pg_kit.DSN, "--schema", "lr_no_such"]) == 2
    assert "empty" in capsys.readouterr().err
    assert cli(["audit", "verify", "x.db", "--dsn", pg_kit.DSN]) == 2
    store.close()


# -- four workers ----------------------------------------------------------------------


def _workers(schema: str, ids_file: Path, outs: list[Path], ops: int) -> list[Any]:
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                pg_kit.DSN,
                schema,
                str(seed),
                str(ids_file),
                str(out),
                str(ops),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed, out in enumerate(outs)
    ]
    for child in children:
        assert child.stdout.readline() == "ready\n"
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    return children


def _check(store: lr.PostgresStore, outs: list[Path], complete: bool) -> None:
    lines = [json.loads(x) for out in outs for x in out.read_text().splitlines()]
    returned: dict[tuple[str, int], str] = {}
    won: set[tuple[str, int]] = set()
    for line in lines:
        if "ok" in line:
            eid, expected, events = line["ok"]
            assert (eid, expected) not in won  # one winner per version: no lost update
            won.add((eid, expected))
            for seq, kind in events:
                assert (eid, seq) not in returned
                returned[(eid, seq)] = kind
    fired = [tuple(x) for line in lines for x in line.get("ticked", [])]
    assert len({(e, d) for e, _, d in fired}) == len(fired)  # no deadline fired twice
    sent = [tuple(x) for line in lines for x in line.get("delivered", [])]
    assert len({k for _, _, k in sent}) == len(sent)  # no notification delivered twice
    opened = {line["opened"] for line in lines if "opened" in line}
    ids = set(store.encounter_ids())
    assert opened <= ids  # nothing acknowledged is lost
    missed: Counter[tuple[str, str]] = Counter()
    delivered: Counter[str] = Counter()
    for eid in ids:
        timeline = {e.seq: e for e in store.timeline(eid)}
        for e in timeline.values():
            if isinstance(e, lr.DeadlineMissed):
                missed[(eid, e.deadline_id)] += 1
            if isinstance(e, lr.NotificationDelivered):
                delivered[e.key] += 1
        for (rid, seq), kind in returned.items():
            if rid == eid:
                assert timeline[seq].kind == kind
    for eid, seq, _ in fired:
        assert store.timeline(eid)[seq - 1].kind == "DeadlineMissed"
    assert all(n == 1 for n in missed.values())
    assert all(n == 1 for n in delivered.values())
    assert {k for _, _, k in sent} <= set(delivered)
    if complete:
        assert fired, "no worker fired a deadline"
        assert sent, "no worker delivered a notification"
        assert returned, "no worker fired an event"
    assert consistency_problems(store) == []
    report = store.verify()
    assert report.ok, [str(p) for p in report.problems]


def _shared(tmp_path: Path) -> tuple[lr.PostgresStore, Path]:
    store = pg_kit.make_store(synchronous_commit="on")
    engine = engine_on(store)
    ids = [engine.open("relay", lr.Actor("counter", "counter-1")).id for _ in range(12)]
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids))
    return store, ids_file


def test_four_workers_on_shared_encounters_lose_nothing_and_fire_nothing_twice(
    tmp_path: Path,
) -> None:
    store, ids_file = _shared(tmp_path)
    outs = [tmp_path / f"w{i}.jsonl" for i in range(4)]
    children = _workers(str(store.schema), ids_file, outs, ops=100)
    audits = 0
    while any(c.poll() is None for c in children):
        assert store.verify().ok  # a consistent view while four write
        audits += 1
        time.sleep(0.2)
    for child in children:
        child.communicate(timeout=120)
        assert child.returncode == 0
    assert audits > 0
    _check(store, outs, complete=True)
    store.close()


def test_workers_killed_at_random_points_lose_nothing_acknowledged(tmp_path: Path) -> None:
    store, ids_file = _shared(tmp_path)
    rng = random.Random(17)
    outs = [tmp_path / f"k{i}.jsonl" for i in range(4)]
    for _round in range(2):
        children = _workers(str(store.schema), ids_file, outs, ops=10_000)
        for child in rng.sample(children, len(children)):
            time.sleep(rng.uniform(0.2, 1.0))
            child.send_signal(signal.SIGKILL)
        for child in children:
            child.communicate(timeout=60)
            assert child.returncode == -signal.SIGKILL
    # the killed workers' claims lapse; a survivor takes over what they held
    clock = lr.VirtualClock(START + timedelta(days=2))
    survivor = engine_on(store, clock)
    survivor.tick()
    survivor.deliver()
    _check(store, outs, complete=False)
    store.close()


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone() -> None:
    import multiprocessing

    store = pg_kit.make_store()
    engine = engine_on(store)
    eid = engine.open(
        "relay", lr.Actor("counter", "counter-1")
    ).id  # the parent's connection exists now
    parent_pid = store._db.get().info.backend_pid

    def child() -> None:
        engine.fire(
            eid, "go", lr.Actor("counter", "counter-1")
        )  # the same store object, in another process
        assert store._db.get().info.backend_pid != parent_pid
        store.close()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert store._db.get().info.backend_pid == parent_pid  # still the parent's session
    assert engine.get(eid).state == "room"
    assert store.verify().ok
    store.close()


def test_a_migration_of_one_schema_never_holds_up_a_store_in_another() -> None:
    # the migration lock is per schema: a process migrating (or stuck migrating) schema A
    # must not make a store with lock_timeout=0 in schema B fail (it used to share one
    # server-wide advisory lock, so parallel test runs failed at random)
    busy = pg_kit.make_store()
    with pg_kit.connect() as other, other.transaction():
        other.execute(f'SET search_path TO "{busy.schema}"')
        lock_migrations(other)  # as a process migrating schema A holds it
        store = pg_kit.make_store(lock_timeout=0)  # another schema: opens and migrates at once
        assert store.schema != busy.schema
        store.close()
        # while the same schema's migration lock is held, a store there would wait:
        # with lock_timeout=0 it fails at once, naming the lock, and writes nothing
        with pytest.raises(lr.StoreError, match="LockNotAvailable"):
            lr.PostgresStore(pg_kit.DSN, schema=busy.schema, lock_timeout=0)
    busy.close()


def test_purge_on_a_dsn_removes_the_facts_of_closed_encounters_and_keeps_the_chain(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = pg_kit.make_store()
    engine = engine_on(store)
    eid = engine.open("relay", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}).id
    open_id = engine.open("relay", lr.Actor("counter", "counter-2"), facts={"age_band": "8-11"}).id
    engine.fire(eid, "take_over", lr.Actor("expert", "expert-1"))
    engine.fire(eid, "close", lr.Actor("expert", "expert-1"))
    assert store.load(eid).closed_at is not None
    assert store.load(eid).facts == {"age_band": "8-11"}
    before = snapshot(store)
    args = ["purge", "--dsn", pg_kit.DSN, "--schema", str(store.schema), "--older-than", "20y"]
    as_of = ["--as-of", (START + timedelta(days=365 * 21)).isoformat()]
    assert cli([*args, *as_of, "--dry-run"]) == 0
    assert "would purge the facts of 1 encounter" in capsys.readouterr().out
    assert snapshot(store) == before
    assert cli([*args, "--as-of", (START + timedelta(days=365 * 19)).isoformat()]) == 0
    assert "purged the facts of 0 encounters" in capsys.readouterr().out
    assert cli([*args, *as_of]) == 0
    assert "purged the facts of 1 encounter" in capsys.readouterr().out
    assert store.load(eid).facts == {}
    assert store.load(open_id).facts == {"age_band": "8-11"}  # still open: kept
    timelines = {e[0].id: e[1] for e in before}
    assert store.timeline(eid) == timelines[eid]
    assert cli(["audit", "verify", "--dsn", pg_kit.DSN, "--schema", str(store.schema)]) == 0
    store.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--schema", "lr_no_such_schema"], "empty, not a lastresort store"),
        (["--schema", "Not A Name"], "plain lowercase SQL name"),
        (["x.db"], "not both"),
    ],
)
def test_purge_on_a_dsn_refuses_what_is_not_a_store_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli(["purge", "--dsn", pg_kit.DSN, "--older-than", "20y", *argv]) == 2
    assert message in capsys.readouterr().err
    with pg_kit.connect() as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'lr_no_such_schema'"
        ).fetchall()
    assert found == []  # purge never creates a schema


def test_purge_on_a_bad_dsn_names_no_password(capsys: pytest.CaptureFixture[str]) -> None:
    for dsn in ("postgresql://someone:s3cret@127.0.0.1:1/test", "host=x port=bad password=s3cret"):
        assert cli(["purge", "--dsn", dsn, "--older-than", "20y"]) == 2
        err = capsys.readouterr().err
        assert "lastresort: purge:" in err
        assert "s3cret" not in err
