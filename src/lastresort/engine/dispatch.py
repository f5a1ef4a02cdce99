"""Protocol -> one compiled ``transitions.Machine``, shared by every encounter.

An encounter is a small frozen record; it is never bound to the machine. To move
one, the machine's event is triggered on a throwaway model made for that one call
(a :class:`_Run` holding the encounter's step and the call's permit and guard), which
is also handed to the transitions' conditions; ``add_model`` per encounter would cost
~9 KB each and grow slower with every open encounter. Nothing shared is written while
the machine runs, so no lock is taken: calls on any threads, and calls nested inside a
guard (a guard that fires another encounter of the same protocol), run independently,
and a slow guard delays only its own call.

The machine is built from ``transitions``' public extension points only
(``transition_cls``, ``event_cls``), with two lean subclasses overriding the public
``Event.trigger`` and ``Transition.execute``: the machine carries no callbacks (no
``prepare``/``before``/``after``, no state ``on_enter``/``on_exit``, no machine-wide
callbacks: it is never handed to anyone to add them) and no queue, so they skip walking
those empty lists, the logging around each of them and ``set_state``'s second lookup of
a state name the machine already checked. Dispatch itself is still ``transitions``':
the event's table of transitions for the model's state (``Machine.get_model_state``),
``MachineError`` for an invalid source, the transitions' conditions in order
(``Condition.check``), and the model's state attribute set to the destination of the
first whose conditions hold. No name of ``transitions`` starting with ``_`` is used
(tests/test_machine.py checks the source), so any ``transitions>=0.9`` works; the same
tests compare this machine with a stock ``transitions.Machine`` on every shipped
protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transitions import Event as Event_
from transitions import EventData, Machine, MachineError
from transitions import Transition as Transition_

from ..errors import TransitionNotAllowed
from ..protocol.model import ACUTE_DANGER, CLOCK, Fact, Protocol, Step, Transition

__all__ = ["CompiledProtocol", "Route", "compile_protocol"]

#: ``permit(transition) -> bool``: may this actor take this transition (``by``, handover)?
Permit = Callable[[Transition], bool]
#: ``guard(transition) -> bool``: does the transition's named guard allow it?
Guard = Callable[[Transition], bool]


class _Cursor:
    """The model the machine is built with (``transitions`` binds its triggers to it).
    It is never moved: :meth:`CompiledProtocol.run` moves a fresh :class:`_Run`."""

    state: str

    def __init__(self) -> None:
        self.trigger: Callable[..., bool]  # attached by transitions.Machine


class _Run:
    """The model of one call of :meth:`CompiledProtocol.run`, and the argument its
    conditions receive: the step, the call's permit and guard, the transition taken."""

    __slots__ = ("guard", "permit", "state", "taken")

    def __init__(self, state: str, permit: Permit, guard: Guard) -> None:
        self.state = state
        self.permit = permit
        self.guard = guard
        self.taken: Transition | None = None


def _yes(_: Transition) -> bool:
    return True


class Route:
    """What the machine may do for one (step, event, role): worked out once and cached.

    :ivar candidates: the transitions for the event from the step, in declaration order.
    :ivar permitted: those the role may take (``by``, the handover rule).
    :ivar permit: ``permit(transition)`` for :meth:`CompiledProtocol.run`.
    :ivar guarded: whether a permitted transition names a guard.
    :ivar plain: the sole candidate when it is unguarded (added to the machine without
        a condition), else ``None``.
    """

    __slots__ = ("candidates", "guarded", "permit", "permitted", "plain")

    def __init__(
        self,
        candidates: tuple[Transition, ...],
        permitted: tuple[Transition, ...],
        plain: Transition | None,
    ) -> None:
        self.candidates = candidates
        self.permitted = permitted
        self.permit: Permit = permitted.__contains__ if len(permitted) < len(candidates) else _yes
        self.guarded = any(t.guard is not None for t in permitted)
        self.plain = plain


