"""The differential oracle: one encounter driven through three engines step by step.

- lastresort's :class:`~lastresort.Engine` (VirtualClock, MemoryStore, the protocol's
  own plugin answering its guards, a wrapper recording each answer);
- the SCXML document :func:`lastresort.to_scxml` writes, run by python-statemachine
  (its SCXML reader and interpreter), on a virtual clock;
- a sismic statechart (YAML) translated here from the protocol, on sismic's simulated
  clock, with the deadlines as eventless ``time >=`` transitions and the dated deadlines
  computed by the chart itself (so three different deadline mechanisms meet).

Every outcome the Engine gives is also predicted from the protocol's rules alone
(:func:`predict`: ``from``, ``by``, the handover rule, the recorded guard answers).
The guard answers are the Engine's (recorded by a hook wrapper) and replayed as the
value of the ``guard_<name>`` condition in the other two.

python-statemachine's sync engine waits (``sleep``) for a delayed event that is not yet
due; here time is virtual, so the wait ends the run of the queue instead (``_Idle``) and
the next step, at a later virtual time, takes the event once it is due.
"""

from __future__ import annotations

import functools
import inspect
import json
import random
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pluggy
import statemachine.engines.sync as psm_sync
import statemachine.event_data as psm_event_data
from attrs import frozen
from sismic.clock import SimulatedClock
from sismic.interpreter import Interpreter
from sismic.io import import_from_yaml
from statemachine.io import load as load_scxml

import lastresort as lr
from lastresort.cli.new_plugin import render_plugin
from lastresort.protocol.model import CLOCK, DeadlineDate, FactKind, Protocol
from lastresort.render.scxml import guard_variables, permitted_roles, to_scxml

hookimpl = pluggy.HookimplMarker("lastresort")

#: a step of a sequence: fire (event, role, signed actor id?, choice of a chosen date in
#: (0, 1]) or let time pass (seconds)
Fire = tuple[str, str, bool, float]
Wait = float
Move = Fire | Wait

START_TIMES = (
    datetime(2026, 1, 5, 10, 0, tzinfo=UTC),  # a Monday in office hours
    datetime(2026, 1, 10, 22, 30, tzinfo=UTC),  # a Saturday night
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # half an hour before the spring DST change
)


def template_protocol() -> Protocol:
    """The protocol ``lastresort new-plugin`` writes (its ``.toml``, as written)."""
    files = render_plugin("oracle-town", "Oracle Town")
    (text,) = [v for k, v in files.items() if k.endswith(".toml") and "src/" in k]
    return lr.load_protocol(tomllib.loads(text))


class Recorder:
    """A ``lastresort_guard`` wrapper: records what the protocol's own plugin answered."""

    def __init__(self) -> None:
        self.answers: dict[str, bool] = {}

    @hookimpl(wrapper=True)
    def lastresort_guard(self, name: str) -> Iterator[None]:
        reason = yield
        self.answers[name] = reason is None
        return reason  # type: ignore[return-value]


# ---------------------------------------------------------------- the prediction


@frozen
class Outcome:
    """What a fire gives: the error class name (``None``: taken) and the step after."""

    refused: str | None
    state: str


def predict(
    protocol: Protocol, state: str, event: str, role: str, answers: dict[str, bool]
) -> tuple[str | None, str]:
    """From the protocol's rules only: ``(refusal, target)`` of firing ``event`` as
    ``role`` in ``state``, with the guards answering as recorded."""
    candidates = [
        t
        for t in protocol.transitions
        if t.event == event
        and (state in t.sources or ("*" in t.sources and not protocol.steps[state].terminal))
    ]
    if not candidates:
        return "TransitionNotAllowed", state
    permitted = [t for t in candidates if role in permitted_roles(protocol, state, t)]
    if not permitted:
        return "NotPermitted", state
    for t in permitted:
        if t.guard is None or answers.get(t.guard, False):
            return None, t.target
    return "GuardRefused", state


