"""Outbox under faults (issue #12, item 6): a hanging pager, a notification that always
fails, a late worker, two engines racing on one file, bad delivery settings.

Deterministic: hanging hooks block on a ``threading.Event``; the only wait is the
tiny ``delivery_timeout`` of a hook that hangs on purpose.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from lastresort.store.schema import SCHEMA_VERSION, upgrade
from tests import pg_kit
from tests.conftest import START, TASKFORCE

TINY = 0.05  # seconds a hook that hangs on purpose is given


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Store]:
    made: lr.Store
    if request.param == "memory":
        made = lr.MemoryStore()
    elif request.param == "sqlite":
        made = lr.SQLiteStore(tmp_path / "out.db")
    else:
        made = pg_kit.make_store()
    yield made
    made.close()


def other(store: lr.Store) -> lr.Store:
    """A second handle on the same data: another SQLiteStore on the file or
    PostgresStore on the schema (another worker), or the same MemoryStore."""
    if isinstance(store, lr.PostgresStore):
        return pg_kit.make_store(store.schema)
    return lr.SQLiteStore(store.path) if isinstance(store, lr.SQLiteStore) else store


def engine(store: lr.Store, clock: lr.VirtualClock, *plugins: object, **kw: Any) -> lr.Engine:
    return lr.Engine(
        protocols=[lr.load_protocol(TASKFORCE)],
        plugins=plugins,
        store=store,
        clock=clock,
        entry_points=False,
        **kw,
    )


class Pager:
    """Delivers, except to ``hang_for`` (blocks until ``release``) and ``fail_for``
    (raises every time)."""

    def __init__(self, hang_for: str = "", fail_for: str = "") -> None:
        self.hang_for, self.fail_for = hang_for, fail_for
        self.release = threading.Event()
        self.hanging = threading.Event()
        self.sent: list[str] = []

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str:
        if notification.party == self.hang_for:
            self.hanging.set()
            self.release.wait()
        if notification.party == self.fail_for:
            raise ConnectionError(f"pager of {notification.party} unreachable")
        self.sent.append(notification.key)
        return "ok"


def police_and_expert(eng: lr.Engine) -> tuple[str, str]:
    """An expert notification queued first, then a police one (acute danger) a
    minute later (the outbox is handed over oldest first)."""
    first = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(first, "call_expert", lr.Actor("counter", "counter-1"))
    assert isinstance(eng.clock, lr.VirtualClock)
    eng.clock.advance(timedelta(minutes=1))
    second = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(second, "acute_danger", lr.Actor("counter", "counter-1"))
    return first, second


def kinds(events: list[lr.Event]) -> list[str]:
    return [e.kind for e in events]


def deliveries(store: lr.Store, eid: str) -> list[lr.Event]:
    return [e for e in store.timeline(eid) if isinstance(e, lr.NotificationDelivered)]


# -- 1. a hanging pager holds only its own notification ------------------------------


def test_a_hanging_pager_does_not_hold_the_police_notification(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    pager = Pager(hang_for="expert")
    eng = engine(store, clock, pager, delivery_timeout=TINY)
    first, second = police_and_expert(eng)
    try:
        out = eng.deliver()
    finally:
        pager.release.set()
    assert {(e.key.split(":")[-1]) for e in out if isinstance(e, lr.NotificationDelivered)} == {
        "police",
        "mayor_staff",
    }
    [expert] = eng.outbox(first)
    assert expert.delivered_at is None
    assert expert.attempts == 1
    assert expert.last_error is not None
    assert expert.last_error.startswith("DeliveryTimeout")
    assert all(n.delivered_at is not None for n in eng.outbox(second))


def test_another_worker_delivers_the_police_while_one_hangs(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    pager = Pager(hang_for="expert")
    first_worker = engine(store, clock, pager)  # default settings: a repro on main too
    first, second = police_and_expert(first_worker)
    hung = threading.Thread(target=first_worker.deliver, daemon=True)
    hung.start()
    assert pager.hanging.wait(10)
    try:
        second_worker = engine(other(store), clock, Pager())
        out = second_worker.deliver()
        assert sorted(e.party for e in out if isinstance(e, lr.NotificationDelivered)) == [
            "mayor_staff",
            "police",
        ]
    finally:
        pager.release.set()
        hung.join(10)
    assert not hung.is_alive()
    assert all(n.delivered_at is not None for n in store.outbox(second))
    assert [e.party for e in deliveries(store, first)] == ["expert"]  # type: ignore[attr-defined]


# -- 2. bounded retries, then a dead letter that escalates ----------------------------


def fail_until_dead(eng: lr.Engine, clock: lr.VirtualClock, attempts: int) -> list[lr.Event]:
    out: list[lr.Event] = []
    for _ in range(attempts + 3):  # more rounds than attempts: it must stop by itself
        out.extend(eng.deliver())
        clock.advance(timedelta(hours=2))  # past any backoff
    return out


def test_a_police_notification_that_always_fails_is_dead_lettered_as_an_emergency(
    store: lr.Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = lr.VirtualClock(START)
    pager = Pager(fail_for="police")
    eng = engine(store, clock, pager)  # the default max_attempts: 5
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1"), {"age_band": "8-11"}).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    eng.fire(
        eid, "acute_danger", lr.Actor("counter", "counter-1")
    )  # awaiting_expert (counter) -> with_police
    state = eng.get(eid)
    caplog.set_level(logging.INFO, logger="lastresort")
    out = fail_until_dead(eng, clock, 5)

    police = next(n for n in eng.outbox(eid) if n.party == "police")
    assert police.attempts == 5  # on main: 8, and growing with every round
    [dead] = [e for e in out if isinstance(e, lr.NotificationDeadLettered)]
    assert (dead.party, dead.attempts, dead.error_kind, dead.emergency) == (
        "police",
        5,
        "ConnectionError",
        True,
    )
    assert police.dead_lettered_at is not None
    assert police.delivered_at is None
    assert not police.pending
    # escalated, in the same commit, to the counter clerk who was with the child
    escalation = next(n for n in eng.outbox(eid) if n.escalates == police.key)
    assert escalation.party == "counter"
    assert escalation.delivered_at is not None
    timeline = eng.timeline(eid)
    at = timeline.index(dead)
    assert timeline[at + 1].kind == "NotificationQueued"
    assert timeline[at + 1].key == escalation.key  # type: ignore[attr-defined]
    assert eng.get(eid) == state  # a dead letter never changes the encounter
    assert eng.deliver() == []
    assert store.claim_outbox(clock.now(), timedelta(hours=1)) == []
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1
    assert police.key in critical[0].getMessage()
    assert "8-11" not in caplog.text
    assert "unreachable" not in str(dead)
    if isinstance(store, lr.SQLiteStore):
        assert verify(store.path).ok
    if isinstance(store, lr.PostgresStore):
        assert store.verify().ok


def test_a_dead_letter_reaches_observers_and_is_logged_as_an_error(
    store: lr.Store, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[lr.Event] = []

    class Watch:
        @lr.hookimpl
        def lastresort_on_event(self, event: lr.Event) -> None:
            seen.append(event)

    clock = lr.VirtualClock(START)
    eng = engine(store, clock, Pager(fail_for="expert"), Watch(), max_attempts=2)
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    caplog.set_level(logging.INFO, logger="lastresort")
    out = fail_until_dead(eng, clock, 2)
    [dead] = [e for e in out if isinstance(e, lr.NotificationDeadLettered)]
    assert not dead.emergency
    assert dead in seen
    assert [r.levelno for r in caplog.records if "dead-lettered" in r.getMessage()] == [
        logging.ERROR
    ]
    # the counter clerk (responsible in awaiting_expert) is told the expert was not reached
    [escalation] = [n for n in eng.outbox(eid) if n.escalates is not None]
    assert escalation.party == "counter"
    assert escalation.delivered_at is not None


def test_a_failing_escalation_is_dead_lettered_without_escalating_again(
    store: lr.Store,
) -> None:
    class Down:
        @lr.hookimpl
        def lastresort_deliver(self) -> str:
            raise ConnectionError("everything is down")

    clock = lr.VirtualClock(START)
    eng = engine(store, clock, Down(), max_attempts=2)
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    out = fail_until_dead(eng, clock, 6)
    dead = [e for e in out if isinstance(e, lr.NotificationDeadLettered)]
    assert [e.party for e in dead] == ["expert", "counter"]
    assert len(eng.outbox(eid)) == 2
    assert not any(n.pending for n in eng.outbox(eid))


# -- 2b. a failing hook's message is never kept -------------------------------------------

NAME, BSN = "Jan Jansen", "123456782"  # a BSN that passes the eleven-test


class Nosy(Exception):
    """A plugin's exception that carries child data in its message and its attributes."""


