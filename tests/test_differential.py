"""The differential oracle: every shipped protocol and the ``new-plugin`` template, run
through lastresort's Engine, the exported SCXML document in python-statemachine and a
sismic translation, compared after every step (tests/oracle_kit.py says how)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import lastresort as lr
from lastresort.engine.dispatch import CompiledProtocol
from lastresort.protocol.model import FactKind, Protocol, Transition
from tests.oracle_kit import (
    START_TIMES,
    Move,
    guided_paths,
    moves_from,
    run,
    template_protocol,
    waits_of,
)


def _shipped() -> dict[str, tuple[Protocol, object | None]]:
    out: dict[str, tuple[Protocol, object | None]] = {}
    for entry in importlib.metadata.entry_points(group="lastresort"):
        module = entry.load()
        provide = getattr(module, "lastresort_protocols", None)
        for protocol in provide() if provide is not None else ():
            out[protocol.id] = (protocol, module)
    taskforce = lr.load_packaged_protocol("lastresort.protocol.builtin", "taskforce.toml")
    out["taskforce"] = (taskforce, None)
    out["new-plugin template"] = (template_protocol(), None)
    return out


SHIPPED = _shipped()
IDS = sorted(SHIPPED)
ORACLE = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_shipped_protocol_is_covered() -> None:
    assert {"amsterdam", "rotterdam", "veilig-thuis", "meldcode", "huisverbod", "taskforce"} <= set(
        IDS
    )
    assert "new-plugin template" in IDS


@st.composite
def _opening(draw: Any, protocol: Protocol) -> dict[str, Any]:
    facts: dict[str, str | bool] = {}
    for key, fact in protocol.facts.items():
        if draw(st.booleans()):
            facts[key] = (
                draw(st.booleans())
                if fact.kind is FactKind.BOOL
                else draw(st.sampled_from(fact.values))
            )
    return {
        "facts": facts,
        "channel": draw(st.sampled_from(protocol.channels)),
        "start": draw(st.sampled_from(START_TIMES)),
    }


def _random_moves(protocol: Protocol) -> st.SearchStrategy[list[Move]]:
    events = [*sorted({t.event for t in protocol.transitions}), "no_such_event"]
    fire = st.tuples(
        st.sampled_from(events),
        st.sampled_from(sorted(protocol.parties)),
        st.booleans(),
        st.floats(0.01, 1.0),
    )
    return st.lists(st.one_of(fire, fire, st.sampled_from(waits_of(protocol))), max_size=25)


@st.composite
def _guided_moves(draw: Any, protocol: Protocol) -> list[Move]:
    """A walk along the moves the rules allow, now and then a random wait or actor."""
    state, moves = protocol.initial, []
    for _ in range(draw(st.integers(1, 25))):
        options = moves_from(protocol, state)
        if not options or draw(st.integers(0, 5)) == 0:
            moves.append(draw(st.sampled_from(waits_of(protocol))))
            continue
        move, state = draw(st.sampled_from(options))
        if isinstance(move, tuple) and draw(st.integers(0, 4)) == 0:
            move = (move[0], draw(st.sampled_from(sorted(protocol.parties))), *move[2:])
        moves.append(move)
    return moves


@pytest.mark.parametrize("name", IDS)
@ORACLE
@given(data=st.data())
def test_random_and_guided_sequences_agree(name: str, data: st.DataObject) -> None:
    protocol, plugin = SHIPPED[name]
    opening = data.draw(_opening(protocol), label="opening")
    moves = data.draw(st.one_of(_random_moves(protocol), _guided_moves(protocol)), label="moves")
    mismatch = run(protocol, moves, plugin=plugin, **opening)
    assert mismatch is None, str(mismatch)


@pytest.mark.parametrize("name", IDS)
def test_every_transition_taken_on_its_shortest_walk_agrees(name: str) -> None:
    protocol, plugin = SHIPPED[name]
    paths = guided_paths(protocol)
    assert len(paths) >= len(protocol.transitions)
    for moves in paths:
        mismatch = run(protocol, moves, plugin=plugin)
        assert mismatch is None, str(mismatch)


# ---------------------------------------------------------------- the oracle can fail


def _retargeted(protocol: Protocol) -> Protocol:
    """The first transition a person fires, sent to another non-terminal step."""
    transitions = list(protocol.transitions)
    for i, t in enumerate(transitions):
        if "clock" in t.by:
            continue
        others = [k for k, s in protocol.steps.items() if not s.terminal and k != t.target]
        transitions[i] = evolve(t, target=others[0])
        return evolve(protocol, transitions=tuple(transitions))
    raise AssertionError("no transition to mutate")


def _slower_deadline(protocol: Protocol) -> Protocol:
    """The first deadline one minute later."""
    steps = dict(protocol.steps)
    for key, step in steps.items():
        if step.deadline is not None:
            steps[key] = evolve(
                step,
                deadline=evolve(step.deadline, after=step.deadline.after + timedelta(minutes=1)),
            )
            return evolve(protocol, steps=steps)
    raise AssertionError("no deadline to mutate")


def _wider_by(protocol: Protocol) -> Protocol:
    """The first handover a person fires, named as fired by every party (the handover
    rule still lets only the receiving party take it)."""
    transitions = list(protocol.transitions)
    for i, t in enumerate(transitions):
        receiver = protocol.steps[t.target].responsible
        if "clock" not in t.by and any(
            protocol.steps[s].responsible != receiver for s in protocol.sources_of(t)
        ):
            transitions[i] = evolve(t, by=tuple(protocol.parties))
            return evolve(protocol, transitions=tuple(transitions))
    raise AssertionError("no transition to mutate")


def _shortest_mismatch(
    engine_runs: Protocol, reference: Protocol, *, guided_only: bool = False
) -> str:
    """Hypothesis's shortest sequence on which the engines disagree (shrunk)."""
    moves = find(
        _guided_moves(reference)
        if guided_only
        else st.one_of(_random_moves(reference), _guided_moves(reference)),
        lambda moves: run(engine_runs, moves, reference=reference) is not None,
        settings=settings(max_examples=400, database=None, derandomize=True, deadline=None),
    )
    mismatch = run(engine_runs, moves, reference=reference)
    assert mismatch is not None
    print(mismatch)
    return str(mismatch)