def latest_due(protocol: Protocol, step: str, entries: dict[str, float]) -> float:
    """A dated deadline's latest moment (seconds since opening): ``after`` past the last
    entry of its ``from`` step (the opening when never entered)."""
    spec = protocol.steps[step].deadline
    assert spec is not None
    anchor = entries.get(spec.since, 0.0) if spec.since is not None else entries[step]
    return anchor + spec.after.total_seconds()


# ---------------------------------------------------------------- python-statemachine


class _Idle(Exception):
    """python-statemachine would sleep until a delayed event falls due."""


def _sleep(_: float) -> None:
    raise _Idle


@functools.lru_cache(maxsize=64)
def _scxml_class(document: str) -> Any:
    """The StateChart class python-statemachine builds from the document (built once)."""
    return load_scxml(document, format="scxml")


@functools.lru_cache(maxsize=64)
def scxml_of(protocol: Protocol) -> str:
    """The exported document (exported once per protocol)."""
    return to_scxml(protocol)


class ScxmlRun:
    """The exported document run by python-statemachine on a virtual clock."""

    def __init__(self, document: str, guards: dict[str, str]) -> None:
        self.now = 0.0
        self.guards = guards
        with self._time():
            cls = _scxml_class(document)
            self.machine = cls.__new__(cls)
            with suppress(_Idle):
                self.machine.__init__()

    def _now(self) -> float:
        return self.now

    @contextmanager
    def _time(self) -> Iterator[None]:
        with (
            mock.patch.object(psm_sync, "monotonic", self._now),
            mock.patch.object(psm_event_data, "monotonic", self._now),
            mock.patch.object(psm_sync, "sleep", _sleep),
        ):
            yield

    def send(self, event: str, answers: dict[str, bool], **data: Any) -> None:
        for name, variable in self.guards.items():
            setattr(self.machine.model, variable, answers.get(name, False))
        with self._time(), suppress(_Idle):
            self.machine.send(event, **data)

    def advance(self, seconds: float, answers: dict[str, bool]) -> None:
        self.now += seconds
        self.send("lr.tick", answers, role="nobody")

    @property
    def state(self) -> str:
        (value,) = self.machine.configuration_values
        return str(value)


# ---------------------------------------------------------------- sismic


def sismic_yaml(protocol: Protocol) -> str:
    """A sismic statechart of ``protocol`` (YAML; written as JSON, which YAML reads).

    Who may fire: ``event.role in (...)``; guards: context variables ``guard_<name>``;
    candidates in declaration order by descending transition priority; a deadline: on
    entry (plain) or on the entering transition (dated) ``due_<step>`` is set, and an
    eventless transition ``time >= due_<step>`` re-arms it and sends the clock event.
    """
    guards = guard_variables(protocol)
    sinces = {s.deadline.since for s in protocol.steps.values() if s.deadline and s.deadline.since}
    preamble = [f"{v} = False" for v in guards.values()]
    preamble += [f"entered_{s} = 0.0" for s in sinces]
    preamble += [f"due_{k} = 0.0" for k, s in protocol.steps.items() if s.deadline]
    states = []
    for key, step in protocol.steps.items():
        entry = []
        if key in sinces:
            entry.append(f"entered_{key} = time")
        spec = step.deadline
        dated = spec is not None and (spec.since is not None or spec.until is not None)
        if spec is not None and not dated:
            entry.append(f"due_{key} = time + {spec.after.total_seconds()}")
        transitions = []
        candidates = [
            (i, t) for i, t in enumerate(protocol.transitions) if key in protocol.sources_of(t)
        ]
        for rank, (_, t) in enumerate(candidates):
            roles = permitted_roles(protocol, key, t)
            guard = f"event.role in {roles!r}"
            if t.guard is not None:
                guard += f" and {guards[t.guard]}"
            item: dict[str, Any] = {
                "target": t.target,
                "event": t.event,
                "guard": guard,
                "priority": len(candidates) - rank,
            }
            target = protocol.steps[t.target].deadline
            if target is not None and (target.since is not None or target.until is not None):
                latest = f"entered_{target.since} + {target.after.total_seconds()}"
                if target.until is DeadlineDate.CHOSEN:
                    item["action"] = f"due_{t.target} = event.until_at"
                elif target.until is DeadlineDate.KEPT:
                    kept = f"due_{key}" if step.deadline is not None else latest
                    item["action"] = f"due_{t.target} = min({kept}, {latest})"
                else:
                    item["action"] = f"due_{t.target} = {latest}"
            transitions.append(item)
        if spec is not None and not step.terminal:
            transitions.append(
                {
                    "guard": f"time >= due_{key}",
                    "action": f"due_{key} = time + {spec.after.total_seconds()}\n"
                    f"send({spec.event!r}, role={CLOCK!r})",
                    "priority": len(candidates) + 1,
                }
            )
        state: dict[str, Any] = {"name": key}
        if step.terminal:
            state["type"] = "final"
        if entry:
            state["on entry"] = "\n".join(entry)
        if transitions:
            state["transitions"] = transitions
        states.append(state)
    chart = {
        "statechart": {
            "name": protocol.id,
            "preamble": "\n".join(preamble) or "pass",
            "root state": {"name": "lr_root", "initial": protocol.initial, "states": states},
        }
    }
    return json.dumps(chart, indent=1)


