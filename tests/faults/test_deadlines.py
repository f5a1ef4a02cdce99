"""Deadlines under faults: every due deadline fires exactly once, none is dropped.

Store errors while firing, stale claims (a worker slowed past its lease), guards
that refuse a deadline, clocks that jump, daylight saving time, and a store that
fails at each of its call sites in turn. Every test runs on both stores where a
store is involved.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from lastresort.testing import pseudonymous, with_guard
from tests import pg_kit
from tests.conftest import START, TASKFORCE
from tests.faults.kit import Fault, FaultyStore, call_sites
from tests.store_kit import consistency_problems

AMS = ZoneInfo("Europe/Amsterdam")
LEASE = timedelta(minutes=1)  # the default deadline lease


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def make_memory(_: Path) -> lr.Store:
    return lr.MemoryStore()


def make_sqlite(tmp: Path) -> lr.Store:
    return lr.SQLiteStore(tmp / "deadlines.db", synchronous="NORMAL")


def make_postgres(_: Path) -> lr.Store:
    # every test here uses one store at a time: one schema per test, emptied per use
    return pg_kit.reused_store()


STORES = [
    pytest.param(make_memory, id="memory"),
    pytest.param(make_sqlite, id="sqlite"),
    pytest.param(make_postgres, id="postgres"),
]
MakeStore = Callable[[Path], lr.Store]


@pytest.fixture(params=STORES)
def make_store(request: pytest.FixtureRequest) -> MakeStore:
    made: MakeStore = request.param
    return made


@pytest.fixture
def protocol() -> lr.Protocol:
    return lr.load_protocol(TASKFORCE)


def engine_on(
    store: Any,
    clock: lr.VirtualClock,
    protocol: lr.Protocol,
    plugins: list[object] | None = None,
    **kw: Any,
) -> lr.Engine:
    return lr.Engine(
        protocols=[protocol],
        plugins=plugins or [],
        store=store,
        clock=clock,
        entry_points=False,
        **kw,
    )


def missed(engine: lr.Engine, eid: str) -> list[lr.DeadlineMissed]:
    return [e for e in engine.timeline(eid) if isinstance(e, lr.DeadlineMissed)]


def to_awaiting_mayor(engine: lr.Engine) -> str:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    engine.fire(enc.id, "inform_mayor", lr.Actor("expert", "expert-1"))
    assert engine.get(enc.id).state == "awaiting_mayor"
    return enc.id


def ok_store(store: Any) -> None:
    """The store is consistent, and a SQLite file passes ``audit verify``."""
    inner = getattr(store, "inner", store)
    assert consistency_problems(inner) == []
    if isinstance(inner, lr.SQLiteStore):
        report = verify(inner.path)
        assert report.ok, report.problems
    if isinstance(inner, lr.PostgresStore):
        report = inner.verify()
        assert report.ok, report.problems


class Gate:
    """A guard plugin: answers ``answer`` (``None`` allows); while ``hold`` is set it
    signals ``entered`` and waits for ``release`` first (a slow plugin)."""

    def __init__(self, answer: str | None = None, hold: bool = False) -> None:
        self.answer = answer
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    @lr.hookimpl
    def lastresort_guard_names(self) -> list[str]:
        return ["child_consents"]

    @lr.hookimpl
    def lastresort_guard(self, name: str, encounter: lr.Encounter, event: str) -> str | None:
        self.calls += 1
        if self.hold:
            self.hold = False
            self.entered.set()
            assert self.release.wait(30), "the test never released the guard"
        return self.answer


# -- 1. a store error leaves the deadline pending -------------------------------------


def test_a_store_error_while_firing_leaves_the_deadline_pending(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    clock = lr.VirtualClock(START)
    # commits: 1 open, 2 call_expert, 3 the tick's firing of expert_overdue
    store = FaultyStore(make_store(tmp_path), [Fault("commit", 3)])
    engine = engine_on(store, clock, protocol)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    engine.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    [deadline] = engine.deadlines(eid)
    clock.advance(minutes(46))

    events = engine.tick()

    assert store.raised == [("commit", 3)]
    assert [e.kind for e in events] == ["DeadlineDeferred"]
    [deferred] = events
    assert isinstance(deferred, lr.DeadlineDeferred)
    assert (deferred.deadline_id, deferred.event) == (deadline.id, "expert_overdue")
    assert deferred.retry_at == clock.now() + LEASE
    assert "StoreError" in deferred.error
    assert engine.deadlines(eid) == [deadline]  # still pending, not cleared
    assert missed(engine, eid) == []
    assert engine.get(eid).state == "awaiting_expert"
    assert engine.tick() == []  # leased: not retried at once
    clock.advance(LEASE)
    fired = engine.tick()
    assert [e.kind for e in fired][:2] == ["DeadlineMissed", "StepEntered"]
    assert [m.deadline_id for m in missed(engine, eid)] == [deadline.id]
    assert engine.get(eid).state == "escalated"
    ok_store(store)


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database is locked"), OSError()])
def test_a_foreign_store_exception_while_firing_leaves_the_deadline_pending(
    error: Exception, protocol: lr.Protocol
) -> None:
    clock = lr.VirtualClock(START)
    store = FaultyStore(lr.MemoryStore(), [Fault("commit", 2, error=lambda _: error)])
    engine = engine_on(store, clock, protocol)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    clock.advance(minutes(16))
    assert [e.kind for e in engine.tick()] == ["DeadlineDeferred"]
    assert [d.event for d in engine.deadlines(eid)] == ["expert_not_called"]
    clock.advance(LEASE)
    assert [m.event for m in missed(engine, eid)] == []
    engine.tick()
    assert [m.event for m in missed(engine, eid)] == ["expert_not_called"]


def test_sqlite_busy_while_firing_leaves_the_deadline_pending(
    tmp_path: Path, protocol: lr.Protocol, caplog: pytest.LogCaptureFixture
) -> None:
    """Another writer holds the SQLite write lock past ``busy_timeout`` just when the
    tick commits the deadline's step."""
    path = tmp_path / "busy.db"
    clock = lr.VirtualClock(START)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)

    def lock() -> None:
        other.execute("BEGIN IMMEDIATE")

    inner = lr.SQLiteStore(path, busy_timeout=0)
    store = FaultyStore(inner, actions={("commit", 3): lock})
    engine = engine_on(store, clock, protocol)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1"), facts={"age_band": "8-11"}).id
    engine.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    [deadline] = engine.deadlines(eid)
    clock.advance(minutes(46))
    with caplog.at_level("WARNING", logger="lastresort"):
        events = engine.tick()
    other.execute("ROLLBACK")
    other.close()
    assert [e.kind for e in events] == ["DeadlineDeferred"]
    assert engine.deadlines(eid) == [deadline]
    assert missed(engine, eid) == []
    assert any(deadline.id in r.getMessage() for r in caplog.records)
    assert not any("8-11" in r.getMessage() for r in caplog.records)  # no facts logged
    clock.advance(LEASE)
    engine.tick()
    assert engine.get(eid).state == "escalated"
    ok_store(store)


