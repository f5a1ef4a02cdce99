"""The demo walk: one whole encounter through a protocol on a virtual clock.

Arrival, one missed deadline with its escalation, the handover, and on to a
closing step along the shortest path, delivering the outbox after every step.
Also used by plugin authors' tests (:func:`lastresort.testing.walk_happy_path`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from attrs import frozen

from ..clock import VirtualClock
from ..engine.engine import Engine
from ..errors import GuardRefused, LastResortError
from ..events import Event
from ..protocol.model import (
    ACUTE_DANGER,
    CLOCK,
    Actor,
    PartyKind,
    Protocol,
    ProtocolKind,
    Transition,
)

__all__ = ["DemoRun", "actor_for", "demo_actor", "happy_path", "next_move", "run_demo"]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
#: A Monday morning, when the counter is open.
DEMO_START = datetime(2026, 3, 2, 10, 5, tzinfo=AMSTERDAM)


def actor_for(protocol: Protocol, state: str, transition: Transition) -> str:
    """A role that may fire ``transition`` from ``state``: the receiving party for
    a handover, otherwise the first role of ``by`` that is not the clock."""
    compiled_receiver = protocol.steps[transition.target].responsible
    if (
        compiled_receiver != protocol.steps[state].responsible
        and compiled_receiver in transition.by
    ):
        return compiled_receiver
    roles = [role for role in transition.by if role != CLOCK]
    return roles[0] if roles else CLOCK


def demo_actor(role: str) -> Actor:
    """The actor the demo walk uses for ``role``: every actor but the clock carries a
    pseudonymous id (``demo:<role>``), as :meth:`lastresort.Engine.fire` requires."""
    return Actor(role) if role == CLOCK else Actor(role, f"demo:{role}")


def _can_close(protocol: Protocol) -> set[str]:
    """Steps from which a closing step is reachable by people (no clock, no acute danger)."""
    closing = set(protocol.closing_steps())
    into: dict[str, set[str]] = {}
    for transition in protocol.transitions:
        if transition.event == ACUTE_DANGER or transition.by == (CLOCK,):
            continue
        for source in protocol.sources_of(transition):
            into.setdefault(transition.target, set()).add(source)
    reach, frontier = set(closing), deque(closing)
    while frontier:
        for source in into.get(frontier.popleft(), ()):
            if source not in reach:
                reach.add(source)
                frontier.append(source)
    return reach


def next_move(
    protocol: Protocol,
    state: str,
    visited: frozenset[str] = frozenset(),
    *,
    prefer: PartyKind | None = None,
    refused: Collection[tuple[str, str]] = (),
) -> Transition | None:
    """The transition a demo (or a happy-path test) takes from ``state``: one that
    keeps a closing step reachable, preferring new steps, then (with ``prefer``, in a
    step whose responsible party is of another kind) a party of that kind acting and
    then a closing step, then the responsible party acting itself, then declaration
    order. ``None`` when there is none.

    :param prefer: the demo passes :attr:`PartyKind.MAYOR`: where the mayor may act
        (meet the child), the walk shows it rather than the expert calling it off.
    :param refused: ``(step, event)`` pairs a guard refused on this walk: not taken
        again (the demo then takes the way the guard leaves open)."""
    reach = _can_close(protocol)
    responsible = protocol.steps[state].responsible
    # grouped by event in order of first declaration, like CompiledProtocol.events();
    # read from the data so that a walk never builds a second machine
    by_event: dict[str, list[Transition]] = {}
    for transition in protocol.transitions:
        if state in protocol.sources_of(transition):
            by_event.setdefault(transition.event, []).append(transition)
    options = [
        transition
        for event, group in by_event.items()
        if event != ACUTE_DANGER
        for transition in group
        if transition.by != (CLOCK,)
        and transition.target in reach
        and (state, transition.event) not in refused
    ]
    if not options:
        return None
    closing = set(protocol.closing_steps())
    # only where a party of that kind steps in (the mayor meeting the child while the
    # expert is responsible); in a step it is responsible for itself (huisverbod: the
    # mayor decides on an order) its choice of a closing step would end the walk at once
    stepping_in = (
        prefer is not None
        and responsible is not None
        and protocol.parties[responsible].kind is not prefer
    )
    return min(
        options,
        key=lambda t: (
            t.target in visited,
            stepping_in and protocol.parties[actor_for(protocol, state, t)].kind is not prefer,
            stepping_in and t.target not in closing,
            actor_for(protocol, state, t) != responsible,
            options.index(t),
        ),
    )


def happy_path(protocol: Protocol, start: str | None = None) -> list[tuple[str, Transition]]:
    """The demo's path from ``start`` (the initial step) to a closing step, as
    ``(from_step, transition)`` pairs (see :func:`next_move`); empty when none."""
    state = start or protocol.initial
    closing = set(protocol.closing_steps())
    path: list[tuple[str, Transition]] = []
    visited = {state}
    while state not in closing and len(path) <= len(protocol.steps):
        move = next_move(protocol, state, frozenset(visited))
        if move is None:
            return []
        path.append((state, move))
        state = move.target
        visited.add(state)
    return path if state in closing else []


@frozen
class DemoRun:
    """What :func:`run_demo` did: the engine, the encounter id and its timeline."""

    engine: Engine
    encounter_id: str
    timeline: Sequence[Event]
    start: datetime


def run_demo(
    engine: Engine | None = None,
    protocol_id: str = "taskforce",
    clock: VirtualClock | None = None,
    escalate: bool = True,
) -> DemoRun:
    """Walk one encounter to a closing step (see the module docstring).

    :param engine: an engine whose clock is ``clock`` (default: a new one on a
        :class:`MemoryStore` and a virtual clock starting on a Monday morning).
    :param escalate: let the first waiting step's deadline be missed once.
    """
    clock = clock or VirtualClock(DEMO_START)
    engine = engine or Engine(clock=clock)
    protocol = engine.protocol(protocol_id)
    start = clock.now()
    first = next(iter(protocol.parties))
    opener = protocol.steps[protocol.initial].responsible or first
    encounter = engine.open(protocol_id, demo_actor(opener), facts=_demo_facts(protocol))
    engine.deliver()
    escalated = not escalate
    visited = {protocol.initial}
    refused: set[tuple[str, str]] = set()
    for _ in range(4 * len(protocol.steps) + 4):
        current = engine.get(encounter.id)
        if current.closed:
            break
        step = protocol.steps[current.state]
        pending = engine.deadlines(encounter.id)
        # an order (huisverbod) runs its course on the clock; an encounter escalates once
        runs_on_clock = (
            protocol.kind is ProtocolKind.ORDER
            and escalated
            and any(
                t.target != current.state
                for d in pending
                for t in protocol.transitions
                if t.event == d.event and current.state in protocol.sources_of(t)
            )
        )
        if runs_on_clock or (not escalated and step.kind.value == "waiting" and pending):
            clock.set(max(clock.now(), pending[0].due + timedelta(minutes=1)))
            engine.tick()
            engine.deliver()
            escalated = True
            continue
        move = next_move(
            protocol, current.state, frozenset(visited), prefer=PartyKind.MAYOR, refused=refused
        )
        if move is None:
            if pending:  # only the clock can move it on
                clock.set(max(clock.now(), pending[0].due + timedelta(minutes=1)))
                engine.tick()
                engine.deliver()
                continue
            break
        clock.advance(timedelta(minutes=7))
        try:
            engine.fire(
                encounter.id, move.event, demo_actor(actor_for(protocol, current.state, move))
            )
        except GuardRefused:
            # the facts rule this way out (a disclosure is reported, not referred on):
            # nothing changed; take the way the guard leaves open
            refused.add((current.state, move.event))
            continue
        except LastResortError:
            break
        visited.add(move.target)
        engine.deliver()
    return DemoRun(engine, encounter.id, engine.timeline(encounter.id), start)


def _demo_facts(protocol: Protocol) -> dict[str, str | bool]:
    facts: dict[str, str | bool] = {}
    for key, fact in protocol.facts.items():
        if fact.kind.value == "bool":
            facts[key] = True
        elif fact.values:
            facts[key] = fact.values[len(fact.values) // 2]
    return facts