@functools.lru_cache(maxsize=64)
def _sismic_chart(protocol: Protocol) -> Any:
    """The sismic statechart (read once; interpreters never change it)."""
    return import_from_yaml(sismic_yaml(protocol))


class SismicRun:
    """The sismic translation on sismic's simulated clock."""

    def __init__(self, protocol: Protocol) -> None:
        self.guards = guard_variables(protocol)
        self.clock = SimulatedClock()
        self.interpreter = Interpreter(_sismic_chart(protocol), clock=self.clock)
        self.last = protocol.initial
        self._execute()

    def _execute(self) -> None:
        # sismic stops with an empty configuration once the root's final state is entered:
        # the step entered last is the state
        for step in self.interpreter.execute(max_steps=1000):
            for name in step.entered_states:
                if name != "lr_root":
                    self.last = name

    def send(self, event: str | None, answers: dict[str, bool], **data: Any) -> None:
        for name, variable in self.guards.items():
            self.interpreter.context[variable] = answers.get(name, False)
        if event is not None:
            self.interpreter.queue(event, **data)
        self._execute()

    def advance(self, seconds: float, answers: dict[str, bool]) -> None:
        self.clock.time += seconds
        self.send(None, answers)

    @property
    def state(self) -> str:
        return self.last


# ---------------------------------------------------------------- the run


@frozen
class Mismatch:
    """The first step at which the engines disagree."""

    moves: tuple[Move, ...]
    detail: str

    def __str__(self) -> str:
        lines = [f"mismatch after {len(self.moves)} moves: {self.detail}"]
        lines += [f"  {i + 1}. {m!r}" for i, m in enumerate(self.moves)]
        return "\n".join(lines)


def engine_for(
    protocol: Protocol, plugin: object | None, recorder: Recorder, start: datetime
) -> lr.Engine:
    plugins = [recorder] if plugin is None else [plugin, recorder]
    return lr.Engine(
        protocols=None if plugin is not None else [protocol],
        plugins=plugins,
        store=lr.MemoryStore(),
        clock=lr.VirtualClock(start),
        entry_points=False,
    )


