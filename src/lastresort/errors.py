"""Errors of lastresort: one base class, one subclass per kind of refusal.

Every error says what was refused, where (encounter, step, event, actor) and what
is allowed instead. An error never leaves anything half-changed.

::

    LastResortError
    ├── ProtocolError (.problems)
    │   └── ScenarioError
    ├── UnknownProtocol
    ├── TransitionNotAllowed
    ├── NotPermitted
    ├── GuardRefused
    ├── FactsRefused
    ├── UnknownEncounter
    ├── ConcurrentUpdate
    ├── StoreError
    └── InvalidArgument (also a ValueError)
"""

from __future__ import annotations

from collections.abc import Sequence

from .privacy import quoted

__all__ = [
    "ActorRefused",
    "ChannelRefused",
    "ConcurrentUpdate",
    "DeadlineGone",
    "FactsRefused",
    "GuardRefused",
    "InvalidArgument",
    "LastResortError",
    "NotPermitted",
    "ProtocolError",
    "ScenarioError",
    "StoreError",
    "TransitionNotAllowed",
    "UnknownEncounter",
    "UnknownProtocol",
]


class LastResortError(Exception):
    """Base class of every error lastresort raises on purpose."""


class ProtocolError(LastResortError):
    """A protocol (file or mapping) is unusable.

    :ivar problems: every problem found, each ``"<path>: <what is wrong>"``.
    """

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems: list[str] = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun}{where}:\n{lines}")


class ScenarioError(ProtocolError):
    """A scenario file is unusable; ``.problems`` lists each problem with its path."""


class UnknownProtocol(LastResortError):
    """No protocol with that id is known to the engine."""

    def __init__(self, protocol_id: str, known: Sequence[str]) -> None:
        self.protocol_id = protocol_id
        self.known = list(known)
        super().__init__(
            f"unknown protocol {quoted(protocol_id)}; known: {', '.join(sorted(known)) or 'none'}"
        )


class TransitionNotAllowed(LastResortError):
    """The event cannot happen in the encounter's current step."""

    def __init__(
        self,
        encounter_id: str,
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
        super().__init__(
            f"encounter {encounter_id}: event {quoted(event)} is not allowed in step {step!r};"
            f" allowed now: {', '.join(self.allowed) or nothing}"
        )


class NotPermitted(LastResortError):
    """The actor's role may not fire the event (``by``), or a handover was fired
    by someone other than the receiving party."""

    def __init__(
        self,
        encounter_id: str,
        step: str,
        event: str,
        actor: str,
        may: Sequence[str],
        reason: str = "",
    ) -> None:
        self.encounter_id = encounter_id
        self.step = step
        self.event = event
        self.actor = actor
        self.may = list(may)
        extra = f" ({reason})" if reason else ""
        super().__init__(
            f"encounter {encounter_id}, step {step!r}: {quoted(actor)} may not fire"
            f" {quoted(event)}{extra};"
            f" who may: {', '.join(self.may) or 'nobody'}"
        )


class GuardRefused(LastResortError):
    """A plugin's guard refused the transition; ``reason`` is the plugin's text."""

    def __init__(self, encounter_id: str, step: str, event: str, guard: str, reason: str) -> None:
        self.encounter_id = encounter_id
        self.step = step
        self.event = event
        self.guard = guard
        self.reason = reason
        super().__init__(
            f"encounter {encounter_id}, step {step!r}: guard {guard!r} refused {event!r}: {reason}"
        )


class FactsRefused(LastResortError):
    """Facts given to an encounter are not declared by its protocol.

    :ivar problems: one line per refused key or value.
    """

    def __init__(self, protocol_id: str, problems: Sequence[str]) -> None:
        self.protocol_id = protocol_id
        self.problems = list(problems)
        super().__init__(f"facts refused by protocol {protocol_id!r}: " + "; ".join(self.problems))


class UnknownEncounter(LastResortError):
    """No encounter with that id is stored."""

    def __init__(self, encounter_id: str) -> None:
        self.encounter_id = encounter_id
        super().__init__(f"unknown encounter {quoted(encounter_id)}")


class ConcurrentUpdate(LastResortError):
    """Someone else changed the encounter first; nothing was written."""

    def __init__(self, encounter_id: str, expected: int, actual: int) -> None:
        self.encounter_id = encounter_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"encounter {encounter_id} changed concurrently: expected version {expected},"
            f" found {actual}; reload it and try again"
        )


class DeadlineGone(ConcurrentUpdate):
    """A step fired by the clock was to consume its deadline, but the deadline is no
    longer pending: another worker fired it (its claim on it had run out) or the
    encounter left the step. Nothing was written; the deadline fires once."""

    def __init__(self, encounter_id: str, deadline_id: str, version: int) -> None:
        self.deadline_id = deadline_id
        LastResortError.__init__(
            self,
            f"encounter {encounter_id}: deadline {deadline_id} is no longer pending (fired"
            " by another worker or cleared); nothing was written",
        )
        self.encounter_id = encounter_id
        self.expected = version
        self.actual = version


class StoreError(LastResortError):
    """The store failed; the operation was not applied."""


class InvalidArgument(LastResortError, ValueError):
    """An argument of a public call has the wrong type or is out of range; it was
    refused before anything was read or written.

    Also a :class:`ValueError`, as the claim limits were documented to raise one.
    The message names the call and the parameter and says what it must be; it
    shows the type of what was given, never the value (it could be about a child).

    :ivar call: the method refused, e.g. ``"Engine.tick"`` or ``"claim_deadlines"``.
    :ivar argument: the parameter's name, e.g. ``"now"``.
    """

    def __init__(self, *, call: str, argument: str, problem: str) -> None:
        self.call = call
        self.argument = argument
        super().__init__(f"{call}: {argument} must be {problem}; nothing was changed")


class ActorRefused(LastResortError):
    """An actor's role or id has not the form of a role key or a pseudonymous id
    (see :mod:`lastresort.privacy`); the value is never quoted (it could be a
    name or a citizen service number).

    :ivar problem: what is wrong with it.
    """

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"actor refused: {problem}")


class ChannelRefused(LastResortError):
    """The channel given to :meth:`lastresort.Engine.open` is not one the protocol
    declares; the value is never quoted, only its type and length.

    :ivar allowed: the channels the protocol declares.
    """

    def __init__(self, protocol_id: str, allowed: Sequence[str], given: str) -> None:
        self.protocol_id = protocol_id
        self.allowed = list(allowed)
        super().__init__(
            f"channel refused by protocol {protocol_id!r}: got {given}; allowed:"
            f" {', '.join(self.allowed)}"
        )
