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
from lastresort.engine import engine as engine_module
from lastresort.engine.dispatch import CompiledProtocol
from lastresort.protocol.model import DeadlineDate, FactKind, Protocol, Transition
from tests.oracle_kit import (
    START_TIMES,
    Move,
    guided_paths,
    moves_from,
    opening_for,
    openings,
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
    max_examples=20,
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
    """A walk along the moves the rules allow (guards assumed to pass), keeping the time:
    a deadline is waited for to one second before or after it falls due (dated ones
    too), and now and then a random wait or actor."""
    state, now, moves = protocol.initial, 0.0, []
    entries: dict[str, float] = {state: 0.0}
    due = _due(protocol, state, entries, None, now, 1.0)
    for _ in range(draw(st.integers(1, 25))):
        options = moves_from(protocol, state)
        if not options or draw(st.integers(0, 5)) == 0:
            wait = draw(st.sampled_from(waits_of(protocol)))
            moves.append(wait)
            now += wait
            continue
        move, target = draw(st.sampled_from(options))
        early = False
        if isinstance(move, tuple):
            choice = draw(st.sampled_from([0.25, 0.5, 1.0]))
            move = (move[0], move[1], move[2], choice)
            if draw(st.integers(0, 4)) == 0:
                move = (move[0], draw(st.sampled_from(sorted(protocol.parties))), *move[2:])
        else:
            assert due is not None
            early = draw(st.integers(0, 3)) == 0
            move = max(due - now + (-1.0 if early else 1.0), 1.0)
            choice = 1.0
            if early:
                target = state
        moves.append(move)
        now += move if isinstance(move, float) else 0.0
        if isinstance(move, tuple) or not early:  # the step is entered (again)
            entries[target] = now
            due = _due(protocol, target, entries, due, now, choice)
        state = target
    return moves


def _due(
    protocol: Protocol,
    step: str,
    entries: dict[str, float],
    pending: float | None,
    now: float,
    choice: float,
) -> float | None:
    """When ``step``'s deadline falls due (seconds), entered ``now``."""
    spec = protocol.steps[step].deadline
    if spec is None:
        return None
    if spec.since is None and spec.until is None:
        return now + spec.after.total_seconds()
    latest = entries.get(spec.since or step, 0.0) + spec.after.total_seconds()
    if spec.until is DeadlineDate.CHOSEN:
        return float(round(now + max(latest - now, 0.0) * choice))
    if spec.until is DeadlineDate.KEPT:
        return min(pending if pending is not None else latest, latest)
    return latest


@pytest.mark.parametrize("name", IDS)
@ORACLE
@given(data=st.data())
def test_random_and_guided_sequences_agree(name: str, data: st.DataObject) -> None:
    protocol, plugin = SHIPPED[name]
    opening = data.draw(
        st.one_of(_opening(protocol), st.sampled_from(openings(protocol))), label="opening"
    )
    moves = data.draw(st.one_of(_random_moves(protocol), _guided_moves(protocol)), label="moves")
    mismatch = run(protocol, moves, plugin=plugin, **opening)
    assert mismatch is None, str(mismatch)


@pytest.mark.parametrize("name", IDS)
def test_every_transition_taken_on_its_shortest_walk_agrees(name: str) -> None:
    protocol, plugin = SHIPPED[name]
    paths = guided_paths(protocol)
    assert len(paths) >= len(protocol.transitions)
    refusals = 0
    for moves in paths:
        # opened so that the guards on the way allow
        opening = opening_for(protocol, plugin, moves) or {}
        mismatch = run(protocol, moves, plugin=plugin, **opening)
        assert mismatch is None, str(mismatch)
        # and, for a guarded last step, so that its guard refuses (the answer replayed)
        last = moves[-1]
        guards = {
            t.guard for t in protocol.transitions if isinstance(last, tuple) and t.event == last[0]
        }
        for guard in sorted(g for g in guards if g is not None):
            refusing = opening_for(protocol, plugin, moves, refused=guard)
            if refusing is not None:
                refusals += 1
                mismatch = run(protocol, moves, plugin=plugin, **refusing)
                assert mismatch is None, str(mismatch)
    guarded = [t for t in protocol.transitions if t.guard is not None]
    assert refusals >= (1 if guarded and plugin is not None else 0)


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
    engine_runs: Protocol,
    reference: Protocol,
    plugin: object | None = None,
    **opening: Any,
) -> str:
    """Hypothesis's shortest sequence on which the engines disagree (shrunk)."""
    moves = find(
        _guided_moves(reference),
        lambda moves: (
            run(engine_runs, moves, reference=reference, plugin=plugin, **opening) is not None
        ),
        settings=settings(
            max_examples=400,
            database=None,
            derandomize=True,
            deadline=None,
        ),
    )
    mismatch = run(engine_runs, moves, reference=reference, plugin=plugin, **opening)
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
    report = _shortest_mismatch(protocol, protocol)
    assert "lastresort gave taken" in report


def test_a_mutated_dated_deadline_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's dated deadlines (``from``/``until``) an hour late: the SCXML run (the
    host's delay) and the sismic chart (its own clock arithmetic) both disagree.

    A huisverbod suspended by the court ends 10 days after its first day, wherever the
    suspension began."""
    protocol, plugin = SHIPPED["huisverbod"]
    opening = {"facts": {"subject": "adult", "urgent": True}}
    moves: list[Move] = [
        ("consult_veilig_thuis", "mayor", True, 1.0),
        ("veilig_thuis_consulted", "mayor", True, 1.0),
        ("impose", "mayor", True, 1.0),
        3 * 86400.0,
        ("court_suspends", "mayor", True, 1.0),
        7 * 86400.0 + 1,  # one second past the 10 days
    ]
    assert run(protocol, moves, plugin=plugin, **opening) is None
    real = engine_module.dated

    def late(*args: Any, **kwargs: Any) -> Any:
        due = real(*args, **kwargs)
        return None if due is None else due + timedelta(hours=1)

    monkeypatch.setattr(engine_module, "dated", late)
    mismatch = run(protocol, moves, plugin=plugin, **opening)
    assert mismatch is not None
    assert mismatch.detail == (
        "after move 6: {'lastresort': 'suspended', 'python-statemachine': 'expired',"
        " 'sismic': 'expired'}"
    )