NosyBsn123456782 = type("NosyBsn123456782", (Exception,), {})  # child data in the class name


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RuntimeError(f"{NAME} {BSN}"), "RuntimeError"),
        (Nosy(f"kind {NAME}", BSN), "Nosy"),
        (NosyBsn123456782(NAME), "Exception"),
    ],
)
def test_a_failing_hook_leaves_no_trace_of_its_message(
    store: lr.Store,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    error: Exception,
    kind: str,
) -> None:
    class Leaky:
        @lr.hookimpl
        def lastresort_deliver(self) -> str:
            raise error

    clock = lr.VirtualClock(START)
    eng = engine(store, clock, Leaky(), max_attempts=2)
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    caplog.set_level(logging.DEBUG)
    first = eng.deliver()  # attempt 1: failed, to be retried
    [note] = eng.outbox(eid)
    assert (note.attempts, note.last_error) == (1, kind)
    out = first + fail_until_dead(eng, clock, 2)  # attempt 2: dead-lettered, escalated
    dead = [e for e in out if isinstance(e, lr.NotificationDeadLettered)]
    assert [(e.party, e.error_kind) for e in dead] == [("expert", kind), ("counter", kind)]
    assert [n.last_error for n in eng.outbox(eid)] == [kind, kind]

    seen = [
        repr(out),
        repr(eng.outbox(eid)),
        repr(eng.timeline(eid)),
        caplog.text,
        *(r.getMessage() for r in caplog.records),
        *(repr(r.args) for r in caplog.records),
    ]
    if isinstance(store, lr.SQLiteStore):
        store.close()
        report = verify(store.path)
        assert report.ok
        seen.append(repr(report))
        files = sorted(store.path.parent.glob(store.path.name + "*"))
        seen += [f.read_bytes().decode("latin-1") for f in files]
    for text in seen:
        for secret in (NAME, "Jansen", BSN):
            assert secret not in text


