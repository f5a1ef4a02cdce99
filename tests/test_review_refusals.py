"""Adversarial review of the refusal log (issue 15) on all three stores: what a caller
can make the engine keep, who can pose as the clock, and refusals recorded from
several threads at once.

The log keeps codes and identifiers only. A name the protocol does not know (an
event it has no transition for, a role that is none of its parties) is the caller's
text, even when it has a code's form ("AnnaJansenGeslagen"): it is kept as
``_unreadable`` / ``?``, never as given."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.store.audit import verify
from lastresort.store.postgres import verify_postgres
from lastresort.testing import snapshot
from tests import pg_kit
from tests.store_kit import START, relay

CLERK = lr.Actor("counter", "clerk-07")
EXPERT = lr.Actor("expert", "expert-12")
#: caller text of a code's (and an identifier's) form: letters only, no spaces
TEXT = "AnnaJansenGeslagenDoorVader"


def make_memory(_: Path) -> lr.Store:
    return lr.MemoryStore()


def make_sqlite(tmp: Path) -> lr.Store:
    return lr.SQLiteStore(tmp / "review.db", synchronous="NORMAL")


def make_postgres(_: Path) -> lr.Store:
    return pg_kit.make_store()


STORES = [
    pytest.param(make_memory, id="memory"),
    pytest.param(make_sqlite, id="sqlite"),
    pytest.param(make_postgres, id="postgres"),
]


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Engine]:
    store = request.param(tmp_path)
    yield lr.Engine(
        protocols=[relay()], store=store, clock=lr.VirtualClock(START), entry_points=False
    )
    store.close()


def one_refusal(engine: lr.Engine, call: Any, error: type[Exception], eid: str | None) -> Any:
    """Make ``call`` refuse with ``error``; it changed nothing and recorded exactly one
    refusal, which is returned."""
    before = None if eid is None else snapshot(engine, eid)
    count = len(engine.refusals(limit=10_000))
    with pytest.raises(error):
        call()
    if eid is not None:
        assert snapshot(engine, eid) == before
    found = engine.refusals(limit=10_000)
    assert len(found) == count + 1
    return found[-1]


def nothing_of(engine: lr.Engine, *texts: str) -> None:
    for item in engine.refusals(limit=10_000):
        for text in texts:
            assert text not in repr(item)


# -- caller text of a code's form ---------------------------------------------------------


def test_an_event_the_protocol_does_not_know_is_not_kept(engine: lr.Engine) -> None:
    eid = engine.open("relay", CLERK).id
    entry = one_refusal(engine, lambda: engine.fire(eid, TEXT, CLERK), lr.TransitionNotAllowed, eid)
    assert entry.action == "_unreadable"
    assert (entry.reason, entry.step, entry.actor_id) == (
        "TransitionNotAllowed",
        "desk",
        "clerk-07",
    )
    nothing_of(engine, TEXT)


def test_a_known_event_is_kept(engine: lr.Engine) -> None:
    eid = engine.open("relay", CLERK).id
    entry = one_refusal(engine, lambda: engine.fire(eid, "close", CLERK), lr.LastResortError, eid)
    assert entry.action == "close"


def test_a_role_that_is_no_party_is_not_kept(engine: lr.Engine) -> None:
    eid = engine.open("relay", CLERK).id
    stranger = lr.Actor(TEXT, "x-1")
    entry = one_refusal(engine, lambda: engine.fire(eid, "go", stranger), lr.NotPermitted, eid)
    assert (entry.actor_role, entry.actor_id, entry.action) == ("?", "x-1", "go")
    entry = one_refusal(engine, lambda: engine.open("relay", stranger), lr.NotPermitted, None)
    assert (entry.actor_role, entry.actor_id, entry.action) == ("?", "x-1", "open")
    entry = one_refusal(engine, lambda: engine.fire(eid, "go", TEXT), lr.ActorRefused, eid)
    assert (entry.actor_role, entry.actor_id) == ("?", None)
    nothing_of(engine, TEXT)


def test_a_party_role_is_kept(engine: lr.Engine) -> None:
    eid = engine.open("relay", CLERK).id
    entry = one_refusal(engine, lambda: engine.fire(eid, "go", EXPERT), lr.NotPermitted, eid)
    assert (entry.actor_role, entry.actor_id) == ("expert", "expert-12")


# -- nobody fires as the clock ----------------------------------------------------------


@pytest.mark.parametrize("clock", [lr.Actor("clock"), lr.Actor("clock", "x-1"), "clock"])
def test_nobody_fires_as_the_clock_and_each_try_is_recorded_once(
    engine: lr.Engine, clock: lr.Actor | str
) -> None:
    eid = engine.open("relay", CLERK).id
    for event in ("go", "desk_timeout"):
        entry = one_refusal(
            engine, lambda e=event: engine.fire(eid, e, clock), lr.NotPermitted, eid
        )
        assert (entry.actor_role, entry.action, entry.reason) == ("clock", event, "NotPermitted")
    entry = one_refusal(engine, lambda: engine.open("relay", clock), lr.NotPermitted, None)
    assert entry.action == "open"
    assert engine.allowed(eid, clock) == []


# -- threads at once ---------------------------------------------------------------------


def test_refusals_from_threads_at_once_leave_no_gap_and_no_fork(
    engine: lr.Engine, tmp_path: Path
) -> None:
    eid = engine.open("relay", CLERK).id
    threads, each = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def refuse(n: int) -> None:
        who = lr.Actor("counter", f"t-{n}")
        start.wait()
        for _ in range(each):
            try:
                engine.fire(eid, "close", who)
            except lr.TransitionNotAllowed:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    workers = [threading.Thread(target=refuse, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    found = engine.refusals(limit=10_000)
    assert [r.seq for r in found] == list(range(1, threads * each + 1))
    assert sorted(r.actor_id or "" for r in found) == sorted(
        f"t-{n}" for n in range(threads) for _ in range(each)
    )
    store = engine.store
    if isinstance(store, lr.SQLiteStore):
        report = verify(store.path)
    elif isinstance(store, lr.PostgresStore):
        report = verify_postgres(pg_kit.DSN, schema=store.schema)
    else:
        return
    assert report.ok, report.problems
    assert report.refusals == threads * each


# -- an actor id holding a citizen service number ------------------------------------------

BSN = "123456782"  # passes the eleven-test


@pytest.mark.parametrize(
    "given", [BSN, f"bsn-{BSN}", f"{BSN}.x", f"clerk:{BSN}", f"a_{BSN}_b", "012345672"]
)
def test_an_actor_id_holding_a_bsn_is_refused_without_quoting_it(given: str) -> None:
    with pytest.raises(lr.ActorRefused) as caught:
        lr.Actor("counter", given)
    assert BSN not in str(caught.value)
    assert "citizen service number" in str(caught.value)


@pytest.mark.parametrize(
    "given",
    [
        "clerk-07",
        "123456789",  # nine digits failing the eleven-test
        "emp-123456789",
        "550e8400-e29b-41d4-a716-446655440000",  # a dashed UUID: no nine-character part
        "3f2a9c0d5e7b4a1c8d6e2f0a9b8c7d6e",
        f"x{BSN}",  # glued to a letter: not split off (a random hex id is never refused)
    ],
)
def test_an_actor_id_of_other_digits_is_kept(given: str) -> None:
    assert lr.Actor("counter", given).id == given


def test_a_refusal_carrying_a_bsn_in_an_id_is_refused_by_every_store(tmp_path: Path) -> None:
    from datetime import UTC

    for make in (make_memory, make_sqlite, make_postgres):
        store = make(tmp_path)
        refusal = lr.Refusal(
            at=START.astimezone(UTC),
            actor_role="counter",
            actor_id=f"bsn-{BSN}",
            action="http:fire",
            category=lr.Category.FORBIDDEN,
            reason="unauthenticated",
        )
        with pytest.raises(lr.InvalidArgument) as caught:
            store.record_refusal(refusal)
        assert caught.value.argument == "actor_id"
        assert BSN not in str(caught.value)
        assert store.refusals() == []
        store.close()


def test_every_id_check_agrees_on_open_fire_allowed_and_record_refusal(
    engine: lr.Engine,
) -> None:
    eid = engine.open("relay", CLERK).id
    before = snapshot(engine, eid)
    bad = f"counter-{BSN}"
    calls = [
        lambda: engine.open("relay", lr.Actor("counter", bad)),
        lambda: engine.fire(eid, "go", lr.Actor("counter", bad)),
        lambda: engine.allowed(eid, lr.Actor("counter", bad)),
    ]
    for call in calls:
        with pytest.raises(lr.ActorRefused):
            call()
    assert snapshot(engine, eid) == before
    assert engine.refusals() == []  # the Actor was never made: nothing to record


# -- processes at once -------------------------------------------------------------------

_CHILD = """
import sys
import lastresort as lr
from datetime import UTC, datetime
if sys.argv[1] == "sqlite":
    store = lr.SQLiteStore(sys.argv[2])