class _LeanTransition(Transition_):
    """A transition of a machine without callbacks (public ``Transition.execute``
    overridden): its conditions (``Condition.check``), then the model's state
    attribute set to the destination (what ``Machine.set_state`` does for a state
    named by a string, without looking the name up again: the protocol's validation
    and ``add_transition`` made it one of the machine's states)."""

    def execute(self, event_data: EventData) -> bool:
        for condition in self.conditions:
            if not condition.check(event_data):
                return False
        if self.dest:  # None would be an internal transition: lastresort defines none
            setattr(event_data.model, event_data.machine.model_attribute, self.dest)
        return True


class _LeanEvent(Event_):
    """An event of a machine without callbacks and without a queue (public
    ``Event.trigger`` overridden): the first transition from the model's state
    (``Machine.get_model_state``) whose conditions hold is taken; a state the event
    has no transition from raises ``MachineError`` (the machine does not ignore
    invalid triggers). Only public names of ``transitions`` are used: the model's
    state attribute (``Machine.model_attribute``), the event's ``transitions`` table,
    ``Machine.states``, ``Machine.get_model_state``, ``EventData``,
    ``Transition.execute``."""

    def trigger(self, model: object, *args: object, **kwargs: object) -> bool:
        machine = self.machine
        name = getattr(model, machine.model_attribute)
        candidates = self.transitions.get(name)
        if candidates is None:
            state = machine.get_model_state(model)  # ValueError for a step it does not know
            ignore = state.ignore_invalid_triggers
            if ignore is None:
                ignore = machine.ignore_invalid_triggers
            if ignore:
                return False
            raise MachineError(f"Can't trigger event {self.name} from state {state.name}!")
        # the event has transitions from ``name``, so it is one of the machine's states
        event_data = EventData(machine.states[name], self, machine, model, args, kwargs)
        for transition in candidates:
            event_data.transition = transition
            if transition.execute(event_data):
                event_data.result = True
                return True
        return False


class _LeanMachine(Machine):
    """``transitions.Machine`` with the lean classes above (see the module's docstring)."""

    transition_cls = _LeanTransition
    event_cls = _LeanEvent


