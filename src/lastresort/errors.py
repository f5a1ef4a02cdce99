"""Errors of lastresort: one base class, one subclass per kind of refusal.

Every error says what was refused, where (encounter, step, event, actor) and what
is allowed instead. An error never leaves anything half-changed.

One style for all of them (see docs/embedding.md, "Errors"):

- every error class of the library is defined here;
- constructors take keyword arguments only; a field that does not apply is ``None``
  and the message simply leaves it out (never a ``"-"`` placeholder);
- the same thing has the same field name everywhere: ``encounter_id``, ``step``,
  ``event``, ``actor``, ``protocol_id``, ``allowed`` (what is allowed instead),
  ``expected``/``actual`` (versions), ``problems`` (one line per problem), ``problem``
  (what is wrong, as one phrase);
- each class knows its :class:`Category`, an HTTP-like kind for embedders;
- every error pickles with its fields (multiprocessing workers raise them).

::

    LastResortError
    ├── ProblemsError (.problems)                       invalid
    │   ├── ProtocolError (.source)                    invalid
    │   ├── ScenarioError (.source)                    invalid
    │   ├── SimulationConfigError (.source)            invalid
    │   ├── SimulationAborted (.source)                unavailable
    │   ├── PluginLoadError (.plugin)                  invalid
    │   ├── CatalogueError (.source)                   invalid
    │   └── FactsRefused (.protocol_id)                invalid
    ├── UnknownProtocol                                not_found
    ├── UnknownEncounter                               not_found
    ├── TransitionNotAllowed                           conflict
    ├── GuardRefused                                   conflict
    ├── ConcurrentUpdate                               conflict
    │   └── DeadlineGone                               conflict
    ├── NotPermitted                                   forbidden
    ├── ActorRefused                                   forbidden
    ├── ChannelRefused                                 invalid
    ├── InvalidArgument (also a ValueError)            invalid
    ├── NewPluginError                                 invalid
    ├── StoreError                                     unavailable
    └── ReportUnavailable                              unavailable

The rule between ``conflict`` and ``invalid``: a refusal that depends on the
encounter's present state (its step, its version, its deadlines, the facts a guard
reads) is a ``conflict``: the same request may succeed against another state, after
a reload or once the world has moved on. A request refused whatever the state (bad
arguments, undeclared facts or channels, an unusable protocol, scenario,
configuration or plugin) is ``invalid``: it must be changed before it can succeed.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, ClassVar

from .privacy import quoted

__all__ = [
    "ActorRefused",
    "CatalogueError",
    "Category",
    "ChannelRefused",
    "ConcurrentUpdate",
    "DeadlineGone",
    "FactsRefused",
    "GuardRefused",
    "InvalidArgument",
    "LastResortError",
    "NewPluginError",
    "NotPermitted",
    "PluginLoadError",
    "ProblemsError",
    "ProtocolError",
    "ReportUnavailable",
    "ScenarioError",
    "SimulationAborted",
    "SimulationConfigError",
    "StoreError",
    "TransitionNotAllowed",
    "UnknownEncounter",
    "UnknownProtocol",
]


class Category(StrEnum):
    """What kind of refusal an error is, for embedders that answer over HTTP or the
    like (the status in brackets is the natural one; lastresort itself serves none)."""

    #: the encounter or protocol named does not exist (404)
    NOT_FOUND = "not_found"
    #: the actor may not do this (403)
    FORBIDDEN = "forbidden"
    #: refused in the encounter's present state; may succeed in another (409)
    CONFLICT = "conflict"
    #: refused whatever the state: the request itself must change (400/422)
    INVALID = "invalid"
    #: the store or an optional part is not available; nothing was applied (503)
    UNAVAILABLE = "unavailable"


def _rebuild(cls: type[LastResortError], fields: dict[str, Any]) -> LastResortError:
    """Unpickle an error: call its constructor with its fields by keyword."""
    return cls(**fields)


def _restore(
    cls: type[LastResortError], args: tuple[Any, ...], state: dict[str, Any]
) -> LastResortError:
    """Unpickle an error whose constructor is not keyword-only: its args and attributes."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def _join(*parts: str | None) -> str:
    """The parts that apply, separated by ``, ``."""
    return ", ".join(part for part in parts if part)


