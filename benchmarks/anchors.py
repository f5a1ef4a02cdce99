"""The anchors lastresort is measured against, on the same protocol and event path:
a dict-lookup state machine (the floor), `transitions` three ways, sismic and
python-statemachine. Each returns seconds per event.

sismic and python-statemachine come from the `bench` extra; when missing they are
reported as such, not silently skipped.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from transitions import Machine

import lastresort as lr

Path = Sequence[tuple[str, str]]


def best_of(repeat: int, run: Callable[[], float]) -> float:
    """The least disturbed of ``repeat`` runs (each returns seconds per event)."""
    results = []
    for _ in range(repeat):
        gc.collect()
        results.append(run())
    return min(results)


def edges(protocol: lr.Protocol) -> list[tuple[str, str, str]]:
    """(event, source, target) for every transition, ``*`` expanded."""
    return [
        (t.event, source, t.target)
        for t in protocol.transitions
        for source in protocol.sources_of(t)
    ]


def dict_lookup(protocol: lr.Protocol, path: Path, encounters: int) -> Callable[[], float]:
    table = {(event, source): target for event, source, target in edges(protocol)}

    def run() -> float:
        start = time.process_time()
        for _ in range(encounters):
            state = protocol.initial
            for event, _actor in path:
                state = table[(event, state)]
        return (time.process_time() - start) / (encounters * len(path))

    return run


class _Model:
    state: str


def _machine(protocol: lr.Protocol, model: Any) -> Machine:
    machine = Machine(
        model=model, states=list(protocol.steps), initial=protocol.initial, auto_transitions=False
    )
    for event, source, target in edges(protocol):
        machine.add_transition(event, source, target)
    return machine


def transitions_shared(protocol: lr.Protocol, path: Path, encounters: int) -> Callable[[], float]:
    model = _Model()
    _machine(protocol, model)
    trigger = model.trigger  # type: ignore[attr-defined]

    def run() -> float:
        start = time.process_time()
        for _ in range(encounters):
            model.state = protocol.initial
            for event, _actor in path:
                trigger(event)
        return (time.process_time() - start) / (encounters * len(path))

    return run


def transitions_add_model(
    protocol: lr.Protocol, path: Path, encounters: int
) -> Callable[[], float]:
    machine = _machine(protocol, None)

    def run() -> float:
        start = time.process_time()
        for _ in range(encounters):
            model = _Model()
            machine.add_model(model)
            for event, _actor in path:
                model.trigger(event)  # type: ignore[attr-defined]
            machine.remove_model(model)
        return (time.process_time() - start) / (encounters * len(path))

    return run


def transitions_machine_each(
    protocol: lr.Protocol, path: Path, encounters: int
) -> Callable[[], float]:
    def run() -> float:
        start = time.process_time()
        for _ in range(encounters):
            model = _Model()
            _machine(protocol, model)
            for event, _actor in path:
                model.trigger(event)  # type: ignore[attr-defined]
        return (time.process_time() - start) / (encounters * len(path))

    return run


def add_model_growth(protocol: lr.Protocol, sizes: Sequence[int]) -> dict[int, tuple[float, float]]:
    """For each size N: seconds for one ``add_model`` with N models bound, and bytes per model."""
    out: dict[int, tuple[float, float]] = {}
    for size in sizes:
        machine = _machine(protocol, None)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        models = [_Model() for _ in range(size)]
        for model in models:
            machine.add_model(model)
        per_model = (tracemalloc.get_traced_memory()[0] - before) / size
        tracemalloc.stop()
        probes = [_Model() for _ in range(50)]
        gc.collect()  # not a full collection of the models bound above inside the timing
        start = time.process_time()
        for model in probes:
            machine.add_model(model)
        out[size] = ((time.process_time() - start) / len(probes), per_model)
    return out


def sismic_runner(protocol: lr.Protocol, path: Path, encounters: int) -> Callable[[], float] | str:
    try:
        from sismic.interpreter import Interpreter
        from sismic.model import BasicState, CompoundState, Statechart, Transition
    except ImportError:
        return "not installed (pip install -e '.[bench]')"
    chart = Statechart("protocol")
    chart.add_state(CompoundState("root", initial=protocol.initial), parent=None)
    for key in protocol.steps:
        chart.add_state(BasicState(key), parent="root")
    for event, source, target in edges(protocol):
        chart.add_transition(Transition(source, target, event=event))

    def run() -> float:
        start = time.process_time()
        for _ in range(encounters):
            interpreter = Interpreter(chart)
            interpreter.execute_once()
            for event, _actor in path:
                interpreter.queue(event)
                interpreter.execute_once()
        return (time.process_time() - start) / (encounters * len(path))

    return run


def statemachine_runner(
    protocol: lr.Protocol, path: Path, encounters: int
) -> Callable[[], float] | str:
    try:
        from statemachine import State, StateMachine
    except ImportError:
        return "not installed (pip install -e '.[bench]')"
    states = {
        key: State(key, initial=key == protocol.initial, final=step.terminal)
        for key, step in protocol.steps.items()
    }
    namespace: dict[str, Any] = {f"s_{key}": state for key, state in states.items()}
    by_event: dict[str, Any] = {}
    for event, source, target in edges(protocol):
        link = states[source].to.itself() if source == target else states[source].to(states[target])
        by_event[event] = link if event not in by_event else by_event[event] | link
    namespace.update({f"e_{event}": group for event, group in by_event.items()})
    machine_class = type("ProtocolMachine", (StateMachine,), namespace)

    def run() -> float:
        start = time.process_time()
        for _ in range(encounters):
            machine = machine_class()
            for event, _actor in path:
                machine.send(f"e_{event}")
        return (time.process_time() - start) / (encounters * len(path))

    return run
