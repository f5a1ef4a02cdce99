"""Every hook: called when documented, with the documented results; plus the meta-tests
that keep docs/hooks.md and these tests in step with hookspecs.py."""

from __future__ import annotations

import inspect
import re
from datetime import datetime
from pathlib import Path

import pytest
from attrs import evolve

import lastresort as lr
from lastresort.engine import hookspecs
from lastresort.outbox import Notification
from lastresort.protocol.model import Encounter, Party
from lastresort.testing import GuardPlugin, engine_for, snapshot, with_guard
from tests.conftest import minutes

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if name.startswith("lastresort_") and inspect.isfunction(value)
)


def signature_of(name: str) -> str:
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docs_section_headed_by_its_exact_signature(hook: str) -> None:
    docs = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert f"## `{signature_of(hook)}`" in docs


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_of_its_own(hook: str) -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_{hook}\w*\(", sources), f"no test_{hook}... test"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring(hook: str) -> None:
    assert (getattr(hookspecs, hook).__doc__ or "").strip()


# -- lastresort_protocols ------------------------------------------------------------


def test_lastresort_protocols_are_merged_and_collisions_refused(taskforce: lr.Protocol) -> None:
    class Provides:
        @lr.hookimpl
        def lastresort_protocols(self) -> list[lr.Protocol]:
            return [evolve(taskforce, id="utrecht", municipality="Utrecht")]

    engine = lr.Engine(plugins=[Provides()], entry_points=False)
    assert sorted(engine.protocols) == ["taskforce", "utrecht"]

    class Collides:
        @lr.hookimpl
        def lastresort_protocols(self) -> list[lr.Protocol]:
            return [taskforce]

    with pytest.raises(lr.ProtocolError, match="'taskforce' is provided by both"):
        lr.Engine(plugins=[Collides()], entry_points=False)


# -- lastresort_validate_protocol ------------------------------------------------------


def test_lastresort_validate_protocol_problems_refuse_the_engine(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    class Strict:
        @lr.hookimpl
        def lastresort_validate_protocol(self, protocol: lr.Protocol) -> list[str]:
            return (
                ["$.parties: needs a jeugdconsul"] if "jeugdconsul" not in protocol.parties else []
            )

    with pytest.raises(lr.ProtocolError) as info:
        engine_for(taskforce, [Strict()], clock=clock)
    assert info.value.problems == ["protocol 'taskforce': $.parties: needs a jeugdconsul"]


# -- lastresort_guard_names / lastresort_guard ----------------------------------------------


def at_with_expert(engine: lr.Engine) -> str:
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    return enc.id


def test_lastresort_guard_names_unknown_guard_is_refused(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    with pytest.raises(lr.ProtocolError, match="no plugin answers guard 'child_consents'"):
        engine_for(with_guard(taskforce, "inform_mayor"), [], clock=clock)


def test_lastresort_guard_none_allows(taskforce: lr.Protocol, clock: lr.VirtualClock) -> None:
    plugin = GuardPlugin(None)
    engine = engine_for(with_guard(taskforce, "inform_mayor"), [plugin], clock=clock)
    eid = at_with_expert(engine)
    assert "inform_mayor" in engine.allowed(eid, "expert")
    engine.fire(eid, "inform_mayor", lr.Actor("expert", "expert-1"))
    assert engine.get(eid).state == "awaiting_mayor"
    assert plugin.calls[-1] == ("child_consents", "inform_mayor", "expert")


def test_lastresort_guard_string_refuses_and_changes_nothing(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    engine = engine_for(
        with_guard(taskforce, "inform_mayor"),
        [GuardPlugin("the child does not want the mayor told yet")],
        clock=clock,
    )
    eid = at_with_expert(engine)
    assert "inform_mayor" not in engine.allowed(eid, "expert")
    before = snapshot(engine, eid)
    with pytest.raises(lr.GuardRefused) as info:
        engine.fire(eid, "inform_mayor", lr.Actor("expert", "expert-1"))
    assert info.value.reason == "the child does not want the mayor told yet"
    assert (info.value.guard, info.value.step) == ("child_consents", "with_expert")
    assert snapshot(engine, eid) == before


def test_lastresort_guard_that_raises_changes_nothing(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    engine = engine_for(
        with_guard(taskforce, "inform_mayor"), [GuardPlugin(ZeroDivisionError("boom"))], clock=clock
    )
    eid = at_with_expert(engine)
    before = snapshot(engine, eid)
    with pytest.raises(ZeroDivisionError):
        engine.fire(eid, "inform_mayor", lr.Actor("expert", "expert-1"))
    assert snapshot(engine, eid) == before
    # the machine is not left pointing at a half-run step: the next fire works
    engine.fire(eid, "acute_danger", lr.Actor("expert", "expert-1"))
    assert engine.get(eid).state == "with_police"


def test_lastresort_guard_not_asked_when_the_actor_is_not_permitted(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    plugin = GuardPlugin(None)
    engine = engine_for(with_guard(taskforce, "inform_mayor"), [plugin], clock=clock)
    eid = at_with_expert(engine)
    with pytest.raises(lr.NotPermitted):
        engine.fire(eid, "inform_mayor", lr.Actor("counter", "counter-1"))
    assert plugin.calls == []


# -- lastresort_on_event ----------------------------------------------------------------


def test_lastresort_on_event_sees_every_committed_event_in_order(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    seen: list[tuple[int, str, str]] = []

    class Observer:
        @lr.hookimpl
        def lastresort_on_event(self, event: lr.Event, encounter: Encounter) -> None:
            seen.append((event.seq, event.kind, encounter.state))

    engine = engine_for(taskforce, [Observer()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    assert [s[0] for s in seen] == [e.seq for e in engine.timeline(enc.id)]
    assert seen[-1][2] == "awaiting_expert"


def test_lastresort_on_event_observers_registered_or_removed_later_are_heeded(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    """Whether anyone observes is remembered between changes of the registrations:
    an observer registered (or unregistered) on a running engine counts at once."""
    seen: list[str] = []

    class Observer:
        @lr.hookimpl
        def lastresort_on_event(self, event: lr.Event) -> None:
            seen.append(event.kind)

    engine = engine_for(taskforce, [], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    assert seen == []
    observer = Observer()
    engine.plugin_manager.register(observer)
    fired = engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    assert seen == [e.kind for e in fired] != []
    engine.plugin_manager.unregister(observer)
    engine.fire(enc.id, "expert_takes_over", lr.Actor("expert", "expert-1"))
    assert seen == [e.kind for e in fired]  # nothing after unregistering
    engine.plugin_manager.register(observer, name="again")
    engine.plugin_manager.set_blocked("again")  # blocking unregisters it too
    engine.fire(enc.id, "inform_mayor", lr.Actor("expert", "expert-1"))
    assert seen == [e.kind for e in fired]


def test_lastresort_on_event_failure_is_reported_and_never_undoes(
    taskforce: lr.Protocol, clock: lr.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @lr.hookimpl
        def lastresort_on_event(self, event: lr.Event) -> None:
            raise RuntimeError("dashboard down")

    engine = engine_for(taskforce, [Broken()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"), {"age_band": "8-11"})
    events = engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    failed = [e for e in events if isinstance(e, lr.ObserverFailed)]
    committed = [e for e in events if not isinstance(e, lr.ObserverFailed)]
    assert len(failed) == len(committed) == 4
    assert failed[0].error == "RuntimeError"  # a plugin's message could hold anything
    assert engine.get(enc.id).state == "awaiting_expert"
    assert engine.timeline(enc.id)[-len(committed) :] == committed
    assert "8-11" not in caplog.text  # nothing of the child in logs


# -- lastresort_deliver -----------------------------------------------------------------


def test_lastresort_deliver_retries_with_backoff_and_the_same_key(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    calls: list[tuple[str, int]] = []

    class Flaky:
        @lr.hookimpl
        def lastresort_deliver(self, notification: Notification) -> str:
            calls.append((notification.key, notification.attempts))
            if len(calls) < 3:
                raise ConnectionError("pager gateway down")
            return "msg-17"

    engine = engine_for(taskforce, [Flaky()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    state = engine.get(enc.id)
    assert engine.deliver() == []
    [note] = engine.outbox(enc.id)
    # the class only: a plugin's message could hold anything (tests/faults/test_outbox.py)
    assert (note.attempts, note.last_error) == (1, "ConnectionError")
    assert note.next_attempt_at == clock.now() + minutes(0.5)
    assert engine.deliver() == []  # not due yet
    clock.advance(minutes(0.5))
    assert engine.deliver() == []
    [note] = engine.outbox(enc.id)
    assert note.next_attempt_at == clock.now() + minutes(1)  # doubled
    clock.advance(minutes(1))
    [delivered] = engine.deliver()
    assert isinstance(delivered, lr.NotificationDelivered)
    assert (delivered.receipt, delivered.attempts) == ("msg-17", 3)
    assert len(calls) == 3
    assert len({key for key, _ in calls}) == 1
    assert [n for _, n in calls] == [1, 2, 3]
    assert engine.get(enc.id) == state  # a delivery never changes the encounter
    assert engine.deliver() == []  # delivered once
    assert engine.timeline(enc.id)[-1] == delivered


def test_lastresort_deliver_default_logs_without_child_data(
    engine: lr.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="lastresort")
    enc = engine.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"age_band": "12-15", "disclosure": True}
    )
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    [delivered] = engine.deliver()
    assert delivered.receipt == "log"
    assert "notify expert of call_expert" in caplog.text
    assert "12-15" not in caplog.text


# -- lastresort_party_directory -------------------------------------------------------------


def test_lastresort_party_directory_addresses_notifications(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    sent: list[str | None] = []

    class Roster:
        @lr.hookimpl
        def lastresort_party_directory(self, party: Party, at: datetime) -> str | None:
            return f"pager:{party.key}:{at:%H}" if party.key == "expert" else None

        @lr.hookimpl
        def lastresort_deliver(self, notification: Notification) -> str:
            sent.append(notification.contact)
            return "ok"

    engine = engine_for(taskforce, [Roster()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    engine.deliver()
    assert sent == ["pager:expert:10"]
    assert engine.on_duty("taskforce", "expert") == "pager:expert:10"
    assert engine.on_duty("taskforce", "mayor") is None


# -- the plugin manager ---------------------------------------------------------------------


def test_misspelt_hook_is_an_error_at_once(taskforce: lr.Protocol) -> None:
    class Typo:
        @lr.hookimpl
        def lastresort_on_evnt(self, event: lr.Event) -> None:
            pass

    with pytest.raises(lr.PluginLoadError, match="lastresort_on_evnt"):
        lr.Engine(protocols=[taskforce], plugins=[Typo()], entry_points=False)


def test_one_plugin_manager_per_engine(taskforce: lr.Protocol) -> None:
    a = lr.Engine(protocols=[taskforce], plugins=[GuardPlugin(None)], entry_points=False)
    b = lr.Engine(protocols=[taskforce], entry_points=False)
    assert a.plugin_manager is not b.plugin_manager
    assert len(a.plugin_manager.get_plugins()) == len(b.plugin_manager.get_plugins()) + 1


def test_explicit_plugins_are_asked_before_defaults(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    class Mine:
        @lr.hookimpl
        def lastresort_deliver(self) -> str:
            return "mine"

    engine = engine_for(taskforce, [Mine()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    [delivered] = engine.deliver()
    assert isinstance(delivered, lr.NotificationDelivered)
    assert delivered.receipt == "mine"


def test_notifications_carry_no_child_data(engine: lr.Engine) -> None:
    enc = engine.open(
        "taskforce", lr.Actor("counter", "counter-1"), {"age_band": "0-7", "disclosure": True}
    )
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    [note] = engine.outbox(enc.id)
    import attrs

    assert not any("0-7" in str(v) for v in attrs.asdict(note).values())


def test_lastresort_guard_refusing_a_deadline_records_it_missed_and_re_arms_it(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    engine = engine_for(
        with_guard(taskforce, "expert_overdue"), [GuardPlugin("not now")], clock=clock
    )
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    [first] = engine.deadlines(enc.id)
    clock.advance(minutes(46))
    events = engine.tick()
    assert [e.kind for e in events] == ["DeadlineMissed", "DeadlineScheduled"]
    assert engine.get(enc.id).state == "awaiting_expert"
    [again] = engine.deadlines(enc.id)  # the waiting step keeps a deadline
    assert again.id != first.id
    assert again.due == clock.now() + minutes(45)
    clock.advance(minutes(30))
    assert engine.tick() == []


def test_lastresort_guard_raising_in_tick_does_not_stop_other_deadlines(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    plugin = GuardPlugin(ZeroDivisionError("roster down"))
    engine = engine_for(with_guard(taskforce, "expert_overdue"), [plugin], clock=clock)
    stuck = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(stuck.id, "call_expert", lr.Actor("counter", "counter-1"))
    other = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    clock.advance(minutes(46))
    events = engine.tick()
    fired = [e for e in events if not isinstance(e, lr.DeadlineDeferred)]
    assert {e.encounter_id for e in fired} == {other.id}  # the other deadline fired
    [deferred] = [e for e in events if isinstance(e, lr.DeadlineDeferred)]
    assert (deferred.encounter_id, deferred.error) == (stuck.id, "ZeroDivisionError")
    assert engine.get(stuck.id).state == "awaiting_expert"
    assert [d.event for d in engine.deadlines(stuck.id)] == ["expert_overdue"]
    plugin.answer = None  # the plugin recovers; after the lease the deadline fires once
    assert engine.tick() == []  # still leased
    clock.advance(minutes(2))
    fired = engine.tick()
    assert next(e.kind for e in fired if e.encounter_id == stuck.id) == "DeadlineMissed"
    assert engine.get(stuck.id).state == "escalated"


class ChildInMessage(lr.LastResortError):
    """A plugin's own subclass of a lastresort error, with a child's details in its
    message (it should never, but nothing stops a plugin from doing it)."""


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("Jan de Vries, BSN 123456782"),
        ChildInMessage("Jan de Vries, BSN 123456782"),
    ],
    ids=["foreign", "plugin-subclass-of-lastresort-error"],
)
def test_a_plugins_message_never_leaves_in_an_event_or_the_log(
    taskforce: lr.Protocol,
    clock: lr.VirtualClock,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    class Observer:
        @lr.hookimpl
        def lastresort_on_event(self, event: lr.Event, encounter: lr.Encounter) -> None:
            raise error

    guard = GuardPlugin(error)
    engine = engine_for(with_guard(taskforce, "expert_overdue"), [guard, Observer()], clock=clock)
    opened = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    events = engine.fire(opened.id, "call_expert", lr.Actor("counter", "counter-1"))
    clock.advance(minutes(46))
    events += engine.tick()
    failed = [e for e in events if isinstance(e, lr.ObserverFailed)]
    [deferred] = [e for e in events if isinstance(e, lr.DeadlineDeferred)]
    assert failed
    kind = type(error).__name__
    assert {e.error for e in failed} == {deferred.error} == {kind}
    for text in ("Jan", "123456782"):
        assert text not in repr(events)
        assert text not in caplog.text