class LastResortError(Exception):
    """Base class of every error lastresort raises on purpose.

    :cvar category: the :class:`Category` of the error; every class of lastresort sets
        its own, and an embedder's direct subclass that sets none is ``invalid``.
    """

    category: ClassVar[Category] = Category.INVALID

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The names of the constructor's fields (keyword-only), each also an attribute."""
        signature = inspect.signature(cls.__init__)
        return tuple(
            name
            for name, parameter in signature.parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        )

    def __reduce__(self) -> tuple[Any, ...]:
        parameters = list(inspect.signature(type(self).__init__).parameters.values())[1:]
        if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in parameters):
            # an embedder's subclass with positional arguments: its constructor cannot be
            # called from its message, so it is restored without calling it
            return (_restore, (type(self), self.args, dict(self.__dict__)))
        fields = {name: getattr(self, name) for name in self.fields()}
        return (_rebuild, (type(self), fields), dict(self.__dict__) or None)


class ProblemsError(LastResortError):
    """Something given to lastresort (a protocol, a scenario, a configuration, a
    plugin, facts) is unusable, for every reason listed at once.

    :ivar problems: every problem found, each ``"<path>: <what is wrong>"`` where it
        has a place.
    :ivar source: the file or name the problems were found in, or ``None``.
    """

    category = Category.INVALID

    def __init__(self, *, problems: Sequence[str], source: str | None = None) -> None:
        self.problems: list[str] = list(problems)
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        return f"{count} {noun}{where}:\n{lines}"


class ProtocolError(ProblemsError):
    """A protocol (file or mapping) is unusable.

    :ivar problems: every problem found, each ``"<path>: <what is wrong>"``.
    :ivar source: the file name, the protocol id, or ``None``.
    :ivar located: for a protocol read from a file, the same problems each with its
        place in front (``"my.toml:42:1: $.transitions[3].by[0]: ..."``), and these are
        what the message lists; ``None`` otherwise.
    """

    def __init__(
        self,
        *,
        problems: Sequence[str],
        source: str | None = None,
        located: Sequence[str] | None = None,
    ) -> None:
        if located is not None and len(located) != len(problems):
            raise InvalidArgument(
                call="ProtocolError",
                argument="located",
                problem=f"one line per problem ({len(problems)}), got {len(located)}",
            )
        self.located: list[str] | None = None if located is None else list(located)
        super().__init__(problems=problems, source=source)

    def _message(self) -> str:
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.lines)
        noun = "problem" if count == 1 else "problems"
        return f"{count} {noun}{where}:\n{lines}"

    @property
    def lines(self) -> list[str]:
        """The problems as shown: :attr:`located` when read from a file, else :attr:`problems`."""
        return self.problems if self.located is None else self.located


class ScenarioError(ProblemsError):
    """A scenario file is unusable, or the engine cannot run it; ``.problems`` lists
    each problem with its path. Not a :class:`ProtocolError`."""


class SimulationConfigError(ProblemsError):
    """A simulation configuration or its arguments are unusable; ``.problems`` lists
    each problem with its path. Not a :class:`ProtocolError`."""


class SimulationAborted(ProblemsError):
    """A simulation run could not go on: ``.problems`` says where and why. Raised when
    a deadline could not fire on every try for a day of simulated time (a plugin, or
    the store, fails each time it fires): what the run would measure after that is
    the failure, not the protocol."""

    category = Category.UNAVAILABLE


class CatalogueError(ProblemsError):
    """A message catalogue (the words of cards in a further language) is unusable:
    ``.problems`` names every missing, unknown or empty key."""


class PluginLoadError(ProblemsError):
    """A plugin could not be registered or used (a bad hook name or signature, a
    failing entry point, a hook that returned something unusable).

    :ivar plugin: the plugin's name in the plugin manager, or ``None`` when it is not
        known (an entry point failing to import).
    """

    def __init__(
        self, *, problems: Sequence[str], plugin: str | None = None, source: str | None = None
    ) -> None:
        self.plugin = plugin
        super().__init__(problems=problems, source=source)

    def _message(self) -> str:
        who = f"plugin {self.plugin!r}: " if self.plugin else ""
        return who + "; ".join(self.problems)