def run(
    protocol: Protocol,
    moves: Sequence[Move],
    *,
    plugin: object | None = None,
    reference: Protocol | None = None,
    facts: dict[str, str | bool] | None = None,
    channel: str | None = None,
    start: datetime = START_TIMES[0],
) -> Mismatch | None:
    """Drive ``moves`` through the three engines; the first disagreement, or ``None``.

    :param protocol: what the Engine runs (and what the guards' plugin provides).
    :param reference: what the other two run and the prediction reads (default:
        ``protocol``); a mutant here is how the mutation check proves the oracle sharp.
    """
    reference = protocol if reference is None else reference
    recorder = Recorder()
    engine = engine_for(protocol, plugin, recorder, start)
    opener = next(iter(protocol.parties))
    encounter = engine.open(
        protocol.id, lr.Actor(opener, "staff-1"), facts=facts or {}, channel=channel
    )
    scxml = ScxmlRun(scxml_of(reference), guard_variables(reference))
    chart = SismicRun(reference)
    now = 0.0
    # what the driver tracks for python-statemachine's dated deadlines (SCXML has no clock
    # to read: the host computes the delay): when each step was last entered, and when
    # the deadline of the step the document is in falls due
    entries: dict[str, float] = {reference.initial: 0.0}
    dues: dict[str, float] = {}
    done: list[Move] = []

    def tick() -> None:
        for _ in range(20):
            if not engine.tick():
                return

    for move in moves:
        done.append(move)
        recorder.answers.clear()
        before = scxml.state
        data: dict[str, Any] = {}
        if isinstance(move, float | int):
            engine.clock.advance(timedelta(seconds=move))  # type: ignore[attr-defined]
            tick()
            now += move
            scxml.advance(move, recorder.answers)
            chart.advance(move, recorder.answers)
        else:
            event, role, signed, choice = move
            actor = lr.Actor(role, "staff-7" if signed else None)
            data["role"] = role
            until = None
            dated = _dated_target(reference, before, event)
            if dated is not None:
                key, spec = dated
                latest = latest_due(reference, key, entries)
                if spec.until is DeadlineDate.CHOSEN:
                    due = float(round(now + max(latest - now, 0.0) * choice))
                    until = start + timedelta(seconds=due)
                    data["until_at"] = due
                elif spec.until is DeadlineDate.KEPT:
                    due = min(dues.get(before, latest), latest)
                else:
                    due = latest
                data["deadline"] = f"{max(due - now, 0.0):.0f}s"
                data["due"] = due
            try:
                engine.fire(encounter.id, event, actor, until=until)
                refused: str | None = None
            except lr.ActorRefused:
                # every actor but the clock must carry an id: refused before any rule is
                # read, nothing changed; SCXML and sismic know no ids, so they are not told
                after = engine.get(encounter.id).state
                if signed or role == "clock" or after != before:
                    return Mismatch(
                        tuple(done),
                        f"an actor {'with' if signed else 'without'} an id was refused as"
                        f" ActorRefused, lastresort left the encounter in {after!r}",
                    )
                continue
            except (lr.TransitionNotAllowed, lr.NotPermitted, lr.GuardRefused) as exc:
                refused = type(exc).__name__
            except lr.InvalidArgument:
                done.pop()
                continue  # a chosen date that cannot be (now is past the latest): nothing changed
            expected, target = predict(reference, before, event, role, recorder.answers)
            after = engine.get(encounter.id).state
            if refused != expected or after != target:
                return Mismatch(
                    tuple(done),
                    f"the protocol's rules predict {expected or 'taken'} -> {target!r},"
                    f" lastresort gave {refused or 'taken'} -> {after!r}",
                )
            tick()
            scxml.send(event, recorder.answers, **data)
            chart.send(event, recorder.answers, **data)
        state = scxml.state
        if state != before:
            entries[state] = now
            spec = reference.steps[state].deadline
            if spec is not None:
                plain = spec.since is None and spec.until is None
                dues[state] = now + spec.after.total_seconds() if plain else data.get("due", now)
        states = {
            "lastresort": engine.get(encounter.id).state,
            "python-statemachine": state,
            "sismic": chart.state,
        }
        if len(set(states.values())) != 1:
            return Mismatch(tuple(done), f"after move {len(done)}: {states}")
    return None


def _dated_target(protocol: Protocol, state: str, event: str) -> tuple[str, Any] | None:
    """The step with a dated deadline that ``event`` may enter from ``state``."""
    for t in protocol.transitions:
        spec = protocol.steps[t.target].deadline
        if (
            t.event == event
            and state in protocol.sources_of(t)
            and spec is not None
            and (spec.since is not None or spec.until is not None)
        ):
            return t.target, spec
    return None


# ---------------------------------------------------------------- sequences


