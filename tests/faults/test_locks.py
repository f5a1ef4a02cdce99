"""Threading model: no plugin call runs under a lock (issue #12, item 4).

Guards (and every other plugin call) run outside any lock of lastresort, so a guard
may call the engine, and a slow guard stalls only its own ``fire``. Each test runs the
work in a thread and joins it with a timeout: the timeout only detects a hang (the
assertion is that the thread finished), it never measures time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import lastresort as lr
from lastresort.protocol.model import Actor, Encounter
from lastresort.testing import with_guard
from tests import pg_kit

HANG = 20.0  # seconds: only a hang detector, never reached when it works


class Guard:
    """Answers the guard ``busy`` by calling ``action(encounter)`` first."""

    def __init__(self) -> None:
        self.action: Callable[[Encounter], None] = lambda _: None

    @lr.hookimpl
    def lastresort_guard_names(self) -> list[str]:
        return ["busy"]

    @lr.hookimpl
    def lastresort_guard(self, name: str, encounter: Encounter, actor: Actor) -> str | None:
        self.action(encounter)
        return None


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[lr.Store]:
    made: lr.Store
    if request.param == "memory":
        made = lr.MemoryStore()
    elif request.param == "sqlite":
        made = lr.SQLiteStore(tmp_path / "db")
    else:
        made = pg_kit.make_store()
    yield made
    made.close()


def make(
    taskforce: lr.Protocol, clock: lr.VirtualClock, store: lr.Store, plugin: object
) -> lr.Engine:
    return lr.Engine(
        protocols=[with_guard(taskforce, "expert_takes_over", "busy")],
        plugins=[plugin],
        store=store,
        clock=clock,
        entry_points=False,
    )


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start ``work`` in a daemon thread; its result (or exception) lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_guard_that_fires_another_encounter_of_the_same_protocol_completes(
    taskforce: lr.Protocol, clock: lr.VirtualClock, store: lr.Store
) -> None:
    plugin = Guard()
    engine = make(taskforce, clock, store, plugin)
    a = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    b = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    nested: list[list[lr.Event]] = []

    def fire_b(encounter: Encounter) -> None:
        if encounter.id == a:
            nested.append(engine.fire(b, "call_expert", lr.Actor("counter", "counter-1")))

    plugin.action = fire_b
    thread, out = in_thread(
        lambda: engine.fire(a, "expert_takes_over", lr.Actor("expert", "expert-1"))
    )
    thread.join(HANG)
    assert not thread.is_alive(), "fire() hung: the guard's nested fire waited on a lock"
    assert not isinstance(out[0], BaseException), out[0]
    assert engine.get(a).state == "with_expert"
    assert engine.get(b).state == "awaiting_expert"
    assert "StepEntered" in [e.kind for e in nested[0]]


def test_a_guard_blocked_on_an_event_does_not_stop_another_encounter_from_another_thread(
    taskforce: lr.Protocol, clock: lr.VirtualClock, store: lr.Store
) -> None:
    plugin = Guard()
    engine = make(taskforce, clock, store, plugin)
    a = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    b = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    entered, release = threading.Event(), threading.Event()

    def block_on_a(encounter: Encounter) -> None:
        if encounter.id == a:
            entered.set()
            release.wait(HANG)

    plugin.action = block_on_a
    slow, slow_out = in_thread(
        lambda: engine.fire(a, "expert_takes_over", lr.Actor("expert", "expert-1"))
    )
    try:
        assert entered.wait(HANG)
        # the same guarded transition of the same protocol, on another encounter
        other, other_out = in_thread(
            lambda: engine.fire(b, "expert_takes_over", lr.Actor("expert", "expert-1"))
        )
        other.join(HANG)
        assert not other.is_alive(), "a slow guard stalled every fire of its protocol"
        assert not isinstance(other_out[0], BaseException), other_out[0]
        assert engine.get(b).state == "with_expert"
        assert engine.get(a).state == "arrived"  # the slow one has not committed yet
    finally:
        release.set()
        slow.join(HANG)
    assert not slow.is_alive()
    assert not isinstance(slow_out[0], BaseException), slow_out[0]
    assert engine.get(a).state == "with_expert"


def test_a_guard_that_re_enters_its_own_encounter_gets_concurrent_update(
    taskforce: lr.Protocol, clock: lr.VirtualClock, store: lr.Store
) -> None:
    """Defined behaviour: the nested fire commits; the outer fire then finds the version
    moved and raises ConcurrentUpdate, writing nothing of its own."""
    plugin = Guard()
    engine = make(taskforce, clock, store, plugin)
    a = engine.open("taskforce", lr.Actor("counter", "counter-1")).id
    calls: list[str] = []

    def fire_a(encounter: Encounter) -> None:
        calls.append(encounter.state)
        if len(calls) == 1:  # only the outer guard re-enters
            engine.fire(a, "call_expert", lr.Actor("counter", "counter-1"))

    plugin.action = fire_a
    thread, out = in_thread(
        lambda: engine.fire(a, "expert_takes_over", lr.Actor("expert", "expert-1"))
    )
    thread.join(HANG)
    assert not thread.is_alive(), "fire() hung re-entering its own encounter"
    assert isinstance(out[0], lr.ConcurrentUpdate), out[0]
    assert (out[0].expected, out[0].actual) == (1, 2)
    after = engine.get(a)
    assert (after.state, after.version) == ("awaiting_expert", 2)  # only the nested step
    assert [e.kind for e in engine.timeline(a)].count("StepEntered") == 1  # the nested one


def test_an_observer_may_call_the_engine(
    taskforce: lr.Protocol, clock: lr.VirtualClock, store: lr.Store
) -> None:
    engine: lr.Engine | None = None
    seen: list[str] = []

    class Follows:
        @lr.hookimpl
        def lastresort_on_event(self, event: lr.Event, encounter: Encounter) -> None:
            assert engine is not None
            if event.kind == "EncounterOpened" and not seen:
                seen.append(encounter.id)
                engine.fire(encounter.id, "call_expert", lr.Actor("counter", "counter-1"))

    engine = lr.Engine(
        protocols=[taskforce], plugins=[Follows()], store=store, clock=clock, entry_points=False
    )
    thread, out = in_thread(lambda: engine.open("taskforce", lr.Actor("counter", "counter-1")))
    thread.join(HANG)
    assert not thread.is_alive()
    assert isinstance(out[0], lr.Encounter), out[0]
    assert engine.get(seen[0]).state == "awaiting_expert"
