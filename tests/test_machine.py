"""The compiled machine: one transitions.Machine per protocol, shared by every
encounter through a flyweight model (issue 2, item 5)."""

from __future__ import annotations

import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import transitions

import lastresort as lr
from lastresort.engine.dispatch import CompiledProtocol, compile_protocol
from lastresort.testing import make_engine, pseudonymous

MINIMAL = Path(__file__).parent / "protocols" / "foundations" / "minimal.toml"
# engine and drawing mechanics on a frozen copy of the 2014 reference protocol (tests/conftest.py)
TASKFORCE = Path(__file__).parent / "protocols" / "taskforce-2014.toml"
HAPPY_PATH = [
    ("call_expert", "counter"),
    ("expert_takes_over", "expert"),
    ("inform_mayor", "expert"),
    ("mayor_spoke_with_child", "mayor"),
    ("report_made", "expert"),
    ("close", "expert"),
]


def minimal_data() -> dict[str, Any]:
    return tomllib.loads(MINIMAL.read_text(encoding="utf-8"))


@pytest.fixture
def compiled() -> CompiledProtocol:
    return compile_protocol(lr.load_protocol(MINIMAL))


@pytest.fixture
def machines(monkeypatch: pytest.MonkeyPatch) -> list[transitions.Machine]:
    """Every transitions.Machine lastresort builds from now on, and every model
    added to any of them after it was built."""
    built: list[transitions.Machine] = []
    original = transitions.Machine.__init__

    def spy_init(self: transitions.Machine, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        built.append(self)

    # on the base class, so that it sees lastresort's subclass of it too
    monkeypatch.setattr(transitions.Machine, "__init__", spy_init)
    return built


def test_one_machine_per_protocol_shared_by_every_encounter(
    machines: list[transitions.Machine], monkeypatch: pytest.MonkeyPatch
) -> None:
    taskforce = lr.load_protocol(TASKFORCE)
    engine, clock = make_engine([taskforce, lr.load_protocol(MINIMAL)])
    assert len(machines) == 2  # one per protocol, built with the engine
    added: list[object] = []
    original = transitions.Machine.add_model

    def spy_add_model(self: transitions.Machine, model: Any, initial: Any = None) -> None:
        added.append(model)
        original(self, model, initial)

    monkeypatch.setattr(transitions.Machine, "add_model", spy_add_model)
    encounters = [engine.open("taskforce", lr.Actor("counter", "counter-1")) for _ in range(25)]
    for encounter in encounters:
        for event, actor in HAPPY_PATH:
            engine.fire(encounter.id, event, pseudonymous(actor))
    waiting = [engine.open("taskforce", lr.Actor("counter", "counter-1")) for _ in range(25)]
    for encounter in waiting:
        engine.fire(encounter.id, "call_expert", lr.Actor("counter", "counter-1"))
    clock.advance(lr.protocol.conversion.parse_duration("2h"))
    assert engine.tick()  # deadlines fired by the clock go through the same machine
    assert all(engine.get(e.id).state == "closed" for e in encounters)
    assert {engine.get(e.id).state for e in waiting} == {"escalated"}
    assert len(machines) == 2  # no machine per encounter
    assert added == []  # and no add_model per encounter
    assert [len(m.models) for m in machines] == [1, 1]


def test_the_shared_machine_is_built_without_auto_transitions(compiled: CompiledProtocol) -> None:
    machine = compiled.machine
    assert isinstance(machine, transitions.Machine)
    assert machine.auto_transitions is False
    assert list(machine.states) == ["arrived", "waiting", "with_expert", "closed", "with_police"]
    assert not any(name.startswith("to_") for name in machine.events)
    with pytest.raises(lr.TransitionNotAllowed):
        compiled.step("arrived", "to_closed")


def test_star_expands_to_every_non_terminal_step(compiled: CompiledProtocol) -> None:
    for state in ("arrived", "waiting", "with_expert"):
        assert "acute_danger" in compiled.events(state)
        [acute] = compiled.candidates(state, "acute_danger")
        assert acute.target == "with_police"
    assert compiled.events("closed") == ()
    assert compiled.events("with_police") == ()
    assert compiled.candidates("closed", "acute_danger") == ()


def test_events_in_a_step_in_declaration_order(compiled: CompiledProtocol) -> None:
    assert compiled.events("arrived") == ("call_expert", "expert_takes_over", "acute_danger")
    assert compiled.events("waiting") == ("expert_takes_over", "expert_overdue", "acute_danger")
    assert compiled.events("with_expert") == ("close", "acute_danger")
    assert compiled.events("no_such_step") == ()


def test_step_returns_the_transition_taken(compiled: CompiledProtocol) -> None:
    taken = compiled.step("arrived", "call_expert")
    assert taken is compiled.protocol.transitions[0]
    assert taken is not None
    assert (taken.event, taken.target) == ("call_expert", "waiting")
    acute = compiled.step("with_expert", "acute_danger")
    assert acute is not None
    assert acute.target == "with_police"


def test_step_leaves_no_state_behind(compiled: CompiledProtocol) -> None:
    assert compiled.step("arrived", "call_expert") is not None
    # the same encounter state can be stepped again: nothing was moved for good
    assert compiled.step("arrived", "call_expert") is not None
    assert compiled.step("waiting", "expert_takes_over") is not None


@pytest.mark.parametrize(
    ("state", "event", "allowed"),
    [
        ("arrived", "close", ["call_expert", "expert_takes_over", "acute_danger"]),
        ("arrived", "no_such_event", ["call_expert", "expert_takes_over", "acute_danger"]),
        ("closed", "acute_danger", []),
    ],
)
def test_an_event_not_defined_from_the_step_is_not_allowed(
    compiled: CompiledProtocol, state: str, event: str, allowed: list[str]
) -> None:
    with pytest.raises(lr.TransitionNotAllowed) as caught:
        compiled.step(state, event)
    error = caught.value
    assert (error.step, error.event, error.allowed) == (state, event, allowed)
    assert f"event {event!r} is not allowed in step {state!r}" in str(error)


def test_transitions_own_machine_error_is_mapped(
    compiled: CompiledProtocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make the lookup table claim an event the machine does not have from that step, so
    # that transitions itself refuses with its MachineError
    table = {state: dict(events) for state, events in compiled._from.items()}
    table["closed"]["call_expert"] = compiled.candidates("arrived", "call_expert")
    monkeypatch.setattr(compiled, "_from", table)
    with pytest.raises(lr.TransitionNotAllowed) as caught:
        compiled.step("closed", "call_expert")
    assert isinstance(caught.value.__cause__, transitions.MachineError)
    assert caught.value.step == "closed"


def test_a_permit_that_refuses_takes_nothing(compiled: CompiledProtocol) -> None:
    asked: list[lr.Transition] = []

    def permit(transition: lr.Transition) -> bool:
        asked.append(transition)
        return False

    assert compiled.step("arrived", "call_expert", permit=permit) is None
    assert asked == [compiled.protocol.transitions[0]]


def test_a_guard_that_refuses_takes_nothing_and_only_guarded_transitions_ask() -> None:
    data = minimal_data()
    data["transitions"][0]["guard"] = "expert_far"
    compiled = compile_protocol(lr.load_protocol(data))
    asked: list[str | None] = []

    def guard(transition: lr.Transition) -> bool:
        asked.append(transition.guard)
        return False

    assert compiled.step("arrived", "call_expert", guard=guard) is None
    assert asked == ["expert_far"]
    asked.clear()
    assert compiled.step("arrived", "expert_takes_over", guard=guard) is not None
    assert asked == []  # unguarded: the guard is not asked


def test_of_two_guarded_transitions_the_first_that_allows_is_taken() -> None:
    data = minimal_data()
    data["transitions"][0]["guard"] = "expert_far"
    data["transitions"].append(
        {
            "event": "call_expert",
            "from": "arrived",
            "to": "with_expert",
            "by": "counter",
            "guard": "expert_present",
        }
    )
    compiled = compile_protocol(lr.load_protocol(data))
    assert len(compiled.candidates("arrived", "call_expert")) == 2
    asked: list[str | None] = []

    def only(name: str) -> Any:
        def guard(transition: lr.Transition) -> bool:
            asked.append(transition.guard)
            return transition.guard == name

        return guard

    taken = compiled.step("arrived", "call_expert", guard=only("expert_present"))
    assert taken is not None
    assert taken.target == "with_expert"
    assert asked == ["expert_far", "expert_present"]
    asked.clear()
    taken = compiled.step("arrived", "call_expert", guard=only("expert_far"))
    assert taken is not None
    assert taken.target == "waiting"
    assert asked == ["expert_far"]  # the first one allowed: the second is not asked
    assert compiled.step("arrived", "call_expert", guard=only("nobody")) is None


@pytest.mark.parametrize("error", [AttributeError("plugin bug"), ValueError("plugin bug")])
def test_a_crashing_guard_propagates_unchanged(
    compiled: CompiledProtocol, error: Exception
) -> None:
    def permit(_: lr.Transition) -> bool:
        raise error

    with pytest.raises(type(error)) as caught:
        compiled.step("arrived", "call_expert", permit=permit)
    assert caught.value is error  # not disguised as "not allowed"
    # the machine is usable afterwards, with the default permit
    assert compiled.step("arrived", "call_expert") is not None


def test_handover_is_fired_by_the_receiver(compiled: CompiledProtocol) -> None:
    takes_over = compiled.candidates("waiting", "expert_takes_over")[0]
    assert compiled.receiver("waiting", takes_over) == "expert"
    assert compiled.permitted("waiting", takes_over, "expert")
    assert not compiled.permitted("waiting", takes_over, "counter")  # not named in by
    call = compiled.candidates("arrived", "call_expert")[0]
    assert compiled.receiver("arrived", call) is None  # same party: not a handover
    assert compiled.permitted("arrived", call, "counter")
    assert not compiled.permitted("arrived", call, "expert")
    overdue = compiled.candidates("waiting", "expert_overdue")[0]
    assert compiled.receiver("waiting", overdue) == "police"
    assert compiled.permitted("waiting", overdue, "clock")
    acute = compiled.candidates("arrived", "acute_danger")[0]
    assert compiled.permitted("arrived", acute, "counter")  # the acute path may hand over


def test_a_handover_named_for_the_giver_is_not_permitted() -> None:
    data = minimal_data()
    data["transitions"][1]["by"] = ["counter", "expert"]
    compiled = compile_protocol(lr.load_protocol(data))
    takes_over = compiled.candidates("waiting", "expert_takes_over")[0]
    assert not compiled.permitted("waiting", takes_over, "counter")
    assert compiled.permitted("waiting", takes_over, "expert")


def test_the_shared_machine_steps_correctly_from_many_threads(
    compiled: CompiledProtocol,
) -> None:
    cases = [
        ("arrived", "call_expert", "waiting"),
        ("waiting", "expert_takes_over", "with_expert"),
        ("waiting", "expert_overdue", "with_police"),
        ("with_expert", "close", "closed"),
        ("with_expert", "acute_danger", "with_police"),
    ] * 200

    def run(case: tuple[str, str, str]) -> str | None:
        taken = compiled.step(case[0], case[1])
        return None if taken is None else taken.target

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, cases))
    assert results == [target for _, _, target in cases]
    assert len(compiled.machine.models) == 1