def waits_of(protocol: Protocol) -> list[float]:
    """Time steps around every deadline (one second before, at, after) and a few plain ones."""
    out = {60.0, 3600.0, 86400.0}
    for step in protocol.steps.values():
        if step.deadline is not None:
            after = step.deadline.after.total_seconds()
            out |= {after - 1, after, after + 1}
    return sorted(w for w in out if w > 0)


def moves_from(protocol: Protocol, state: str) -> list[tuple[Move, str]]:
    """Each move the rules allow from ``state`` (guards passing) and the step it leads to:
    a fire by the first role permitted, or for a clock transition the wait for the deadline."""
    out: list[tuple[Move, str]] = []
    step = protocol.steps[state]
    for t in protocol.transitions:
        if state not in protocol.sources_of(t):
            continue
        roles = [r for r in permitted_roles(protocol, state, t) if r != CLOCK]
        if roles:
            out.append(((t.event, roles[0], True, 0.5), t.target))
        elif step.deadline is not None and step.deadline.event == t.event:
            out.append((step.deadline.after.total_seconds() + 1, t.target))
    return out


def guided_paths(protocol: Protocol) -> list[list[Move]]:
    """For every (step, transition) the rules allow: the shortest walk from the initial
    step that ends by taking it (breadth first over the moves of :func:`moves_from`)."""
    paths: dict[str, list[Move]] = {protocol.initial: []}
    queue = [protocol.initial]
    out: list[list[Move]] = []
    while queue:
        state = queue.pop(0)
        for move, target in moves_from(protocol, state):
            out.append([*paths[state], move])
            if target not in paths:
                paths[target] = [*paths[state], move]
                queue.append(target)
    return out


# ---------------------------------------------------------------- openings


def openings(protocol: Protocol, count: int = 64) -> list[dict[str, Any]]:
    """Ways an encounter may be opened: no facts on the first channel at the first start
    time, then ``count`` more drawn with a fixed seed (facts, channel, start time)."""
    rng = random.Random(protocol.id)
    out: list[dict[str, Any]] = [
        {"facts": {}, "channel": protocol.channels[0], "start": START_TIMES[0]}
    ]
    for _ in range(count):
        facts: dict[str, str | bool] = {}
        for key, fact in protocol.facts.items():
            if rng.random() < 0.8:
                facts[key] = (
                    rng.random() < 0.5 if fact.kind is FactKind.BOOL else rng.choice(fact.values)
                )
        out.append(
            {
                "facts": facts,
                "channel": rng.choice(protocol.channels),
                "start": rng.choice(START_TIMES),
            }
        )
    return out


def guard_allows(
    plugin: object | None, protocol: Protocol, opening: dict[str, Any], name: str
) -> bool:
    """What the plugin's own guard answers for an encounter so opened (a signed actor)."""
    answer = getattr(plugin, "lastresort_guard", None)
    if answer is None:
        return True
    encounter = lr.Encounter(
        id="oracle",
        protocol=protocol.id,
        protocol_version=protocol.version,
        state=protocol.initial,
        responsible=None,
        facts=opening["facts"],
        version=1,
        opened_at=opening["start"],
        channel=opening["channel"],
    )
    given = {
        "name": name,
        "encounter": encounter,
        "event": "",
        "actor": lr.Actor("oracle", "staff-7"),
    }
    wanted = inspect.signature(answer).parameters
    return answer(**{k: v for k, v in given.items() if k in wanted}) is None


def opening_for(
    protocol: Protocol, plugin: object | None, moves: Sequence[Move], refused: str | None = None
) -> dict[str, Any] | None:
    """An opening of :func:`openings` under which every guard of the transitions the
    moves fire allows them, but ``refused`` refuses; ``None`` when there is none."""
    fired = {m[0] for m in moves if isinstance(m, tuple)}
    names = {t.guard for t in protocol.transitions if t.event in fired and t.guard is not None}
    names.discard(refused)
    for opening in openings(protocol):
        if all(guard_allows(plugin, protocol, opening, name) for name in names) and (
            refused is None or not guard_allows(plugin, protocol, opening, refused)
        ):
            return opening
    return None
