"""Scenarios as values: a scripted encounter in virtual time, and what must happen in it.

A scenario names a protocol, a start time and the child's facts, then lists steps
in time order. A step is an action (a party fires an event, possibly one that
must be refused), an expectation (the state, who is responsible, what may be
fired, which notifications and deadlines exist), or both. See ``docs/scenarios.md``.

Scenario files are read by :func:`lastresort.simulate.load_scenario`
(``scenario_file.py``) and run by :func:`lastresort.simulate.run_scenario`
(``scenario_run.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from attrs import field, frozen

from ..clock import instant_after
from ..errors import (
    ActorRefused,
    GuardRefused,
    InvalidArgument,
    LastResortError,
    NotPermitted,
    TransitionNotAllowed,
)
from ..protocol.model import FrozenMap, Protocol

__all__ = [
    "DEFAULT_TIMEZONE",
    "ERROR_KINDS",
    "NOBODY",
    "AllowedExpectation",
    "DeadlineExpectation",
    "NotificationExpectation",
    "Scenario",
    "ScenarioStep",
]
#: The time zone of naive date-times in a scenario file, unless it names another.
DEFAULT_TIMEZONE = "Europe/Amsterdam"
#: ``responsible = "nobody"``: no party holds responsibility (a closed encounter).
NOBODY = "nobody"
#: The values of ``expect_error``: the refusals an action can be expected to meet.
ERROR_KINDS: Mapping[str, type[LastResortError]] = FrozenMap(
    {
        "NotPermitted": NotPermitted,
        "TransitionNotAllowed": TransitionNotAllowed,
        "GuardRefused": GuardRefused,
        "ActorRefused": ActorRefused,
        "InvalidArgument": InvalidArgument,
        "LastResortError": LastResortError,
    }
)


def _allowed(items: Iterable[AllowedExpectation]) -> tuple[AllowedExpectation, ...]:
    return tuple(items)


def _notes(items: Iterable[NotificationExpectation]) -> tuple[NotificationExpectation, ...]:
    return tuple(items)


def _steps(items: Iterable[ScenarioStep]) -> tuple[ScenarioStep, ...]:
    return tuple(items)


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _facts(items: Mapping[str, str | bool]) -> Mapping[str, str | bool]:
    return items if isinstance(items, FrozenMap) else FrozenMap(items)


# -- the scenario as a value --------------------------------------------------------


@frozen
class NotificationExpectation:
    """A notification to ``party`` about ``event`` that must exist.

    :param count: exactly this many such notifications (``0``: none at all);
        without it, at least one.
    :param contact: only notifications addressed to this contact (the directory's
        answer, kept in the outbox once an attempt was made) are counted.
    """

    party: str
    event: str
    count: int | None = None
    contact: str | None = None


@frozen
class AllowedExpectation:
    """Exactly the events ``actor`` may fire now (in any order)."""

    actor: str
    events: tuple[str, ...] = field(converter=_strings)


@frozen
class DeadlineExpectation:
    """A pending deadline of the encounter.

    :param step: the step whose deadline it is.
    :param event: the event it fires (default: not compared).
    :param due: when it falls due, as an offset from the scenario's start
        (default: not compared).
    """

    step: str
    event: str | None = None
    due: timedelta | None = None


@frozen
class ScenarioStep:
    """One step of a scenario: an action, expectations, or both (the action first).

    :param at: when it happens, as an offset from the scenario's start.
    :param note: what the step is about, for people reading a failure.
    :param actor: the role that fires ``event``.
    :param actor_id: an identifier of the person, recorded in the timeline.
    :param until: the date the actor chooses for the entered step's deadline
        (``Engine.fire(..., until=)``), as an offset from the scenario's start.
    :param expect_error: the refusal the action must meet (a key of
        :data:`ERROR_KINDS`); the encounter must then be unchanged.
    :param state: the step the encounter must be in.
    :param responsible: the party that must hold responsibility
        (:data:`NOBODY` for none).
    :param allowed: for each actor, exactly the events it may fire.
    :param queued: notifications that must have been queued (since the start).
    :param delivered: notifications that must have been delivered.
    :param deadlines: exactly the pending deadlines (``()``: none); ``None`` does
        not check them.
    :param closed: whether the encounter must be closed.
    """

    at: timedelta
    note: str | None = None
    actor: str | None = None
    actor_id: str | None = None
    until: timedelta | None = None
    event: str | None = None
    expect_error: str | None = None
    state: str | None = None
    responsible: str | None = None
    allowed: tuple[AllowedExpectation, ...] = field(default=(), converter=_allowed)
    queued: tuple[NotificationExpectation, ...] = field(default=(), converter=_notes)
    delivered: tuple[NotificationExpectation, ...] = field(default=(), converter=_notes)
    deadlines: tuple[DeadlineExpectation, ...] | None = None
    closed: bool | None = None

    @property
    def is_action(self) -> bool:
        """Whether the step fires an event."""
        return self.event is not None

    @property
    def expects(self) -> bool:
        """Whether the step checks anything after its action (if any)."""
        return (
            self.state is not None
            or self.responsible is not None
            or bool(self.allowed or self.queued or self.delivered)
            or self.deadlines is not None
            or self.closed is not None
        )


@frozen
class Scenario:
    """A loaded, checked scenario; run it with :func:`~lastresort.simulate.run_scenario`.

    :param name: what it shows, in one line.
    :param protocol: the protocol id.
    :param start: when the child arrives (timezone-aware).
    :param timezone: the IANA time zone naive times were read in, and times are shown in.
    :param facts: the encounter's facts.
    :param opened_by: the role that opens the encounter.
    :param channel: how the child arrived (recorded on the encounter).
    :param steps: the steps, in time order.
    :param description: a longer explanation, if any.
    :param source: the file it was read from, if any.
    :param definition: the protocol it was checked against.
    :param opened_by_id: the pseudonymous id of the person who opens it (required
        in a file: every actor but the clock carries one).
    """

    name: str
    protocol: str
    start: datetime
    timezone: str
    facts: Mapping[str, str | bool] = field(converter=_facts)
    opened_by: str
    channel: str
    steps: tuple[ScenarioStep, ...] = field(converter=_steps)
    description: str | None = None
    source: str | None = None
    definition: Protocol | None = field(default=None, eq=False, repr=False)
    opened_by_id: str | None = None

    def moment(self, offset: timedelta) -> datetime:
        """The moment ``offset`` of real time after the start, shown in the start's
        time zone (the way the engine adds a deadline to the time a step is
        entered: across a daylight saving change too)."""
        return instant_after(self.start, offset).astimezone(self.start.tzinfo)