def test_lastresort_own_delivery_failures_keep_a_fixed_description(store: lr.Store) -> None:
    class Nobody:
        @lr.hookimpl
        def lastresort_deliver(self) -> None:
            return None  # no plugin delivered it

    clock = lr.VirtualClock(START)
    eng = engine(store, clock, Nobody())
    eng.plugin_manager.unregister(name="lastresort.default")  # the fallback that logs it
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    assert eng.deliver() == []
    [note] = eng.outbox(eid)
    assert note.last_error == "NotDelivered: no plugin delivered it"


def test_a_plugin_raising_lastresort_own_exceptions_leaks_nothing(store: lr.Store) -> None:
    from lastresort.outbox import DeliveryTimeout

    class Pretends:
        @lr.hookimpl
        def lastresort_deliver(self) -> str:
            raise DeliveryTimeout(f"{NAME} {BSN}")

    clock = lr.VirtualClock(START)
    eng = engine(store, clock, Pretends())
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    assert eng.deliver() == []
    [note] = eng.outbox(eid)
    assert note.last_error == (
        "DeliveryTimeout: the delivery hook did not return within the delivery timeout"
    )


# -- 3. delivered() is idempotent --------------------------------------------------------


def delivery(note: lr.Notification, receipt: str = "r") -> lr.NotificationDelivered:
    return lr.NotificationDelivered(
        encounter_id=note.encounter_id,
        at=note.created_at,
        actor=lr.Actor("outbox"),
        key=note.key,
        party=note.party,
        receipt=receipt,
        attempts=1,
    )


def test_recording_a_delivery_twice_records_it_once(store: lr.Store) -> None:
    eng = engine(store, lr.VirtualClock(START))
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    [note] = store.outbox(eid)
    first = store.delivered(note.key, delivery(note))
    assert first is not None
    before = store.timeline(eid), store.outbox(eid)
    assert store.delivered(note.key, delivery(note, "late")) is None
    store.failed(note.key, 7, START, "late failure")  # ignored too
    assert (store.timeline(eid), store.outbox(eid)) == before