def test_a_store_error_claiming_deadlines_propagates_and_claims_nothing(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    clock = lr.VirtualClock(START)
    store = FaultyStore(make_store(tmp_path), [Fault("claim_deadlines", 1)])
    engine = engine_on(store, clock, protocol)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    clock.advance(minutes(16))
    with pytest.raises(lr.StoreError):
        engine.tick()
    assert [e.kind for e in engine.tick()][:2] == ["DeadlineMissed", "StepEntered"]
    assert len(missed(engine, eid)) == 1
    ok_store(store)


# -- 2. a fire from a stale claim is refused inside the commit --------------------------


def test_a_stale_claim_cannot_fire_a_self_loop_deadline_twice(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    """Worker A claims mayor_overdue and is delayed past its lease; worker B claims it
    again and fires it (a self-loop: the encounter stays in awaiting_mayor); A then
    fires it from its stale claim."""
    clock = lr.VirtualClock(START)
    inner = make_store(tmp_path)
    b = engine_on(inner, clock, protocol)
    eid = to_awaiting_mayor(b)
    [first] = b.deadlines(eid)
    clock.advance(timedelta(hours=4, minutes=1))
    b_fired: list[lr.Event] = []

    def worker_b_overtakes() -> None:
        clock.advance(LEASE + minutes(1))  # A's lease runs out meanwhile
        b_fired.extend(b.tick())

    # A is delayed between claiming and loading the encounter
    a = engine_on(FaultyStore(inner, actions={("load", 1): worker_b_overtakes}), clock, protocol)
    a_fired = a.tick()

    assert [m.deadline_id for m in missed(b, eid) if m.deadline_id == first.id] == [first.id]
    assert [e.kind for e in b_fired][:2] == ["DeadlineMissed", "StepEntered"]
    assert not any(isinstance(e, lr.DeadlineMissed) for e in a_fired)
    assert len(missed(b, eid)) == 1
    [second] = b.deadlines(eid)  # B's new deadline is intact
    assert second.id != first.id
    assert second.event == "mayor_overdue"
    assert second.due == b_fired[0].at + timedelta(hours=4)
    overdue = [n for n in b.outbox(eid) if n.event == "mayor_overdue"]
    assert sorted(n.party for n in overdue) == ["mayor", "mayor_staff"]  # one notification each
    times = [e.at for e in b.timeline(eid)]
    assert times == sorted(times)  # the timeline never goes back in time
    ok_store(inner)


def test_a_commit_that_consumes_a_gone_deadline_writes_nothing(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    """The store contract: ``Change.consume`` names the deadline the change fires; the
    commit deletes it, and fails with nothing written when it is no longer there."""
    from lastresort.engine.changes import stepped

    clock = lr.VirtualClock(START)
    store = make_store(tmp_path)
    engine = engine_on(store, clock, protocol)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    [deadline] = store.deadlines(eid)
    encounter = store.load(eid)
    taken = next(t for t in protocol.transitions if t.event == "expert_not_called")
    change = stepped(
        protocol,
        dict(protocol.steps),
        encounter,
        taken,
        "expert_not_called",
        lr.Actor("clock"),
        clock.now(),
        [deadline],
        deadline,
    )
    assert change.consume == deadline.id
    store.release_deadline(deadline.id)  # gone meanwhile
    timeline = store.timeline(eid)
    with pytest.raises(lr.DeadlineGone) as refused:
        store.commit(change)
    assert isinstance(refused.value, lr.ConcurrentUpdate)
    assert deadline.id in str(refused.value)
    assert store.timeline(eid) == timeline
    assert store.load(eid) == encounter
    assert store.outbox(eid) == []
    assert store.deadlines(eid) == []


def test_two_engines_on_one_file_race_past_a_slow_guard(
    tmp_path: Path, protocol: lr.Protocol
) -> None:
    """Two workers, two threads, one SQLite file. Worker A claims two due deadlines
    and its guard on the first is slow (past the lease); worker B claims both again
    and fires them; then A carries on with its stale claims."""
    path = tmp_path / "race.db"
    guarded_protocol = with_guard(protocol, "expert_overdue")
    clock_a = lr.VirtualClock(START)
    clock_b = lr.VirtualClock(START)
    slow, quick = Gate(hold=True), Gate()
    a = engine_on(lr.SQLiteStore(path), clock_a, guarded_protocol, [slow])
    b = engine_on(lr.SQLiteStore(path), clock_b, guarded_protocol, [quick])
    # the first due: expert_overdue (guarded, slow in A); then mayor_overdue (a self-loop)
    waiting = b.open("taskforce", lr.Actor("counter", "counter-1")).id
    b.fire(waiting, "call_expert", lr.Actor("counter", "counter-1"))
    mayor = to_awaiting_mayor(b)
    for clock in (clock_a, clock_b):
        clock.advance(timedelta(hours=5))
    b_clock_later = clock_b.now() + LEASE + minutes(1)
    results: dict[str, list[lr.Event]] = {}
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            results["a"] = a.tick()
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    thread = threading.Thread(target=run_a)
    thread.start()
    try:
        assert slow.entered.wait(30), "worker A never reached its guard"
        clock_b.set(b_clock_later)
        results["b"] = b.tick()
    finally:
        slow.release.set()
        thread.join(30)
    assert not thread.is_alive()
    assert errors == []

    fired_b = [e for e in results["b"] if isinstance(e, lr.DeadlineMissed)]
    assert sorted(e.event for e in fired_b) == ["expert_overdue", "mayor_overdue"]
    assert not any(isinstance(e, lr.DeadlineMissed) for e in results["a"])
    for eid in (waiting, mayor):
        assert len(missed(b, eid)) == 1
    assert b.get(waiting).state == "escalated"
    [renewed] = b.deadlines(mayor)
    assert renewed.event == "mayor_overdue"
    assert renewed.due > b_clock_later
    overdue = [n for n in b.outbox(mayor) if n.event == "mayor_overdue"]
    assert len(overdue) == 2  # mayor and mayor_staff, once
    a.store.close()
    ok_store(b.store)
    b.store.close()


# -- 3. the lease is configurable --------------------------------------------------------


def test_the_deadline_lease_is_configurable(protocol: lr.Protocol) -> None:
    clock = lr.VirtualClock(START)
    store = FaultyStore(lr.MemoryStore(), [Fault("commit", 2)])
    engine = engine_on(store, clock, protocol, deadline_lease=minutes(10))
    assert engine.deadline_lease == minutes(10)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    clock.advance(minutes(16))
    [deferred] = engine.tick()
    assert isinstance(deferred, lr.DeadlineDeferred)
    assert deferred.retry_at == clock.now() + minutes(10)
    clock.advance(minutes(9))
    assert engine.tick() == []  # still within the 10-minute lease
    clock.advance(minutes(1))
    assert [e.kind for e in engine.tick()][:1] == ["DeadlineMissed"]
    assert engine.get(eid).state == "awaiting_expert"


@pytest.mark.parametrize(
    "lease", [timedelta(0), -LEASE, 60, 1.5, "1m", timedelta(days=10**6)], ids=repr
)
def test_a_bad_deadline_lease_is_refused(lease: object, protocol: lr.Protocol) -> None:
    with pytest.raises(lr.InvalidArgument, match="deadline_lease"):
        engine_on(lr.MemoryStore(), lr.VirtualClock(START), protocol, deadline_lease=lease)


# -- 4. a deadline that cannot fire is re-armed ---------------------------------------


def test_a_refused_deadline_is_missed_and_re_armed_so_the_step_keeps_one(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    clock = lr.VirtualClock(START)
    gate = Gate(answer="not now")
    store = make_store(tmp_path)
    engine = engine_on(store, clock, with_guard(protocol, "expert_overdue"), [gate])
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    engine.fire(eid, "call_expert", lr.Actor("counter", "counter-1"))
    [first] = engine.deadlines(eid)
    clock.advance(minutes(46))

    events = engine.tick()

    assert [e.kind for e in events] == ["DeadlineMissed", "DeadlineScheduled"]
    assert engine.get(eid).state == "awaiting_expert"
    [again] = engine.deadlines(eid)  # exactly one pending deadline, a new one
    assert again.id != first.id
    assert (again.step, again.event) == ("awaiting_expert", "expert_overdue")
    assert again.due == clock.now() + minutes(45)
    ok_store(store)
    clock.advance(minutes(44))
    assert engine.tick() == []
    gate.answer = None  # the guard allows it now
    clock.advance(minutes(2))
    fired = engine.tick()
    assert [e.kind for e in fired][:2] == ["DeadlineMissed", "StepEntered"]
    assert engine.get(eid).state == "escalated"
    assert [m.deadline_id for m in missed(engine, eid)] == [first.id, again.id]
    ok_store(store)


# -- 5. deadlines are absolute instants ------------------------------------------------


@pytest.mark.parametrize(
    ("start", "after", "protocol_step"),
    [
        # 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 CEST is the first 02:30
        (datetime(2026, 10, 25, 2, 30, tzinfo=AMS), minutes(45), "awaiting_expert"),
        # 29 March 2026: 02:00 CET becomes 03:00 CEST
        (datetime(2026, 3, 29, 1, 0, tzinfo=AMS), timedelta(hours=2), "with_expert"),
    ],
    ids=["october-45m", "march-2h"],
)
def test_a_deadline_across_a_dst_change_is_due_after_its_real_duration(
    make_store: MakeStore,
    tmp_path: Path,
    protocol: lr.Protocol,
    start: datetime,
    after: timedelta,
    protocol_step: str,
) -> None:
    clock = lr.VirtualClock(start)
    engine = engine_on(make_store(tmp_path), clock, protocol)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    event = "call_expert" if protocol_step == "awaiting_expert" else "expert_takes_over"
    engine.fire(
        eid,
        event,
        lr.Actor("counter", "counter-1")
        if event == "call_expert"
        else lr.Actor("expert", "expert-1"),
    )
    [deadline] = engine.deadlines(eid)
    assert deadline.step == protocol_step
    real = deadline.due.astimezone(UTC) - start.astimezone(UTC)
    assert real == after
    assert deadline.due.utcoffset() == timedelta(0)  # stored as a UTC instant
    # and it fires after exactly that much real time, not earlier
    engine.tick(now=(start.astimezone(UTC) + after - timedelta(seconds=1)).astimezone(AMS))
    assert engine.get(eid).state == protocol_step
    engine.tick(now=(start.astimezone(UTC) + after).astimezone(AMS))
    assert engine.get(eid).state != protocol_step


def test_a_virtual_clock_advances_by_real_time_across_dst() -> None:
    clock = lr.VirtualClock(datetime(2026, 10, 25, 2, 30, tzinfo=AMS))
    before = clock.now()
    after = clock.advance(minutes(45))
    assert after.astimezone(UTC) - before.astimezone(UTC) == minutes(45)
    assert after.tzinfo is AMS  # still shown in the clock's zone
    assert (after.hour, after.minute, after.utcoffset()) == (2, 15, timedelta(hours=1))


def test_a_scenario_moment_is_real_time_after_its_start() -> None:
    from lastresort.scenario.model import Scenario

    start = datetime(2026, 3, 29, 1, 0, tzinfo=AMS)
    scenario = Scenario(
        name="dst",
        protocol="taskforce",
        start=start,
        timezone="Europe/Amsterdam",
        facts={},
        opened_by="counter",
        channel="counter",
        steps=(),
    )
    moment = scenario.moment(timedelta(hours=2))
    assert moment.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=2)


# -- 6. clock jumps ------------------------------------------------------------------


def test_a_clock_jumping_days_ahead_fires_each_due_deadline_once_in_due_order(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    clock = lr.VirtualClock(START)
    engine = engine_on(make_store(tmp_path), clock, protocol)
    ids = []
    for gap in (0, 7, 3):  # opened at +0, +7, +10 minutes: due in that order
        clock.advance(minutes(gap))
        ids.append(engine.open("taskforce", lr.Actor("counter", "counter-1")).id)
    clock.advance(timedelta(days=3))
    first = engine.tick()
    assert [(e.encounter_id, e.event) for e in first if isinstance(e, lr.DeadlineMissed)] == [
        (eid, "expert_not_called") for eid in ids
    ]
    assert engine.tick() == []
    # the chained deadlines count from the firing: each fires once on later jumps
    for event, state in [("expert_overdue", "escalated"), ("no_expert_available", "with_police")]:
        clock.advance(timedelta(days=2))
        fired = engine.tick()
        assert [e.event for e in fired if isinstance(e, lr.DeadlineMissed)] == [event] * 3
        assert {engine.get(eid).state for eid in ids} == {state}
        assert engine.tick() == []
    for eid in ids:
        assert Counter(m.deadline_id for m in missed(engine, eid)).most_common(1)[0][1] == 1
        assert len(missed(engine, eid)) == 3
    ok_store(engine.store)


def test_a_clock_jumping_back_fires_nothing_early_and_loses_nothing(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    clock = lr.VirtualClock(START)
    engine = engine_on(make_store(tmp_path), clock, protocol)
    eid = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    [deadline] = engine.deadlines(eid)
    clock.advance(minutes(10))
    assert engine.tick(now=START - timedelta(days=1)) == []  # a clock set a day back
    assert engine.tick(now=deadline.due - timedelta(microseconds=1)) == []
    assert engine.deadlines(eid) == [deadline]
    fired = engine.tick(now=deadline.due)
    assert [e.kind for e in fired][:2] == ["DeadlineMissed", "StepEntered"]
    assert engine.tick(now=START) == []  # back again: nothing fires twice
    assert len(missed(engine, eid)) == 1
    ok_store(engine.store)


# -- 7. a store that fails at each call site in turn ------------------------------------

SWEEP_LEASE = timedelta(seconds=10)


def scenario(store: FaultyStore, clock: lr.VirtualClock, protocol: lr.Protocol) -> lr.Engine:
    """Open two encounters, fire, and tick across every kind of deadline (a chain, a
    terminal one, a self-loop twice), retrying each call the way a careful caller
    does: after a StoreError, reload and carry on from what was stored."""
    next_id = ["enc0"]
    engine = engine_on(store, clock, protocol, ids=lambda: next_id[0], deadline_lease=SWEEP_LEASE)

    def retry(call: Callable[[], object]) -> None:
        for _ in range(10):
            try:
                call()
                return
            except lr.StoreError:
                continue
        raise AssertionError("a single fault kept failing")

    def open_one(eid: str) -> None:
        def attempt() -> None:
            try:
                store.inner.load(eid)  # committed before the error was raised?
            except lr.UnknownEncounter:
                next_id[0] = eid
                engine.open("taskforce", lr.Actor("counter", "counter-1"))

        retry(attempt)

    def fire(eid: str, event: str, actor: str) -> None:
        version = store.inner.load(eid).version

        def attempt() -> None:
            with suppress(lr.ConcurrentUpdate):  # committed before the error was raised
                engine.fire(eid, event, pseudonymous(actor), expected_version=version)

        retry(attempt)

    def tick_until_quiet(jump: timedelta) -> None:
        clock.advance(jump)
        for _ in range(10):
            try:
                events = engine.tick()
            except lr.StoreError:
                events = None
            due = store.inner.next_due()
            if (
                events is not None
                and not any(isinstance(e, lr.DeadlineDeferred) for e in events)
                and (due is None or due > clock.now())
            ):
                return
            clock.advance(SWEEP_LEASE)  # what failed or stayed leased is retried after it
        raise AssertionError("deadlines kept failing")

    open_one("enc0")
    open_one("enc1")
    fire("enc0", "call_expert", lr.Actor("counter", "counter-1"))
    tick_until_quiet(minutes(20))  # enc1: expert_not_called
    tick_until_quiet(minutes(50))  # enc0 and enc1: expert_overdue
    fire("enc0", "expert_takes_over", lr.Actor("expert", "expert-1"))
    tick_until_quiet(timedelta(hours=3))  # enc0: mayor_not_informed; enc1: to the police
    tick_until_quiet(timedelta(hours=5))  # enc0: mayor_overdue (a self-loop)
    tick_until_quiet(timedelta(hours=5))  # enc0: mayor_overdue again
    return engine


def summary(store: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for eid in ("enc0", "enc1"):
        timeline = store.timeline(eid)
        fired = [e.deadline_id for e in timeline if isinstance(e, lr.DeadlineMissed)]
        assert len(fired) == len(set(fired)), f"{eid}: a deadline fired twice: {fired}"
        out[eid] = (
            store.load(eid).state,
            [(e.kind, getattr(e, "step", None), getattr(e, "event", None)) for e in timeline],
            [(d.step, d.event) for d in store.deadlines(eid)],
            sorted((n.event, n.party) for n in store.outbox(eid)),
        )
    return out


@pytest.mark.slow
def test_a_store_failing_at_each_call_site_in_turn_loses_no_deadline_and_fires_none_twice(
    make_store: MakeStore, tmp_path: Path, protocol: lr.Protocol
) -> None:
    counter = iter(range(10**6))

    def fresh() -> lr.Store:
        folder = tmp_path / f"run{next(counter)}"
        folder.mkdir()
        return make_store(folder)

    baseline_store = FaultyStore(fresh())
    scenario(baseline_store, lr.VirtualClock(START), protocol)
    baseline = summary(baseline_store.inner)
    assert baseline["enc0"][0] == "awaiting_mayor"
    assert baseline["enc1"][0] == "with_police"
    assert [k for k, *_ in baseline["enc0"][1]].count("DeadlineMissed") == 4
    sites = call_sites(lambda s: scenario(s, lr.VirtualClock(START), protocol), fresh)
    assert len(sites) > 30
    assert {"commit", "claim_deadlines", "load", "deadlines"} <= {m for m, _ in sites}
    tried = 0
    for when in ("before", "after"):
        for site in sites:
            store = FaultyStore(fresh(), [Fault(*site, when=when)])
            try:
                scenario(store, lr.VirtualClock(START), protocol)
                assert store.raised == [site], f"{site} {when}: the fault was not hit"
                assert summary(store.inner) == baseline, f"fault at {site} {when}"
                ok_store(store)
            finally:
                store.close()
            tried += 1
    assert tried == 2 * len(sites)


def test_a_virtual_clock_set_to_a_utc_due_keeps_its_zone() -> None:
    clock = lr.VirtualClock(datetime(2026, 10, 25, 2, 30, tzinfo=AMS))
    due = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET, after 02:30 CEST
    moved = clock.set(due)
    assert moved.astimezone(UTC) == due  # (== across zones is False at fold=1: PEP 495)
    assert moved.tzinfo is AMS
    with pytest.raises(ValueError, match="back"):
        clock.set(datetime(2026, 10, 25, 2, 45, tzinfo=AMS))  # 02:45 CEST: earlier