else:
    store = lr.PostgresStore(sys.argv[3], schema=sys.argv[2])
for n in range(int(sys.argv[4])):
    store.record_refusal(lr.Refusal(
        at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC), actor_role="counter",
        actor_id="p-" + sys.argv[5], action="http:fire",
        category=lr.Category.FORBIDDEN, reason="unauthenticated"))
store.close()
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_refusals_from_processes_at_once_leave_no_gap_and_no_fork(
    kind: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    if kind == "sqlite":
        store: lr.Store = lr.SQLiteStore(tmp_path / "mp.db")
        where = str(tmp_path / "mp.db")
    else:
        pg = pg_kit.make_store()
        store, where = pg, str(pg.schema)
    store.close()
    processes, each = 3, 20
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, kind, where, pg_kit.DSN, str(each), str(n)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    if kind == "sqlite":
        report = verify(where)
        store = lr.SQLiteStore(where)
    else:
        report = verify_postgres(pg_kit.DSN, schema=where)
        store = lr.PostgresStore(pg_kit.DSN, schema=where)
    assert report.ok, report.problems
    assert report.refusals == processes * each
    found = store.refusals(limit=10_000)
    assert [r.seq for r in found] == list(range(1, processes * each + 1))
    assert sorted(r.actor_id or "" for r in found) == sorted(
        f"p-{n}" for n in range(processes) for _ in range(each)
    )
    store.close()


# -- a clock that fails while the refusal is dated -----------------------------------------


class FailingClock(lr.VirtualClock):
    """A clock that raises on the ``fail_after + 1``-th reading from now on."""

    fail_after: int | None = None

    def now(self) -> Any:
        if self.fail_after is not None:
            self.fail_after -= 1
            if self.fail_after < 0:
                raise OSError("time source gone")
        return super().now()


@pytest.mark.parametrize("make", STORES)
def test_a_clock_failing_while_the_refusal_is_dated_still_gives_the_refusal(
    make: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    store = make(tmp_path)
    clock = FailingClock(START)
    engine = lr.Engine(protocols=[relay()], store=store, clock=clock, entry_points=False)
    eid = engine.open("relay", CLERK).id
    before = snapshot(engine, eid)
    with caplog.at_level(logging.ERROR, logger="lastresort.engine"):
        clock.fail_after = 1  # fire reads the clock once, then the refusal is dated
        with pytest.raises(lr.TransitionNotAllowed):
            engine.fire(eid, "close", CLERK)
        clock.fail_after = 0  # open refuses the facts before it reads the clock
        with pytest.raises(lr.FactsRefused):
            engine.open("relay", CLERK, facts={"age_band": TEXT})
    clock.fail_after = None
    assert snapshot(engine, eid) == before
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all("could not be recorded: OSError" in m for m in messages)
    assert TEXT not in " ".join(messages)
    assert engine.refusals() == []
    with pytest.raises(lr.TransitionNotAllowed):
        engine.fire(eid, "close", CLERK)
    assert [r.seq for r in engine.refusals()] == [1]
    store.close()


# -- record_refusal: a record that contradicts the store ----------------------------------


def test_record_refusal_refuses_a_protocol_other_than_the_encounters(engine: lr.Engine) -> None:
    eid = engine.open("relay", CLERK).id
    with pytest.raises(lr.InvalidArgument) as caught:
        engine.record_refusal(
            actor=CLERK,
            action="http:fire",
            category=lr.Category.FORBIDDEN,
            reason="unauthenticated",
            encounter_id=eid,
            protocol="taskforce",
        )
    assert caught.value.argument == "protocol"
    assert engine.refusals() == []
    entry = engine.record_refusal(
        actor=CLERK,
        action="http:fire",
        category=lr.Category.FORBIDDEN,
        reason="unauthenticated",
        encounter_id=eid,
        protocol="relay",
    )
    assert (entry.seq, entry.protocol, entry.step, entry.version) == (1, "relay", "desk", 1)


# -- a crashing guard of another event ---------------------------------------------------


class CrashingGuard:
    """A guard that raises (with something of the child in its message)."""

    @lr.hookimpl
    def lastresort_guard_names(self) -> list[str]:
        return ["crashes"]

    @lr.hookimpl
    def lastresort_guard(self, name: str) -> str | None:
        raise RuntimeError("guard crashed over Anna Jansen")


@pytest.mark.parametrize("make", STORES)
def test_a_crashing_guard_of_another_event_never_replaces_the_refusal(
    make: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import attrs

    protocol = relay()
    protocol = attrs.evolve(
        protocol,
        transitions=tuple(
            attrs.evolve(t, guard="crashes") if t.event == "go" else t for t in protocol.transitions
        ),
    )
    store = make(tmp_path)
    engine = lr.Engine(
        protocols=[protocol],
        plugins=[CrashingGuard()],
        store=store,
        clock=lr.VirtualClock(START),
        entry_points=False,
    )
    eid = engine.open("relay", CLERK).id
    with caplog.at_level(logging.ERROR, logger="lastresort.engine"):
        # "close" is not defined from "desk": the refusal lists what is allowed instead,
        # asking the guard of "go", which crashes
        entry = one_refusal(
            engine, lambda: engine.fire(eid, "close", CLERK), lr.TransitionNotAllowed, eid
        )
    assert (entry.action, entry.reason) == ("close", "TransitionNotAllowed")
    assert "raised RuntimeError while listing the allowed events" in caplog.text
    assert "Anna" not in caplog.text
    with pytest.raises(lr.TransitionNotAllowed) as caught:
        engine.fire(eid, "close", CLERK)
    assert caught.value.allowed == ["acute_danger"]  # "go" is not claimed to be allowed
    with pytest.raises(RuntimeError):  # the event's own guard: reaches the caller unchanged
        engine.fire(eid, "go", CLERK)
    store.close()