def test_a_late_worker_does_not_record_a_second_delivery(store: lr.Store) -> None:
    clock = lr.VirtualClock(START)
    slow = Pager(hang_for="expert")
    late = engine(store, clock, slow)  # default settings (a 5 minute lease): a repro on main too
    eid = late.open("taskforce", lr.Actor("counter", "counter-1")).id
    late.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    answer: list[list[lr.Event]] = []
    worker = threading.Thread(target=lambda: answer.append(late.deliver()), daemon=True)
    worker.start()
    assert slow.hanging.wait(10)
    clock.advance(timedelta(minutes=6))  # the slow worker's lease runs out
    try:
        [done] = engine(other(store), clock, Pager()).deliver()
    finally:
        slow.release.set()
        worker.join(10)
    assert answer == [[]]  # the late worker recorded nothing
    assert deliveries(store, eid) == [done]


def test_two_sqlite_engines_racing_record_one_delivery(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    clock = lr.VirtualClock(START)
    setup = engine(lr.SQLiteStore(path), clock)
    eid = setup.open("taskforce", lr.Actor("counter", "counter-1")).id
    setup.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    [note] = setup.outbox(eid)
    stores = [lr.SQLiteStore(path), lr.SQLiteStore(path)]
    barrier = threading.Barrier(2)
    answers: list[lr.Event | None] = []

    def record(store: lr.Store) -> None:
        barrier.wait()
        answers.append(store.delivered(note.key, delivery(note)))

    threads = [threading.Thread(target=record, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(a is None for a in answers) == [False, True]
    assert len(deliveries(setup.store, eid)) == 1
    assert verify(path).ok


# -- 4. deliver's settings are checked -------------------------------------------------


@pytest.mark.parametrize("limit", [-1, 1.5, True, "2"])
def test_a_bad_deliver_limit_is_refused_and_changes_nothing(store: lr.Store, limit: Any) -> None:
    clock = lr.VirtualClock(START)
    eng = engine(store, clock)
    police_and_expert(eng)
    before = store.outbox()
    with pytest.raises(ValueError, match=r"limit must be None or a whole number >= 0"):
        eng.deliver(limit)
    assert store.outbox() == before


def test_a_huge_deliver_limit_is_refused_and_the_largest_delivers_everything(
    store: lr.Store,
) -> None:
    eng = engine(store, lr.VirtualClock(START))
    police_and_expert(eng)
    before = store.outbox()
    # 10**30 was an OverflowError in SQLite: now refused alike, before anything is claimed
    with pytest.raises(lr.InvalidArgument, match="limit"):
        eng.deliver(limit=10**30)
    with pytest.raises(lr.InvalidArgument, match="limit"):
        store.claim_outbox(START, timedelta(hours=1), 10**30)
    assert store.outbox() == before
    assert len(eng.deliver(limit=2**63 - 1)) == 3
    assert store.claim_outbox(START + timedelta(days=1), timedelta(hours=1), 2**63 - 1) == []
    assert eng.deliver(limit=0) == []


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("delivery_timeout", 0, "delivery_timeout must be None or a number of seconds > 0"),
        ("delivery_timeout", -1.0, "delivery_timeout must be None"),
        ("delivery_timeout", float("nan"), "delivery_timeout must be None"),
        ("delivery_timeout", "30", "delivery_timeout must be None"),
        ("delivery_timeout", True, "delivery_timeout must be None"),
        ("delivery_timeout", 600.0, "must be longer than delivery_timeout"),
        ("delivery_lease", timedelta(0), "delivery_lease must be a positive timedelta"),
        ("delivery_lease", 300, "delivery_lease must be a positive timedelta"),
        ("max_attempts", 0, "max_attempts must be a whole number >= 1"),
        ("max_attempts", 2.0, "max_attempts must be a whole number >= 1"),
    ],
)
def test_bad_delivery_settings_are_refused(setting: str, value: Any, message: str) -> None:
    with pytest.raises(lr.InvalidArgument, match=message):
        engine(lr.MemoryStore(), lr.VirtualClock(START), **{setting: value})


# -- 5. the audit and the schema --------------------------------------------------------


def test_the_audit_verifies_a_store_with_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    clock = lr.VirtualClock(START)
    eng = engine(lr.SQLiteStore(path), clock, Pager(fail_for="police"), max_attempts=1)
    eid = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(eid, "acute_danger", lr.Actor("counter", "counter-1"))
    out = eng.deliver()
    assert "NotificationDeadLettered" in kinds(out)
    assert verify(path).ok
    # the hashed dead letter cannot be edited unnoticed
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE events SET data = replace(data, '\"emergency\":true', '\"emergency\":false')"
        " WHERE kind = 'NotificationDeadLettered'"
    )
    conn.commit()
    conn.close()
    assert not verify(path).ok