class CompiledProtocol:
    """A protocol compiled once into a ``transitions.Machine``.

    :ivar protocol: the protocol it was compiled from.
    """

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        #: the protocol's steps in a plain dict (a FrozenMap lookup is a Python call)
        self.steps: dict[str, Step] = dict(protocol.steps)
        #: the protocol's declared facts in a plain dict (for the same reason)
        self.facts: dict[str, Fact] = dict(protocol.facts)
        self._cursor = _Cursor()
        self._machine = _LeanMachine(
            model=self._cursor,
            states=list(protocol.steps),
            initial=protocol.initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            send_event=False,
        )
        self._from: dict[str, dict[str, tuple[Transition, ...]]] = {
            key: {} for key in protocol.steps
        }
        for transition in protocol.transitions:
            for source in protocol.sources_of(transition):
                by_event = self._from[source]
                by_event[transition.event] = (*by_event.get(transition.event, ()), transition)
        # A sole unguarded candidate needs no condition in the machine: step() checks its
        # permit itself, which keeps transitions' own dispatch as lean as a bare machine.
        self._plain: dict[tuple[str, str], Transition] = {}
        conditions = {id(t): self._condition(t) for t in protocol.transitions}
        for source, by_event in self._from.items():
            for event, group in by_event.items():
                if len(group) == 1 and group[0].guard is None:
                    self._plain[(source, event)] = group[0]
                    self._machine.add_transition(event, source, group[0].target)
                    continue
                for transition in group:
                    self._machine.add_transition(
                        event, source, transition.target, conditions=[conditions[id(transition)]]
                    )
        self._routes: dict[tuple[str, str, str], Route] = {}
        self._events: dict[str, Event_] = self._machine.events
        self._allowed: dict[str, tuple[str, ...]] = {
            key: tuple(events) for key, events in self._from.items()
        }

    def _condition(self, transition: Transition) -> Callable[..., bool]:
        # the call's _Run is the trigger's one argument: transitions hands it on to
        # the conditions (``send_event=False``), so no state is shared between calls
        def condition(run: _Run, *_: Any, **__: Any) -> bool:
            if not run.permit(transition):
                return False
            if transition.guard is not None and not run.guard(transition):
                return False
            run.taken = transition
            return True

        return condition

    @property
    def machine(self) -> Machine:
        """The one ``transitions.Machine`` of this protocol, shared by every encounter.

        For inspection only: never add models to it, and drive it through :meth:`step`.
        Callbacks added to it (``prepare``, ``before``, ``after``, ``on_enter``,
        ``on_exit``, machine-wide ones) are not run: its lean classes skip them.
        """
        return self._machine

    def events(self, state: str) -> tuple[str, ...]:
        """Every event defined from ``state`` (for any actor), in declaration order."""
        return self._allowed.get(state, ())

    def candidates(self, state: str, event: str) -> tuple[Transition, ...]:
        """The transitions for ``event`` from ``state``, in declaration order."""
        return self._from.get(state, {}).get(event, ())

    def receiver(self, state: str, transition: Transition) -> str | None:
        """The party that receives responsibility when ``transition`` is taken from
        ``state``, or ``None`` when it is not a handover."""
        steps = self.protocol.steps
        before = steps[state].responsible
        after = steps[transition.target].responsible
        return after if after != before else None

    def permitted(self, state: str, transition: Transition, role: str) -> bool:
        """Whether ``role`` may take ``transition`` from ``state``: it is named in
        ``by``, and a handover is fired by the receiving party, the clock, or the
        acute-danger path (the receiver accepts before the giver is released)."""
        if role not in transition.by:
            return False
        receiver = self.receiver(state, transition)
        return receiver is None or role in {receiver, CLOCK} or transition.event == ACUTE_DANGER

    def permitted_for(self, state: str, event: str, role: str) -> tuple[Transition, ...]:
        """The candidates for ``event`` from ``state`` that ``role`` may take
        (:meth:`permitted`), in declaration order; computed once per combination."""
        return self.route(state, event, role).permitted

    def route(self, state: str, event: str, role: str) -> Route:
        """The :class:`Route` of ``event`` from ``state`` for ``role`` (cached)."""
        key = (state, event, role)
        found = self._routes.get(key)
        if found is None:
            candidates = self.candidates(state, event)
            found = Route(
                candidates,
                tuple(t for t in candidates if self.permitted(state, t, role)),
                self._plain.get((state, event)),
            )
            if len(self._routes) < 65536:  # roles come from callers: keep the cache bounded
                self._routes[key] = found
        return found

    def step(
        self, state: str, event: str, permit: Permit = _yes, guard: Guard = _yes
    ) -> Transition | None:
        """Run ``event`` from ``state`` through the machine.

        :returns: the transition taken, or ``None`` when every candidate was not
            permitted or refused by its guard.
        :param permit: may the actor take this transition (``by``, handover)?
        :param guard: does the transition's named guard allow it?
        :raises TransitionNotAllowed: when ``event`` is not defined from ``state``.
            An exception raised by ``permit`` or ``guard`` propagates unchanged.
        """
        if event not in self._from.get(state, {}):
            # decided here, not by catching transitions' AttributeError/ValueError: those
            # would also swallow the same errors raised by a crashing permit or guard
            raise TransitionNotAllowed(step=state, event=event, allowed=self.events(state))
        return self.run(state, event, permit, guard, self._plain.get((state, event)))

    def run(
        self, state: str, event: str, permit: Permit, guard: Guard, plain: Transition | None
    ) -> Transition | None:
        """:meth:`step` for an event known to be defined from ``state`` (the engine's
        path: it has the :class:`Route` already); ``plain`` is the route's.

        Takes no lock: the call's model is its own :class:`_Run`, and the machine's
        shared tables are only read, so ``permit`` and ``guard`` (plugin code) may run
        for as long as they like and may call the engine again, also for this protocol.
        """
        if plain is not None and not permit(plain):
            return None
        run = _Run(state, permit, guard)
        try:
            # transitions' public Event.trigger, without model.trigger's name lookup
            moved = self._events[event].trigger(run, run)
        except MachineError as exc:
            raise TransitionNotAllowed(step=state, event=event, allowed=self.events(state)) from exc
        if not moved:
            return None
        return plain if plain is not None else run.taken


def compile_protocol(protocol: Protocol) -> CompiledProtocol:
    """Compile ``protocol`` (already validated) into a shared machine."""
    return CompiledProtocol(protocol)