def _narrower_by(protocol: Protocol) -> Protocol:
    """The first transition a person fires, fired by another party instead."""
    transitions = list(protocol.transitions)
    for i, t in enumerate(transitions):
        others = [p for p in protocol.parties if p not in t.by]
        if "clock" not in t.by and others:
            transitions[i] = evolve(t, by=(others[0],))
            return evolve(protocol, transitions=tuple(transitions))
    raise AssertionError("no transition to mutate")


def test_an_equivalent_mutant_is_not_reported() -> None:
    """A wider ``by`` on a handover changes nothing (the handover rule lets only the
    receiver take it): the oracle finds no difference where there is none."""
    original = template_protocol()
    wider = _wider_by(original)
    assert wider != original
    for moves in guided_paths(original):
        assert run(wider, moves, reference=original) is None


@pytest.mark.parametrize("mutate", [_retargeted, _slower_deadline, _narrower_by])
def test_a_mutated_protocol_is_reported_with_its_shortest_sequence(
    mutate: Callable[[Protocol], Protocol],
) -> None:
    original = template_protocol()
    mutant = mutate(original)
    assert mutant != original
    report = _shortest_mismatch(mutant, original)
    assert report.startswith("mismatch after ")
    # shrunk: no move can be left out (the last one shows the difference)
    assert report.count("\n  ") <= 4, report


def test_a_mutated_engine_decision_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handover rule switched off in the engine: a party that is not the receiver
    takes a handover the protocol lets only the receiver take."""
    protocol = _wider_by(template_protocol())
    assert run(protocol, guided_paths(protocol)[0]) is None

    def careless(self: CompiledProtocol, state: str, transition: Transition, role: str) -> bool:
        return role in transition.by

    monkeypatch.setattr(CompiledProtocol, "permitted", careless)
    report = _shortest_mismatch(protocol, protocol, guided_only=True)
    assert "lastresort gave taken" in report