def test_a_version_2_file_is_migrated_and_its_outbox_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert upgrade(conn, target=2) == 0
    conn.close()
    # write a v2 file through a store that believes version 2 is current
    clock = lr.VirtualClock(START)
    current = lr.SQLiteStore(tmp_path / "current.db")
    eng = engine(current, clock)
    _first, second = police_and_expert(eng)
    eng.deliver(limit=1)  # the expert notification delivered, the police ones pending
    expected = current.outbox()
    current.close()
    columns = (
        "key, encounter_id, protocol, event, step, party, created_at, created_us, attempts,"
        " next_attempt_at, next_attempt_us, contact, last_error, delivered_at"
    )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ATTACH DATABASE ? AS cur", (str(tmp_path / "current.db"),))
    for table in ("encounters", "events", "ledger", "deadlines"):
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM cur.{table}")
    conn.execute(f"INSERT INTO main.outbox ({columns}) SELECT {columns} FROM cur.outbox")
    conn.execute("DETACH DATABASE cur")
    conn.close()

    migrated = lr.SQLiteStore(path)
    assert migrated.schema_version == SCHEMA_VERSION >= 3
    assert migrated.outbox() == expected  # nothing lost, nothing dead-lettered
    assert verify(path).ok
    out = engine(migrated, clock).deliver()
    assert sorted(e.party for e in out) == ["mayor_staff", "police"]  # type: ignore[attr-defined]
    assert all(n.delivered_at is not None for n in migrated.outbox(second))
    migrated.close()


# -- leases and retries are real durations, across daylight saving time -------------


def test_a_claim_lease_and_a_retry_across_dst_are_real_durations(store: lr.Store) -> None:
    """25 October 2026, 02:30 CEST: one wall-clock hour later is 02:30 CET, two real
    hours. A lease and a backoff are real durations (they were wall-clock sums)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    before_change = datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert before_change.utcoffset() == timedelta(hours=2)
    clock = lr.VirtualClock(before_change)
    eng = engine(
        store,
        clock,
        Pager(fail_for="police"),
        backoff=lr.Backoff(base=timedelta(hours=1)),
        delivery_timeout=None,
    )
    child = eng.open("taskforce", lr.Actor("counter", "counter-1")).id
    eng.fire(child, "acute_danger", lr.Actor("counter", "counter-1"))
    (claimed,) = [
        n for n in store.claim_outbox(clock.now(), timedelta(hours=1)) if n.party == "police"
    ]
    (held,) = [n for n in store.outbox(child) if n.key == claimed.key]
    assert held.next_attempt_at.astimezone(UTC) - clock.now().astimezone(UTC) == timedelta(hours=1)
    # the lease runs out one real hour later (not two): then it is due again
    clock.advance(timedelta(minutes=59))
    assert claimed.key not in [n.key for n in store.claim_outbox(clock.now(), timedelta(hours=1))]
    clock.advance(timedelta(minutes=1))
    eng.deliver()
    (failed,) = [n for n in store.outbox(child) if n.key == claimed.key]
    assert failed.attempts == 1
    # the retry is one real hour after the failure
    assert failed.next_attempt_at.astimezone(UTC) - clock.now().astimezone(UTC) == timedelta(
        hours=1
    )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"base": timedelta(0)}, "base"),
        ({"cap": timedelta(days=400)}, "cap"),
        ({"cap": 60}, "cap"),
        ({"factor": 0.5}, "factor"),
        ({"factor": float("inf")}, "factor"),
    ],
)
def test_a_backoff_out_of_range_is_refused(kwargs: dict[str, Any], argument: str) -> None:
    """No retry may wait longer than 366 days (the audit relies on it)."""
    with pytest.raises(lr.InvalidArgument) as caught:
        lr.Backoff(**kwargs)
    assert caught.value.argument == argument


def test_a_backoff_after_thousands_of_attempts_is_its_cap() -> None:
    """``factor ** attempt`` overflowed a float after about a thousand doublings."""
    assert lr.Backoff().delay(5000) == timedelta(hours=1)
    assert lr.Backoff().delay(1) == timedelta(seconds=30)
