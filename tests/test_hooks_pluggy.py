"""pluggy's contract holds (issue #12, item 9): hooks are called through ``pm.hook``, so
``wrapper=True`` and old-style ``hookwrapper=True`` implementations run, and
``firstresult``/``tryfirst``/``trylast`` are honoured; observers stay isolated per plugin."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pluggy
import pytest
from attrs import evolve

import lastresort as lr
from lastresort.protocol.model import Encounter
from lastresort.testing import engine_for, with_guard


class Seen:
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    @lr.hookimpl
    def lastresort_on_event(self, event: lr.Event) -> None:
        self.log.append(f"{self.name}:{event.kind}")
        if self.fail:
            raise RuntimeError(f"{self.name} down")


# -- lastresort_on_event -------------------------------------------------------------


def test_lastresort_on_event_wrapper_runs_around_every_observer(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    log: list[str] = []

    class Wrap:
        @lr.hookimpl(wrapper=True)
        def lastresort_on_event(self, event: lr.Event) -> Generator[None, Any, Any]:
            log.append(f"before:{event.kind}")
            result = yield
            log.append(f"after:{event.kind}")
            return result

    engine = engine_for(taskforce, [Seen(log, "a"), Wrap(), Seen(log, "b")], clock=clock)
    engine.open("taskforce", lr.Actor("counter", "counter-1"))
    assert log == [
        "before:EncounterOpened",
        "b:EncounterOpened",
        "a:EncounterOpened",
        "after:EncounterOpened",
        "before:DeadlineScheduled",
        "b:DeadlineScheduled",
        "a:DeadlineScheduled",
        "after:DeadlineScheduled",
    ]


def test_lastresort_on_event_old_style_hookwrapper_runs(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    log: list[str] = []

    class Old:
        @lr.hookimpl(hookwrapper=True)
        def lastresort_on_event(self, event: lr.Event) -> Generator[None, Any, None]:
            log.append("before")
            outcome = yield
            log.append(f"after:{outcome.exception is None}")

    engine = engine_for(taskforce, [Seen(log, "a"), Old()], clock=clock)
    engine.open("taskforce", lr.Actor("counter", "counter-1"))
    assert log == [
        *("before", "a:EncounterOpened", "after:True"),
        *("before", "a:DeadlineScheduled", "after:True"),
    ]


def test_lastresort_on_event_failures_stay_isolated_with_a_wrapper_present(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    log: list[str] = []

    class Wrap:
        @lr.hookimpl(wrapper=True)
        def lastresort_on_event(self) -> Generator[None, Any, Any]:
            result = yield
            log.append("after")
            return result

    bad = Seen(log, "b", fail=True)
    engine = engine_for(taskforce, [Seen(log, "a"), bad, Wrap()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    events = engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    failed = [e for e in events if isinstance(e, lr.ObserverFailed)]
    committed = [e for e in events if not isinstance(e, lr.ObserverFailed)]
    assert len(failed) == len(committed) == 4
    assert {e.error for e in failed} == {"RuntimeError"}
    assert {e.plugin for e in failed} == {engine.plugin_manager.get_name(bad)}
    # a (asked after b) still saw every event, and the wrapper's teardown ran each time
    assert [x for x in log if x.startswith("a:")][-4:] == [f"a:{e.kind}" for e in committed]
    assert log.count("after") == 2 + len(committed)  # open's two events, then fire's
    assert engine.get(enc.id).state == "awaiting_expert"


@pytest.mark.parametrize("where", ["before", "after"])
def test_lastresort_on_event_wrapper_that_raises_is_reported_by_name(
    taskforce: lr.Protocol, clock: lr.VirtualClock, where: str
) -> None:
    log: list[str] = []

    class Wrap:
        @lr.hookimpl(wrapper=True)
        def lastresort_on_event(self) -> Generator[None, Any, Any]:
            if where == "before":
                raise ValueError("wrapper down")
            result = yield
            raise ValueError("wrapper down")
            return result  # pragma: no cover

    wrap = Wrap()
    engine = engine_for(taskforce, [Seen(log, "a"), wrap], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    events = engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    failed = [e for e in events if isinstance(e, lr.ObserverFailed)]
    committed = [e for e in events if not isinstance(e, lr.ObserverFailed)]
    assert len(failed) == len(committed) == 4
    assert {e.plugin for e in failed} == {engine.plugin_manager.get_name(wrap)}
    assert {e.error for e in failed} == {"ValueError"}
    assert log[-len(committed) :] == [f"a:{e.kind}" for e in committed]  # a still ran
    assert engine.get(enc.id).state == "awaiting_expert"


def test_lastresort_on_event_tryfirst_and_trylast_are_honoured(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    log: list[str] = []

    class First:
        @lr.hookimpl(tryfirst=True)
        def lastresort_on_event(self) -> None:
            log.append("first")

    class Last:
        @lr.hookimpl(trylast=True)
        def lastresort_on_event(self) -> None:
            log.append("last")

    engine = engine_for(taskforce, [First(), Last(), Seen(log, "mid")], clock=clock)
    log.clear()
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    assert enc.state == "arrived"
    assert log[:3] == ["first", "mid:EncounterOpened", "last"]


def test_lastresort_on_event_called_directly_keeps_pluggy_behaviour(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    """Outside the engine, pm.hook behaves as pluggy documents: an exception propagates."""
    engine = engine_for(taskforce, [Seen([], "b", fail=True)], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    event = engine.timeline(enc.id)[0]
    with pytest.raises(RuntimeError, match="b down"):
        engine.plugin_manager.hook.lastresort_on_event(event=event, encounter=enc)


# -- lastresort_protocols ------------------------------------------------------------


def test_lastresort_protocols_wrapper_runs_and_may_change_the_result(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    other = evolve(taskforce, id="other")

    class Provides:
        @lr.hookimpl
        def lastresort_protocols(self) -> list[lr.Protocol]:
            return [other]

    class Wrap:
        @lr.hookimpl(wrapper=True)
        def lastresort_protocols(self) -> Generator[None, Any, Any]:
            result: list[Sequence[lr.Protocol]] = yield
            # drop the reference protocol, keep the rest
            return [[p for p in ps if p.id != "taskforce"] for ps in result]

    engine = lr.Engine(plugins=[Provides(), Wrap()], clock=clock, entry_points=False)
    assert set(engine.protocols) == {"other"}


def test_lastresort_protocols_collision_still_names_both_plugins_with_a_wrapper(
    taskforce: lr.Protocol,
) -> None:
    class Twin:
        @lr.hookimpl
        def lastresort_protocols(self) -> list[lr.Protocol]:
            return [taskforce]

    class Wrap:
        @lr.hookimpl(hookwrapper=True)
        def lastresort_protocols(self) -> Generator[None, Any, None]:
            yield

    with pytest.raises(lr.ProtocolError) as info:
        lr.Engine(plugins=[Twin(), Wrap()], entry_points=False)
    message = str(info.value)
    assert "'lastresort.default'" in message
    assert "provided by both" in message


# -- firstresult hooks: guard, deliver, party_directory; properties ------------------


def test_lastresort_guard_wrapper_may_overrule_the_answer(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    protocol = with_guard(taskforce, "call_expert", "ok")

    class Allows:
        @lr.hookimpl
        def lastresort_guard_names(self) -> list[str]:
            return ["ok"]

        @lr.hookimpl
        def lastresort_guard(self) -> str | None:
            return None

    class Veto:
        @lr.hookimpl(wrapper=True)
        def lastresort_guard(self, encounter: Encounter) -> Generator[None, Any, Any]:
            answer = yield
            return "vetoed by the wrapper" if answer is None else answer

    engine = engine_for(protocol, [Allows(), Veto()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    with pytest.raises(lr.GuardRefused, match="vetoed by the wrapper"):
        engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    assert engine.get(enc.id).version == enc.version
    assert "call_expert" not in engine.allowed(enc.id, "counter")


def test_lastresort_deliver_wrapper_sees_the_receipt(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    receipts: list[object] = []

    class Wrap:
        @lr.hookimpl(wrapper=True)
        def lastresort_deliver(self) -> Generator[None, Any, Any]:
            receipt = yield
            receipts.append(receipt)
            return f"wrapped:{receipt}"

    engine = engine_for(taskforce, [Wrap()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    delivered = engine.deliver()
    assert receipts == ["log"]
    assert [e.receipt for e in delivered if isinstance(e, lr.NotificationDelivered)] == [
        "wrapped:log"
    ]


def test_lastresort_protocol_properties_wrapper_runs_and_failures_name_the_plugin(
    taskforce: lr.Protocol,
) -> None:
    calls: list[str] = []

    class Wrap:
        @lr.hookimpl(wrapper=True)
        def lastresort_protocol_properties(self) -> Generator[None, Any, Any]:
            calls.append("wrapper")
            return (yield)

    class Broken:
        @lr.hookimpl
        def lastresort_protocol_properties(self) -> list[lr.Property]:
            raise KeyError("oops")

    broken = Broken()
    strict = lr.Engine(protocols=[taskforce], plugins=[Wrap()], entry_points=False, strict=True)
    assert set(strict.protocols) == {"taskforce"}
    assert calls == ["wrapper"]
    with pytest.raises(lr.PluginLoadError) as info:
        lr.Engine(protocols=[taskforce], plugins=[Wrap(), broken], entry_points=False, strict=True)
    message = str(info.value)
    # pluggy names an object plugin by its id unless given a name
    assert f"plugin {str(id(broken))!r}: lastresort_protocol_properties failed" in message
    assert "KeyError" in message


def test_plugin_manager_is_a_pluggy_plugin_manager(taskforce: lr.Protocol) -> None:
    engine = lr.Engine(protocols=[taskforce], entry_points=False)
    assert isinstance(engine.plugin_manager, pluggy.PluginManager)


def test_lastresort_on_event_calls_are_seen_by_hook_call_monitoring(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    log: list[str] = []
    bad = Seen(log, "b", fail=True)
    engine = engine_for(taskforce, [Seen(log, "a"), bad], clock=clock)
    enc = engine.open(
        "taskforce", lr.Actor("counter", "counter-1")
    )  # before monitoring: the observers' fast path
    traced: list[str] = []
    undo = engine.plugin_manager.add_hookcall_monitoring(
        lambda name, impls, kwargs: traced.append(name), lambda *_: None
    )
    events = engine.fire(enc.id, "call_expert", lr.Actor("counter", "counter-1"))
    undo()
    committed = [e for e in events if not isinstance(e, lr.ObserverFailed)]
    failed = [e for e in events if isinstance(e, lr.ObserverFailed)]
    assert traced.count("lastresort_on_event") == len(committed) == 4
    # still isolated through pm.hook: b failed each time, a saw every event
    assert [e.plugin for e in failed] == [engine.plugin_manager.get_name(bad)] * 4
    assert [x for x in log if x.startswith("a:")][-4:] == [f"a:{e.kind}" for e in committed]
    assert engine.get(enc.id).state == "awaiting_expert"


def test_lastresort_on_event_keyword_arguments_with_defaults_are_passed(
    taskforce: lr.Protocol, clock: lr.VirtualClock
) -> None:
    seen: list[object] = []

    class Defaults:
        @lr.hookimpl
        def lastresort_on_event(self, event: lr.Event, encounter: Encounter | None = None) -> None:
            seen.append(encounter)

    engine = engine_for(taskforce, [Defaults()], clock=clock)
    enc = engine.open("taskforce", lr.Actor("counter", "counter-1"))
    assert seen == [enc, enc]  # pluggy passes a defaulted argument as a keyword