def test_compiling_does_not_change_the_protocol() -> None:
    protocol = lr.load_protocol(TASKFORCE)
    before = lr.dump_protocol(protocol)
    compiled = compile_protocol(protocol)
    assert compiled.protocol is protocol
    assert lr.dump_protocol(protocol) == before


def test_the_lean_machine_takes_what_a_stock_transitions_machine_takes() -> None:
    """lastresort's machine skips transitions' callback lists and debug logging (it has
    no callbacks); for every step and event of every shipped protocol it must end
    where a stock ``transitions.Machine`` of the same protocol ends."""
    engine = lr.Engine()
    checked = 0
    for protocol in engine.protocols.values():
        compiled = compile_protocol(protocol)
        assert isinstance(compiled.machine, transitions.Machine)

        class Model:
            state: str

        model = Model()
        stock = transitions.Machine(
            model=model,
            states=list(protocol.steps),
            initial=protocol.initial,
            auto_transitions=False,
        )
        for t in protocol.transitions:
            for source in protocol.sources_of(t):
                # the first candidate wins in both, as no permit or guard refuses here
                stock.add_transition(t.event, source, t.target)
        for state in protocol.steps:
            for event in compiled.events(state):
                model.state = state
                assert stock.events[event].trigger(model) is True
                taken = compiled.step(state, event)
                assert taken is not None
                assert taken.target == model.state, (protocol.id, state, event)
                checked += 1
            for event in set(stock.events) - set(compiled.events(state)):
                model.state = state
                with pytest.raises(transitions.MachineError):
                    stock.events[event].trigger(model)
                with pytest.raises(lr.TransitionNotAllowed):
                    compiled.step(state, event)
    assert checked > 40  # five protocols' worth of (step, event) pairs