class FactsRefused(ProblemsError):
    """Facts given to an encounter are not declared by its protocol.

    :ivar protocol_id: the protocol that refused them.
    :ivar problems: one line per refused key or value.
    """

    def __init__(
        self, *, protocol_id: str, problems: Sequence[str], source: str | None = None
    ) -> None:
        self.protocol_id = protocol_id
        super().__init__(problems=problems, source=source)

    def _message(self) -> str:
        return f"facts refused by protocol {self.protocol_id!r}: " + "; ".join(self.problems)


class UnknownProtocol(LastResortError):
    """No protocol with that id is known to the engine.

    :ivar protocol_id: the id asked for (quoted in the message only when it has an
        identifier's form).
    :ivar known: the ids the engine knows.
    """

    category = Category.NOT_FOUND

    def __init__(self, *, protocol_id: str, known: Sequence[str]) -> None:
        self.protocol_id = protocol_id
        self.known = list(known)
        super().__init__(
            f"unknown protocol {quoted(protocol_id)};"
            f" known: {', '.join(sorted(self.known)) or 'none'}"
        )


class UnknownEncounter(LastResortError):
    """No encounter with that id is stored.

    :ivar encounter_id: the id asked for.
    """

    category = Category.NOT_FOUND

    def __init__(self, *, encounter_id: str) -> None:
        self.encounter_id = encounter_id
        super().__init__(f"unknown encounter {quoted(encounter_id)}")


class TransitionNotAllowed(LastResortError):
    """The event cannot happen in the encounter's current step.

    :ivar encounter_id: the encounter, or ``None`` when refused by a compiled machine
        outside any encounter.
    :ivar step: the step the event was fired in.
    :ivar event: the event refused.
    :ivar allowed: the events the actor may fire in that step instead.
    :ivar closed: whether the step is terminal (the encounter is closed).
    """

    category = Category.CONFLICT

    def __init__(
        self,
        *,
        encounter_id: str | None = None,
        step: str,
        event: str,
        allowed: Sequence[str],
        closed: bool = False,
    ) -> None:
        self.encounter_id = encounter_id
        self.step = step
        self.event = event
        self.allowed = list(allowed)
        self.closed = closed
        nothing = "nothing (the encounter is closed)" if closed else "nothing for this actor"
        where = f"encounter {encounter_id}: " if encounter_id is not None else ""
        super().__init__(
            f"{where}event {quoted(event)} is not allowed in step {step!r};"
            f" allowed now: {', '.join(self.allowed) or nothing}"
        )


class NotPermitted(LastResortError):
    """The actor's role may not fire the event (``by``), or a handover was fired
    by someone other than the receiving party.

    :ivar encounter_id: the encounter, or ``None`` before one exists (``open``).
    :ivar step: the step, or ``None`` when no step applies.
    :ivar event: what was refused (an event, ``"open"`` or ``"on_duty"``).
    :ivar actor: the actor's role.
    :ivar allowed: the roles that may.
    :ivar reason: why, when more than the role is at stake (a handover), or ``None``.
    """

    category = Category.FORBIDDEN

    def __init__(
        self,
        *,
        encounter_id: str | None = None,
        step: str | None = None,
        event: str,
        actor: str,
        allowed: Sequence[str],
        reason: str | None = None,
    ) -> None:
        self.encounter_id = encounter_id
        self.step = step
        self.event = event
        self.actor = actor
        self.allowed = list(allowed)
        self.reason = reason
        where = _join(
            f"encounter {encounter_id}" if encounter_id is not None else None,
            f"step {step!r}" if step is not None else None,
        )
        extra = f" ({reason})" if reason else ""
        super().__init__(
            f"{where + ': ' if where else ''}{quoted(actor)} may not fire"
            f" {quoted(event)}{extra}; who may: {', '.join(self.allowed) or 'nobody'}"
        )


class GuardRefused(LastResortError):
    """A plugin's guard refused the transition.

    :ivar encounter_id: the encounter.
    :ivar step: its step.
    :ivar event: the event refused.
    :ivar guard: the guard's name.
    :ivar reason: the plugin's text.
    """

    category = Category.CONFLICT

    def __init__(
        self, *, encounter_id: str, step: str, event: str, guard: str, reason: str
    ) -> None:
        self.encounter_id = encounter_id
        self.step = step
        self.event = event
        self.guard = guard
        self.reason = reason
        super().__init__(
            f"encounter {encounter_id}, step {step!r}: guard {guard!r} refused {event!r}: {reason}"
        )


