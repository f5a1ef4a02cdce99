"""The plugin test helpers of ``lastresort.testing``: ``engine_for``, ``with_guard`` and
``GuardPlugin`` (used by the hook, scenario and fault tests instead of local copies)."""

from __future__ import annotations

import pytest

import lastresort as lr
from lastresort.testing import GuardPlugin, engine_for, snapshot, with_guard


def test_with_guard_puts_the_guard_on_every_transition_of_the_event_only(
    taskforce: lr.Protocol,
) -> None:
    guarded = with_guard(taskforce, "inform_mayor", "child_consents")
    changed = [t for t in guarded.transitions if t.guard == "child_consents"]
    assert changed
    assert {t.event for t in changed} == {"inform_mayor"}
    assert len(guarded.transitions) == len(taskforce.transitions)
    assert all(t.guard is None for t in taskforce.transitions)  # the original is untouched


def test_with_guard_refuses_an_event_the_protocol_lacks(taskforce: lr.Protocol) -> None:
    with pytest.raises(lr.InvalidArgument, match=r"with_guard: event must be .*'taskforce'"):
        with_guard(taskforce, "inform_mayorr")


def test_guard_plugin_refuses_allows_and_records(taskforce: lr.Protocol) -> None:
    plugin = GuardPlugin("not yet")
    engine = engine_for(with_guard(taskforce, "expert_takes_over"), [plugin])
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    before = snapshot(engine, enc.id)
    with pytest.raises(lr.GuardRefused, match="not yet"):
        engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    assert snapshot(engine, enc.id) == before
    assert plugin.calls == [("child_consents", "expert_takes_over", "expert")]
    plugin.answer = None
    engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    assert engine.get(enc.id).state == "with_expert"


def test_guard_plugin_that_raises_is_a_crashing_plugin(taskforce: lr.Protocol) -> None:
    engine = engine_for(
        with_guard(taskforce, "expert_takes_over"), [GuardPlugin(ZeroDivisionError("down"))]
    )
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    before = snapshot(engine, enc.id)
    with pytest.raises(ZeroDivisionError, match="down"):  # the plugin's own error, unchanged
        engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    assert snapshot(engine, enc.id) == before


def test_engine_for_runs_only_the_protocol_on_the_given_clock_and_store(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    store = lr.MemoryStore()
    engine = engine_for(taskforce, clock=clock, store=store)
    assert list(engine.protocols) == ["taskforce"]
    assert engine.store is store
    assert engine.open("taskforce", lr.Actor("counter", "counter-1")).opened_at == clock.now()