class ConcurrentUpdate(LastResortError):
    """Someone else changed the encounter first; nothing was written.

    :ivar encounter_id: the encounter.
    :ivar expected: the version the change was built on (0: a new encounter).
    :ivar actual: the version found in the store.
    """

    category = Category.CONFLICT

    def __init__(self, *, encounter_id: str, expected: int, actual: int) -> None:
        self.encounter_id = encounter_id
        self.expected = expected
        self.actual = actual
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"encounter {self.encounter_id} changed concurrently: expected version"
            f" {self.expected}, found {self.actual}; reload it and try again"
        )


class DeadlineGone(ConcurrentUpdate):
    """A step fired by the clock was to consume its deadline, but the deadline is no
    longer pending: another worker fired it (its claim on it had run out) or the
    encounter left the step. Nothing was written; the deadline fires once.

    :ivar deadline_id: the deadline that was gone.
    :ivar expected: the version the change was built on; ``actual`` is the same (the
        encounter itself had not moved, its deadline had).
    """

    def __init__(self, *, encounter_id: str, deadline_id: str, expected: int) -> None:
        self.deadline_id = deadline_id
        super().__init__(encounter_id=encounter_id, expected=expected, actual=expected)

    def _message(self) -> str:
        return (
            f"encounter {self.encounter_id}: deadline {self.deadline_id} is no longer pending"
            " (fired by another worker or cleared); nothing was written"
        )


class ActorRefused(LastResortError):
    """An actor's role or id has not the form of a role key or a pseudonymous id
    (see :mod:`lastresort.privacy`); the value is never quoted (it could be a
    name or a citizen service number).

    :ivar problem: what is wrong with it.
    """

    category = Category.FORBIDDEN

    def __init__(self, *, problem: str) -> None:
        self.problem = problem
        super().__init__(f"actor refused: {problem}")


class ChannelRefused(LastResortError):
    """The channel given to :meth:`lastresort.Engine.open` is not one the protocol
    declares; the value is never quoted, only its type and length.

    :ivar protocol_id: the protocol.
    :ivar allowed: the channels the protocol declares.
    :ivar given: a description of the value given (its type and length).
    """

    category = Category.INVALID

    def __init__(self, *, protocol_id: str, allowed: Sequence[str], given: str) -> None:
        self.protocol_id = protocol_id
        self.allowed = list(allowed)
        self.given = given
        super().__init__(
            f"channel refused by protocol {protocol_id!r}: got {given}; allowed:"
            f" {', '.join(self.allowed) or 'none'}"
        )


class InvalidArgument(LastResortError, ValueError):
    """An argument of a public call has the wrong type or is out of range; it was
    refused before anything was read or written.

    Also a :class:`ValueError`, as the claim limits were documented to raise one.
    The message names the call and the parameter and says what it must be; it
    shows the type of what was given, never the value (it could be about a child).

    :ivar call: the method refused, e.g. ``"Engine.tick"`` or ``"claim_deadlines"``.
    :ivar argument: the parameter's name, e.g. ``"now"``.
    :ivar problem: what it must be.
    """

    category = Category.INVALID

    def __init__(self, *, call: str, argument: str, problem: str) -> None:
        self.call = call
        self.argument = argument
        self.problem = problem
        super().__init__(f"{call}: {argument} must be {problem}; nothing was changed")


class NewPluginError(LastResortError):
    """A new plugin cannot be written (a bad name, municipality or target); nothing
    was written.

    :ivar problem: what is wrong.
    """

    category = Category.INVALID

    def __init__(self, *, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


class StoreError(LastResortError):
    """The store failed or refused a malformed change; the operation was not applied.

    :ivar problem: what failed, naming the file and the encounter where they apply.
    """

    category = Category.UNAVAILABLE

    def __init__(self, *, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


class ReportUnavailable(LastResortError):
    """An optional part is not installed (the HTML report needs matplotlib).

    :ivar install: the command that installs it.
    """

    category = Category.UNAVAILABLE

    def __init__(self, *, install: str = "pip install 'lastresort[report]'") -> None:
        self.install = install
        super().__init__(
            "the HTML report needs the optional plotting extra (matplotlib is not"
            f" installed): {install}"
        )
